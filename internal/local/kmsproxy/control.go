package kmsproxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// ControlRoutes are the control calls, for help texts:
//
//	GET    /_kms/faults          the faults, with how often each answered
//	POST   /_kms/faults          add a fault: a FaultSpec
//	DELETE /_kms/faults          remove every fault
//	GET    /_kms/calls           the counters: a list of CallCount
//	POST   /_kms/reset-counters  zero the counters
const ControlRoutes = "GET|POST|DELETE /_kms/faults, GET /_kms/calls, POST /_kms/reset-counters"

const maxControlBody = 1 << 16

// FaultSpec is a Fault as the control API reads and shows it: Latency is
// a Go duration ("200ms"), and Times defaults to 1.
type FaultSpec struct {
	ID      int    `json:"id,omitempty"`
	Op      string `json:"op,omitempty"`
	Key     string `json:"key,omitempty"`
	Caller  string `json:"caller,omitempty"`
	Error   string `json:"error,omitempty"`
	Message string `json:"message,omitempty"`
	Latency string `json:"latency,omitempty"`
	Times   *int   `json:"times,omitempty"`
	After   int    `json:"after,omitempty"`
	Every   int    `json:"every,omitempty"`
	Used    int    `json:"used,omitempty"`
}

func toSpec(s FaultStatus) FaultSpec {
	f := s.Fault
	times := f.Times
	out := FaultSpec{ID: s.ID, Op: f.Op, Key: f.Key, Caller: f.Caller, Error: f.Error, Message: f.Message, Times: &times, After: f.After, Every: f.Every, Used: s.Used}
	if f.Latency > 0 {
		out.Latency = f.Latency.String()
	}
	return out
}

func (spec FaultSpec) fault() (Fault, error) {
	f := Fault{Op: spec.Op, Key: spec.Key, Caller: spec.Caller, Error: spec.Error, Message: spec.Message, Times: 1, After: spec.After, Every: spec.Every}
	if spec.Times != nil {
		f.Times = *spec.Times
	}
	if spec.Latency != "" {
		d, err := time.ParseDuration(spec.Latency)
		if err != nil {
			return Fault{}, &InputError{Field: "latency", Problem: fmt.Sprintf("%q is not a duration", spec.Latency), Fix: `use Go syntax such as "200ms" or "2s"`}
		}
		f.Latency = d
	}
	return f, nil
}

// control serves /_kms/.
func (p *Proxy) control(w http.ResponseWriter, r *http.Request) {
	route := r.Method + " " + r.URL.Path
	var err error
	switch route {
	case "GET /_kms/faults":
		var out []FaultSpec
		for _, s := range p.Faults() {
			out = append(out, toSpec(s))
		}
		writeJSON(w, http.StatusOK, out)
	case "POST /_kms/faults":
		err = p.ctlAddFault(w, r)
	case "DELETE /_kms/faults":
		p.ClearFaults()
		writeJSON(w, http.StatusOK, map[string]bool{"cleared": true})
	case "GET /_kms/calls":
		writeJSON(w, http.StatusOK, p.Calls().List())
	case "POST /_kms/reset-counters":
		p.ResetCounters()
		writeJSON(w, http.StatusOK, map[string]bool{"reset": true})
	default:
		writeJSON(w, http.StatusNotFound, map[string]string{"error": fmt.Sprintf("no control route %s; the routes: %s", route, ControlRoutes)})
		return
	}
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
	}
}

func (p *Proxy) ctlAddFault(w http.ResponseWriter, r *http.Request) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxControlBody+1))
	if err != nil || len(body) > maxControlBody {
		return errors.New("kmsproxy: unreadable or oversized control body")
	}
	var spec FaultSpec
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&spec); err != nil {
		return fmt.Errorf("kmsproxy: a fault is a JSON object with op, key, caller, error, message, latency, times, after, every: %w", err)
	}
	f, err := spec.fault()
	if err != nil {
		return err
	}
	id, err := p.AddFault(f)
	if err != nil {
		return err
	}
	spec.ID, spec.Times = id, &f.Times
	writeJSON(w, http.StatusOK, spec)
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
