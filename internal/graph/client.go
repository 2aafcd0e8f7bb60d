package graph

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/flowkey/flowkey/internal/wait"
)

// Option defaults. config.Load has its own copies for the variables it
// reads; these apply when a caller leaves a field zero.
const (
	defaultMaxAttempts    = 5
	defaultBaseBackoff    = 200 * time.Millisecond
	defaultMaxBackoff     = 10 * time.Second
	defaultRequestTimeout = 10 * time.Second
)

// envBaseURL is the variable operators set; errors about BaseURL name it so
// the fix is obvious from a Lambda log line.
const envBaseURL = "GRAPH_API_BASE_URL"

// ErrInvalidInput marks an argument rejected before any network I/O: a bad
// ID, version, token or public key. Nothing was sent to Meta.
var ErrInvalidInput = errors.New("invalid input")

// ErrMalformedResponse marks a response body that is not what the endpoint
// documents (unparsable JSON, success:false, a paging loop). Use errors.Is on
// an *Error's chain.
var ErrMalformedResponse = errors.New("malformed response")

// New validates opts and returns a client that uses hc.
func New(hc *http.Client, opts Options) (*Client, error) {
	if hc == nil {
		// No fallback to http.DefaultClient: its transport is process-wide
		// state that tests and other packages can change under us.
		return nil, errors.New("graph: New: *http.Client is nil; fix: pass the client built for this invocation")
	}
	if opts.BaseURL == "" {
		opts.BaseURL = DefaultBaseURL
	}
	base, err := parseBaseURL(opts.BaseURL)
	if err != nil {
		return nil, err
	}
	var errs []error
	if opts.MaxAttempts < 0 {
		errs = append(errs, optionError("MaxAttempts", strconv.Itoa(opts.MaxAttempts), "is negative", fmt.Sprintf("use 1 or more, or 0 for the default %d", defaultMaxAttempts)))
	}
	durs := []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"BaseBackoff", &opts.BaseBackoff, defaultBaseBackoff},
		{"MaxBackoff", &opts.MaxBackoff, defaultMaxBackoff},
		{"RequestTimeout", &opts.RequestTimeout, defaultRequestTimeout},
	}
	for _, d := range durs {
		if *d.v < 0 {
			errs = append(errs, optionError(d.name, d.v.String(), "is negative", fmt.Sprintf("use a positive duration, or 0 for the default %s", d.def)))
		}
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	if opts.MaxAttempts == 0 {
		opts.MaxAttempts = defaultMaxAttempts
	}
	if len(errs) == 0 && opts.MaxBackoff < opts.BaseBackoff {
		errs = append(errs, optionError("MaxBackoff", opts.MaxBackoff.String(), "is below BaseBackoff "+opts.BaseBackoff.String(), "raise MaxBackoff or lower BaseBackoff"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if opts.Jitter == nil {
		opts.Jitter = rand.Float64
	}
	return &Client{hc: hc, opts: opts, base: base, sleep: wait.Sleep}, nil
}

func optionError(field, value, problem, fix string) error {
	return fmt.Errorf("graph: Options.%s=%s %s; fix: %s", field, value, problem, fix)
}

// ValidateBaseURL reports whether s is acceptable as Options.BaseURL (the
// GRAPH_API_BASE_URL variable): https, or http to a loopback host only, and
// nothing but scheme, host and port.
func ValidateBaseURL(s string) error {
	_, err := parseBaseURL(s)
	return err
}

func parseBaseURL(s string) (*url.URL, error) {
	const fixDefault = `use "` + DefaultBaseURL + `", or unset it for that default`
	bad := func(shown, problem, fix string) error {
		return fmt.Errorf("graph: %s=%q %s; fix: %s", envBaseURL, shown, problem, fix)
	}
	// The value is shown with any user info masked, and url.Parse's errors
	// are described, not quoted: they repeat part of the value (the bad
	// escape, or what it took for a port), which may be a password's.
	shown := hideUserinfo(s)
	u, err := url.Parse(s)
	if err != nil {
		return nil, bad(shown, "is not a URL ("+parseProblem(err)+")", fixDefault)
	}
	switch {
	case u.Scheme == "" || u.Host == "" || u.Opaque != "":
		return nil, bad(shown, "is not an absolute URL with a scheme and a host", fixDefault)
	case u.User != nil:
		return nil, bad(shown, "contains user info", "remove the user@ part; the access token is sent as a Bearer header")
	case u.Path != "" && u.Path != "/":
		return nil, bad(shown, "has a path ("+u.EscapedPath()+")", "give only scheme and host (and port); the client adds /{version}/{id}/...")
	case u.RawQuery != "" || u.ForceQuery:
		return nil, bad(shown, "has a query", "remove everything from the ?")
	case u.Fragment != "":
		return nil, bad(shown, "has a fragment", "remove everything from the #")
	case u.Hostname() == "":
		return nil, bad(shown, "has no host name", fixDefault)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return nil, bad(shown, "has port "+p+", outside 1-65535", "use a valid port, or none")
		}
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !isLoopback(u.Hostname()) {
			return nil, bad(shown, "uses http:// to "+u.Hostname()+", which is not a loopback host, so the access token would cross the network in clear text",
				"use https://; plain http is allowed only to 127.0.0.0/8, ::1 and localhost (local simulators)")
		}
	default:
		return nil, bad(shown, "has scheme "+strconv.Quote(u.Scheme)+", not https", fixDefault)
	}
	return &url.URL{Scheme: u.Scheme, Host: u.Host}, nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// hideUserinfo masks what sits before the last "@" of s (after "://", if
// there is one), so a password never reaches an error message, whether or
// not url.Parse could make sense of the value.
func hideUserinfo(s string) string {
	at := strings.LastIndex(s, "@")
	if at < 0 {
		return s
	}
	start := 0
	if i := strings.Index(s, "://"); i >= 0 && i+3 <= at {
		start = i + 3
	}
	return s[:start] + "xxxxx" + s[at:]
}

// parseProblem names the kind of error url.Parse reported.
func parseProblem(err error) string {
	var escape url.EscapeError
	var host url.InvalidHostError
	msg := err.Error()
	switch {
	case errors.As(err, &escape):
		return "an invalid %-escape"
	case errors.As(err, &host):
		return "a character a host name cannot hold"
	case strings.Contains(msg, "invalid port"):
		return "a port that is not a number"
	case strings.Contains(msg, "control character"):
		return "a control character"
	case strings.Contains(msg, "userinfo"):
		return "user info with characters a URL cannot hold"
	}
	return "url.Parse rejects it"
}

// versionRE is immutable after init; regexp.Regexp is safe for concurrent use.
var versionRE = regexp.MustCompile(`^v\d+\.\d+$`)

// ValidateVersion checks a Graph API version such as "v24.0".
func ValidateVersion(v string) error {
	if !versionRE.MatchString(v) {
		return fmt.Errorf("graph: %w", versionError(v))
	}
	return nil
}

func versionError(v string) error {
	return fmt.Errorf("API version %q is not of the form v<major>.<minor>; fix: use a live version such as %q: %w", clip(v, 40), DefaultVersion, ErrInvalidInput)
}

// maxIDLen bounds object IDs; Meta's are 15-17 digits today.
const maxIDLen = 32

// checkCall validates everything a call needs before it touches the
// network, so a bad argument costs no rate-limited request.
func (c *Client) checkCall(op, what, id string, auth Auth) error {
	if c == nil || c.hc == nil || c.base == nil {
		return fmt.Errorf("graph %s: the Client was not built with graph.New; fix: use graph.New: %w", op, ErrInvalidInput)
	}
	if err := checkID(what, id); err != nil {
		return fmt.Errorf("graph %s: %w", op, err)
	}
	if !versionRE.MatchString(auth.Version) {
		return fmt.Errorf("graph %s %s: Auth.Version: %w", op, id, versionError(auth.Version))
	}
	switch {
	case auth.Token.value == "":
		return fmt.Errorf("graph %s %s: Auth.Token is empty; fix: load the system user access token before calling: %w", op, id, ErrInvalidInput)
	case !printableASCII(auth.Token.value):
		return fmt.Errorf("graph %s %s: Auth.Token contains spaces or control characters (a trailing newline in the stored secret is the usual cause); fix: store the bare token: %w", op, id, ErrInvalidInput)
	}
	return nil
}

func checkID(what, id string) error {
	if id == "" {
		return fmt.Errorf("%s is empty; fix: pass the numeric ID from WhatsApp Manager or GET /{WABA_ID}/phone_numbers: %w", what, ErrInvalidInput)
	}
	if len(id) > maxIDLen || strings.Trim(id, "0123456789") != "" {
		return fmt.Errorf("%s %q is not decimal digits only; fix: pass the numeric ID as Meta shows it, e.g. 106540352242922: %w", what, clip(id, 40), ErrInvalidInput)
	}
	return nil
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// endpoint builds {base}/{version}/{id}/{edge}. Every segment has been
// checked to be path-safe.
func (c *Client) endpoint(version, id, edge string) *url.URL {
	return &url.URL{Scheme: c.base.Scheme, Host: c.base.Host, Path: "/" + version + "/" + id + "/" + edge}
}

// sameOrigin reports whether u has the base URL's scheme, host and port, the
// only place the access token may go.
func (c *Client) sameOrigin(u *url.URL) bool {
	return u.Scheme == c.base.Scheme && u.User == nil &&
		strings.EqualFold(u.Hostname(), c.base.Hostname()) &&
		portOf(u) == portOf(c.base)
}

func portOf(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	if u.Scheme == "http" {
		return "80"
	}
	return "443"
}
