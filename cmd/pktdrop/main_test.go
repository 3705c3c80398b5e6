package main

// End-to-end tests: they run the pktdrop binary, as a user would, against
// the field-case reproductions of internal/testnet and read its JSON Lines.
//
// Concurrency: pktdrop attaches netfilter links (on kernels where it
// cannot probe nf_hook_slow) at fixed priorities in every namespace it
// watches, and the kernel refuses a second BPF hook at the same priority
// with EBUSY. Tests that run in parallel therefore always pass --netns of
// their own scenario; tests that must watch several namespaces at once
// (trace) do not call t.Parallel, so Go runs them before the parallel ones.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pktdrop/pktdrop/internal/privtest"
	"github.com/pktdrop/pktdrop/internal/report"
)

// bin is the pktdrop binary under test.
var bin string

const (
	// reportTimeout bounds the wait for expected reports after the trigger.
	reportTimeout = 15 * time.Second
	// quietWait is how long a test that expects no report keeps watching
	// after the trigger has finished.
	quietWait = time.Second
	// stopTimeout bounds the wait for exit after a signal.
	stopTimeout = 20 * time.Second
)

// readyTimeout: loading and attaching every probe takes seconds on a
// busy machine, and much longer under software emulation with other
// guests sharing the cores (the VM kernels of vmtest.sh set PKTDROP_VM).
var readyTimeout = 30 * time.Second

