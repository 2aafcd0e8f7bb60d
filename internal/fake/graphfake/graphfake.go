// Package graphfake is Meta's per-number key store in memory, for the unit
// tests of the packages that call the Graph API through graph.Client's
// methods (internal/keystate, internal/rotation, internal/operator). Tests plant keys and
// signature statuses, script failures per call, make a GET lag behind an
// upload as Meta's does, and count the calls per number.
//
// It is a call-level fake, not a server: the HTTP simulator of the Graph API
// is internal/local/graphsim, used by the end-to-end tests.
package graphfake

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/flowkey/flowkey/internal/graph"
	"github.com/flowkey/flowkey/internal/keypair"
)

// Operation names, as accepted by Fault.
const (
	OpUpload = "upload" // UploadPublicKey, per phone number ID
	OpGet    = "get"    // GetPublicKey, per phone number ID
	OpList   = "list"   // PhoneNumbers, per WABA ID
)

// Fake is the key store. Its zero value is not usable: call New.
type Fake struct {
	mu      sync.Mutex
	keys    map[string]string // phone → PEM as Meta returns it
	status  map[string]string // phone → signature status
	faults  map[string][]error
	lag     map[string]int    // phone → GETs that still show the previous key
	prev    map[string]string // phone → the key before the last upload
	uploads map[string]int
	gets    map[string]int
	waba    []graph.PhoneNumber
}

// New returns a store where each of phones exists and holds no key, as Meta
// shows a number no key was uploaded for: a blank key, status MISMATCH.
func New(phones ...string) *Fake {
	g := &Fake{keys: map[string]string{}, status: map[string]string{}, faults: map[string][]error{},
		lag: map[string]int{}, prev: map[string]string{}, uploads: map[string]int{}, gets: map[string]int{}}
	for _, p := range phones {
		g.keys[p] = " "
		g.status[p] = graph.StatusMismatch
	}
	return g
}

// Set makes phone exist, holding pemText with status.
func (g *Fake) Set(phone, pemText, status string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.keys[phone], g.status[phone] = pemText, status
}

// SetKey replaces the key phone holds, as a change behind flowkey's back;
// the status stays.
func (g *Fake) SetKey(phone, pemText string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.keys[phone] = pemText
}

// SetStatus replaces phone's signature status; the key stays.
func (g *Fake) SetStatus(phone, status string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.status[phone] = status
}

// Remove makes phone not exist, as a deleted or moved number: its calls
// fail with Graph's code 100, subcode 33.
func (g *Fake) Remove(phone string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.keys, phone)
	delete(g.status, phone)
}

// Numbers is the phone number IDs that exist, sorted.
func (g *Fake) Numbers() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := slices.Collect(maps.Keys(g.keys))
	sort.Strings(n)
	return n
}

// AddWABA appends numbers to what PhoneNumbers lists.
func (g *Fake) AddWABA(numbers ...graph.PhoneNumber) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.waba = append(g.waba, numbers...)
}

// Fault makes the next calls of op for object (a phone number ID, or the
// WABA ID for OpList) return errs, one per call, in order.
func (g *Fake) Fault(op, object string, errs ...error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.faults[op+"/"+object] = append(g.faults[op+"/"+object], errs...)
}

// SetLag makes the next gets GETs of phone show the key it held before its
// last upload, as Meta's reads lag behind its writes.
func (g *Fake) SetLag(phone string, gets int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.lag[phone] = gets
}

// Uploads is the number of UploadPublicKey calls for phone, failed ones
// included.
func (g *Fake) Uploads(phone string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.uploads[phone]
}

// Gets is the number of GetPublicKey calls for phone, failed ones included.
func (g *Fake) Gets(phone string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.gets[phone]
}

// Counts is the UploadPublicKey and GetPublicKey calls per phone; a phone
// never called is absent.
func (g *Fake) Counts() (uploads, gets map[string]int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return maps.Clone(g.uploads), maps.Clone(g.gets)
}

// Totals is the UploadPublicKey and GetPublicKey calls over all phones.
func (g *Fake) Totals() (uploads, gets int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, n := range g.uploads {
		uploads += n
	}
	for _, n := range g.gets {
		gets += n
	}
	return uploads, gets
}

