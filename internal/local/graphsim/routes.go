package graphsim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"
)

const (
	edgeEncryption   = "whatsapp_business_encryption"
	edgePhoneNumbers = "phone_numbers"
	maxBodyBytes     = 1 << 20
	cursorPrefix     = "graphsim:"
)

// ServeHTTP answers Graph API calls, and control calls under /_sim/.
func (s *Sim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/_sim" || strings.HasPrefix(r.URL.Path, "/_sim/") {
		s.serveControl(w, r)
		return
	}
	s.serveGraph(w, r)
}

// route is a parsed Graph path: /[{version}/]{object}[/{edge}].
type route struct {
	version string // effective version
	pathOK  bool
	unknown string // the path components Graph could not place
	object  string
	edge    string
	op      Op
}

func (s *Sim) parseRoute(r *http.Request) route {
	segs := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if len(segs) == 1 && segs[0] == "" {
		segs = nil
	}
	rt := route{version: s.defaultVersion, pathOK: true}
	switch {
	case len(segs) > 0 && versionPattern.MatchString(segs[0]) && (s.versions == nil || s.versions[segs[0]]):
		rt.version = segs[0]
		segs = segs[1:]
		if len(segs) > 2 {
			rt.pathOK, rt.unknown = false, "/"+strings.Join(segs[2:], "/")
		}
	case len(segs) > 2 || (len(segs) > 1 && versionPattern.MatchString(segs[0])):
		// Graph reads a first segment that is no version it serves as an
		// object ID, and then cannot place the rest.
		rt.pathOK, rt.unknown = false, "/"+strings.Join(segs[1:], "/")
	}
	if len(segs) > 0 {
		rt.object = segs[0]
	}
	if len(segs) > 1 {
		rt.edge = segs[1]
	}
	rt.op = OpOther
	switch {
	case !rt.pathOK:
	case rt.edge == edgeEncryption && r.Method == http.MethodPost:
		rt.op = OpUpload
	case rt.edge == edgeEncryption && r.Method == http.MethodGet:
		rt.op = OpGet
	case rt.edge == edgePhoneNumbers && r.Method == http.MethodGet:
		rt.op = OpList
	}
	return rt
}

// statusWriter records what was answered, for the request log. Unwrap lets
// http.ResponseController reach the connection to drop it.
type statusWriter struct {
	http.ResponseWriter
	status int
	code   int
}

func (w *statusWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// callLog is what serveGraph learns about one call, for the request log.
type callLog struct {
	start   time.Time
	outcome string
	// dropped is the hijacked connection of a FaultDrop, closed once the
	// call is on record.
	dropped io.Closer
}

// logCall records a finished call and logs it.
func (s *Sim) logCall(r *http.Request, w *statusWriter, rt route, c *callLog) {
	if w.status == 0 && c.outcome == "ok" {
		c.outcome = "client gone"
	}
	if w.code != 0 && c.outcome == "ok" {
		c.outcome = "graph error"
	}
	req := Request{At: c.start, Method: r.Method, Path: r.URL.Path, Fields: r.URL.Query().Get("fields"), Op: rt.op, Object: rt.object, Status: w.status, Code: w.code, Outcome: c.outcome, Duration: time.Since(c.start)}
	s.mu.Lock()
	s.recordLocked(req)
	s.inFlight--
	s.mu.Unlock()
	if c.dropped != nil {
		// Closed only once the call is on record, so a client that sees
		// the connection go also sees the log entry.
		_ = c.dropped.Close()
	}
	s.log.LogAttrs(r.Context(), slog.LevelInfo, "graphsim: graph call",
		slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.String("op", string(rt.op)),
		slog.String("object", rt.object), slog.Int("status", w.status), slog.Int("code", w.code),
		slog.String("outcome", c.outcome), slog.Duration("duration", req.Duration))
}

// serveGraph answers one Graph call, in Graph's order of checks: scripted
// faults (trouble in front of Graph), the path, the token, the object, the
// call budget, then the endpoint itself.
func (s *Sim) serveGraph(rw http.ResponseWriter, r *http.Request) {
	c := &callLog{start: time.Now(), outcome: "ok"}
	w := &statusWriter{ResponseWriter: rw}
	rt := s.parseRoute(r)
	defer s.logCall(r, w, rt, c)

	s.mu.Lock()
	s.countLocked(rt.op, rt.object)
	s.inFlight++
	latency := s.latency
	f, faulted := s.takeFaultLocked(rt.op, rt.object)
	s.mu.Unlock()

	// net/http watches for a client that leaves only once the request body
	// is read: read it now, so that a call held by latency or a delay ends
	// with its client, as a delay promises, and a held upload never lands
	// after the client gave up on it.
	if r.Method == http.MethodPost && r.Body != nil {
		b, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes+1))
		if err != nil {
			return // the client left while sending
		}
		r.Body = io.NopCloser(bytes.NewReader(b))
	}

	if !wait(r.Context(), latency) {
		return
	}
	if faulted {
		c.outcome = "fault: " + string(f.Kind)
		if f.Kind != FaultDelay {
			c.dropped = s.applyFault(w, rt, f)
			return
		}
		if !wait(r.Context(), f.Delay) {
			return
		}
	}

	if !rt.pathOK {
		s.writeError(w, rt, "", newGraphError(codeUnknownPath, 0, "Unknown path components: "+clip(rt.unknown)))
		return
	}
	var params map[string]string
	var paramsErr error
	if r.Method == http.MethodPost {
		params, paramsErr = readParams(r)
	}
	s.mu.Lock()
	g, ge := s.authenticateLocked(r, params)
	if ge != nil {
		s.mu.Unlock()
		s.writeError(w, rt, "", ge)
		return
	}
	waba, ge := s.resolveLocked(r.Method, rt)
	if ge == nil && !g.reaches(waba) {
		// Graph does not tell an object a token may not see from one that
		// does not exist.
		ge = noObject(r.Method, rt.object)
	}
	if ge != nil {
		s.mu.Unlock()
		s.writeError(w, rt, "", ge)
		return
	}
	buc, refused := s.chargeLocked(rt.object, waba)
	s.mu.Unlock()
	if refused {
		c.outcome = "budget spent"
		s.writeError(w, rt, buc, newGraphError(codeWABARateLimit, 0, ""))
		return
	}

	switch rt.op {
	case OpUpload:
		if paramsErr != nil {
			s.writeError(w, rt, buc, invalidParameter(paramsErr.Error()))
			return
		}
		s.upload(w, r, rt, buc, params)
	case OpGet:
		s.get(w, r, rt, buc)
	case OpList:
		s.list(w, r, rt, buc)
	default:
		s.node(w, rt, buc)
	}
}

