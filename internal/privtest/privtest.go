// Package privtest gates tests that need root or host tools.
//
// Outside CI a missing privilege is a normal skip, so `go test ./...` works
// for anyone. In CI (CI=true) the same condition fails the test: a
// privileged test that silently skips there gives false confidence.
package privtest

import (
	"fmt"
	"os"
	"os/exec"
)

// TB is the subset of testing.TB used here; taking an interface lets the
// gating logic itself be tested without failing the calling test.
type TB interface {
	Helper()
	Skip(args ...any)
	Fatal(args ...any)
}

// Require skips (or fails under CI=true) unless the test runs as root.
// reason says what needs root, so a skip line is self-explanatory.
func Require(t TB, reason string) {
	t.Helper()
	if os.Geteuid() != 0 {
		Unavailable(t, fmt.Sprintf("needs root: %s", reason))
	}
}

// RequireCmd skips (or fails under CI=true) unless name is on PATH.
func RequireCmd(t TB, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		Unavailable(t, fmt.Sprintf("needs %s on PATH: %v", name, err))
	}
}

// Unavailable reports that a prerequisite is missing: skip locally, fail in CI.
func Unavailable(t TB, msg string) {
	t.Helper()
	if InCI() {
		t.Fatal("privileged test cannot run in CI: " + msg)
		return
	}
	t.Skip(msg)
}

// InCI reports whether the environment declares itself a CI run.
func InCI() bool {
	return os.Getenv("CI") == "true"
}