// ResetCounts forgets the calls counted so far.
func (g *Fake) ResetCounts() {
	g.mu.Lock()
	defer g.mu.Unlock()
	clear(g.uploads)
	clear(g.gets)
}

// HeldFingerprint is the SHA-256 fingerprint of the key phone holds, or ""
// when it holds none (or no PEM at all).
func (g *Fake) HeldFingerprint(phone string) string {
	g.mu.Lock()
	defer g.mu.Unlock()
	b, _ := pem.Decode([]byte(g.keys[phone]))
	if b == nil {
		return ""
	}
	return keypair.FingerprintOf(b.Bytes).String()
}

func (g *Fake) next(op, object string) error {
	k := op + "/" + object
	if errs := g.faults[k]; len(errs) > 0 {
		g.faults[k] = errs[1:]
		return errs[0]
	}
	return nil
}

// UploadPublicKey stores pemText as phone's key, which makes its status
// VALID. Without a token or version it fails as Graph does without auth.
func (g *Fake) UploadPublicKey(_ context.Context, auth graph.Auth, phone, pemText string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.uploads[phone]++
	if auth.Token.IsZero() || auth.Version == "" {
		return &graph.Error{Op: "upload", Object: phone, Failure: graph.FailureGraph, HTTPStatus: 401, Code: 190, Attempts: 1, TokenSecret: auth.TokenSecret}
	}
	if err := g.next(OpUpload, phone); err != nil {
		return err
	}
	if _, ok := g.keys[phone]; !ok {
		return &graph.Error{Op: "upload", Object: phone, Failure: graph.FailureGraph, HTTPStatus: 400, Code: 100, Subcode: 33, Attempts: 1}
	}
	g.prev[phone] = g.keys[phone]
	g.keys[phone] = pemText
	g.status[phone] = graph.StatusValid
	return nil
}

// GetPublicKey returns phone's key and status, parsed as graph.Client
// parses them: a key that is neither blank nor an RSA PKIX key gets a
// KeyProblem, and a blank key with VALID (Set(phone, "", StatusValid)) is
// KeyOmitted.
func (g *Fake) GetPublicKey(_ context.Context, _ graph.Auth, phone string) (*graph.Registration, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.gets[phone]++
	if err := g.next(OpGet, phone); err != nil {
		return nil, err
	}
	key, ok := g.keys[phone]
	if !ok {
		return nil, &graph.Error{Op: "get", Object: phone, Failure: graph.FailureGraph, HTTPStatus: 400, Code: 100, Subcode: 33, Attempts: 1, Type: "GraphMethodException",
			Message: "Unsupported get request. Object with ID '" + phone + "' does not exist"}
	}
	if g.lag[phone] > 0 {
		g.lag[phone]--
		key = g.prev[phone]
	}
	reg := &graph.Registration{PublicKeyPEM: key, Status: g.status[phone]}
	if b, _ := pem.Decode([]byte(key)); b != nil {
		if pub, err := x509.ParsePKIXPublicKey(b.Bytes); err == nil {
			if rsaPub, ok := pub.(*rsa.PublicKey); ok {
				reg.PublicKey, reg.PublicDER = rsaPub, b.Bytes
			}
		}
	}
	switch {
	case reg.PublicKey == nil && strings.TrimSpace(key) != "":
		reg.KeyProblem = "business_public_key is not a valid PKIX public key"
	case reg.PublicKey == nil && reg.Status == graph.StatusValid:
		// Meta's v23 example shape: VALID, and no key to see.
		reg.KeyOmitted = true
		reg.KeyProblem = "Meta answered VALID but returned no key"
	}
	return reg, nil
}

// PhoneNumbers lists the numbers given to AddWABA, whatever the WABA ID.
func (g *Fake) PhoneNumbers(_ context.Context, _ graph.Auth, waba string) ([]graph.PhoneNumber, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := g.next(OpList, waba); err != nil {
		return nil, err
	}
	return slices.Clone(g.waba), nil
}