func TestMain(m *testing.M) {
	if os.Getenv("PKTDROP_VM") != "" {
		readyTimeout = 150 * time.Second
	}
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	flag.Parse()
	// The tests mostly wait for packets and timeouts: run more of them at
	// once than GOMAXPROCS (often 2) unless -test.parallel says otherwise.
	// Under emulation (vmtest.sh sets PKTDROP_VM) BPF loading is CPU-bound
	// and slow, so fewer, lest pktdrop miss the ready timeout.
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.parallel" })
	if !set {
		n := "8"
		if os.Getenv("PKTDROP_VM") != "" {
			n = "4"
		}
		_ = flag.Set("test.parallel", n)
	}
	// vmtest.sh builds the binary on the host: in the guest the source
	// tree is read-only and there may be no Go toolchain.
	if b := os.Getenv("PKTDROP_BIN"); b != "" {
		bin = b
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "pktdrop-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "pktdrop e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	bin = filepath.Join(dir, "pktdrop")
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goTool); err != nil {
		goTool = "go"
	}
	// The test runs in cmd/pktdrop, so "." is this command.
	out, err := exec.Command(goTool, "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "pktdrop e2e: go build: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// lockedBuffer collects a child's output while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// proc is one running pktdrop.
type proc struct {
	t      *testing.T
	cmd    *exec.Cmd
	stdout lockedBuffer
	stderr lockedBuffer
	done   chan struct{}
	err    error // from Wait, valid after done
	json   bool  // -o json: stdout is JSON Lines
}

// result is what a finished pktdrop left.
type result struct {
	Reports []report.Report // parsed stdout lines (-o json)
	Stdout  string
	Stderr  string
	Code    int
}

// requireRoot gates every test that runs pktdrop: loading BPF needs root.
func requireRoot(t *testing.T) {
	t.Helper()
	privtest.Require(t, "pktdrop loads BPF programs")
}

// loading admits this many pktdrop processes at a time into the phase from
// exec to ready: loading and verifying the BPF programs is CPU-bound, and
// many at once on a small or busy machine would each miss readyTimeout.
// Everything else (namespaces, traffic, running tracers) stays parallel.
var loading = make(chan struct{}, max(2, runtime.GOMAXPROCS(0)))

// start runs pktdrop with args plus --ready-file and waits until it says
// every probe is attached. It fails the test if pktdrop exits first.
func start(t *testing.T, args ...string) *proc {
	t.Helper()
	return startEnv(t, nil, args...)
}

// startEnv is start with the environment env (nil: the test's own).
func startEnv(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	loading <- struct{}{}
	defer func() { <-loading }()
	ready := filepath.Join(t.TempDir(), "ready")
	p := &proc{t: t, done: make(chan struct{})}
	for i, a := range args {
		p.json = p.json || a == "-ojson" || a == "--output=json" || a == "-o=json" ||
			((a == "-o" || a == "--output") && i+1 < len(args) && args[i+1] == "json")
	}
	p.cmd = exec.Command(bin, append(args, "--ready-file", ready)...)
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start pktdrop: %v", err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	// Never leave a pktdrop running, also when the test fails early.
	t.Cleanup(func() { p.kill() })
	deadline := time.Now().Add(readyTimeout)
	for {
		if _, err := os.Stat(ready); err == nil {
			return p
		}
		select {
		case <-p.done:
			t.Fatalf("pktdrop %s exited before it was ready (%v); stderr:\n%s", strings.Join(args, " "), p.err, p.stderr.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("pktdrop %s not ready after %v; stderr:\n%s", strings.Join(args, " "), readyTimeout, p.stderr.String())
		}
	}
}

func (p *proc) kill() {
	select {
	case <-p.done:
	default:
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// reports parses the complete JSON lines written so far.
func (p *proc) reports() []report.Report {
	p.t.Helper()
	rs, err := parseReports(p.stdout.String())
	if err != nil {
		p.t.Errorf("pktdrop wrote invalid JSON Lines: %v", err)
	}
	return rs
}

func parseReports(out string) ([]report.Report, error) {
	var rs []report.Report
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		line := sc.Bytes()
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var r report.Report
		if err := json.Unmarshal(line, &r); err != nil {
			return rs, fmt.Errorf("%w: %q", err, line)
		}
		rs = append(rs, r)
	}
	return rs, nil
}

// waitReports waits until at least n reports are out or timeout passed.
// A partial last line is not counted until its newline arrives.
func (p *proc) waitReports(n int, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if strings.Count(p.stdout.String(), "\n") >= n {
			return
		}
		select {
		case <-p.done:
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// stop sends sig and waits for pktdrop to exit.
func (p *proc) stop(sig syscall.Signal) result {
	p.t.Helper()
	select {
	case <-p.done:
	default:
		_ = p.cmd.Process.Signal(sig)
		select {
		case <-p.done:
		case <-time.After(stopTimeout):
			p.kill()
			p.t.Errorf("pktdrop did not exit within %v of %v", stopTimeout, sig)
		}
	}
	res := result{Stdout: p.stdout.String(), Stderr: p.stderr.String(), Code: exitCode(p.err)}
	if p.json {
		res.Reports = p.reports()
	}
	return res
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ee.ExitCode()
	}
	return -1
}

// watch runs pktdrop (-o json) with args around trigger and returns what it
// printed: it waits for want reports (or reportTimeout), or, with want 0,
// quietWait after the trigger, then stops pktdrop with SIGINT. Whether
// pktdrop exits cleanly is checked by the tests about signals, so that a
// shutdown problem does not hide behind every other test.
func watch(t *testing.T, trigger func() error, want int, args ...string) result {
	t.Helper()
	return watchReady(t, trigger, want, nil, args...)
}

// watchReady is watch with a look at the running process (its BPF
// objects, say) once it is ready and before the trigger.
func watchReady(t *testing.T, trigger func() error, want int, ready func(*proc), args ...string) result {
	t.Helper()
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		args = append([]string{"watch"}, args...)
	}
	p := start(t, append(args, "-o", "json")...)
	if ready != nil {
		ready(p)
	}
	if err := trigger(); err != nil {
		t.Errorf("trigger: %v", err)
	}
	switch {
	case want > 0:
		p.waitReports(want, reportTimeout)
	case want < 0:
		// Up to -want reports, none required: the caller checks what
		// it got (how many packets of a connection end where a
		// tracepoint sees them varies from run to run).
		p.waitReports(-want, reportTimeout)
	default:
		time.Sleep(quietWait)
	}
	res := p.stop(syscall.SIGINT)
	if len(res.Reports) < want {
		t.Errorf("pktdrop %s: got %d reports, want at least %d; stderr:\n%s", strings.Join(args, " "), len(res.Reports), want, res.Stderr)
	}
	return res
}

// run runs pktdrop to completion (for commands that exit by themselves).
func run(t *testing.T, args ...string) result {
	t.Helper()
	var stdout, stderr lockedBuffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start pktdrop: %v", err)
	}
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(readyTimeout + stopTimeout):
		_ = cmd.Process.Kill()
		err = <-done
		t.Errorf("pktdrop %s did not exit", strings.Join(args, " "))
	}
	return result{Stdout: stdout.String(), Stderr: stderr.String(), Code: exitCode(err)}
}

// brief renders reports for failure messages.
func brief(rs []report.Report) string {
	var b strings.Builder
	for _, r := range rs {
		j, _ := json.Marshal(r)
		b.Write(j)
		b.WriteByte('\n')
	}
	if b.Len() == 0 {
		return "(no reports)"
	}
	return b.String()
}
