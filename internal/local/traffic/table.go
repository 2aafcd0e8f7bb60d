package traffic

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// WriteTable prints one row per phase: what the users saw, and what the
// endpoint did for them. A KMS DECRYPTS/REQUEST column appears when the
// endpoint called kms:Decrypt in some phase (KMS custody); PEM custody's
// table is as it always was.
func WriteTable(out io.Writer, phases []Phase) {
	withKMS := false
	for _, p := range phases {
		withKMS = withKMS || p.KMSDecrypts() > 0
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	head := "  PHASE\tREQUESTS\t421s\tRETRIES\tUSER-VISIBLE FAILURES\tKEY FETCHES\tREFRESHES\tRSA OPS/REQUEST"
	if withKMS {
		head += "\tKMS DECRYPTS/REQUEST"
	}
	fmt.Fprintln(tw, head+"\tDECRYPTED WITH")
	for _, p := range phases {
		fmt.Fprintf(tw, "  %s\t%d\t%d\t%d\t%d\t%d\t%d\t%.2f", p.Name, p.Clients.Requests, p.Clients.Status421, p.Clients.Retries,
			p.Clients.Failures, p.Clients.KeyFetches, p.Endpoint.Refreshes, p.Endpoint.RSAOpsPerRequest())
		if withKMS {
			fmt.Fprintf(tw, "\t%.2f", p.KMSDecryptsPerRequest())
		}
		fmt.Fprintf(tw, "\t%s\n", labels(p.Endpoint.ByLabel))
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
