package operator

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// cursor is where a fleet status run stands: the ListSecrets page to read
// next and how many of its entries are done, and the counts since the run
// began. It travels as next_token and fleet_cursor, so it only ever moves
// forward: a run ends on its last page, and a continuation that made no
// progress is not sent.
type cursor struct {
	V int `json:"v"`
	// Page is the ListSecrets NextToken of the page to read; "" is the
	// first page.
	Page string `json:"page,omitempty"`
	// Index is how many entries of that page are done.
	Index int `json:"index"`
	// Run is when the run began; Hops counts the invocations before this one.
	Run    time.Time   `json:"run"`
	Hops   int         `json:"hops"`
	Totals FleetCounts `json:"totals"`
}

const (
	cursorVersion = 1
	// maxCursorLen keeps a token well inside an asynchronous payload.
	maxCursorLen = 16 << 10
)

func (c cursor) encode() string {
	b, _ := json.Marshal(c) // plain values: cannot fail
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeCursor reads a token strictly. Its errors never quote it.
func decodeCursor(tok string) (cursor, error) {
	if len(tok) > maxCursorLen {
		return cursor{}, fmt.Errorf("%d characters, more than %d", len(tok), maxCursorLen)
	}
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return cursor{}, errors.New("not base64url")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var c cursor
	if err := dec.Decode(&c); err != nil || dec.More() {
		return cursor{}, errors.New("not a cursor object")
	}
	t := c.Totals
	switch {
	case c.V != cursorVersion:
		return cursor{}, fmt.Errorf("version %d, not %d", c.V, cursorVersion)
	case c.Index < 0 || c.Index > maxListPage:
		return cursor{}, fmt.Errorf("index %d outside 0-%d", c.Index, maxListPage)
	case c.Hops < 0 || c.Run.IsZero():
		return cursor{}, errors.New("no run")
	case min(t.Tenants, t.Healthy, t.Drifted, t.RotationIncomplete, t.RotationOverdue, t.Unreadable, t.NoKeyYet, t.NotEnrolled, t.Unhealthy, t.DriftedNumbers) < 0:
		return cursor{}, errors.New("negative counts")
	}
	return c, nil
}
