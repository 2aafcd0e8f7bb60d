// Package waclient simulates the WhatsApp clients that talk to a Flows
// endpoint, to prove on the local stack that rotating the business key
// never breaks a Flow.
//
// A Population is a set of clients, each bound to one phone number. A
// client fetches the number's business public key from the Graph API
// (GET /{version}/{phone}/whatsapp_business_encryption) and caches it for a
// random time, drawn per fetch from a seeded log-uniform distribution
// between Options.MinKeyTTL and MaxKeyTTL: Meta does not document how long
// real clients cache it, so the population mixes short and long caches.
// Each client books tables in the sample Flow of internal/local/flowbackend
// (INIT, data_exchange, BACK, with a share of expired flow tokens), with
// Meta's health-check pings mixed in, encrypting each request as WhatsApp
// does (its own crypto, see crypto.go) and signing it as Meta does
// (X-Hub-Signature-256: sha256=hex(HMAC-SHA256(app secret, raw body))).
//
// On HTTP 421 a client re-fetches the key and retries once, with a fresh
// encryption, as WhatsApp does. A request that still fails is a
// user-visible failure; so is any answer other than the one the sample
// backend gives (every 200 must decrypt, with the inverted IV, to exactly
// flowbackend.Respond's response), and a 427 unless the token was expired.
//
// Traffic runs in rounds: in a Round every client sends one request, so a
// test can tell which requests came after an event. Options.Rate paces the
// requests of a round to a steady rate.
package waclient

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"
)

// DefaultGraphVersion is the Graph API version clients fetch keys from.
const DefaultGraphVersion = "v24.0"

// Mix is how a client's requests are chosen, as shares between 0 and 1.
type Mix struct {
	Ping    float64 // Meta's health check instead of the user's next step
	Back    float64 // BACK instead of submitting a SLOT or CONFIRM screen
	Expired float64 // sessions whose flow token the sample backend treats as expired
}

// DefaultMix is the Mix when Options.Mix is nil.
func DefaultMix() Mix { return Mix{Ping: 0.05, Back: 0.15, Expired: 0.05} }

// Options configure a Population. EndpointURL, GraphURL, GraphToken,
// AppSecret and Phones are required.
type Options struct {
	EndpointURL string // where Meta POSTs: the Flows endpoint
	GraphURL    string // the Graph API (graphsim) the keys are fetched from
	GraphToken  string // graphsim's token; Graph wants one for every call
	// GraphVersion is the version in the key's path (DefaultGraphVersion).
	GraphVersion string
	// AppSecret signs every request, as Meta signs with the app's secret.
	AppSecret []byte
	// Phones are the numbers the clients are bound to, round robin.
	Phones []string
	// Clients is the population's size (12).
	Clients int
	// Seed makes key lifetimes and users' choices repeatable (0 is a seed).
	Seed uint64
	// MinKeyTTL and MaxKeyTTL bound how long a client caches a key
	// (1s and 10m).
	MinKeyTTL, MaxKeyTTL time.Duration
	// Rate is the steady rate of requests per second across the
	// population; 0 sends as fast as the endpoint answers.
	Rate float64
	// Concurrency is how many requests are in flight at once (4).
	Concurrency int
	// Mix chooses the requests (DefaultMix()).
	Mix *Mix
	// HTTPClient sends every request (one with Meta's 10 s limit).
	HTTPClient *http.Client
	// Now is the clock key lifetimes are measured on (time.Now).
	Now func() time.Time
}

// Population is a set of simulated clients. Its methods are safe for
// concurrent use, but one Round runs at a time.
type Population struct {
	opts    Options
	clients []*client
	round   sync.Mutex

	mu    sync.Mutex
	stats Stats
}

// New checks opts and returns a population whose clients hold no key yet.
func New(opts Options) (*Population, error) {
	var missing []string
	for name, empty := range map[string]bool{
		"EndpointURL": opts.EndpointURL == "", "GraphURL": opts.GraphURL == "", "GraphToken": opts.GraphToken == "",
		"AppSecret": len(opts.AppSecret) == 0, "Phones": len(opts.Phones) == 0,
	} {
		if empty {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return nil, errors.New("waclient: Options need " + joinSorted(missing))
	}
	if opts.GraphVersion == "" {
		opts.GraphVersion = DefaultGraphVersion
	}
	if opts.Clients <= 0 {
		opts.Clients = 12
	}
	if opts.MinKeyTTL <= 0 {
		opts.MinKeyTTL = time.Second
	}
	if opts.MaxKeyTTL <= 0 {
		opts.MaxKeyTTL = 10 * time.Minute
	}
	if opts.MaxKeyTTL < opts.MinKeyTTL {
		return nil, errors.New("waclient: Options.MaxKeyTTL is below MinKeyTTL")
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 4
	}
	if opts.Mix == nil {
		m := DefaultMix()
		opts.Mix = &m
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	p := &Population{opts: opts, stats: newStats()}
	for i := range opts.Clients {
		p.clients = append(p.clients, &client{
			id: i, phone: opts.Phones[i%len(opts.Phones)],
			rnd: rand.New(rand.NewPCG(opts.Seed, uint64(i))),
		})
	}
	return p, nil
}

// Size is the number of clients.
func (p *Population) Size() int { return len(p.clients) }

// Round makes every client send one request (with its retry, if any) and
// returns when all have been answered, or when ctx ends.
func (p *Population) Round(ctx context.Context) error {
	p.round.Lock()
	defer p.round.Unlock()
	var pace *time.Ticker
	if p.opts.Rate > 0 {
		pace = time.NewTicker(time.Duration(float64(time.Second) / p.opts.Rate))
		defer pace.Stop()
	}
	slots := make(chan struct{}, p.opts.Concurrency)
	var wg sync.WaitGroup
	defer wg.Wait()
	for i, c := range p.clients {
		if pace != nil && i > 0 {
			select {
			case <-pace.C:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		wg.Go(func() {
			defer func() { <-slots }()
			p.record(c.step(ctx, p))
		})
	}
	return ctx.Err()
}

// RunUntil runs rounds until stop is closed: the round in progress then
// finishes. It returns how many rounds ran.
func (p *Population) RunUntil(ctx context.Context, stop <-chan struct{}) (int, error) {
	for n := 0; ; n++ {
		select {
		case <-stop:
			return n, nil
		default:
		}
		if err := p.Round(ctx); err != nil {
			return n, err
		}
	}
}

// Stats returns the counts so far.
func (p *Population) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stats.clone()
}

func (p *Population) record(o outcome) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stats.add(o)
}

// keyTTL draws how long a fetched key is cached: log-uniform, so short and
// long caches are equally represented at every scale.
func (p *Population) keyTTL(rnd *rand.Rand) time.Duration {
	lo, hi := float64(p.opts.MinKeyTTL), float64(p.opts.MaxKeyTTL)
	return time.Duration(lo * math.Pow(hi/lo, rnd.Float64()))
}
