package graphsim

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

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

// defaultEncryptionFields are what GET answers without "fields": the status
// alone, as in Meta's v23 reference example of a VALID answer. A client
// that does not ask for the key does not get it.
var defaultEncryptionFields = map[string]bool{"business_public_key_signature_status": true}

func (s *Sim) get(w *statusWriter, r *http.Request, rt route, buc string) {
	fields, ge := parseFields(r.URL.Query().Get("fields"), encryptionFields, "WhatsAppBusinessEncryption")
	if ge != nil {
		s.writeError(w, rt, buc, ge)
		return
	}
	if fields == nil {
		fields = defaultEncryptionFields
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
		if fields["business_public_key"] {
			item["business_public_key"] = reg.BusinessPublicKey
		}
		if fields["business_public_key_signature_status"] {
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
