// Package appsecret holds the Meta app secret, read from Secrets Manager,
// and does the two things the endpoint does with it: verify the
// X-Hub-Signature-256 that Meta puts on every Flows request, and sign the
// gateway's own calls to an HTTPS backend the same way.
//
// # The secret
//
// The secret's SecretString is the bare app secret (surrounding white space
// is ignored) or a JSON object whose "app_secret" member holds it; other
// members are ignored, so the secret may also hold the app ID. Errors never
// quote the value.
//
// # Verification
//
// The header is "sha256=" and the 64 hex digits of HMAC-SHA256(app secret,
// raw body); it is compared with hmac.Equal, in constant time. A missing or
// malformed header is refused before the secret is even needed. The secret
// is read on first use and again after Options.TTL; a signature that does not
// match also reads it again (the app secret may just have been reset in the
// Meta app dashboard), at most once per Options.Floor, so wrong signatures
// cannot hammer Secrets Manager.
package appsecret

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/flowkey/flowkey/internal/strictjson"
)

// Prefix starts every signature header value.
const Prefix = "sha256="

// Defaults for Options.
const (
	DefaultTTL   = 5 * time.Minute
	DefaultFloor = 5 * time.Second
)

// Verification failures: each is HTTP 432 at the endpoint.
var (
	ErrMissing   = errors.New("appsecret: no X-Hub-Signature-256 header")
	ErrMalformed = errors.New(`appsecret: X-Hub-Signature-256 is not "sha256=" and 64 hex digits`)
	ErrMismatch  = errors.New("appsecret: X-Hub-Signature-256 does not match the body")
)

// UnavailableError is an app secret that cannot be read or used: the
// signature cannot be checked at all (HTTP 500 at the endpoint, not 432:
// the sender is not at fault).
type UnavailableError struct{ Err error }

func (e *UnavailableError) Error() string {
	return "appsecret: the app secret is unavailable: " + e.Err.Error()
}
func (e *UnavailableError) Unwrap() error { return e.Err }

