package stack

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Binaries are the programs the stack runs as child processes.
type Binaries struct {
	Bootstrap string // functions/rotator built for this machine
	Endpoint  string // functions/endpoint built for this machine
	Backend   string // the sample Flow backend as a Lambda function (internal/local/cmd/flowkey-backend)
	LocalKMS  string // github.com/nsmithuk/local-kms
	RIE       string // the AWS Lambda Runtime Interface Emulator
}

// Build compiles both functions, the sample backend as a Lambda function
// and the two pinned Go tools into dir. The Go
// build cache makes a rebuild of unchanged sources take about a second.
func Build(ctx context.Context, moduleRoot, dir string) (Binaries, error) {
	b := Binaries{
		Bootstrap: filepath.Join(dir, "bootstrap"),
		Endpoint:  filepath.Join(dir, "endpoint"),
		Backend:   filepath.Join(dir, "flowkey-backend"),
		LocalKMS:  filepath.Join(dir, "local-kms"),
		RIE:       filepath.Join(dir, "aws-lambda-rie"),
	}
	builds := []struct {
		out, pkg string
		env      []string
		tags     []string
	}{
		{b.Bootstrap, "./functions/rotator", []string{"CGO_ENABLED=0"}, []string{"-tags", "lambda.norpc"}},
		{b.Endpoint, "./functions/endpoint", []string{"CGO_ENABLED=0"}, []string{"-tags", "lambda.norpc"}},
		{b.Backend, "./internal/local/cmd/flowkey-backend", []string{"CGO_ENABLED=0"}, []string{"-tags", "lambda.norpc"}},
		{b.LocalKMS, "github.com/nsmithuk/local-kms", nil, nil},
		{b.RIE, "github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie", []string{"CGO_ENABLED=0"}, nil},
	}
	for _, x := range builds {
		args := append([]string{"build", "-trimpath"}, x.tags...)
		args = append(args, "-o", x.out, x.pkg)
		cmd := exec.CommandContext(ctx, "go", args...)
		cmd.Dir = moduleRoot
		cmd.Env = append(os.Environ(), x.env...)
		if out, err := cmd.CombinedOutput(); err != nil {
			return Binaries{}, fmt.Errorf("go build %s: %w\n%s", x.pkg, err, out)
		}
	}
	return b, nil
}

// BuildTemp builds the binaries of the module the working directory is in
// into a new temporary directory, for test binaries that start stacks.
// remove deletes the directory.
func BuildTemp(ctx context.Context) (b Binaries, remove func(), err error) {
	root, err := ModuleRoot()
	if err != nil {
		return Binaries{}, nil, err
	}
	dir, err := os.MkdirTemp("", "flowkey-bin-")
	if err != nil {
		return Binaries{}, nil, err
	}
	remove = func() { os.RemoveAll(dir) }
	if b, err = Build(ctx, root, dir); err != nil {
		remove()
		return Binaries{}, nil, err
	}
	return b, remove, nil
}

// ModuleRoot finds the directory holding go.mod, from the working directory up.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory: run from inside the flowkey module")
		}
		dir = parent
	}
}

// freePort asks the kernel for a free loopback port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// process is a supervised child. Its output goes to a writer, line by line,
// prefixed with its name.
type process struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error

	copyMu  sync.Mutex
	copyErr error // a line that could not be copied; see copyLines
}

// outputErr reports what of the process's output could not be copied.
func (p *process) outputErr() error {
	p.copyMu.Lock()
	defer p.copyMu.Unlock()
	return p.copyErr
}

func startProcess(name string, out io.Writer, env []string, path string, args ...string) (*process, error) {
	cmd := exec.Command(path, args...)
	cmd.Env = env
	// A process group of its own, so stopping it also stops what it spawned
	// (the RIE's bootstrap).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, done: make(chan struct{})}
	var copied sync.WaitGroup
	copied.Add(1)
	go func() {
		defer copied.Done()
		copyLines(out, name, pr, maxLineBytes, func(err error) {
			p.copyMu.Lock()
			p.copyErr = errors.Join(p.copyErr, err)
			p.copyMu.Unlock()
		})
	}()
	go func() {
		p.err = cmd.Wait()
		pw.Close()
		copied.Wait()
		close(p.done)
	}()
	return p, nil
}

// maxLineBytes bounds one line of a child's output, which is held whole so
// that it reaches the writer in one Write: lines of the stack's processes
// share a writer and must not interleave. Lambda itself cuts a log event at
// 256 KiB; nothing the stack runs prints lines near this bound.
const maxLineBytes = 16 << 20

