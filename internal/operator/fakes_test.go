package operator

// The test doubles that only these tests need; Secrets Manager and Meta's
// key store are internal/fake/secretsfake and internal/fake/graphfake.

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/flowkey/flowkey/internal/keypair"
)

// noKeys is a key generator no command may use.
type noKeys struct{}

func (noKeys) Generate(context.Context, string) (*keypair.Generated, error) {
	return nil, fmt.Errorf("test fake: operator commands never generate keys")
}

// recMetrics records what the operator reports.
type recMetrics struct {
	mu       sync.Mutex
	commands []string
	drift    [][2]int
	ages     []time.Duration
}

func (m *recMetrics) Command(command string, _ time.Duration, ok bool, uploaded, verified, failed int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.commands = append(m.commands, fmt.Sprintf("%s ok=%v uploaded=%d verified=%d failed=%d", command, ok, uploaded, verified, failed))
}

func (m *recMetrics) Drift(numbers, drifted int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.drift = append(m.drift, [2]int{numbers, drifted})
}

func (m *recMetrics) RotationAge(age time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.ages = append(m.ages, age)
}
