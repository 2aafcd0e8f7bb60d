package graphsim

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"
)

// FaultKind says how a scripted fault answers.
type FaultKind string

const (
	// FaultGraphError answers with a Graph error body: Code, Subcode,
	// Message, at Status or the HTTP status Graph uses for Code.
	FaultGraphError FaultKind = "graph_error"
	// FaultHTTPStatus answers Status (a 5xx by default 502) with the HTML
	// body an edge proxy sends, not a Graph error.
	FaultHTTPStatus FaultKind = "http_status"
	// FaultDelay holds the call for Delay (or until the client gives up),
	// then answers it normally.
	FaultDelay FaultKind = "delay"
	// FaultMalformed answers Status (200 by default) with a body a client
	// cannot decode: see Malformed.
	FaultMalformed FaultKind = "malformed"
	// FaultDrop closes the connection without a response.
	FaultDrop FaultKind = "drop"
)

// Malformed body shapes for FaultMalformed.
const (
	MalformedTruncated = "truncated" // JSON cut off mid-value (the default)
	MalformedHTML      = "html"      // an HTML page with Content-Type text/html
	MalformedEmpty     = "empty"     // no body at all, Content-Type JSON
)

// Forever as Fault.Times makes a fault permanent.
const Forever = -1

// Fault scripts how the next matching Graph calls are answered. Each call
// consumes at most one fault: the first one, in the order added, whose Op
// and Object match and that has calls left. Faults act before
// authentication, version and budget checks, as trouble in front of Graph
// would.
type Fault struct {
	Op     Op     // OpUpload, OpGet, OpList, OpOther or OpAny ("" = any)
	Object string // phone number or WABA ID; "" = every object
	Kind   FaultKind

	Code    int    // FaultGraphError
	Subcode int    // FaultGraphError
	Message string // FaultGraphError; "" = Graph's usual text for Code
	// Status overrides the HTTP status (FaultGraphError, FaultHTTPStatus,
	// FaultMalformed).
	Status int

	Delay time.Duration // FaultDelay
	// RegainAccess is the estimated_time_to_regain_access of the
	// X-Business-Use-Case-Usage header sent with a FaultGraphError of a
	// business throttling code (80000-80014, 130429, 131056; 0 sends an
	// estimate of 0). App-level codes (4, 17, 32, 613) send X-App-Usage,
	// which has no estimate, and the business header only when it is set.
	RegainAccess time.Duration

	Malformed   string // FaultMalformed shape
	Body        string // FaultMalformed: exact body, overrides Malformed
	ContentType string // FaultMalformed with Body

	// Times is how many matching calls the fault answers; Forever for all.
	Times int
	// After lets this many matching calls through untouched first.
	After int
}

// FaultStatus is a fault with its progress.
type FaultStatus struct {
	ID int
	Fault
	Used int // calls answered so far
}

type faultState struct {
	id      int
	f       Fault
	skipped int
	used    int
}

func validateFault(f *Fault) error {
	if f.Op == "" {
		f.Op = OpAny
	}
	switch f.Op {
	case OpUpload, OpGet, OpList, OpOther, OpAny:
	default:
		return &InputError{Field: "op", Problem: fmt.Sprintf("%q is not an op", f.Op), Fix: `use "upload", "get", "list", "other" or "any"`}
	}
	if f.Object != "" {
		if err := checkID("object", f.Object); err != nil {
			return err
		}
	}
	if f.Times == 0 || f.Times < Forever {
		return &InputError{Field: "times", Problem: fmt.Sprintf("is %d", f.Times), Fix: "use a count of calls (1 or more) or -1 for every call"}
	}
	if f.After < 0 {
		return &InputError{Field: "after", Problem: fmt.Sprintf("is %d", f.After), Fix: "use 0 or the number of matching calls to let through first"}
	}
	if f.Status != 0 && (f.Status < 100 || f.Status > 599) {
		return &InputError{Field: "status", Problem: fmt.Sprintf("%d is not an HTTP status", f.Status), Fix: "use 100..599 or 0 for the kind's default"}
	}
	switch f.Kind {
	case FaultGraphError:
		if f.Code <= 0 {
			return &InputError{Field: "code", Problem: fmt.Sprintf("is %d", f.Code), Fix: "give the Graph error code to answer with, e.g. 131000"}
		}
		if f.RegainAccess < 0 {
			return &InputError{Field: "regain_access", Problem: fmt.Sprintf("is %s", f.RegainAccess), Fix: "use 0 or a positive duration"}
		}
		if f.Subcode < 0 {
			return &InputError{Field: "subcode", Problem: fmt.Sprintf("is %d", f.Subcode), Fix: "use 0 for none or a positive subcode"}
		}
	case FaultHTTPStatus:
		if f.Status == 0 {
			f.Status = http.StatusBadGateway
		}
	case FaultDelay:
		if f.Delay <= 0 {
			return &InputError{Field: "delay", Problem: fmt.Sprintf("is %s", f.Delay), Fix: `give how long to hold the call, e.g. "2s"`}
		}
	case FaultMalformed:
		switch f.Malformed {
		case "":
			if f.Body == "" {
				f.Malformed = MalformedTruncated
			}
		case MalformedTruncated, MalformedHTML, MalformedEmpty:
		default:
			return &InputError{Field: "malformed", Problem: fmt.Sprintf("%q is not a body shape", f.Malformed), Fix: `use "truncated", "html", "empty", or set body`}
		}
		if f.Status == 0 {
			f.Status = http.StatusOK
		}
	case FaultDrop:
	default:
		return &InputError{Field: "kind", Problem: fmt.Sprintf("%q is not a fault kind", f.Kind), Fix: `use "graph_error", "http_status", "delay", "malformed" or "drop"`}
	}
	return nil
}

