package traffic

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// WriteTable prints one row per phase: what the users saw, and what the
// endpoint did for them.
func WriteTable(out io.Writer, phases []Phase) {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  PHASE\tREQUESTS\t421s\tRETRIES\tUSER-VISIBLE FAILURES\tKEY FETCHES\tREFRESHES\tRSA OPS/REQUEST\tDECRYPTED WITH")
	for _, p := range phases {
		fmt.Fprintf(tw, "  %s\t%d\t%d\t%d\t%d\t%d\t%d\t%.2f\t%s\n", p.Name, p.Clients.Requests, p.Clients.Status421, p.Clients.Retries,
			p.Clients.Failures, p.Clients.KeyFetches, p.Endpoint.Refreshes, p.Endpoint.RSAOpsPerRequest(), labels(p.Endpoint.ByLabel))
	}
	tw.Flush()
}

// labels lists how many requests each label's key decrypted.
func labels(by map[string]int) string {
	order := []struct{ label, short string }{
		{"AWSCURRENT", "current"}, {"AWSPENDING", "pending"}, {"AWSPREVIOUS", "previous"}, {"", "no key"},
	}
	var parts []string
	for _, l := range order {
		if n := by[l.label]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", l.short, n))
		}
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}
