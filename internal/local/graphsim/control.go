package graphsim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

const maxControlBody = 1 << 20

// FaultSpec is a Fault as the control API reads and shows it: durations
// are Go strings ("2s"), and Times defaults to 1.
type FaultSpec struct {
	ID           int    `json:"id,omitempty"`
	Op           Op     `json:"op,omitempty"`
	Object       string `json:"object,omitempty"`
	Kind         string `json:"kind"`
	Code         int    `json:"code,omitempty"`
	Subcode      int    `json:"subcode,omitempty"`
	Message      string `json:"message,omitempty"`
	Status       int    `json:"status,omitempty"`
	Delay        string `json:"delay,omitempty"`
	RegainAccess string `json:"regain_access,omitempty"`
	Malformed    string `json:"malformed,omitempty"`
	Body         string `json:"body,omitempty"`
	ContentType  string `json:"content_type,omitempty"`
	Times        *int   `json:"times,omitempty"`
	After        int    `json:"after,omitempty"`
	Used         int    `json:"used,omitempty"`
}

func toFaultJSON(fs FaultStatus) FaultSpec {
	f := fs.Fault
	times := f.Times
	out := FaultSpec{ID: fs.ID, Op: f.Op, Object: f.Object, Kind: string(f.Kind), Code: f.Code, Subcode: f.Subcode,
		Message: f.Message, Status: f.Status, Malformed: f.Malformed, Body: f.Body, ContentType: f.ContentType,
		Times: &times, After: f.After, Used: fs.Used}
	if f.Delay > 0 {
		out.Delay = f.Delay.String()
	}
	if f.RegainAccess > 0 {
		out.RegainAccess = f.RegainAccess.String()
	}
	return out
}

// BudgetSpec is a Budget as the control API reads and shows it.
type BudgetSpec struct {
	WABA         string `json:"waba,omitempty"`
	Limit        int    `json:"limit"`
	Window       string `json:"window,omitempty"`
	RegainAccess string `json:"regain_access,omitempty"`
	Used         int    `json:"used,omitempty"`
}

func toBudgetJSON(b BudgetStatus) BudgetSpec {
	out := BudgetSpec{WABA: b.WABA, Limit: b.Limit, Window: b.Window.String(), Used: b.Used}
	if b.RegainAccess > 0 {
		out.RegainAccess = b.RegainAccess.String()
	}
	return out
}

// parseDuration reads a control-API duration; "" is 0.
func parseDuration(field, v string) (time.Duration, error) {
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, &InputError{Field: field, Problem: fmt.Sprintf("%q is not a duration", clip(v)), Fix: `use Go syntax such as "2s", "150ms" or "1h"`}
	}
	return d, nil
}

// controlRoutes documents the control API in 404 answers.
const controlRoutes = "GET /_sim/state, GET /_sim/requests, GET|POST|DELETE /_sim/faults, POST /_sim/lag, POST /_sim/mismatch, " +
	"POST /_sim/numbers, POST /_sim/tokens, POST /_sim/key, POST /_sim/reregister, POST /_sim/budget, POST /_sim/latency, POST /_sim/reset-counters"

func (s *Sim) serveControl(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimSuffix(r.URL.Path, "/")
	type handler struct {
		method string
		fn     func(w http.ResponseWriter, r *http.Request) error
	}
	routes := map[string][]handler{
		"/_sim/state": {{http.MethodGet, func(w http.ResponseWriter, _ *http.Request) error { return writeControl(w, http.StatusOK, s.State()) }}},
		"/_sim/requests": {{http.MethodGet, func(w http.ResponseWriter, _ *http.Request) error {
			return writeControl(w, http.StatusOK, s.Requests())
		}}},
		"/_sim/faults":         {{http.MethodGet, s.ctlListFaults}, {http.MethodPost, s.ctlAddFault}, {http.MethodDelete, s.ctlClearFaults}},
		"/_sim/lag":            {{http.MethodPost, s.ctlLag}},
		"/_sim/mismatch":       {{http.MethodPost, s.ctlMismatch}},
		"/_sim/numbers":        {{http.MethodPost, s.ctlNumbers}},
		"/_sim/tokens":         {{http.MethodPost, s.ctlTokens}},
		"/_sim/key":            {{http.MethodPost, s.ctlKey}},
		"/_sim/reregister":     {{http.MethodPost, s.ctlReregister}},
		"/_sim/budget":         {{http.MethodPost, s.ctlBudget}},
		"/_sim/latency":        {{http.MethodPost, s.ctlLatency}},
		"/_sim/reset-counters": {{http.MethodPost, s.ctlResetCounters}},
	}
	hs, ok := routes[path]
	if !ok {
		_ = writeControl(w, http.StatusNotFound, map[string]string{"error": fmt.Sprintf("no control route %s; routes: %s", clip(path), controlRoutes)})
		return
	}
	var allowed []string
	for _, h := range hs {
		if h.method == r.Method {
			if err := h.fn(w, r); err != nil {
				status := http.StatusBadRequest
				if errors.Is(err, ErrNotFound) {
					status = http.StatusNotFound
				}
				_ = writeControl(w, status, map[string]string{"error": err.Error()})
			}
			return
		}
		allowed = append(allowed, h.method)
	}
	w.Header().Set("Allow", strings.Join(allowed, ", "))
	_ = writeControl(w, http.StatusMethodNotAllowed, map[string]string{"error": fmt.Sprintf("%s %s is not supported; use %s", r.Method, path, strings.Join(allowed, " or "))})
}

