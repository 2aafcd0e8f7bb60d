package graphsim

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// bucType is the Business Use Case type Meta reports for WhatsApp
// management calls in X-Business-Use-Case-Usage.
const bucType = "whatsapp_business_management"

// Budget limits authenticated Graph calls in a sliding window, as Meta's
// per-app, per-WABA rate limit does. Past it, calls get code 80007.
type Budget struct {
	// WABA scopes the budget to calls on that WABA and its numbers; ""
	// makes one budget shared by every call.
	WABA   string
	Limit  int           // calls per Window; 0 removes the budget
	Window time.Duration // 0 = one hour
	// RegainAccess is reported as estimated_time_to_regain_access once the
	// budget is spent; 0 computes it from the window.
	RegainAccess time.Duration
}

// BudgetStatus is a budget with its use in the current window.
type BudgetStatus struct {
	Budget
	Used int
}

type budgetState struct {
	b     Budget
	calls []time.Time // oldest first, within the window
}

// SetBudget installs, replaces (same WABA) or, with Limit 0, removes a budget.
// A new budget starts with an empty window.
func (s *Sim) SetBudget(b Budget) error {
	if b.WABA != "" {
		if err := checkID("waba", b.WABA); err != nil {
			return err
		}
	}
	if b.Limit < 0 {
		return &InputError{Field: "limit", Problem: fmt.Sprintf("is %d", b.Limit), Fix: "use the calls allowed per window, or 0 to remove the budget"}
	}
	if b.Window < 0 || b.RegainAccess < 0 {
		return &InputError{Field: "window/regain_access", Problem: "is negative", Fix: "use 0 for the default or a positive duration"}
	}
	if b.Window == 0 {
		b.Window = time.Hour
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if b.Limit == 0 {
		delete(s.budgets, b.WABA)
		return nil
	}
	s.budgets[b.WABA] = &budgetState{b: b}
	return nil
}

// Budgets returns the budgets in force.
func (s *Sim) Budgets() []BudgetStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	out := make([]BudgetStatus, 0, len(s.budgets))
	for _, bs := range s.budgets {
		bs.prune(now)
		out = append(out, BudgetStatus{Budget: bs.b, Used: len(bs.calls)})
	}
	slices.SortFunc(out, func(a, b BudgetStatus) int { return cmp.Compare(a.WABA, b.WABA) })
	return out
}

func (bs *budgetState) prune(now time.Time) {
	cut := now.Add(-bs.b.Window)
	i := 0
	for i < len(bs.calls) && !bs.calls[i].After(cut) {
		i++
	}
	bs.calls = bs.calls[i:]
}

// regain is how long until the budget admits a call again.
func (bs *budgetState) regain(now time.Time) time.Duration {
	if bs.b.RegainAccess > 0 {
		return bs.b.RegainAccess
	}
	if len(bs.calls) == 0 {
		return 0
	}
	return bs.calls[0].Add(bs.b.Window).Sub(now)
}

type bucEntry struct {
	Type            string `json:"type"`
	CallCount       int    `json:"call_count"`
	TotalCPUTime    int    `json:"total_cputime"`
	TotalTime       int    `json:"total_time"`
	EstimatedRegain int    `json:"estimated_time_to_regain_access"`
}

// chargeLocked applies the budgets that cover a call on object (whose WABA
// is waba, "" if none). It returns the X-Business-Use-Case-Usage value (""
// when no budget applies) and whether the call is refused. A refused call
// is not added to any window.
func (s *Sim) chargeLocked(object, waba string) (header string, refused bool) {
	var applicable []*budgetState
	if bs, ok := s.budgets[""]; ok {
		applicable = append(applicable, bs)
	}
	if waba != "" {
		if bs, ok := s.budgets[waba]; ok {
			applicable = append(applicable, bs)
		}
	}
	if len(applicable) == 0 {
		return "", false
	}
	now := s.now()
	for _, bs := range applicable {
		bs.prune(now)
		if len(bs.calls) >= bs.b.Limit {
			refused = true
		}
	}
	if !refused {
		for _, bs := range applicable {
			bs.calls = append(bs.calls, now)
		}
	}
	// Meta keys the header by the business object the call was charged to.
	key := waba
	if key == "" {
		key = object
	}
	var worst bucEntry
	for _, bs := range applicable {
		pct := min(100, len(bs.calls)*100/bs.b.Limit)
		e := bucEntry{Type: bucType, CallCount: pct, TotalCPUTime: pct / 4, TotalTime: pct / 4}
		if len(bs.calls) >= bs.b.Limit && refused {
			e.CallCount = 100
			e.EstimatedRegain = ceilMinutes(bs.regain(now))
		}
		if worst.Type == "" || e.EstimatedRegain > worst.EstimatedRegain ||
			(e.EstimatedRegain == worst.EstimatedRegain && e.CallCount > worst.CallCount) {
			worst = e
		}
	}
	b, _ := json.Marshal(map[string][]bucEntry{key: {worst}})
	return string(b), refused
}

func ceilMinutes(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	return int((d + time.Minute - 1) / time.Minute)
}
