package stack_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/flowkey/flowkey/internal/local/stack"
)

// A Start that fails part way stops what it started and returns the error:
// it once closed a nil *Stack instead and panicked.
func TestStartFailsWithAnErrorNotAPanic(t *testing.T) {
	missingKMS := binaries
	missingKMS.LocalKMS = filepath.Join(t.TempDir(), "no-such-local-kms")
	tests := []struct {
		name string
		opts stack.Options
	}{
		{"the simulator refuses the phone numbers", stack.Options{Binaries: binaries, PhoneNumbers: 5000}},
		{"local-kms cannot start", stack.Options{Binaries: missingKMS}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.Dir = t.TempDir()
			lst, err := stack.Start(context.Background(), tt.opts)
			if err == nil || lst != nil {
				if lst != nil {
					lst.Close()
				}
				t.Fatalf("Start = %v, %v; want nil and an error", lst, err)
			}
			t.Logf("Start: %v", err)
		})
	}
}