// AddFault scripts a fault and returns its ID.
func (s *Sim) AddFault(f Fault) (int, error) {
	if err := validateFault(&f); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextFaultID++
	s.faults = append(s.faults, &faultState{id: s.nextFaultID, f: f})
	return s.nextFaultID, nil
}

// ClearFaults removes every scripted fault.
func (s *Sim) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

// RemoveFault removes one scripted fault by the ID AddFault returned, and
// reports whether it was still in force (a fault whose Times ran out is
// gone already). The others keep their order and progress, so that a
// scenario can end one fault while the rest stay on.
func (s *Sim) RemoveFault(id int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, fs := range s.faults {
		if fs.id == id {
			s.faults = slices.Delete(s.faults, i, i+1)
			return true
		}
	}
	return false
}

// Faults returns the faults still in force, in matching order.
func (s *Sim) Faults() []FaultStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]FaultStatus, 0, len(s.faults))
	for _, fs := range s.faults {
		out = append(out, FaultStatus{ID: fs.id, Fault: fs.f, Used: fs.used})
	}
	return out
}

// takeFaultLocked consumes the fault that answers a call, if any.
func (s *Sim) takeFaultLocked(op Op, object string) (Fault, bool) {
	for i, fs := range s.faults {
		if fs.f.Op != OpAny && fs.f.Op != op {
			continue
		}
		if fs.f.Object != "" && fs.f.Object != object {
			continue
		}
		if fs.skipped < fs.f.After {
			fs.skipped++
			continue
		}
		fs.used++
		if fs.f.Times != Forever && fs.used >= fs.f.Times {
			s.faults = slices.Delete(s.faults, i, i+1)
		}
		return fs.f, true
	}
	return Fault{}, false
}

// applyFault answers a call with a scripted fault (every kind but delay).
// For a drop it returns the hijacked connection, for the caller to close.
func (s *Sim) applyFault(w *statusWriter, rt route, f Fault) io.Closer {
	switch f.Kind {
	case FaultGraphError:
		ge := newGraphError(f.Code, f.Subcode, f.Message)
		if f.Status != 0 {
			ge.status = f.Status
		}
		buc := ""
		switch {
		case appThrottling(f.Code):
			// App-level limits come with X-App-Usage, which has no
			// estimate; a scripted RegainAccess adds the business header.
			w.Header().Set("X-App-Usage", `{"call_count":100,"total_cputime":25,"total_time":25}`)
			if f.RegainAccess > 0 {
				buc = s.throttledHeader(rt.object, f.RegainAccess)
			}
		case businessThrottling(f.Code):
			buc = s.throttledHeader(rt.object, f.RegainAccess)
		}
		s.writeError(w, rt, buc, ge)
	case FaultHTTPStatus:
		text := http.StatusText(f.Status)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(f.Status)
		_, _ = fmt.Fprintf(w, "<html><head><title>%d %s</title></head><body><center><h1>%d %s</h1></center></body></html>\n", f.Status, text, f.Status, text)
	case FaultMalformed:
		body, ctype := malformedBody(rt.op, f)
		s.graphHeaders(w, rt, "")
		w.Header().Set("Content-Type", ctype)
		w.WriteHeader(f.Status)
		_, _ = io.WriteString(w, body)
	case FaultDrop:
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			// HTTP/2 cannot hand over the connection; aborting the handler
			// is the only way left to send no response, and net/http
			// expects it.
			panic(http.ErrAbortHandler)
		}
		return conn
	}
	return nil
}

func malformedBody(op Op, f Fault) (body, ctype string) {
	const jsonType = "application/json; charset=UTF-8"
	if f.Body != "" {
		if f.ContentType != "" {
			return f.Body, f.ContentType
		}
		return f.Body, jsonType
	}
	switch f.Malformed {
	case MalformedHTML:
		return "<!DOCTYPE html><html lang=\"en\"><head><title>Error</title></head><body>Sorry, something went wrong.</body></html>", "text/html; charset=utf-8"
	case MalformedEmpty:
		return "", jsonType
	}
	switch op {
	case OpGet:
		return `{"data":[{"business_public_key":"-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA`, jsonType
	case OpList:
		return `{"data":[{"verified_name":"Flowkey Demo","display_phone_number":"+1 202-55`, jsonType
	default:
		return `{"success":tr`, jsonType
	}
}

// appThrottling is Graph's app- and user-level throttling: 4 (app), 17
// (user), 32 (page), 613 (calls within an hour).
func appThrottling(code int) bool { return code == 4 || code == 17 || code == 32 || code == 613 }

// businessThrottling is the business-use-case family 80000-80014 (80007
// for WhatsApp Business Management) and Cloud API's 130429 and 131056.
func businessThrottling(code int) bool {
	return (code >= 80000 && code <= 80014) || code == 130429 || code == 131056
}

// throttledHeader is the X-Business-Use-Case-Usage of a spent budget, for
// scripted throttling errors.
func (s *Sim) throttledHeader(object string, regain time.Duration) string {
	s.mu.Lock()
	key := object
	if n, ok := s.numbers[object]; ok && n.waba != "" {
		key = n.waba
	}
	s.mu.Unlock()
	b, _ := json.Marshal(map[string][]bucEntry{key: {{Type: bucType, CallCount: 100, TotalCPUTime: 25, TotalTime: 25, EstimatedRegain: ceilMinutes(regain)}}})
	return string(b)
}
