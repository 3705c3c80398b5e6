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

// ErrNoTool is wrapped when iptables-legacy-save is not installed.
var ErrNoTool = errors.New("iptables-legacy-save not found")

// saveTool is the program that prints a family's legacy tables.
func saveTool(family int) string {
	if family == 6 {
		return "ip6tables-legacy-save"
	}
	return "iptables-legacy-save"
}

// Read returns the legacy tables of family (4 or 6) in the network
// namespace at nsPath; nil, nil when it has none (or the kernel has no
// x_tables for that family).
func Read(nsPath string, family int) (*Ruleset, error) {
	names := "/proc/thread-self/net/ip_tables_names"
	if family == 6 {
		names = "/proc/thread-self/net/ip6_tables_names"
	}
	tool, lerr := exec.LookPath(saveTool(family))
	var out []byte
	err := netns.DoPath(nsPath, func() error {
		// The names file lists the tables in use: reading it is cheaper
		// than running the tool, and most namespaces have none.
		b, err := os.ReadFile(names)
		if err != nil || len(bytes.TrimSpace(b)) == 0 {
			return nil
		}
		if lerr != nil {
			return fmt.Errorf("%w (install iptables to name legacy rules): %v", ErrNoTool, lerr)
		}
		// The child starts on this thread, so in this namespace.
		var stderr bytes.Buffer
		cmd := exec.Command(tool, "-c")
		cmd.Stderr = &stderr
		out, err = cmd.Output()
		if err != nil {
			return fmt.Errorf("%s -c: %w: %s", tool, err, strings.TrimSpace(stderr.String()))
		}
		return nil
	})
	if err != nil || out == nil {
		return nil, err
	}
	return Parse(bytes.NewReader(out))
}
