package stack

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/flowkey/flowkey/internal/fake/logbuf"
)

// A child that prints a line far beyond a scanner's usual limit, then
// more: every line arrives whole, the long one too, and nothing is
// reported. The copy once stopped at the first line over 1 MiB and
// dropped everything after it without a word.
func TestProcessOutputKeepsLinesAfterALongOne(t *testing.T) {
	const long = 2 << 20
	out := &logbuf.Buffer{}
	script := fmt.Sprintf(`head -c %d /dev/zero | tr '\0' x; echo; echo after-1; printf 'after-2'`, long)
	p, err := startProcess("child", out, nil, "/bin/sh", "-c", script)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(time.Minute):
		p.stop(time.Second)
		t.Fatal("the child did not exit within a minute")
	}
	if p.err != nil {
		t.Fatalf("the child failed: %v", p.err)
	}
	want := "[child] " + strings.Repeat("x", long) + "\n[child] after-1\n[child] after-2\n"
	if got := out.String(); got != want {
		t.Errorf("copied %d bytes ending %q, want %d bytes ending %q", len(got), tail(got), len(want), tail(want))
	}
	if err := p.outputErr(); err != nil {
		t.Errorf("outputErr = %v, want nil", err)
	}
}

func tail(s string) string { return s[max(0, len(s)-40):] }

func TestCopyLinesReportsWhatItCannotCopy(t *testing.T) {
	var out strings.Builder
	var failures []error
	in := "short\n" + strings.Repeat("y", 100) + "\nafter\nlast"
	copyLines(&out, "rie", strings.NewReader(in), 64, func(err error) { failures = append(failures, err) })
	want := "[rie] short\n[rie] flowkey stack: a line of more than 64 bytes was not copied\n[rie] after\n[rie] last\n"
	if out.String() != want {
		t.Errorf("copied %q, want %q", out.String(), want)
	}
	if len(failures) != 1 || !strings.Contains(failures[0].Error(), "output of rie: a line of more than 64 bytes was not copied") {
		t.Errorf("failures = %v, want one naming the process and the line", failures)
	}
}

type failingWriter struct{ writes int }

func (w *failingWriter) Write(p []byte) (int, error) {
	w.writes++
	return 0, errors.New("disk full")
}

func TestCopyLinesReportsAFailedWriteAndDrainsTheRest(t *testing.T) {
	w := &failingWriter{}
	var failures []error
	r := strings.NewReader(strings.Repeat("line\n", 1000))
	copyLines(w, "local-kms", r, 64, func(err error) { failures = append(failures, err) })
	if len(failures) != 1 || !strings.Contains(failures[0].Error(), "disk full") || !strings.Contains(failures[0].Error(), "local-kms") {
		t.Errorf("failures = %v, want one naming the process and the write error", failures)
	}
	if w.writes != 1 || r.Len() != 0 {
		t.Errorf("%d writes, %d bytes left unread; want 1 write and the input drained", w.writes, r.Len())
	}
}
