package privtest

import (
	"strings"
	"testing"
)

type recorder struct {
	skipped, failed string
}

func (r *recorder) Helper()           {}
func (r *recorder) Skip(args ...any)  { r.skipped = args[0].(string) }
func (r *recorder) Fatal(args ...any) { r.failed = args[0].(string) }

func TestUnavailableSkipsOutsideCI(t *testing.T) {
	t.Setenv("CI", "")
	var r recorder
	Unavailable(&r, "needs root: x")
	if r.skipped != "needs root: x" || r.failed != "" {
		t.Fatalf("got skip %q fail %q", r.skipped, r.failed)
	}
}

func TestUnavailableFailsInCI(t *testing.T) {
	t.Setenv("CI", "true")
	var r recorder
	Unavailable(&r, "needs root: x")
	if r.skipped != "" || !strings.Contains(r.failed, "needs root: x") {
		t.Fatalf("got skip %q fail %q", r.skipped, r.failed)
	}
}

func TestRequireCmdMissing(t *testing.T) {
	t.Setenv("CI", "")
	var r recorder
	RequireCmd(&r, "pktdrop-no-such-tool")
	if !strings.Contains(r.skipped, "pktdrop-no-such-tool") {
		t.Fatalf("got skip %q", r.skipped)
	}
}

// TestRequireCmdPresent uses sh, not go: the test binaries also run in VM
// guests (vmtest.sh) whose PATH has no Go toolchain, while every system that
// can run these tests has a POSIX shell.
func TestRequireCmdPresent(t *testing.T) {
	var r recorder
	RequireCmd(&r, "sh")
	if r.skipped != "" || r.failed != "" {
		t.Fatalf("sh should be on PATH: skip %q fail %q", r.skipped, r.failed)
	}
}