// resolveLocked finds the route's object, and the WABA whose budget the call
// is charged to; it answers as Graph does for an object it has not, or an
// edge the object's node type lacks.
func (s *Sim) resolveLocked(method string, rt route) (waba string, ge *graphError) {
	n, isNumber := s.numbers[rt.object]
	_, isWABA := s.wabas[rt.object]
	waba = rt.object
	if isNumber {
		waba = n.waba
	}
	switch {
	case !isNumber && !isWABA:
		ge = noObject(method, clip(rt.object))
	case rt.edge == "" && method != http.MethodGet:
		ge = noObject(method, rt.object)
	case rt.edge == "":
	case isNumber && rt.edge != edgeEncryption:
		ge = invalidField(rt.edge, "WhatsAppBusinessPhoneNumber")
	case isWABA && rt.edge != edgePhoneNumbers:
		ge = invalidField(rt.edge, "WhatsAppBusinessAccount")
	case rt.op == OpOther:
		ge = noObject(method, rt.object)
	}
	return waba, ge
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64]
	}
	return s
}

func invalidField(edge, nodeType string) *graphError {
	return newGraphError(codeInvalidParameter, 0, fmt.Sprintf("(#100) Tried accessing nonexisting field (%s) on node type (%s)", clip(edge), nodeType))
}

// wait blocks for d or until ctx is done, and reports whether d elapsed.
func wait(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// authenticateLocked accepts the token as Graph does: "Authorization:
// Bearer" (or "OAuth"), or an access_token query or form parameter, and
// returns what it may reach.
func (s *Sim) authenticateLocked(r *http.Request, params map[string]string) (grant, *graphError) {
	var got string
	var present bool
	if h := r.Header.Get("Authorization"); h != "" {
		present = true
		scheme, tok, _ := strings.Cut(h, " ")
		if strings.EqualFold(scheme, "Bearer") || strings.EqualFold(scheme, "OAuth") {
			got = strings.TrimSpace(tok)
		}
	} else if tok, ok := r.URL.Query()["access_token"]; ok {
		present = true
		got = tok[0]
	} else if tok, ok := params["access_token"]; ok {
		present, got = true, tok
	}
	if !present {
		return grant{}, newGraphError(codeMissingToken, 0, "")
	}
	return s.authorizeLocked(got)
}

// readParams reads POST parameters as Graph does: query string plus a
// urlencoded, multipart or JSON body.
func readParams(r *http.Request) (map[string]string, error) {
	p := map[string]string{}
	for k, v := range r.URL.Query() {
		p[k] = v[0]
	}
	if r.Method == http.MethodPost && r.Body != nil {
		mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		body := io.LimitReader(r.Body, maxBodyBytes+1)
		switch mt {
		case "application/x-www-form-urlencoded":
			b, err := io.ReadAll(body)
			if err != nil || len(b) > maxBodyBytes {
				return nil, errors.New("the body is too large or unreadable")
			}
			v, err := url.ParseQuery(string(b))
			if err != nil {
				return nil, errors.New("the urlencoded body does not parse")
			}
			for k, vs := range v {
				p[k] = vs[0]
			}
		case "multipart/form-data":
			r.Body = io.NopCloser(body)
			if err := r.ParseMultipartForm(maxBodyBytes); err != nil {
				return nil, errors.New("the multipart body does not parse")
			}
			for k, vs := range r.MultipartForm.Value {
				p[k] = vs[0]
			}
		case "application/json":
			var m map[string]any
			dec := json.NewDecoder(body)
			dec.UseNumber()
			if err := dec.Decode(&m); err != nil {
				return nil, errors.New("the JSON body does not parse")
			}
			for k, v := range m {
				switch v := v.(type) {
				case string:
					p[k] = v
				case json.Number:
					p[k] = v.String()
				default:
					b, _ := json.Marshal(v)
					p[k] = string(b)
				}
			}
		}
	}
	return p, nil
}
