package secretsemu

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/flowkey/flowkey/internal/fake/logbuf"
)

type rieProcess struct {
	url    string
	exited chan struct{}
	logs   *logbuf.Buffer
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startRIE runs the pinned RIE with the test bootstrap. Both of its ports
// are free ones: the Runtime API's default, 9001, may be taken by another
// stack on this machine.
func startRIE(t *testing.T, env ...string) *rieProcess {
	t.Helper()
	addr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	cmd := exec.Command(testBinaries.rie,
		"--runtime-interface-emulator-address", addr,
		"--runtime-api-address", "127.0.0.1:"+strconv.Itoa(freePort(t)),
		testBinaries.bootstrap)
	logs := &logbuf.Buffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // so the bootstrap goes too
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting the RIE: %v", err)
	}
	p := &rieProcess{url: "http://" + addr, exited: make(chan struct{}), logs: logs}
	go func() {
		cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-p.exited
	})
	// The RIE prints nothing when it listens: poll its port, with a deadline.
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("the RIE did not listen on %s: %v\n%s", addr, err, logs)
		}
		select {
		case <-p.exited:
			t.Fatalf("the RIE exited at start:\n%s", logs)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (p *rieProcess) alive(t *testing.T) {
	t.Helper()
	select {
	case <-p.exited:
		t.Fatalf("the RIE died:\n%s", p.logs)
	default:
	}
}

// holder lets the test keep a "hold" invocation running until it says so.
type holder struct {
	l    net.Listener
	conn chan net.Conn
}

func newHolder(t *testing.T) *holder {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &holder{l: l, conn: make(chan net.Conn, 1)}
	go func() {
		if c, err := l.Accept(); err == nil {
			h.conn <- c
		}
	}()
	t.Cleanup(func() { l.Close() })
	return h
}

func (h *holder) payload() []byte {
	return fmt.Appendf(nil, `{"mode":"hold","hold":%q,"echo":"held"}`, h.l.Addr().String())
}

func TestRIEInvokerAgainstTheRealRIE(t *testing.T) {
	p := startRIE(t, "FAIL_STEP=setSecret")
	inv := &RIEInvoker{BaseURL: p.url}
	ctx := ctxT(t)

	t.Run("result", func(t *testing.T) {
		got, err := inv.Invoke(ctx, lambdaARN, []byte(`{"mode":"ok","echo":"hi"}`))
		if err != nil || string(got) != `{"echo":"hi"}` {
			t.Fatalf("Invoke = %q, %v", got, err)
		}
	})
	t.Run("handler error: HTTP 200 with errorType and errorMessage", func(t *testing.T) {
		_, err := inv.Invoke(ctx, lambdaARN, []byte(`{"mode":"error"}`))
		var fe *FunctionError
		if !errors.As(err, &fe) || fe.Type != "errorString" || fe.Message != "boom: step refused" || fe.StatusCode != 200 {
			t.Fatalf("Invoke error = %#v", err)
		}
	})
	t.Run("crashed bootstrap: HTTP 502, Runtime.ExitError, then a fresh bootstrap", func(t *testing.T) {
		_, err := inv.Invoke(ctx, lambdaARN, []byte(`{"mode":"crash"}`))
		var fe *FunctionError
		if !errors.As(err, &fe) || fe.Type != "Runtime.ExitError" || !strings.Contains(fe.Message, "exit status 3") || fe.StatusCode != 502 {
			t.Fatalf("Invoke error = %#v", err)
		}
		if got, err := inv.Invoke(ctx, lambdaARN, []byte(`{"echo":"again"}`)); err != nil || string(got) != `{"echo":"again"}` {
			t.Fatalf("after the crash: %q, %v", got, err)
		}
	})
	t.Run("invocations queue instead of crashing the RIE", func(t *testing.T) { testInvocationsQueue(ctx, t, inv, p) })
	t.Run("a function error passes through the proxy unchanged", func(t *testing.T) {
		proxy := httptest.NewServer(inv)
		defer proxy.Close()
		resp, err := http.Post(proxy.URL+riePath, "application/json", strings.NewReader(`{"mode":"error"}`))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || string(b) != `{"errorMessage":"boom: step refused","errorType":"errorString"}` {
			t.Errorf("proxy answered %d %s", resp.StatusCode, b)
		}
	})
	t.Run("a failed step through the driver, reattempted, then given up", func(t *testing.T) {
		e := newEmu(t, Options{Invoker: inv, RotationAttempts: 2, RetryDelay: time.Millisecond})
		arn, _ := e.create(t, "rie", "v")
		if _, err := e.client.RotateSecret(ctx, &secretsmanager.RotateSecretInput{SecretId: aws.String(arn), RotationLambdaARN: aws.String(lambdaARN)}); err != nil {
			t.Fatal(err)
		}
		final := e.waitEvent(t, arn, RotationFailed, 2)
		if !final.Final || final.Step != "setSecret" || final.Error != "function error errorString: boom: step refused" {
			t.Errorf("final RotationFailed = %+v", final)
		}
		want := []string{"RotationStarted", "StepStarted/createSecret", "StepSucceeded/createSecret", "StepStarted/setSecret", "StepFailed/setSecret", "RotationFailed/setSecret"}
		if got := kinds(e.srv.Events(arn)); !slices.Equal(got, append(want, want...)) {
			t.Errorf("timeline:\n%s", timeline(e.srv.Events(arn)))
		}
	})
	p.alive(t)
}

// testInvocationsQueue holds one invocation in the function and checks that
// others, direct or through the proxy, wait for it instead of reaching the
// RIE, which a second concurrent invocation would kill.
func testInvocationsQueue(ctx context.Context, t *testing.T, inv *RIEInvoker, p *rieProcess) {
	h := newHolder(t)
	proxy := httptest.NewServer(inv)
	defer proxy.Close()
	first := make(chan error, 1)
	go func() {
		got, err := inv.Invoke(ctx, lambdaARN, h.payload())
		if err == nil && string(got) != `{"echo":"held"}` {
			err = fmt.Errorf("result %q", got)
		}
		first <- err
	}()
	var c net.Conn
	select {
	case c = <-h.conn: // the function is running now
	case err := <-first:
		t.Fatalf("the hold invocation ended early: %v\n%s", err, p.logs)
	}
	// Sent now, a second invocation would kill the pinned RIE. It must
	// wait its turn, so with a short deadline it gives up unsent.
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	_, err := inv.Invoke(short, lambdaARN, []byte(`{"echo":"impatient"}`))
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "to finish another invocation") {
		t.Errorf("an invocation during another: %v", err)
	}
	var wg sync.WaitGroup
	var direct, proxied []byte
	var directErr, proxiedErr error
	wg.Go(func() { direct, directErr = inv.Invoke(ctx, lambdaARN, []byte(`{"echo":"direct"}`)) })
	wg.Go(func() {
		resp, err := http.Post(proxy.URL+riePath, "application/json", strings.NewReader(`{"echo":"proxied"}`))
		if err != nil {
			proxiedErr = err
			return
		}
		defer resp.Body.Close()
		proxied, proxiedErr = io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			proxiedErr = fmt.Errorf("HTTP %d: %s", resp.StatusCode, proxied)
		}
	})
	c.Write([]byte{1})
	c.Close()
	if err := <-first; err != nil {
		t.Errorf("the hold invocation: %v", err)
	}
	wg.Wait()
	if directErr != nil || string(direct) != `{"echo":"direct"}` || proxiedErr != nil || string(proxied) != `{"echo":"proxied"}` {
		t.Errorf("queued invocations: %q %v / %q %v", direct, directErr, proxied, proxiedErr)
	}
	p.alive(t)
}