// SecretsAPI is the part of the Secrets Manager client a Store calls.
type SecretsAPI interface {
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

// Options configure a Store. SecretID is required.
type Options struct {
	SecretID string
	TTL      time.Duration // DefaultTTL
	Floor    time.Duration // DefaultFloor: least time between two reads
	Logger   *slog.Logger  // slog.Default()
	Now      func() time.Time
}

// Store is safe for concurrent use.
type Store struct {
	sm   SecretsAPI
	opts Options

	loading sync.Mutex // held by the one caller reading the secret

	mu        sync.Mutex
	secret    []byte
	loadedAt  time.Time
	tried     time.Time
	triedOnce bool
	gen       uint64 // counts reads, failed ones too
	lastErr   error
}

// New returns a Store that reads the secret on first use.
func New(sm SecretsAPI, opts Options) (*Store, error) {
	if sm == nil {
		return nil, errors.New("appsecret: a Secrets Manager client is required")
	}
	if opts.SecretID == "" {
		return nil, errors.New("appsecret: Options.SecretID is required")
	}
	if opts.TTL <= 0 {
		opts.TTL = DefaultTTL
	}
	if opts.Floor <= 0 {
		opts.Floor = DefaultFloor
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Store{sm: sm, opts: opts}, nil
}

// Load reads the secret now (at start-up), unless the floor forbids it.
func (s *Store) Load(ctx context.Context) error {
	_, gen := s.current()
	s.reload(ctx, gen)
	if secret, _ := s.current(); secret == nil {
		return s.unavailable()
	}
	return nil
}

// Verify checks header against body; see the package comment. The error is
// ErrMissing, ErrMalformed, ErrMismatch or an *UnavailableError.
func (s *Store) Verify(ctx context.Context, body []byte, header string) error {
	want, err := parseHeader(header)
	if err != nil {
		return err
	}
	secret, err := s.get(ctx)
	if err != nil {
		return err
	}
	if hmac.Equal(mac(secret, body), want[:]) {
		return nil
	}
	_, gen := s.current()
	if !s.reload(ctx, gen) {
		return ErrMismatch
	}
	if fresh, _ := s.current(); fresh != nil && hmac.Equal(mac(fresh, body), want[:]) {
		return nil
	}
	return ErrMismatch
}

// Sign returns the header value for body: Prefix and the hex HMAC-SHA256.
func (s *Store) Sign(ctx context.Context, body []byte) (string, error) {
	secret, err := s.get(ctx)
	if err != nil {
		return "", err
	}
	return Prefix + hex.EncodeToString(mac(secret, body)), nil
}

func mac(secret, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return m.Sum(nil)
}

func parseHeader(h string) ([sha256.Size]byte, error) {
	var out [sha256.Size]byte
	if h == "" {
		return out, ErrMissing
	}
	hexPart, ok := strings.CutPrefix(h, Prefix)
	if !ok || len(hexPart) != 2*sha256.Size {
		return out, ErrMalformed
	}
	if _, err := hex.Decode(out[:], []byte(hexPart)); err != nil {
		return out, ErrMalformed
	}
	return out, nil
}

// get returns the secret, reading it first when it was never read or is
// older than the TTL (as the floor allows); a stale secret is kept when a
// read fails.
func (s *Store) get(ctx context.Context) ([]byte, error) {
	s.mu.Lock()
	secret, gen := s.secret, s.gen
	stale := secret == nil || s.opts.Now().Sub(s.loadedAt) >= s.opts.TTL
	s.mu.Unlock()
	if stale {
		s.reload(ctx, gen)
		secret, _ = s.current()
	}
	if secret == nil {
		return nil, s.unavailable()
	}
	return secret, nil
}

func (s *Store) current() ([]byte, uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.secret, s.gen
}

func (s *Store) unavailable() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lastErr != nil {
		return &UnavailableError{Err: s.lastErr}
	}
	return &UnavailableError{Err: errors.New("not read yet")}
}

// reload reads the secret unless another caller read it since gen or the
// floor forbids it; it reports whether a read happened since gen.
func (s *Store) reload(ctx context.Context, gen uint64) bool {
	s.loading.Lock()
	defer s.loading.Unlock()
	s.mu.Lock()
	if s.gen != gen {
		s.mu.Unlock()
		return true
	}
	now := s.opts.Now()
	if s.triedOnce && now.Sub(s.tried) < s.opts.Floor {
		s.mu.Unlock()
		return false
	}
	s.tried, s.triedOnce = now, true
	s.mu.Unlock()

	secret, err := s.read(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gen++
	s.lastErr = err
	if err != nil {
		s.opts.Logger.Warn("appsecret: cannot read the app secret", "secret_id", s.opts.SecretID, "error", err.Error())
		return true
	}
	s.secret, s.loadedAt = secret, s.opts.Now()
	return true
}

func (s *Store) read(ctx context.Context) ([]byte, error) {
	out, err := s.sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(s.opts.SecretID)})
	if err != nil {
		return nil, fmt.Errorf("read app secret %s: %w", s.opts.SecretID, err)
	}
	secret, err := Parse(aws.ToString(out.SecretString))
	if err != nil {
		return nil, fmt.Errorf("app secret %s: %w", s.opts.SecretID, err)
	}
	return secret, nil
}

// Parse reads a SecretString: the bare app secret, or a JSON object with an
// "app_secret" string. The error never quotes the value.
func Parse(value string) ([]byte, error) {
	const fix = `store the bare app secret, or {"app_secret":"<secret>"}`
	raw := strings.TrimSpace(value)
	if strings.HasPrefix(raw, "{") {
		members, err := strictjson.Members([]byte(raw))
		if err != nil {
			return nil, fmt.Errorf("holds a JSON object that does not parse; fix: %s", fix)
		}
		found := 0
		raw = ""
		for _, m := range members {
			if m.Name != "app_secret" {
				continue
			}
			found++
			if json.Unmarshal(m.Value, &raw) != nil {
				return nil, fmt.Errorf(`"app_secret" is not a string; fix: %s`, fix)
			}
		}
		if found != 1 {
			return nil, fmt.Errorf(`holds a JSON object with %d "app_secret" members, not one; fix: %s`, found, fix)
		}
		raw = strings.TrimSpace(raw)
	}
	if raw == "" || strings.ContainsAny(raw, " \t\r\n") {
		return nil, fmt.Errorf("is empty or contains white space; fix: %s", fix)
	}
	return []byte(raw), nil
}
