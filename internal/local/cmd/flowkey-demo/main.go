// Command flowkey-demo is `make demo`: it builds both functions and the local
// stack's tools, then rotates a WhatsApp Flows key twice with no AWS account
// and reports what happened, then runs simulated WhatsApp traffic through the
// Flows endpoint across four more rotation scenarios, then moves a secret into
// KMS custody and rotates it there with traffic (internal/local/demo).
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
	"syscall"
	"time"

	"github.com/flowkey/flowkey/internal/local/demo"
	"github.com/flowkey/flowkey/internal/local/stack"
)

func main() { os.Exit(run()) }

// run returns the exit code, so that every deferred clean-up runs first.
func run() int {
	verbose := flag.Bool("v", false, "print the function's JSON logs and the tools' output here instead of to a file")
	phones := flag.Int("phones", 3, "phone numbers in the simulated WABA (1 to 100, the most one secret may cover)")
	flag.Parse()
	began := time.Now()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		// A second Ctrl-C kills at once; the children die with us (Pdeathsig).
		stop()
	}()

	err := rotate(ctx, *verbose, *phones)
	switch {
	case err != nil && ctx.Err() != nil:
		fmt.Fprintf(os.Stderr, "\ndemo interrupted after %s; every process it started is stopped\n", time.Since(began).Round(time.Millisecond))
		return 130
	case err != nil:
		fmt.Fprintf(os.Stderr, "\ndemo FAILED after %s: %v\n", time.Since(began).Round(time.Millisecond), err)
		return 1
	}
	fmt.Printf("total wall time %s\n", time.Since(began).Round(time.Millisecond))
	return 0
}

func rotate(ctx context.Context, verbose bool, phones int) error {
	root, err := stack.ModuleRoot()
	if err != nil {
		return err
	}
	fmt.Println("flowkey demo: two rotations of the WhatsApp Flows key on a local stack, no AWS account, then Flows traffic across four rotation scenarios, then KMS custody")
	binDir := filepath.Join(root, ".build", "demo-bin")
	t := time.Now()
	bins, err := stack.Build(ctx, root, binDir)
	if err != nil {
		return fmt.Errorf("build the bootstraps, local-kms and the Lambda RIE: %w", err)
	}
	rel, _ := filepath.Rel(root, binDir)
	fmt.Printf("built the rotator and endpoint bootstraps (this machine's arch), local-kms and aws-lambda-rie into %s in %s\n", rel, time.Since(t).Round(time.Millisecond))

	var logs io.Writer = os.Stderr
	if !verbose {
		path := filepath.Join(root, ".build", "demo.log")
		f, err := os.Create(path)
		if err != nil {
			return fmt.Errorf("open the log file: %w", err)
		}
		defer f.Close()
		logs = f
		rel, _ := filepath.Rel(root, path)
		fmt.Printf("the function's JSON logs and the tools' output go to %s (-v prints them here)\n", rel)
	}

	dir, err := os.MkdirTemp("", "flowkey-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	err = demo.Run(ctx, demo.Options{Binaries: bins, Dir: dir, PhoneNumbers: phones, Out: os.Stdout, Logs: logs})
	if err != nil && ctx.Err() != nil {
		return errors.Join(err, ctx.Err())
	}
	return err
}
