package demo

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/flowkey/flowkey/internal/local/stack"
)

// readyFDEnv names, in a process Detach started, the file descriptor on
// which it says that StateFile is written.
const readyFDEnv = "FLOWKEY_LOCAL_READY_FD"

// readyLine is what a detached stack writes on that descriptor.
const readyLine = "ready"

// logTail is how many lines of the log a failed start shows.
const logTail = 20

// DetachTimeout bounds Detach's wait. The stack builds its tools before it
// writes StateFile: the first run on a fresh clone compiles for a while.
const DetachTimeout = 300 * time.Second

// DetachOptions configure Detach.
type DetachOptions struct {
	// Command runs the stack in the foreground and, through NotifyDetached,
	// says when it is ready (required). Detach sets its output, its
	// session and one extra file; leave Stdout, Stderr, ExtraFiles and
	// SysProcAttr unset.
	Command *exec.Cmd
	// StateDir is where the stack writes StateFile and CommandsFile
	// (required).
	StateDir string
	// Log receives the stack's output (required); it is created or
	// truncated.
	Log string
	// Out receives CommandsFile and the log's path (required).
	Out io.Writer
	// Timeout bounds the wait for StateFile (DetachTimeout).
	Timeout time.Duration
}

// Detach is `make local-up`: it starts opts.Command in a session of its own
// with its output to opts.Log, waits until the stack it runs has written
// StateFile naming it, prints CommandsFile and where the logs are, and
// returns with the stack still running. When the stack exits first, the
// error carries the last lines of its log; when ctx ends or the timeout
// passes first, Detach stops it (SIGTERM) and waits for it to exit.
func Detach(ctx context.Context, opts DetachOptions) error {
	if opts.Command == nil || opts.StateDir == "" || opts.Log == "" || opts.Out == nil {
		return errors.New("demo: DetachOptions.Command, StateDir, Log and Out are required")
	}
	if opts.Timeout == 0 {
		opts.Timeout = DetachTimeout
	}
	if err := CheckNotRunning(opts.StateDir); err != nil {
		return err
	}
	if err := os.MkdirAll(opts.StateDir, 0o755); err != nil {
		return fmt.Errorf("create the state directory: %w", err)
	}
	log, err := os.Create(opts.Log)
	if err != nil {
		return fmt.Errorf("create the log: %w", err)
	}
	defer log.Close()
	readyR, readyW, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("create the ready pipe: %w", err)
	}
	defer readyR.Close()

	cmd := opts.Command
	cmd.Stdout, cmd.Stderr = log, log
	cmd.ExtraFiles = []*os.File{readyW}
	cmd.Env = append(cmd.Environ(), readyFDEnv+"=3") // ExtraFiles[0] is fd 3 in the child
	// Its own session: no terminal signal, no hangup, reaches the stack
	// once this command has returned.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	readyW.Close() // the child holds the only write end now
	if err != nil {
		return fmt.Errorf("start the local stack: %w", err)
	}

	// The pipe reaches EOF once the stack has said it is ready or has
	// exited, whichever comes first: no polling.
	said := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(readyR).ReadString('\n')
		said <- strings.TrimSpace(line)
	}()
	timer := time.NewTimer(opts.Timeout)
	defer timer.Stop()
	select {
	case line := <-said:
		if line == readyLine {
			return announce(cmd, opts)
		}
		waitErr := cmd.Wait()
		return fmt.Errorf("the local stack exited before it was ready (%v):\n%s", waitErr, tail(opts.Log, logTail))
	case <-timer.C:
		stopChild(cmd)
		return fmt.Errorf("no %s after %s; see %s", filepath.Join(opts.StateDir, StateFile), opts.Timeout, opts.Log)
	case <-ctx.Done():
		stopChild(cmd)
		return fmt.Errorf("interrupted while the local stack started; it is stopped: %w", context.Cause(ctx))
	}
}

// announce checks that StateFile names the stack Detach started, prints what
// make local-up prints, and lets the stack go.
func announce(cmd *exec.Cmd, opts DetachOptions) error {
	e, err := ReadEndpoints(opts.StateDir)
	if err == nil && e.PID != cmd.Process.Pid {
		err = fmt.Errorf("%s names pid %d, not the stack just started (pid %d)", filepath.Join(opts.StateDir, StateFile), e.PID, cmd.Process.Pid)
	}
	if err != nil {
		stopChild(cmd)
		return err
	}
	text, err := os.ReadFile(filepath.Join(opts.StateDir, CommandsFile))
	if err != nil {
		stopChild(cmd)
		return err
	}
	fmt.Fprintf(opts.Out, "%sLogs (the function's JSON among them): %s\n", text, opts.Log)
	return cmd.Process.Release()
}

// stopChild ends a stack that is not ready yet, as `make local-down` would,
// and reaps it.
func stopChild(cmd *exec.Cmd) {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	_ = cmd.Wait()
}

// tail is the last n lines of the file at path, or why it cannot be read.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// NotifyDetached returns, in a stack process that Detach started, the
// ServeOptions.Ready that tells Detach StateFile is written; elsewhere nil.
// Call it before the process starts any other: it keeps the ready pipe from
// leaking into them, so that the pipe closes when the stack exits.
func NotifyDetached() (func(*stack.Stack, Endpoints), error) {
	v, ok := os.LookupEnv(readyFDEnv)
	if !ok {
		return nil, nil
	}
	os.Unsetenv(readyFDEnv)
	fd, err := strconv.Atoi(v)
	if err != nil || fd < 3 {
		return nil, fmt.Errorf("%s=%q is not a file descriptor Detach passes", readyFDEnv, v)
	}
	syscall.CloseOnExec(fd)
	f := os.NewFile(uintptr(fd), "ready pipe")
	return func(*stack.Stack, Endpoints) {
		_, _ = io.WriteString(f, readyLine+"\n")
		f.Close()
	}, nil
}
