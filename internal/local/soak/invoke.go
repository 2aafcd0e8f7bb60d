package soak

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/flowkey/flowkey/internal/operator"
)

// invokePath is the RIE's invocation path, the one `make status LOCAL=1`
// and its siblings post to.
const invokePath = "/2015-03-31/functions/function/invocations"

// FunctionError is an operator command the function could not run: its
// errorMessage, as `aws lambda invoke` would show it.
type FunctionError struct {
	Command string
	Message string
}

func (e *FunctionError) Error() string {
	return fmt.Sprintf("%s: function error: %s", e.Command, e.Message)
}

// invoke sends one payload to the function through the stack's invoke URL
// and decodes the report into out. A function error is a *FunctionError.
func (e *engine) invoke(ctx context.Context, name string, payload any, out any) error {
	body, err := json.Marshal(payload)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, functionTimeout+invokeGrace)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.st.FunctionURL+invokePath, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("%s: invoke: %w", name, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 6<<20))
	if err != nil {
		return fmt.Errorf("%s: read the answer: %w", name, err)
	}
	if resp.StatusCode != http.StatusOK {
		return &FunctionError{Command: name, Message: fmt.Sprintf("HTTP %d: %.300s", resp.StatusCode, raw)}
	}
	var fnErr struct {
		ErrorMessage string `json:"errorMessage"`
	}
	if json.Unmarshal(raw, &fnErr) == nil && fnErr.ErrorMessage != "" {
		return &FunctionError{Command: name, Message: fnErr.ErrorMessage}
	}
	if out == nil || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("%s: decode the report: %w", name, err)
	}
	return nil
}

type command struct {
	Command  string `json:"command"`
	SecretID string `json:"secret_id"`
}

func (e *engine) status(ctx context.Context, sec *secret) (*operator.StatusReport, error) {
	var r operator.StatusReport
	if err := e.invoke(ctx, operator.CommandStatus, command{operator.CommandStatus, sec.arn}, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

func (e *engine) rotateCommand(ctx context.Context, sec *secret) (*operator.RotateReport, error) {
	var r operator.RotateReport
	if err := e.invoke(ctx, operator.CommandRotate, command{operator.CommandRotate, sec.arn}, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

func (e *engine) resync(ctx context.Context, sec *secret) (*operator.ResyncReport, error) {
	var r operator.ResyncReport
	if err := e.invoke(ctx, operator.CommandResync, command{operator.CommandResync, sec.arn}, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// step invokes one rotation step by hand, with a payload a report printed
// (`aws lambda invoke ... --payload '{"Step":...}'`). A step returns null.
func (e *engine) step(ctx context.Context, payload json.RawMessage) error {
	var ev struct {
		Step string
	}
	_ = json.Unmarshal(payload, &ev)
	return e.invoke(ctx, ev.Step, payload, nil)
}