func writeControl(w http.ResponseWriter, status int, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
	return nil
}

func ok(w http.ResponseWriter) error {
	return writeControl(w, http.StatusOK, map[string]bool{"ok": true})
}

// decodeControl reads exactly one JSON object with only known fields.
func decodeControl(r *http.Request, v any) error {
	b, err := io.ReadAll(io.LimitReader(r.Body, maxControlBody+1))
	if err != nil {
		return &InputError{Field: "body", Problem: "could not be read", Fix: "send the request again"}
	}
	if len(b) > maxControlBody {
		return &InputError{Field: "body", Problem: "is over 1 MiB", Fix: "send a smaller JSON object"}
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return &InputError{Field: "body", Problem: describeJSONError(err), Fix: "send one JSON object with the fields documented in package graphsim"}
	}
	if dec.More() {
		return &InputError{Field: "body", Problem: "has data after the JSON object", Fix: "send exactly one JSON object"}
	}
	return nil
}

// describeJSONError names the offending field without echoing values,
// which may be keys.
func describeJSONError(err error) string {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		return fmt.Sprintf("field %q must be a JSON %s", te.Field, te.Type.String())
	case errors.As(err, &se):
		return fmt.Sprintf("is not valid JSON (offset %d)", se.Offset)
	case errors.Is(err, io.EOF):
		return "is empty"
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return "has " + strings.TrimPrefix(err.Error(), "json: ")
	default:
		return "is not a JSON object"
	}
}

func (s *Sim) ctlListFaults(w http.ResponseWriter, _ *http.Request) error {
	out := []FaultSpec{}
	for _, f := range s.Faults() {
		out = append(out, toFaultJSON(f))
	}
	return writeControl(w, http.StatusOK, out)
}

func (s *Sim) ctlAddFault(w http.ResponseWriter, r *http.Request) error {
	var in FaultSpec
	if err := decodeControl(r, &in); err != nil {
		return err
	}
	if in.ID != 0 || in.Used != 0 {
		return &InputError{Field: "id/used", Problem: "are set by the simulator", Fix: "leave them out"}
	}
	f := Fault{Op: in.Op, Object: in.Object, Kind: FaultKind(in.Kind), Code: in.Code, Subcode: in.Subcode, Message: in.Message,
		Status: in.Status, Malformed: in.Malformed, Body: in.Body, ContentType: in.ContentType, Times: 1, After: in.After}
	if in.Times != nil {
		f.Times = *in.Times
	}
	var err error
	if f.Delay, err = parseDuration("delay", in.Delay); err != nil {
		return err
	}
	if f.RegainAccess, err = parseDuration("regain_access", in.RegainAccess); err != nil {
		return err
	}
	id, err := s.AddFault(f)
	if err != nil {
		return err
	}
	return writeControl(w, http.StatusCreated, map[string]int{"id": id})
}

// ctlClearFaults removes every fault, or with ?id=N the one fault N.
func (s *Sim) ctlClearFaults(w http.ResponseWriter, r *http.Request) error {
	v, one := r.URL.Query()["id"]
	if !one {
		s.ClearFaults()
		return ok(w)
	}
	id, err := strconv.Atoi(v[0])
	if err != nil || id <= 0 {
		return &InputError{Field: "id", Problem: fmt.Sprintf("%q is not a fault ID", clip(v[0])), Fix: "use the id POST /_sim/faults answered with"}
	}
	if !s.RemoveFault(id) {
		return &InputError{Field: "id", Problem: fmt.Sprintf("no fault %d is in force", id), Fix: "list them with GET /_sim/faults; a fault whose times ran out is gone already", Err: ErrNotFound}
	}
	return ok(w)
}

