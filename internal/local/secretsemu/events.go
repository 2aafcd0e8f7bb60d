package secretsemu

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// EventType names what happened during a rotation.
type EventType string

// Event types, in the order a rotation produces them.
const (
	RotationStarted   EventType = "RotationStarted"
	StepStarted       EventType = "StepStarted"
	StepSucceeded     EventType = "StepSucceeded"
	StepFailed        EventType = "StepFailed"
	RotationSucceeded EventType = "RotationSucceeded"
	RotationFailed    EventType = "RotationFailed"
	// RotationAbandoned: a PutSecretValue or UpdateSecret moved AWSCURRENT
	// by hand while the rotation was incomplete; AWSPENDING was dropped and
	// no reattempt follows.
	RotationAbandoned EventType = "RotationAbandoned"
	// RotationCancelled: CancelRotateSecret stopped further steps and reattempts.
	RotationCancelled EventType = "RotationCancelled"
)

// Event is one entry of the rotation timeline.
type Event struct {
	// Seq numbers events from 1 in the order they were recorded, across secrets.
	Seq       int64     `json:"seq"`
	Type      EventType `json:"type"`
	SecretARN string    `json:"secretArn"`
	// Token is the rotation's ClientRequestToken: the new version's id.
	Token string `json:"token"`
	// Attempt counts from 1; a reattempt replays every step with the same Token.
	Attempt int       `json:"attempt,omitempty"`
	Step    string    `json:"step,omitempty"`
	Time    time.Time `json:"time"`
	// Duration of the step, on StepSucceeded and StepFailed.
	Duration time.Duration `json:"-"`
	// Error is the function's error, or why the emulator gave up.
	Error string `json:"error,omitempty"`
	// Final marks a RotationFailed after which no reattempt follows.
	Final bool `json:"final,omitempty"`
	// TestOnly marks events of RotateSecret with RotateImmediately=false,
	// which runs testSecret alone.
	TestOnly bool `json:"testOnly,omitempty"`
}

type eventJSON struct {
	eventAlias
	DurationMS float64 `json:"durationMs,omitempty"`
}

type eventAlias Event

// MarshalJSON writes Duration as fractional milliseconds, "durationMs".
func (e Event) MarshalJSON() ([]byte, error) {
	return json.Marshal(eventJSON{eventAlias: eventAlias(e), DurationMS: float64(e.Duration) / float64(time.Millisecond)})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (e *Event) UnmarshalJSON(b []byte) error {
	var v eventJSON
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*e = Event(v.eventAlias)
	e.Duration = time.Duration(v.DurationMS * float64(time.Millisecond))
	return nil
}

// record appends an event and wakes every WaitEvent.
func (s *Server) record(e Event) {
	if e.Time.IsZero() {
		e.Time = s.now()
	}
	s.evMu.Lock()
	e.Seq = int64(len(s.events)) + 1
	s.events = append(s.events, e)
	close(s.evSignal)
	s.evSignal = make(chan struct{})
	s.evMu.Unlock()
	s.log.Info("rotation event", "type", e.Type, "secret", e.SecretARN, "token", e.Token,
		"attempt", e.Attempt, "step", e.Step, "duration", e.Duration, "error", e.Error)
}

// Events returns the events of one secret, by ARN, in order; "" returns all.
func (s *Server) Events(secretARN string) []Event {
	s.evMu.Lock()
	defer s.evMu.Unlock()
	var out []Event
	for _, e := range s.events {
		if secretARN == "" || e.SecretARN == secretARN {
			out = append(out, e)
		}
	}
	return out
}

// WaitEvent returns the first event, recorded before or after the call, for
// which match is true; it blocks until one is recorded or ctx ends.
func (s *Server) WaitEvent(ctx context.Context, match func(Event) bool) (Event, error) {
	next := 0
	for {
		s.evMu.Lock()
		for ; next < len(s.events); next++ {
			if e := s.events[next]; match(e) {
				s.evMu.Unlock()
				return e, nil
			}
		}
		signal := s.evSignal
		s.evMu.Unlock()
		select {
		case <-signal:
		case <-ctx.Done():
			return Event{}, fmt.Errorf("waiting for a rotation event: %w", ctx.Err())
		}
	}
}

// serveEvents answers GET /_emulator/events[?secret=<arn or name>][&after=<seq>]
// with {"events":[...]} so that tools outside the process can follow a rotation.
func (s *Server) serveEvents(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		http.Error(w, "use GET /_emulator/events[?secret=<arn or name>][&after=<seq>]", http.StatusMethodNotAllowed)
		return
	}
	q := r.URL.Query()
	var after int64
	if v := q.Get("after"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			http.Error(w, fmt.Sprintf("after=%q: want the seq of the last event you have, a whole number ≥ 0", v), http.StatusBadRequest)
			return
		}
		after = n
	}
	arn := ""
	if id := q.Get("secret"); id != "" {
		s.mu.Lock()
		sec, err := s.lookup(id)
		s.mu.Unlock()
		if err != nil {
			// A secret force-deleted since its rotation still has a timeline.
			arn = id
		} else {
			arn = sec.arn
		}
	}
	events := []Event{}
	for _, e := range s.Events(arn) {
		if e.Seq > after {
			events = append(events, e)
		}
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(struct {
		Events []Event `json:"events"`
	}{events})
}
