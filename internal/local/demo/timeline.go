package demo

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/flowkey/flowkey/internal/local/graphsim"
	"github.com/flowkey/flowkey/internal/local/secretsemu"
)

// step is one line of a rotation's timeline.
type step struct {
	Attempt  int
	Name     string
	Offset   time.Duration // from RotationStarted
	Duration time.Duration
	OK       bool
	Error    string
	Graph    graphsim.OpCounts // calls that began while the step ran
}

// timeline turns one rotation's events into steps, and counts the Graph
// requests that began during each step.
func timeline(events []secretsemu.Event, reqs []graphsim.Request) []step {
	var start time.Time
	started := map[string]time.Time{} // step name+attempt -> StepStarted time
	var steps []step
	for _, e := range events {
		key := fmt.Sprintf("%d/%s", e.Attempt, e.Step)
		switch e.Type {
		case secretsemu.RotationStarted:
			if start.IsZero() {
				start = e.Time
			}
		case secretsemu.StepStarted:
			started[key] = e.Time
		case secretsemu.StepSucceeded, secretsemu.StepFailed:
			from, ok := started[key]
			if !ok {
				from = e.Time.Add(-e.Duration)
			}
			if start.IsZero() {
				start = from
			}
			s := step{Attempt: e.Attempt, Name: e.Step, Offset: from.Sub(start), Duration: e.Duration,
				OK: e.Type == secretsemu.StepSucceeded, Error: e.Error}
			for _, r := range reqs {
				if !r.At.Before(from) && !r.At.After(e.Time) {
					s.Graph = addOp(s.Graph, r.Op)
				}
			}
			steps = append(steps, s)
		}
	}
	return steps
}

func addOp(c graphsim.OpCounts, op graphsim.Op) graphsim.OpCounts {
	switch op {
	case graphsim.OpUpload:
		c.Upload++
	case graphsim.OpGet:
		c.Get++
	case graphsim.OpList:
		c.List++
	default:
		c.Other++
	}
	return c
}

// rotationSpan is the time from the first event to the last.
func rotationSpan(events []secretsemu.Event) time.Duration {
	if len(events) == 0 {
		return 0
	}
	return events[len(events)-1].Time.Sub(events[0].Time)
}

// stepWork says what the rotator does in each step, for the timeline.
var stepWork = map[string]string{
	"createSecret": "new RSA-2048 pair from KMS, stored AWSPENDING",
	"setSecret":    "public key uploaded to every number",
	"testSecret":   "Meta reads back the new key, VALID",
	"finishSecret": "AWSCURRENT moved to the new version",
}

func writeTimeline(out io.Writer, steps []step) {
	for _, s := range steps {
		res := "ok"
		if !s.OK {
			res = "FAILED"
		}
		name := s.Name
		if s.Attempt > 1 {
			name = fmt.Sprintf("%s (attempt %d)", s.Name, s.Attempt)
		}
		line := fmt.Sprintf("  %8s  %-14s %-6s %7s  %-44s %s", "+"+ms(s.Offset), name, res, ms(s.Duration), stepWork[s.Name], graphNote(s.Graph))
		fmt.Fprintln(out, strings.TrimRight(line, " "))
		if !s.OK && s.Error != "" {
			fmt.Fprintf(out, "            %s\n", s.Error)
		}
	}
}

func graphNote(c graphsim.OpCounts) string {
	if c.Total() == 0 {
		return ""
	}
	return "Graph: " + countList(c)
}

func countList(c graphsim.OpCounts) string {
	var parts []string
	for _, x := range []struct {
		n    int
		what string
	}{{c.Upload, "upload"}, {c.Get, "read"}, {c.List, "list"}, {c.Other, "other"}} {
		if x.n == 1 {
			parts = append(parts, "1 "+x.what)
		} else if x.n > 1 {
			parts = append(parts, fmt.Sprintf("%d %ss", x.n, x.what))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func callDelta(before, after graphsim.Calls) graphsim.OpCounts {
	return graphsim.OpCounts{
		Upload: after.Upload - before.Upload, Get: after.Get - before.Get,
		List: after.List - before.List, Other: after.Other - before.Other,
	}
}

// inSpan counts the requests that began between a rotation's first and last event.
func inSpan(events []secretsemu.Event, reqs []graphsim.Request) int {
	if len(events) == 0 {
		return 0
	}
	from, to := events[0].Time, events[len(events)-1].Time
	n := 0
	for _, r := range reqs {
		if !r.At.Before(from) && !r.At.After(to) {
			n++
		}
	}
	return n
}

// ms rounds d for people: whole milliseconds, or seconds past ten.
func ms(d time.Duration) string {
	if d >= 10*time.Second {
		return d.Round(100 * time.Millisecond).String()
	}
	return fmt.Sprintf("%dms", d.Round(time.Millisecond).Milliseconds())
}
