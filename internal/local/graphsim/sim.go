package graphsim

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"regexp"
	"slices"
	"sync"
	"time"
)

// Defaults for Options.
const (
	DefaultPageSize = 2
	DefaultVersion  = "v24.0"
	maxPageSize     = 1000
	historyLen      = 16
	requestLogLen   = 512
)

// ErrNotFound is wrapped by errors about phone numbers or WABAs the
// simulator does not know.
var ErrNotFound = errors.New("not found")

// InputError says which input was wrong, what is wrong with it and how to
// fix it. It never quotes key material or the token.
type InputError struct {
	Field   string
	Problem string
	Fix     string
	Err     error // ErrNotFound where that applies
}

func (e *InputError) Error() string {
	return fmt.Sprintf("graphsim: %s: %s; %s", e.Field, e.Problem, e.Fix)
}

func (e *InputError) Unwrap() error { return e.Err }

// Options configure a Sim. Token is required; zero values of the rest take
// the defaults noted.
type Options struct {
	// Token is the default access token: it reaches every WABA. AddToken
	// adds tokens that reach only some.
	Token string
	// PageSize is the default page of GET /{waba}/phone_numbers (DefaultPageSize),
	// small so that a handful of numbers already spans several pages.
	PageSize int
	Now      func() time.Time // time.Now; drives lag windows and call budgets
	Logger   *slog.Logger     // discards by default; never receives the token or a PEM
	Rand     *rand.Rand       // fbtrace_id source; a random PCG by default
	// DefaultVersion is reported in the facebook-api-version header for
	// requests without a version in the path, as Graph uses the app's default.
	DefaultVersion string
	// Versions, when set, lists the only versions served; other well-formed
	// versions get Graph's "Unknown path components" (code 2500), as a
	// version Graph does not know does. Empty: every vN.N is served.
	Versions []string
}

// Sim is a Graph API simulator. It is an http.Handler and safe for
// concurrent use.
type Sim struct {
	token          []byte // the default token
	pageSize       int
	now            func() time.Time
	log            *slog.Logger
	defaultVersion string
	versions       map[string]bool

	mu          sync.Mutex
	rnd         *rand.Rand
	seq         int64
	wabas       map[string]*wabaState
	tokens      []*scopedToken // added with AddToken, in order
	numbers     map[string]*numberState
	lagAll      time.Duration
	mismatchAll bool
	latency     time.Duration
	faults      []*faultState
	nextFaultID int
	budgets     map[string]*budgetState // "" is the global budget
	calls       Calls
	inFlight    int       // Graph calls counted and not yet answered or abandoned
	requests    []Request // ring, oldest overwritten first
	reqNext     int
}

type wabaState struct {
	id  string
	seq int64
}

type numberState struct {
	id, waba, display, verifiedName string
	seq                             int64
	history                         []keyEntry // oldest first
	lag                             *time.Duration
	mismatch                        bool // forced MISMATCH overlay
}

var (
	idPattern      = regexp.MustCompile(`^[0-9]{1,25}$`)
	versionPattern = regexp.MustCompile(`^v[0-9]+\.[0-9]+$`)
)