// copyLines copies r to out line by line, each line prefixed "[name] " and
// written in one Write, until r ends. Nothing is dropped silently: a line
// longer than max is replaced by a notice line saying so, the lines after
// it are copied as usual, and fail is told. So is every failed Write; the
// rest of r is still read, so that the child never blocks on a full pipe.
func copyLines(out io.Writer, name string, r io.Reader, max int, fail func(error)) {
	br := bufio.NewReaderSize(r, 64*1024)
	prefix := "[" + name + "] "
	line := []byte(prefix)
	size, overlong := 0, false
	writeErr := false
	emit := func(b []byte) {
		if writeErr {
			return
		}
		if _, err := out.Write(b); err != nil {
			writeErr = true
			fail(fmt.Errorf("copying the output of %s: %w; its later output was not copied", name, err))
		}
	}
	for {
		chunk, err := br.ReadSlice('\n')
		body := bytes.TrimSuffix(chunk, []byte("\n"))
		size += len(body)
		switch {
		case overlong:
		case size > max:
			overlong, line = true, line[:len(prefix)]
		default:
			line = append(line, body...)
		}
		// A line ends at its newline, or unterminated where r ends.
		ended := len(chunk) > len(body) || (err != nil && err != bufio.ErrBufferFull && size > 0)
		if ended {
			if overlong {
				msg := fmt.Sprintf("a line of more than %d bytes was not copied", max)
				emit(fmt.Appendf(nil, "%sflowkey stack: %s\n", prefix, msg))
				fail(fmt.Errorf("output of %s: %s", name, msg))
			} else {
				emit(append(line, '\n'))
			}
			line, size, overlong = line[:len(prefix)], 0, false
		}
		if err != nil && err != bufio.ErrBufferFull {
			if err != io.EOF {
				fail(fmt.Errorf("reading the output of %s: %w", name, err))
			}
			return
		}
	}
}

// stop ends the process group: SIGTERM, then SIGKILL after grace.
func (p *process) stop(grace time.Duration) {
	if p == nil {
		return
	}
	select {
	case <-p.done:
		return
	default:
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.done:
	case <-t.C:
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

// waitListening waits until addr accepts TCP connections or the process exits.
func waitListening(ctx context.Context, p *process, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var d net.Dialer
	for {
		c, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s exited before listening on %s: %v", p.name, addr, p.err)
		case <-ctx.Done():
			return fmt.Errorf("%s did not listen on %s: %w", p.name, addr, ctx.Err())
		case <-tick.C:
		}
	}
}

// children lists the PIDs whose parent is pid, from /proc.
func children(pid int) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// The command name may hold spaces; the fields after its ')' are fixed.
		s := string(stat)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) > 1 {
			if ppid, _ := strconv.Atoi(f[1]); ppid == pid {
				out = append(out, n)
			}
		}
	}
	return out
}

// EndpointMemory is the endpoint's bootstrap process's resident memory,
// from /proc/<pid>/status: the peak (VmHWM) and now (VmRSS), in bytes.
type EndpointMemory struct {
	Peak, Now int64
}

// EndpointMemory reads the memory of the endpoint's bootstrap, the child of
// its RIE that serves the invocations (the RIE starts it at the first).
func (s *Stack) EndpointMemory() (EndpointMemory, error) {
	kids := children(s.endpointProc.cmd.Process.Pid)
	if len(kids) != 1 {
		return EndpointMemory{}, fmt.Errorf("stack: the endpoint's RIE has %d child processes, want its one bootstrap (send it a request first)", len(kids))
	}
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(kids[0]), "status"))
	if err != nil {
		return EndpointMemory{}, err
	}
	var m EndpointMemory
	for line := range strings.Lines(string(b)) {
		name, rest, _ := strings.Cut(line, ":")
		var dst *int64
		switch name {
		case "VmHWM":
			dst = &m.Peak
		case "VmRSS":
			dst = &m.Now
		default:
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return EndpointMemory{}, fmt.Errorf("stack: /proc status line %q is not in kB", strings.TrimSpace(line))
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return EndpointMemory{}, err
		}
		*dst = kb << 10
	}
	if m.Peak == 0 {
		return EndpointMemory{}, errors.New("stack: the bootstrap's /proc status has no VmHWM")
	}
	return m, nil
}