func (s *Sim) ctlLag(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		Number string `json:"number"`
		Lag    string `json:"lag"`
	}
	if err := decodeControl(r, &in); err != nil {
		return err
	}
	d, err := parseDuration("lag", in.Lag)
	if err != nil {
		return err
	}
	if err := s.SetLag(in.Number, d); err != nil {
		return err
	}
	return ok(w)
}

func (s *Sim) ctlMismatch(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		Number string `json:"number"`
		On     *bool  `json:"on"`
	}
	if err := decodeControl(r, &in); err != nil {
		return err
	}
	if in.On == nil {
		return &InputError{Field: "on", Problem: "is missing", Fix: "send true to force MISMATCH or false to stop"}
	}
	if err := s.SetMismatch(in.Number, *in.On); err != nil {
		return err
	}
	return ok(w)
}

func (s *Sim) ctlNumbers(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		Action             string `json:"action"`
		WABA               string `json:"waba"`
		ID                 string `json:"id"`
		DisplayPhoneNumber string `json:"display_phone_number"`
		VerifiedName       string `json:"verified_name"`
	}
	if err := decodeControl(r, &in); err != nil {
		return err
	}
	var err error
	switch in.Action {
	case "add":
		err = s.AddPhoneNumber(in.WABA, in.ID, in.DisplayPhoneNumber, in.VerifiedName)
	case "remove":
		err = s.RemovePhoneNumber(in.ID)
	case "add-waba":
		err = s.AddWABA(in.WABA)
	default:
		err = &InputError{Field: "action", Problem: fmt.Sprintf("%q is not an action", clip(in.Action)), Fix: `use "add", "remove" or "add-waba"`}
	}
	if err != nil {
		return err
	}
	return ok(w)
}

func (s *Sim) ctlTokens(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		Action string   `json:"action"`
		Token  string   `json:"token"`
		WABAs  []string `json:"wabas"`
	}
	if err := decodeControl(r, &in); err != nil {
		return err
	}
	var err error
	switch in.Action {
	case "add":
		err = s.AddToken(in.Token, in.WABAs...)
	case "revoke":
		err = s.RevokeToken(in.Token)
	default:
		err = &InputError{Field: "action", Problem: fmt.Sprintf("%q is not an action", clip(in.Action)), Fix: `use "add" or "revoke"`}
	}
	if err != nil {
		return err
	}
	return ok(w)
}

func (s *Sim) ctlKey(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		Number            string `json:"number"`
		BusinessPublicKey string `json:"business_public_key"`
		Status            string `json:"status"`
	}
	if err := decodeControl(r, &in); err != nil {
		return err
	}
	if err := s.SetKey(in.Number, in.BusinessPublicKey, in.Status); err != nil {
		return err
	}
	return ok(w)
}

func (s *Sim) ctlReregister(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		Number string `json:"number"`
	}
	if err := decodeControl(r, &in); err != nil {
		return err
	}
	if err := s.Reregister(in.Number); err != nil {
		return err
	}
	return ok(w)
}

func (s *Sim) ctlBudget(w http.ResponseWriter, r *http.Request) error {
	var in BudgetSpec
	if err := decodeControl(r, &in); err != nil {
		return err
	}
	if in.Used != 0 {
		return &InputError{Field: "used", Problem: "is set by the simulator", Fix: "leave it out"}
	}
	b := Budget{WABA: in.WABA, Limit: in.Limit}
	var err error
	if b.Window, err = parseDuration("window", in.Window); err != nil {
		return err
	}
	if b.RegainAccess, err = parseDuration("regain_access", in.RegainAccess); err != nil {
		return err
	}
	if err := s.SetBudget(b); err != nil {
		return err
	}
	return ok(w)
}

func (s *Sim) ctlLatency(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		Latency string `json:"latency"`
	}
	if err := decodeControl(r, &in); err != nil {
		return err
	}
	d, err := parseDuration("latency", in.Latency)
	if err != nil {
		return err
	}
	if err := s.SetLatency(d); err != nil {
		return err
	}
	return ok(w)
}

func (s *Sim) ctlResetCounters(w http.ResponseWriter, _ *http.Request) error {
	s.ResetCounters()
	return ok(w)
}
