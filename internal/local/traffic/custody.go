package traffic

import (
	"context"
	"encoding/json"
	"fmt"

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

// ThrottleBurst throttles the endpoint's next n kms:Decrypt calls in a
// row, as KMS does when the account's shared RSA quota is spent for a
// moment, and ends once they are. The endpoint retries a throttled Decrypt
// once, then answers 421; the client fetches the key and retries with a
// fresh encryption, and fails if that is throttled too: a burst this long
// reaches users, as 421s and never as 500s.
func ThrottleBurst(n int) Scenario {
	return throttle(fmt.Sprintf("KMS throttles %d kms:Decrypt in a row", n), n, 1)
}

// ThrottleSome throttles one in every of the endpoint's kms:Decrypt calls,
// n times, as KMS does to a busy account near its quota: the endpoint's
// one retry absorbs it.
func ThrottleSome(n, every int) Scenario {
	return throttle(fmt.Sprintf("KMS throttles 1 in %d kms:Decrypt, %d times", every, n), n, every)
}

func throttle(name string, n, every int) Scenario {
	return Scenario{Name: name, Run: func(ctx context.Context, e Env) error {
		p := e.Stack.KMSProxy
		throttled := kmsproxy.Call{Caller: stack.EndpointAccessKeyID, Op: "Decrypt", Result: kmsproxy.ThrottlingException}
		before := p.Calls().Count(throttled)
		id, err := p.AddFault(kmsproxy.Fault{Op: "Decrypt", Caller: stack.EndpointAccessKeyID, Error: kmsproxy.ThrottlingException, Times: n, Every: every})
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
