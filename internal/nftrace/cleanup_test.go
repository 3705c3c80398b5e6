package nftrace

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	helperEnv = "PKTDROP_NFTRACE_HELPER_NETNS"
	readyEnv  = "PKTDROP_NFTRACE_HELPER_READY"
)

// TestHelperProcess is not a test: TestOwnerTableCleanup re-executes the
// test binary to run it as a child that holds a Tracer until signalled.
func TestHelperProcess(t *testing.T) {
	ns := os.Getenv(helperEnv)
	if ns == "" {
		t.Skip("helper process for TestOwnerTableCleanup")
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	tr, err := Start(context.Background(), Options{Netns: []string{ns}, Match: Match{Proto: 1}})
	if err != nil {
		fmt.Fprintln(os.Stderr, "start:", err)
		os.Exit(2)
	}
	if err := os.WriteFile(os.Getenv(readyEnv), nil, 0o600); err != nil {
		os.Exit(3)
	}
	<-sig
	if err := tr.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "close:", err)
		os.Exit(4)
	}
	os.Exit(0)
}

// TestOwnerTableCleanup proves no pktdrop_ table outlives the process that
// installed it, whether it exits through Close (SIGINT, SIGTERM) or is
// killed (SIGKILL, where only the kernel's owner-flag cleanup can help).
func TestOwnerTableCleanup(t *testing.T) {
	// The helper child would only fail to start on a kernel without the
	// owner flag; check that refusal here, where it is an expectation.
	n := newTestNet(t)
	probe := n.ns("probe")
	tr := startTracer(t, context.Background(), Options{Netns: []string{nsPath(probe)}, Match: Match{Proto: 1}}, nil)
	if tr == nil {
		return
	}
	if err := tr.Close(); err != nil {
		t.Fatalf("close probe tracer: %v", err)
	}
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGKILL} {
		t.Run(sig.String(), func(t *testing.T) {
			n := newTestNet(t)
			ns := n.ns("holder")
			ready := filepath.Join(t.TempDir(), "ready")
			cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
			cmd.Env = append(os.Environ(), helperEnv+"="+nsPath(ns), readyEnv+"="+ready)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = cmd.Process.Kill() })
			waitFor(t, 10*time.Second, func() bool { _, err := os.Stat(ready); return err == nil },
				func() string { return "helper never became ready: " + stderr.String() })
			table := fmt.Sprintf("table inet %s%d", ownTablePrefix, cmd.Process.Pid)
			if out := n.run(ns, "nft", "list", "tables"); !strings.Contains(out, table) {
				t.Fatalf("helper's table missing while it runs: %q", out)
			}
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			err := cmd.Wait()
			if sig != syscall.SIGKILL && err != nil {
				t.Errorf("helper did not exit cleanly on %s: %v: %s", sig, err, stderr.String())
			}
			var out string
			waitFor(t, 2*time.Second, func() bool {
				out = n.run(ns, "nft", "list", "tables")
				return !strings.Contains(out, ownTablePrefix)
			}, func() string { return "pktdrop table left behind after " + sig.String() + ": " + out })
		})
	}
}

// TestCloseDeletesTable checks the in-process path and that Start refuses
// to run twice in one netns (the second table name would collide).
func TestCloseDeletesTable(t *testing.T) {
	n := newTestNet(t)
	ns := n.ns("close")
	tr := startTracer(t, context.Background(), Options{Netns: []string{nsPath(ns)}}, nil)
	if tr == nil {
		return
	}
	if out := n.run(ns, "nft", "list", "tables"); !strings.Contains(out, ownTablePrefix) {
		t.Fatalf("table missing: %q", out)
	}
	if _, err := Start(context.Background(), Options{Netns: []string{nsPath(ns)}}); err == nil {
		t.Error("second Start in the same netns succeeded")
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	if err := tr.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if out := n.run(ns, "nft", "list", "tables"); strings.Contains(out, ownTablePrefix) {
		t.Fatalf("table left after Close: %q", out)
	}
	if _, ok := <-tr.Decisions(); ok {
		t.Error("Decisions not closed after Close")
	}
}

func waitFor(t *testing.T, d time.Duration, cond func() bool, msg func() string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal(msg())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
