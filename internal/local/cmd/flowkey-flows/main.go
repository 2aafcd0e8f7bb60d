// Command flowkey-flows sends one Flows request to the endpoint of the
// stack `make local-up` started, as Meta does: encrypted for the key the
// Graph simulator serves now, signed with the app secret. It prints the
// curl it ran and the decrypted answer (internal/local/demo.Ping).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"time"

	"github.com/flowkey/flowkey/internal/local/demo"
	"github.com/flowkey/flowkey/internal/local/stack"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "flowkey-flows:", err)
		os.Exit(1)
	}
}

func run() error {
	state := flag.String("state", "", "directory holding stack.json (default: .local in the module root)")
	action := flag.String("action", "ping", `"ping" (Meta's health check) or "INIT" (the sample Flow's first screen)`)
	phone := flag.String("phone", "", "phone number whose key encrypts (default: the stack's first)")
	flag.Parse()
	if *state == "" {
		root, err := stack.ModuleRoot()
		if err != nil {
			return err
		}
		*state = filepath.Join(root, ".local")
	}
	e, err := demo.ReadEndpoints(*state)
	if err != nil {
		return fmt.Errorf("no local stack: run make local-up first (%w)", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return demo.Ping(ctx, e, demo.PingOptions{Action: *action, Phone: *phone, Out: os.Stdout})
}
