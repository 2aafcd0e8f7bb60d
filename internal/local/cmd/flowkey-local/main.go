// Command flowkey-local is `make local-up` and `make local-down`: it runs
// flowkey's local stack until SIGTERM or Ctrl-C, for hands-on use with the
// AWS CLI and curl; -detach leaves it running in the background once it is
// ready, -down stops the one running, and -check tells whether one is
// (internal/local/demo).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/flowkey/flowkey/internal/local/demo"
	"github.com/flowkey/flowkey/internal/local/stack"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "flowkey-local:", err)
		os.Exit(1)
	}
}

func run() error {
	// First: before this process starts any other (the build does).
	ready, err := demo.NotifyDetached()
	if err != nil {
		return err
	}
	detach := flag.Bool("detach", false, "start the stack in the background with its output to <state>/stack.log, wait until it is ready, print its endpoints and commands, and exit")
	down := flag.Bool("down", false, "stop the running stack named by <state>/stack.json and wait for it to exit")
	check := flag.Bool("check", false, "exit 0 if no stack is running, else say which one is and exit 1")
	state := flag.String("state", "", "directory for stack.json and stack.txt (default: .local in the module root)")
	phones := flag.Int("phones", 3, "phone numbers in the simulated WABA (1 to 100, the most one secret may cover)")
	flag.Parse()

	root, err := stack.ModuleRoot()
	if err != nil {
		return err
	}
	if *state == "" {
		*state = filepath.Join(root, ".local")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *down {
		return demo.Stop(ctx, *state, 15*time.Second, os.Stdout)
	}
	// Refuse before building or detaching, when a stack is already up;
	// Serve checks again.
	if err := demo.CheckNotRunning(*state); err != nil || *check {
		return err
	}
	if *detach {
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		return demo.Detach(ctx, demo.DetachOptions{
			Command:  exec.Command(exe, "-state", *state, "-phones", strconv.Itoa(*phones)),
			StateDir: *state, Log: filepath.Join(*state, "stack.log"), Out: os.Stdout,
		})
	}

	bins, err := stack.Build(ctx, root, filepath.Join(root, ".build", "local-bin"))
	if err != nil {
		return fmt.Errorf("build the bootstraps, local-kms and the Lambda RIE: %w", err)
	}
	dir, err := os.MkdirTemp("", "flowkey-local-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	err = demo.Serve(ctx, demo.ServeOptions{
		Binaries: bins, Dir: dir, StateDir: *state, PhoneNumbers: *phones, Out: os.Stdout, Logs: os.Stdout,
		Ready: ready,
	})
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return nil
	}
	return err
}
