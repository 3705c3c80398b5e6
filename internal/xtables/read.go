package xtables

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/pktdrop/pktdrop/internal/netns"
)

// ErrNoTool is matched (errors.Is) when iptables-legacy-save is not
// installed: legacy rules have no netlink form to render them from.
var ErrNoTool = errors.New("iptables-legacy-save not found")

type noToolError struct{ tool string }

func (e noToolError) Error() string     { return "rule text needs " + e.tool + " (not found)" }
func (e noToolError) Is(err error) bool { return err == ErrNoTool }

// saveTool is the program that prints a family's legacy tables.
func saveTool(family int) string {
	if family == 6 {
		return "ip6tables-legacy-save"
	}
	return "iptables-legacy-save"
}

// InUse tells whether the network namespace of the calling thread has
// legacy tables of family (4 or 6). The kernel lists the tables in use:
// reading that is far cheaper than running a tool, and most namespaces
// have none.
func InUse(family int) bool {
	names := "/proc/thread-self/net/ip_tables_names"
	if family == 6 {
		names = "/proc/thread-self/net/ip6_tables_names"
	}
	b, err := os.ReadFile(names)
	return err == nil && len(bytes.TrimSpace(b)) > 0
}

// Read returns the legacy tables of family (4 or 6) in the network
// namespace at nsPath; nil, nil when it has none (or the kernel has no
// x_tables for that family).
func Read(nsPath string, family int) (*Ruleset, error) {
	var rs *Ruleset
	err := netns.DoPath(nsPath, func() error {
		var err error
		rs, err = ReadHere(family)
		return err
	})
	return rs, err
}

// ReadHere is Read for the network namespace of the calling thread (which
// must be locked to its OS thread).
func ReadHere(family int) (*Ruleset, error) {
	if !InUse(family) {
		return nil, nil
	}
	tool, err := exec.LookPath(saveTool(family))
	if err != nil {
		return nil, noToolError{saveTool(family)}
	}
	// The child starts on this thread, so in this namespace.
	var stderr bytes.Buffer
	cmd := exec.Command(tool, "-c")
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s -c: %w: %s", tool, err, strings.TrimSpace(stderr.String()))
	}
	return Parse(bytes.NewReader(out))
}
