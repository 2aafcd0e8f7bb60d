package graphsim

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strconv"
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

func (s *Sim) serveGraph(rw http.ResponseWriter, r *http.Request) {
	start := time.Now()
	w := &statusWriter{ResponseWriter: rw}
	rt := s.parseRoute(r)
	outcome := "ok"
	var dropped io.Closer
	defer func() {
		if w.status == 0 && outcome == "ok" {
			outcome = "client gone"
		}
		if w.code != 0 && outcome == "ok" {
			outcome = "graph error"
		}
		req := Request{At: start, Method: r.Method, Path: r.URL.Path, Op: rt.op, Object: rt.object, Status: w.status, Code: w.code, Outcome: outcome, Duration: time.Since(start)}
		s.mu.Lock()
		s.recordLocked(req)
		s.mu.Unlock()
		if dropped != nil {
			// Closed only once the call is on record, so a client that sees
			// the connection go also sees the log entry.
			_ = dropped.Close()
		}
		s.log.LogAttrs(r.Context(), slog.LevelInfo, "graphsim: graph call",
			slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.String("op", string(rt.op)),
			slog.String("object", rt.object), slog.Int("status", w.status), slog.Int("code", w.code),
			slog.String("outcome", outcome), slog.Duration("duration", req.Duration))
	}()

	s.mu.Lock()
	s.countLocked(rt.op, rt.object)
	latency := s.latency
	f, faulted := s.takeFaultLocked(rt.op, rt.object)
	s.mu.Unlock()

	if !wait(r.Context(), latency) {
		return
	}
	if faulted {
		outcome = "fault: " + string(f.Kind)
		if f.Kind != FaultDelay {
			dropped = s.applyFault(w, rt, f)
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
	if ge := s.authenticate(r, params); ge != nil {
		s.writeError(w, rt, "", ge)
		return
	}

	s.mu.Lock()
	n, isNumber := s.numbers[rt.object]
	_, isWABA := s.wabas[rt.object]
	waba := rt.object
	if isNumber {
		waba = n.waba
	}
	var ge *graphError
	switch {
	case !isNumber && !isWABA:
		ge = noObject(r.Method, clip(rt.object))
	case rt.edge == "" && r.Method != http.MethodGet:
		ge = noObject(r.Method, rt.object)
	case rt.edge == "":
	case isNumber && rt.edge != edgeEncryption:
		ge = invalidField(rt.edge, "WhatsAppBusinessPhoneNumber")
	case isWABA && rt.edge != edgePhoneNumbers:
		ge = invalidField(rt.edge, "WhatsAppBusinessAccount")
	case rt.op == OpOther:
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
		outcome = "budget spent"
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

// authenticate accepts the token as Graph does: "Authorization: Bearer"
// (or "OAuth"), or an access_token query or form parameter.
func (s *Sim) authenticate(r *http.Request, params map[string]string) *graphError {
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
		return newGraphError(codeMissingToken, 0, "")
	}
	if subtle.ConstantTimeCompare([]byte(got), s.token) != 1 {
		return newGraphError(codeInvalidToken, 0, "")
	}
	return nil
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

func (s *Sim) upload(w *statusWriter, r *http.Request, rt route, buc string, p map[string]string) {
	pemKey, ok := p["business_public_key"]
	if !ok {
		s.writeError(w, rt, buc, newGraphError(codeInvalidParameter, 0, "(#100) The parameter business_public_key is required"))
		return
	}
	der, problem := parsePublicKeyPEM(pemKey)
	if problem != "" {
		s.writeError(w, rt, buc, invalidParameter("business_public_key: "+problem+". Ensure it is a valid 2048-bit RSA public key in PEM format."))
		return
	}
	s.mu.Lock()
	n, ok := s.numbers[rt.object]
	if ok {
		n.store(keyEntry{pem: pemKey, der: der, status: StatusValid, at: s.now()})
	}
	s.mu.Unlock()
	if !ok { // removed while this call was in flight
		s.writeError(w, rt, buc, noObject(r.Method, rt.object))
		return
	}
	s.log.Info("graphsim: key uploaded", "number", rt.object, "fingerprint", Fingerprint(der))
	s.writeJSON(w, rt, buc, http.StatusOK, map[string]bool{"success": true})
}

var encryptionFields = map[string]bool{"business_public_key": true, "business_public_key_signature_status": true}

func (s *Sim) get(w *statusWriter, r *http.Request, rt route, buc string) {
	fields, ge := parseFields(r.URL.Query().Get("fields"), encryptionFields, "WhatsAppBusinessEncryption")
	if ge != nil {
		s.writeError(w, rt, buc, ge)
		return
	}
	s.mu.Lock()
	n, ok := s.numbers[rt.object]
	var reg Registration
	if ok {
		reg = s.viewLocked(n, s.servedIndexLocked(n, s.now()))
	}
	s.mu.Unlock()
	if !ok {
		s.writeError(w, rt, buc, noObject(r.Method, rt.object))
		return
	}
	data := []map[string]string{}
	if reg.Keyed {
		item := map[string]string{}
		if fields == nil || fields["business_public_key"] {
			item["business_public_key"] = reg.BusinessPublicKey
		}
		if fields == nil || fields["business_public_key_signature_status"] {
			item["business_public_key_signature_status"] = reg.Status
		}
		data = append(data, item)
	}
	s.writeJSON(w, rt, buc, http.StatusOK, map[string]any{"data": data})
}

// parseFields reads a Graph "fields" list; nil means the default fields.
func parseFields(list string, known map[string]bool, nodeType string) (map[string]bool, *graphError) {
	if list == "" {
		return nil, nil
	}
	out := map[string]bool{}
	for f := range strings.SplitSeq(list, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if !known[f] {
			return nil, invalidField(f, nodeType)
		}
		out[f] = true
	}
	return out, nil
}

var phoneNumberFields = map[string]bool{
	"id": true, "display_phone_number": true, "verified_name": true, "quality_rating": true,
	"code_verification_status": true, "platform_type": true, "throughput": true, "name_status": true,
}

// defaultPhoneNumberFields are what Graph returns without "fields".
var defaultPhoneNumberFields = []string{"verified_name", "code_verification_status", "display_phone_number", "quality_rating", "platform_type", "throughput", "id"}

func phoneNumberJSON(n PhoneNumber, fields map[string]bool) map[string]any {
	all := map[string]any{
		"id":                       n.ID,
		"display_phone_number":     n.DisplayPhoneNumber,
		"verified_name":            n.VerifiedName,
		"quality_rating":           "GREEN",
		"code_verification_status": "VERIFIED",
		"platform_type":            "CLOUD_API",
		"throughput":               map[string]string{"level": "STANDARD"},
		"name_status":              "APPROVED",
	}
	out := map[string]any{"id": n.ID} // Graph always includes id
	if fields == nil {
		for _, f := range defaultPhoneNumberFields {
			out[f] = all[f]
		}
		return out
	}
	for f := range fields {
		out[f] = all[f]
	}
	return out
}

func encodeCursor(seq int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(cursorPrefix + strconv.FormatInt(seq, 10)))
}

func decodeCursor(c string) (int64, bool) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return 0, false
	}
	rest, ok := strings.CutPrefix(string(b), cursorPrefix)
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(rest, 10, 64)
	return n, err == nil
}

type listedNumber struct {
	PhoneNumber
	seq int64
}

func (s *Sim) list(w *statusWriter, r *http.Request, rt route, buc string) {
	q := r.URL.Query()
	fields, ge := parseFields(q.Get("fields"), phoneNumberFields, "WhatsAppBusinessPhoneNumber")
	if ge != nil {
		s.writeError(w, rt, buc, ge)
		return
	}
	limit := s.pageSize
	if l := q.Get("limit"); l != "" {
		v, err := strconv.Atoi(l)
		if err != nil || v < 1 {
			s.writeError(w, rt, buc, invalidParameter(fmt.Sprintf("limit must be a positive integer, got %q", clip(l))))
			return
		}
		limit = min(v, maxPageSize)
	}
	after, before := int64(-1), int64(-1)
	for name, dst := range map[string]*int64{"after": &after, "before": &before} {
		if c := q.Get(name); c != "" {
			seq, ok := decodeCursor(c)
			if !ok {
				s.writeError(w, rt, buc, invalidParameter(fmt.Sprintf("%s is not a cursor this list returned", name)))
				return
			}
			*dst = seq
		}
	}

	s.mu.Lock()
	var all []listedNumber
	for _, n := range s.sortedNumbersLocked() {
		if n.waba == rt.object {
			all = append(all, listedNumber{PhoneNumber{ID: n.id, WABA: n.waba, DisplayPhoneNumber: n.display, VerifiedName: n.verifiedName}, n.seq})
		}
	}
	s.mu.Unlock()

	var page []listedNumber
	switch {
	case after >= 0:
		for _, n := range all {
			if n.seq > after && len(page) < limit {
				page = append(page, n)
			}
		}
	case before >= 0:
		var earlier []listedNumber
		for _, n := range all {
			if n.seq < before {
				earlier = append(earlier, n)
			}
		}
		page = earlier[max(0, len(earlier)-limit):]
	default:
		page = all[:min(limit, len(all))]
	}

	data := make([]map[string]any, 0, len(page))
	for _, n := range page {
		data = append(data, phoneNumberJSON(n.PhoneNumber, fields))
	}
	body := map[string]any{"data": data}
	if len(page) > 0 {
		first, last := page[0].seq, page[len(page)-1].seq
		paging := map[string]any{"cursors": map[string]string{"before": encodeCursor(first), "after": encodeCursor(last)}}
		if all[len(all)-1].seq > last {
			paging["next"] = pageURL(r, limit, "after", encodeCursor(last))
		}
		if all[0].seq < first {
			paging["previous"] = pageURL(r, limit, "before", encodeCursor(first))
		}
		body["paging"] = paging
	}
	s.writeJSON(w, rt, buc, http.StatusOK, body)
}

// pageURL is an absolute link to another page on this server. Like Graph,
// it repeats access_token and fields when the request had them.
func pageURL(r *http.Request, limit int, dir, cursor string) string {
	in := r.URL.Query()
	q := url.Values{}
	for _, k := range []string{"access_token", "fields"} {
		if v, ok := in[k]; ok {
			q.Set(k, v[0])
		}
	}
	q.Set("limit", strconv.Itoa(limit))
	q.Set(dir, cursor)
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	u := url.URL{Scheme: scheme, Host: r.Host, Path: r.URL.Path, RawQuery: q.Encode()}
	return u.String()
}

// node answers GET /{id}: the object's own fields.
func (s *Sim) node(w *statusWriter, rt route, buc string) {
	s.mu.Lock()
	n, isNumber := s.numbers[rt.object]
	var pn PhoneNumber
	if isNumber {
		pn = PhoneNumber{ID: n.id, WABA: n.waba, DisplayPhoneNumber: n.display, VerifiedName: n.verifiedName}
	}
	s.mu.Unlock()
	if isNumber {
		s.writeJSON(w, rt, buc, http.StatusOK, phoneNumberJSON(pn, nil))
		return
	}
	s.writeJSON(w, rt, buc, http.StatusOK, map[string]string{"id": rt.object})
}

// graphHeaders are the headers Graph puts on every JSON answer.
func (s *Sim) graphHeaders(w http.ResponseWriter, rt route, buc string) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=UTF-8")
	h.Set("Facebook-Api-Version", rt.version)
	h.Set("X-Fb-Trace-Id", s.randomID(11))
	h.Set("X-Fb-Rev", "1019937421")
	h.Set("Cache-Control", "private, no-cache, no-store, must-revalidate")
	h.Set("Pragma", "no-cache")
	h.Set("Expires", "Sat, 01 Jan 2000 00:00:00 GMT")
	h.Set("Access-Control-Allow-Origin", "*")
	if buc != "" {
		h.Set("X-Business-Use-Case-Usage", buc)
	}
}

func (s *Sim) writeJSON(w *statusWriter, rt route, buc string, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil { // only maps of strings and numbers reach here
		status, b = http.StatusInternalServerError, []byte(`{"error":{"message":"graphsim: cannot encode response","type":"OAuthException","code":1}}`)
	}
	s.graphHeaders(w, rt, buc)
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func (s *Sim) writeError(w *statusWriter, rt route, buc string, ge *graphError) {
	ge.FBTraceID = s.randomID(23)
	w.code = ge.Code
	w.Header().Set("WWW-Authenticate", fmt.Sprintf(`OAuth "Facebook Platform" %q %q`, wwwAuthenticateError(ge.Code), ge.Message))
	s.writeJSON(w, rt, buc, ge.status, map[string]*graphError{"error": ge})
}

const traceAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"

func (s *Sim) randomID(n int) string {
	b := make([]byte, n)
	s.mu.Lock()
	for i := range b {
		b[i] = traceAlphabet[s.rnd.IntN(len(traceAlphabet))]
	}
	s.mu.Unlock()
	return string(b)
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
		if f.Code == codeWABARateLimit || f.Code == 4 || f.Code == 130429 {
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
