package traffic

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/flowkey/flowkey/internal/local/kmsproxy"
	"github.com/flowkey/flowkey/internal/local/secretsemu"
	"github.com/flowkey/flowkey/internal/local/stack"
	"github.com/flowkey/flowkey/internal/operator"
	"github.com/flowkey/flowkey/internal/secretdoc"
)

// Scenarios of KMS custody (config.key_custody "kms"): the moves into it,
// and KMS's own trouble while users send Flows requests.

// Migration moves a secret from PEM custody to KMS custody as an operator
// would: set-config with key_custody "kms" (the same key, a new version),
// then a normal rotation, which creates the first KMS key. Clients that
// cached the PEM key (now AWSPREVIOUS) keep being served, locally, beside
// those of the new KMS key, decrypted with kms:Decrypt.
func Migration() Scenario {
	return Scenario{Name: "PEM custody to KMS custody, then a rotation", Run: func(ctx context.Context, e Env) error {
		if err := e.SetCustody(ctx, secretdoc.CustodyKMS); err != nil {
			return err
		}
		_, err := e.rotate(ctx, secretsemu.RotationSucceeded, "")
		return err
	}}
}

// ThrottleBurst throttles the endpoint's next n kms:Decrypt calls, as KMS
// does when the account's shared RSA quota is exceeded for a moment, and
// ends once they are spent. The endpoint retries a throttled Decrypt once,
// then answers 421; the client fetches the key and retries, by which time
// a short burst is over.
func ThrottleBurst(n int) Scenario {
	return Scenario{Name: fmt.Sprintf("KMS throttles %d of the endpoint's kms:Decrypt", n), Run: func(ctx context.Context, e Env) error {
		p := e.Stack.KMSProxy
		throttled := kmsproxy.Call{Caller: stack.EndpointAccessKeyID, Op: "Decrypt", Result: kmsproxy.ThrottlingException}
		before := p.Calls().Count(throttled)
		id, err := p.AddFault(kmsproxy.Fault{Op: "Decrypt", Caller: stack.EndpointAccessKeyID, Error: kmsproxy.ThrottlingException, Times: n})
		if err != nil {
			return err
		}
		defer p.RemoveFault(id)
		ctx, cancel := context.WithTimeout(ctx, logWait)
		defer cancel()
		if _, err := p.Wait(ctx, func(c kmsproxy.Calls) bool { return c.Count(throttled) >= before+n }); err != nil {
			return fmt.Errorf("waiting for the endpoint's %d throttled kms:Decrypt calls: %w", n, err)
		}
		return nil
	}}
}

// ThrottledRotation is a clean rotation while KMS throttles the first n of
// the rotator's KMS calls (every one of its operations): the rotator backs
// off and retries, and the rotation succeeds.
func ThrottledRotation(n int) Scenario {
	return Scenario{Name: fmt.Sprintf("rotation while KMS throttles %d of the rotator's calls", n), Run: func(ctx context.Context, e Env) error {
		p := e.Stack.KMSProxy
		id, err := p.AddFault(kmsproxy.Fault{Caller: stack.RotatorAccessKeyID, Error: kmsproxy.ThrottlingException, Times: n})
		if err != nil {
			return err
		}
		defer p.RemoveFault(id)
		if _, err := e.rotate(ctx, secretsemu.RotationSucceeded, ""); err != nil {
			return err
		}
		for _, f := range p.Faults() {
			if f.ID == id && f.Used != n {
				return fmt.Errorf("the rotation met %d of the %d throttles", f.Used, n)
			}
		}
		return nil
	}}
}

// CustodyAll are the scenarios of issue 11 for a secret already in KMS
// custody, with a throttling burst and a throttled rotation; the failing
// one last, as in All.
func CustodyAll(graphLag time.Duration) []Scenario {
	return []Scenario{CleanRotation(), ThrottleBurst(40), ThrottledRotation(4), QuickSuccession(), GraphLag(graphLag), FailedTestSecret()}
}

// SetCustody is set-config with the secret's configuration and custody
// as its key custody, sent to the rotator as an operator would.
func (e Env) SetCustody(ctx context.Context, custody string) error {
	out, err := e.Stack.SM.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(e.ARN)})
	if err != nil {
		return fmt.Errorf("read AWSCURRENT: %w", err)
	}
	doc, err := secretdoc.Parse([]byte(aws.ToString(out.SecretString)))
	if err != nil {
		return fmt.Errorf("AWSCURRENT: %w", err)
	}
	cfg := doc.Config
	cfg.KeyCustody = custody
	payload, err := json.Marshal(map[string]any{"command": "set-config", "secret_id": e.ARN, "config": cfg})
	if err != nil {
		return err
	}
	res, err := e.Stack.Invoker.Invoke(ctx, stack.FunctionARN, payload)
	if err != nil {
		return fmt.Errorf("set-config: %w", err)
	}
	var report operator.SetConfigReport
	if err := json.Unmarshal(res, &report); err != nil {
		return fmt.Errorf("set-config answered %q: %w", res, err)
	}
	if !report.OK || report.Outcome != "updated" || report.Config.Custody() != custody {
		return fmt.Errorf("set-config did not move the secret to custody %q: %s (%s)", custody, report.Outcome, report.Message)
	}
	return nil
}
