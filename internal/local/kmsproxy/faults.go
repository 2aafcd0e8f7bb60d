package kmsproxy

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Exceptions a Fault answers with, by their KMS __type. Any other name of
// a KMS exception works too; these get AWS's usual message.
const (
	ThrottlingException      = "ThrottlingException"
	DisabledException        = "DisabledException"
	KMSInvalidStateException = "KMSInvalidStateException"
	NotFoundException        = "NotFoundException"
	AccessDeniedException    = "AccessDeniedException"
	InvalidKeyUsageException = "InvalidKeyUsageException"
	KMSInternalException     = "KMSInternalException"
	DependencyTimeout        = "DependencyTimeoutException"
)

// Forever as Fault.Times makes a fault permanent.
const Forever = -1

// Fault scripts how the next matching KMS calls are answered. Each call
// consumes at most one fault: the first one, in the order added, whose Op,
// Key and Caller match and that has calls left. Faults act before anything
// else, as trouble in KMS would.
type Fault struct {
	// Op is the operation ("Decrypt", "CreateKey"); "" matches every one.
	Op string
	// Key is a key ID, key ARN or alias name; "" matches every call, also
	// those that name no key. A key ARN matches calls that name the key by
	// its ID, and the other way round.
	Key string
	// Caller is the access key ID that signs the calls; "" matches all.
	Caller string
	// Error is the exception to answer with (ThrottlingException, ...);
	// "" holds the call for Latency and then answers it normally.
	Error string
	// Message replaces AWS's usual message for Error.
	Message string
	// Latency holds the call this long (or until the client gives up)
	// before the answer.
	Latency time.Duration
	// Times is how many matching calls the fault answers; Forever for all.
	Times int
	// After lets this many matching calls through untouched first.
	After int
	// Every answers only one in Every matching calls after After (the
	// first, then every Every-th), letting the others through: KMS
	// throttling some requests of a busy account, not all (0 or 1: every
	// call).
	Every int
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
	key     string // f.Key normalised
	skipped int
	matched int // calls matched after After, for Every
	used    int
}

// InputError is a fault or control call the proxy refuses.
type InputError struct{ Field, Problem, Fix string }

func (e *InputError) Error() string {
	return fmt.Sprintf("kmsproxy: %s %s: %s", e.Field, e.Problem, e.Fix)
}

func validateFault(f Fault) error {
	if f.Error == "" && f.Latency <= 0 {
		return &InputError{Field: "error", Problem: "is empty and latency is 0", Fix: `give an exception ("ThrottlingException"), a latency ("200ms"), or both`}
	}
	if f.Error != "" && !strings.HasSuffix(f.Error, "Exception") {
		return &InputError{Field: "error", Problem: fmt.Sprintf("%q is not a KMS exception", f.Error), Fix: `use a KMS __type such as "ThrottlingException" or "DisabledException"`}
	}
	if f.Latency < 0 {
		return &InputError{Field: "latency", Problem: fmt.Sprintf("is %s", f.Latency), Fix: "use 0 or a positive duration"}
	}
	if f.Times == 0 || f.Times < Forever {
		return &InputError{Field: "times", Problem: fmt.Sprintf("is %d", f.Times), Fix: "use a count of calls (1 or more) or -1 for every call"}
	}
	if f.After < 0 {
		return &InputError{Field: "after", Problem: fmt.Sprintf("is %d", f.After), Fix: "use 0 or the number of matching calls to let through first"}
	}
	if f.Every < 0 {
		return &InputError{Field: "every", Problem: fmt.Sprintf("is %d", f.Every), Fix: "use 0 or 1 for every matching call, or n for one call in n"}
	}
	return nil
}

// AddFault scripts f and returns its ID.
func (p *Proxy) AddFault(f Fault) (int, error) {
	if err := validateFault(f); err != nil {
		return 0, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.nextID++
	p.faults = append(p.faults, &faultState{id: p.nextID, f: f, key: keyRef(f.Key)})
	return p.nextID, nil
}

// Faults lists the scripted faults, spent ones included.
func (p *Proxy) Faults() []FaultStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]FaultStatus, 0, len(p.faults))
	for _, s := range p.faults {
		out = append(out, FaultStatus{ID: s.id, Fault: s.f, Used: s.used})
	}
	return out
}

// RemoveFault removes one fault; it reports whether it existed.
func (p *Proxy) RemoveFault(id int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, s := range p.faults {
		if s.id == id {
			p.faults = append(p.faults[:i], p.faults[i+1:]...)
			return true
		}
	}
	return false
}

// ClearFaults removes every fault.
func (p *Proxy) ClearFaults() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faults = nil
}

func (s *faultState) matches(rq *request) bool {
	f := s.f
	return (f.Op == "" || f.Op == rq.op) && (s.key == "" || s.key == rq.key) && (f.Caller == "" || f.Caller == rq.caller)
}

// take consumes the first fault that answers rq.
func (p *Proxy) take(rq *request) (Fault, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range p.faults {
		if !s.matches(rq) || (s.f.Times != Forever && s.used >= s.f.Times) {
			continue
		}
		if s.skipped < s.f.After {
			s.skipped++
			continue
		}
		s.matched++
		if s.f.Every > 1 && (s.matched-1)%s.f.Every != 0 {
			continue
		}
		s.used++
		p.wakeLocked()
		return s.f, true
	}
	return Fault{}, false
}

// WaitFault blocks until fault id has answered (or is holding) a call, or
// ctx ends: a test can act while a call is held by a latency.
func (p *Proxy) WaitFault(ctx context.Context, id int) error {
	for {
		p.mu.Lock()
		used, found := 0, false
		for _, s := range p.faults {
			if s.id == id {
				used, found = s.used, true
			}
		}
		changed := p.changedLocked()
		p.mu.Unlock()
		switch {
		case !found:
			return fmt.Errorf("kmsproxy: no fault %d", id)
		case used > 0:
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// fault answers rq with a fault if one matches: ok says it did. A fault
// with only a latency holds the call and lets it on (ok false). err is a
// client that gave up during the latency.
func (p *Proxy) fault(ctx context.Context, rq *request) (res response, ok bool, err error) {
	f, found := p.take(rq)
	if !found {
		return response{}, false, nil
	}
	if f.Latency > 0 {
		t := time.NewTimer(f.Latency)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return response{}, false, ctx.Err()
		case <-t.C:
		}
	}
	if f.Error == "" {
		return response{}, false, nil
	}
	msg := f.Message
	if msg == "" {
		msg = usualMessage(f.Error, rq)
	}
	return kmsError(f.Error, msg), true, nil
}

// usualMessage is the text AWS sends with an exception, as far as its
// documentation and answers show it.
func usualMessage(typ string, rq *request) string {
	key := rq.keyRaw
	switch typ {
	case ThrottlingException:
		return "You have exceeded the rate at which you may call KMS. Reduce the frequency of your calls."
	case DisabledException:
		return key + " is disabled."
	case KMSInvalidStateException:
		return key + " is pending deletion."
	case NotFoundException:
		return "Key '" + key + "' does not exist"
	case AccessDeniedException:
		return accessDenied(rq)
	}
	return "kmsproxy: injected " + typ
}

// accessDenied is AWS's message for a call its key policy does not allow,
// the answer for another account's key.
func accessDenied(rq *request) string {
	who := rq.caller
	if who == "" {
		who = "the caller"
	}
	return fmt.Sprintf("User: %s is not authorized to perform: kms:%s on resource: %s because no resource-based policy allows the kms:%s action",
		who, rq.op, rq.keyRaw, rq.op)
}
