// Command flowkey-soak is `make soak`: it builds the rotator and the local
// stack's tools, runs rotations against random faults with recovery by
// flowkey's own commands (internal/local/soak), and prints the table. It
// exits 1 when the run does not meet the bar (a violation, an attempt left
// stuck, a final rotation that was not clean), 2 on bad settings.
//
// Settings come from the environment, as make passes them:
//
//	SOAK_SEED      the seed of every attempt's plan (9)
//	SOAK_ATTEMPTS  attempts to run (300)
//	SOAK_TIMEOUT   wall-clock budget, a Go duration (10m)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/flowkey/flowkey/internal/local/soak"
	"github.com/flowkey/flowkey/internal/local/stack"
)

func main() { os.Exit(run()) }

// settings are the run's options from the environment.
func settings() (soak.Options, error) {
	var o soak.Options
	var errs []error
	if v := os.Getenv("SOAK_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || n == 0 {
			errs = append(errs, fmt.Errorf("SOAK_SEED=%q: use a whole number from 1", v))
		}
		o.Seed = n
	}
	if v := os.Getenv("SOAK_ATTEMPTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100000 {
			errs = append(errs, fmt.Errorf("SOAK_ATTEMPTS=%q: use a count from 1 to 100000", v))
		}
		o.Attempts = n
	}
	if v := os.Getenv("SOAK_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 2*time.Minute {
			errs = append(errs, fmt.Errorf("SOAK_TIMEOUT=%q: use a Go duration of 2m or more, e.g. 10m", v))
		}
		o.Timeout = d
	}
	return o, errors.Join(errs...)
}

// run returns the exit code, so that every deferred clean-up runs first.
func run() int {
	verbose := flag.Bool("v", false, "print the function's JSON logs and the tools' output here instead of to a file")
	trace := flag.Bool("trace", false, "print under each attempt what it did: the rotation's end, each recovery command and its answer")
	flag.Parse()
	opts, err := settings()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	opts.Trace = *trace
	res, err := soakRun(ctx, opts, *verbose)
	switch {
	case err != nil && ctx.Err() != nil:
		fmt.Fprintln(os.Stderr, "soak interrupted; every process it started is stopped")
		return 130
	case err != nil:
		fmt.Fprintln(os.Stderr, "soak could not run:", err)
		return 1
	}
	fmt.Println()
	res.WriteTable(os.Stdout)
	if res.Failed() {
		fmt.Println("\nFAILED: the bar is zero violations, no attempt left stuck and a clean final rotation of every secret")
		return 1
	}
	fmt.Println("\nok")
	return 0
}

func soakRun(ctx context.Context, opts soak.Options, verbose bool) (*soak.Result, error) {
	root, err := stack.ModuleRoot()
	if err != nil {
		return nil, err
	}
	bins, err := stack.Build(ctx, root, filepath.Join(root, ".build", "soak-bin"))
	if err != nil {
		return nil, fmt.Errorf("build the bootstrap, local-kms and the Lambda RIE: %w", err)
	}
	var logs io.Writer = os.Stderr
	if !verbose {
		path := filepath.Join(root, ".build", "soak.log")
		f, err := os.Create(path)
		if err != nil {
			return nil, fmt.Errorf("open the log file: %w", err)
		}
		defer f.Close()
		logs = f
		rel, _ := filepath.Rel(root, path)
		fmt.Printf("the function's JSON logs and the tools' output go to %s (-v prints them here)\n", rel)
	}
	dir, err := os.MkdirTemp("", "flowkey-soak-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	opts.Binaries, opts.Dir, opts.Progress, opts.Logs = bins, dir, os.Stdout, logs
	return soak.Run(ctx, opts)
}
