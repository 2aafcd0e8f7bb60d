package demo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// detachHelper runs the Detach modes of the helper process: "detached" is
// flowkey-local as -detach starts it; "exit-early" writes 30 lines of output
// and exits 3 without being ready; "never-ready" waits for SIGTERM without
// saying it is ready.
func detachHelper(mode, state string) (code int, ok bool) {
	switch mode {
	case "detached":
		ready, err := NotifyDetached()
		if err != nil || ready == nil {
			fmt.Fprintln(os.Stderr, "NotifyDetached:", ready != nil, err)
			return 1, true
		}
		return serveHelper(state, os.Stdout, ready), true
	case "exit-early":
		for i := 1; i <= 30; i++ {
			fmt.Fprintf(os.Stderr, "log line %d\n", i)
		}
		return 3, true
	case "never-ready":
		if _, err := NotifyDetached(); err != nil {
			fmt.Fprintln(os.Stderr, "NotifyDetached:", err)
			return 1, true
		}
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
		defer stop()
		<-ctx.Done()
		return 0, true
	}
	return 0, false
}

func detachOptions(t *testing.T, mode string) (DetachOptions, *bytes.Buffer) {
	t.Helper()
	state := t.TempDir()
	var out bytes.Buffer
	return DetachOptions{Command: helperCommand(mode, state), StateDir: state, Log: filepath.Join(state, "stack.log"), Out: &out}, &out
}

func TestDetachLeavesTheStackRunningAndPrintsItsCommands(t *testing.T) {
	opts, out := detachOptions(t, "detached")
	t.Cleanup(func() { _ = Stop(context.Background(), opts.StateDir, 15*time.Second, io.Discard) })
	if err := Detach(context.Background(), opts); err != nil {
		t.Fatalf("Detach: %v", err)
	}
	e, err := ReadEndpoints(opts.StateDir)
	if err != nil {
		t.Fatal(err)
	}
	if !alive(e.PID) || e.PID == os.Getpid() {
		t.Fatalf("%s names pid %d: want the live stack Detach started", StateFile, e.PID)
	}
	cmds, err := os.ReadFile(filepath.Join(opts.StateDir, CommandsFile))
	if err != nil {
		t.Fatal(err)
	}
	// What make local-up printed when it was a shell loop.
	if want := string(cmds) + "Logs (the function's JSON among them): " + opts.Log + "\n"; out.String() != want {
		t.Errorf("Detach printed\n%s\nwant\n%s", out.String(), want)
	}
	if status, _ := send(t, http.MethodGet, e.GraphStateURL, "", nil); status != http.StatusOK {
		t.Errorf("GET %s = %d after Detach returned, want 200", e.GraphStateURL, status)
	}
	log, err := os.ReadFile(opts.Log)
	if err != nil || !strings.Contains(string(log), fmt.Sprintf("flowkey local stack is up (pid %d)", e.PID)) {
		t.Errorf("the log has no commands of pid %d (%v):\n%s", e.PID, err, log)
	}

	again, _ := detachOptions(t, "detached")
	again.StateDir = opts.StateDir
	var running *AlreadyRunningError
	if err := Detach(context.Background(), again); !errors.As(err, &running) || running.PID != e.PID {
		t.Errorf("a second Detach = %v, want an *AlreadyRunningError naming pid %d", err, e.PID)
	}
	if again.Command.Process != nil {
		t.Errorf("the second Detach started pid %d although it refused", again.Command.Process.Pid)
	}

	if err := Stop(context.Background(), opts.StateDir, 15*time.Second, io.Discard); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if kids := leftovers(t); len(kids) > 0 {
		t.Errorf("processes left after Stop: %v", kids)
	}
}

func TestDetachReportsAStackThatExitsBeforeItIsReady(t *testing.T) {
	opts, out := detachOptions(t, "exit-early")
	err := Detach(context.Background(), opts)
	if err == nil || !strings.Contains(err.Error(), "exited before it was ready (exit status 3)") {
		t.Fatalf("Detach = %v, want the early exit and its status", err)
	}
	var last20 strings.Builder // the last 20 lines of the log, and no more
	for i := 11; i <= 30; i++ {
		fmt.Fprintf(&last20, "\nlog line %d", i)
	}
	if !strings.HasSuffix(err.Error(), ":"+last20.String()) {
		t.Errorf("Detach = %v, want it to end with log lines 11 to 30", err)
	}
	if out.Len() > 0 {
		t.Errorf("Detach printed %q for a stack that never came up", out)
	}
	if kids := leftovers(t); len(kids) > 0 {
		t.Errorf("processes left: %v", kids)
	}
}

func TestDetachStopsAStackThatIsNotReadyInTime(t *testing.T) {
	opts, _ := detachOptions(t, "never-ready")
	opts.Timeout = 200 * time.Millisecond
	err := Detach(context.Background(), opts)
	want := fmt.Sprintf("no %s after 200ms; see %s", filepath.Join(opts.StateDir, StateFile), opts.Log)
	if err == nil || err.Error() != want {
		t.Fatalf("Detach = %v, want %q", err, want)
	}
	if opts.Command.ProcessState == nil {
		t.Error("Detach returned before the stack it stopped had exited")
	}
}

func TestDetachStopsTheStackWhenInterrupted(t *testing.T) {
	opts, _ := detachOptions(t, "never-ready")
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(errors.New("Ctrl-C"))
	err := Detach(ctx, opts)
	if err == nil || !strings.Contains(err.Error(), "interrupted") || !strings.Contains(err.Error(), "Ctrl-C") {
		t.Fatalf("Detach = %v, want an interruption naming its cause", err)
	}
	if opts.Command.ProcessState == nil {
		t.Error("Detach returned before the stack it stopped had exited")
	}
}

func TestNotifyDetached(t *testing.T) {
	t.Run("not started by Detach", func(t *testing.T) {
		ready, err := NotifyDetached()
		if ready != nil || err != nil {
			t.Errorf("NotifyDetached = %v, %v; want nil, nil", ready != nil, err)
		}
	})
	t.Run("not a descriptor", func(t *testing.T) {
		t.Setenv(readyFDEnv, "stdout")
		if _, err := NotifyDetached(); err == nil || !strings.Contains(err.Error(), readyFDEnv) {
			t.Errorf("NotifyDetached = %v, want an error naming %s", err, readyFDEnv)
		}
	})
}