func TestRIEInvokerTimeout(t *testing.T) {
	p := startRIE(t, "AWS_LAMBDA_FUNCTION_TIMEOUT=1")
	h := newHolder(t)
	_, err := (&RIEInvoker{BaseURL: p.url}).Invoke(ctxT(t), lambdaARN, h.payload())
	var fe *FunctionError
	if !errors.As(err, &fe) || fe.Type != "Sandbox.Timedout" || fe.Message != "Task timed out after 1.00 seconds" {
		t.Fatalf("Invoke error = %#v", err)
	}
}

// TestRIEInvokerHTTPHandling is long for its table: one case per way the
// RIE answers an invocation.
func TestRIEInvokerHTTPHandling(t *testing.T) {
	type answer struct {
		status int
		body   string
	}
	tests := []struct {
		name      string
		answers   []answer // the last one repeats
		wantBody  string
		wantCalls int32
		wantErr   string
		wantFn    *FunctionError
	}{
		{name: "busy twice, then the result", answers: []answer{{400, ""}, {400, ""}, {200, `{"ok":true}`}}, wantBody: `{"ok":true}`, wantCalls: 3},
		{name: "a null result", answers: []answer{{200, "null"}}, wantBody: "null", wantCalls: 1},
		{name: "function error with a stack trace", answers: []answer{{200, `{"errorMessage":"m","errorType":"t","stackTrace":[]}`}}, wantFn: &FunctionError{Type: "t", Message: "m", StatusCode: 200}, wantCalls: 1},
		{name: "502 without a JSON body", answers: []answer{{502, "bad gateway"}}, wantFn: &FunctionError{Type: "Runtime.Unknown", Message: "bad gateway", StatusCode: 502}, wantCalls: 1},
		{name: "500 is not retried", answers: []answer{{500, ""}}, wantErr: "answered HTTP 500: (empty body)", wantCalls: 1},
		{name: "504 is not retried", answers: []answer{{504, ""}}, wantErr: "answered HTTP 504", wantCalls: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n := int(calls.Add(1)) - 1
				body, _ := io.ReadAll(r.Body)
				if r.Method != http.MethodPost || r.URL.Path != riePath || string(body) != `{"Step":"createSecret"}` {
					t.Errorf("request %s %s %q", r.Method, r.URL.Path, body)
				}
				a := tc.answers[min(n, len(tc.answers)-1)]
				w.WriteHeader(a.status)
				io.WriteString(w, a.body)
			}))
			defer srv.Close()
			got, err := (&RIEInvoker{BaseURL: srv.URL + "/"}).Invoke(ctxT(t), lambdaARN, []byte(`{"Step":"createSecret"}`))
			switch {
			case tc.wantFn != nil:
				var fe *FunctionError
				if !errors.As(err, &fe) || *fe != *tc.wantFn {
					t.Errorf("error %#v, want %#v", err, tc.wantFn)
				}
			case tc.wantErr != "":
				var fe *FunctionError
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || errors.As(err, &fe) {
					t.Errorf("error %v, want a non-function error containing %q", err, tc.wantErr)
				}
			default:
				if err != nil || string(got) != tc.wantBody {
					t.Errorf("Invoke = %q, %v", got, err)
				}
			}
			if calls.Load() != tc.wantCalls {
				t.Errorf("%d requests, want %d", calls.Load(), tc.wantCalls)
			}
		})
	}

	t.Run("busy until the context ends", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(400) }))
		defer srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
		defer cancel()
		_, err := (&RIEInvoker{BaseURL: srv.URL}).Invoke(ctx, lambdaARN, []byte(`{}`))
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "stayed busy") {
			t.Errorf("error %v", err)
		}
	})
	t.Run("connection refused is a failed invocation, not retried", func(t *testing.T) {
		_, err := (&RIEInvoker{BaseURL: "http://127.0.0.1:" + strconv.Itoa(freePort(t))}).Invoke(ctxT(t), lambdaARN, []byte(`{}`))
		var fe *FunctionError
		if err == nil || errors.As(err, &fe) || !strings.Contains(err.Error(), "connection refused") {
			t.Errorf("error %v", err)
		}
	})
	t.Run("no BaseURL", func(t *testing.T) {
		_, err := (&RIEInvoker{}).Invoke(ctxT(t), lambdaARN, []byte(`{}`))
		if err == nil || !strings.Contains(err.Error(), "BaseURL is empty") {
			t.Errorf("error %v", err)
		}
	})
}