// New validates opts and returns an empty simulator: no WABAs, no numbers.
func New(opts Options) (*Sim, error) {
	if err := checkToken("Options.Token", opts.Token); err != nil {
		return nil, err
	}
	if opts.PageSize < 0 || opts.PageSize > maxPageSize {
		return nil, &InputError{Field: "Options.PageSize", Problem: fmt.Sprintf("is %d", opts.PageSize), Fix: fmt.Sprintf("use 0 for the default (%d) or 1..%d", DefaultPageSize, maxPageSize)}
	}
	s := &Sim{
		token:          []byte(opts.Token),
		pageSize:       opts.PageSize,
		now:            opts.Now,
		log:            opts.Logger,
		defaultVersion: opts.DefaultVersion,
		rnd:            opts.Rand,
		wabas:          map[string]*wabaState{},
		numbers:        map[string]*numberState{},
		budgets:        map[string]*budgetState{},
		calls:          Calls{ByObject: map[string]OpCounts{}},
		requests:       make([]Request, 0, requestLogLen),
	}
	if s.pageSize == 0 {
		s.pageSize = DefaultPageSize
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.defaultVersion == "" {
		s.defaultVersion = DefaultVersion
	} else if !versionPattern.MatchString(s.defaultVersion) {
		return nil, &InputError{Field: "Options.DefaultVersion", Problem: fmt.Sprintf("%q is not a Graph version", s.defaultVersion), Fix: `use the form "v24.0"`}
	}
	if len(opts.Versions) > 0 {
		s.versions = map[string]bool{}
		for _, v := range opts.Versions {
			if !versionPattern.MatchString(v) {
				return nil, &InputError{Field: "Options.Versions", Problem: fmt.Sprintf("%q is not a Graph version", v), Fix: `use the form "v24.0"`}
			}
			s.versions[v] = true
		}
	}
	if s.rnd == nil {
		s.rnd = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	return s, nil
}

func checkID(field, id string) error {
	if !idPattern.MatchString(id) {
		return &InputError{Field: field, Problem: fmt.Sprintf("%q is not a Graph ID", id), Fix: "use 1 to 25 decimal digits, as Meta's IDs are"}
	}
	return nil
}

func (s *Sim) nextSeq() int64 {
	s.seq++
	return s.seq
}

// AddWABA registers a WhatsApp Business Account with no numbers. Adding one
// that exists is a no-op.
func (s *Sim) AddWABA(id string) error {
	if err := checkID("waba", id); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.numbers[id]; ok {
		return &InputError{Field: "waba", Problem: fmt.Sprintf("%s is already a phone number ID", id), Fix: "use an ID no phone number has"}
	}
	s.addWABALocked(id)
	return nil
}

func (s *Sim) addWABALocked(id string) {
	if _, ok := s.wabas[id]; !ok {
		s.wabas[id] = &wabaState{id: id, seq: s.nextSeq()}
	}
}

// AddPhoneNumber adds a phone number, with no key yet, to WABA waba
// (created if new). waba "" adds a number that belongs to no WABA: it
// answers the key endpoints but appears in no list.
func (s *Sim) AddPhoneNumber(waba, id, display, verifiedName string) error {
	if waba != "" {
		if err := checkID("waba", waba); err != nil {
			return err
		}
	}
	if err := checkID("id", id); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if n, ok := s.numbers[id]; ok {
		return &InputError{Field: "id", Problem: fmt.Sprintf("phone number %s already exists (WABA %q)", id, n.waba), Fix: "remove it first or choose another ID"}
	}
	if _, ok := s.wabas[id]; ok {
		return &InputError{Field: "id", Problem: fmt.Sprintf("%s is already a WABA ID", id), Fix: "use an ID no WABA has"}
	}
	if waba == id {
		return &InputError{Field: "waba", Problem: "equals the phone number ID", Fix: "give the WABA its own ID"}
	}
	if waba != "" {
		if _, ok := s.numbers[waba]; ok {
			return &InputError{Field: "waba", Problem: fmt.Sprintf("%s is a phone number ID", waba), Fix: "use the WABA's own ID"}
		}
		s.addWABALocked(waba)
	}
	s.numbers[id] = &numberState{id: id, waba: waba, display: display, verifiedName: verifiedName, seq: s.nextSeq()}
	return nil
}

// RemovePhoneNumber deletes a number from its WABA and forgets its keys, as
// when a number is deleted at Meta: later calls for it get 100/33.
func (s *Sim) RemovePhoneNumber(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.numbers[id]; !ok {
		return s.unknownNumber("id", id)
	}
	delete(s.numbers, id)
	return nil
}

func (s *Sim) unknownNumber(field, id string) error {
	return &InputError{Field: field, Problem: fmt.Sprintf("phone number %q does not exist", id), Fix: "add it with AddPhoneNumber (or POST /_sim/numbers) first", Err: ErrNotFound}
}

// PhoneNumber is one listed number.
type PhoneNumber struct {
	ID                 string `json:"id"`
	WABA               string `json:"waba"`
	DisplayPhoneNumber string `json:"display_phone_number"`
	VerifiedName       string `json:"verified_name"`
}

// PhoneNumbers returns the numbers of WABA waba in list order, or every
// number (including those without a WABA) when waba is "".
func (s *Sim) PhoneNumbers(waba string) []PhoneNumber {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []PhoneNumber
	for _, n := range s.sortedNumbersLocked() {
		if waba == "" || n.waba == waba {
			out = append(out, PhoneNumber{ID: n.id, WABA: n.waba, DisplayPhoneNumber: n.display, VerifiedName: n.verifiedName})
		}
	}
	return out
}

func (s *Sim) sortedWABAsLocked() []*wabaState {
	out := make([]*wabaState, 0, len(s.wabas))
	for _, w := range s.wabas {
		out = append(out, w)
	}
	slices.SortFunc(out, func(a, b *wabaState) int { return cmp.Compare(a.seq, b.seq) })
	return out
}

func (s *Sim) sortedNumbersLocked() []*numberState {
	out := make([]*numberState, 0, len(s.numbers))
	for _, n := range s.numbers {
		out = append(out, n)
	}
	slices.SortFunc(out, func(a, b *numberState) int { return cmp.Compare(a.seq, b.seq) })
	return out
}

// SetLatency adds d before every Graph call is answered (0 for none).
func (s *Sim) SetLatency(d time.Duration) error {
	if d < 0 {
		return &InputError{Field: "latency", Problem: fmt.Sprintf("%s is negative", d), Fix: "use 0 or a positive duration"}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = d
	return nil
}
