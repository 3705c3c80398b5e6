package testnet

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// runTimeout bounds every command so a wedged tool cannot hang a test run.
const runTimeout = 30 * time.Second

// NS is one network namespace created by a Net.
type NS struct {
	net   *Net
	name  string
	short string
}

// Name is the full namespace name, as "ip netns list" shows it.
func (ns *NS) Name() string { return ns.name }

// Short is the name given to Net.NS, without the prefix.
func (ns *NS) Short() string { return ns.short }

// Path is the bind mount that pins the namespace.
func (ns *NS) Path() string { return filepath.Join("/var/run/netns", ns.name) }

// Inode is the namespace's inode number, the netns id BPF programs see
// (net->ns.inum); it fits 32 bits because proc inodes are allocated so.
func (ns *NS) Inode() uint32 {
	ns.net.tb.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(ns.Path(), &st); err != nil {
		ns.net.tb.Fatalf("testnet: stat %s: %v", ns.Path(), err)
	}
	return uint32(st.Ino)
}

// Run runs a command inside the namespace and returns its combined output.
func (ns *NS) Run(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	full := append([]string{"netns", "exec", ns.name}, args...)
	out, err := exec.CommandContext(ctx, "ip", full...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("in %s: %s: %w: %s", ns.short, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// MustRun is Run that fails the test on error.
func (ns *NS) MustRun(args ...string) string {
	ns.net.tb.Helper()
	out, err := ns.Run(args...)
	if err != nil {
		ns.net.tb.Fatalf("testnet: %v", err)
	}
	return out
}

// Sysctl sets a sysctl in this namespace. key is dotted
// ("net.ipv4.ip_forward") or, when a device name contains a dot such as
// "flannel.1", slash-separated ("net/ipv4/conf/flannel.1/rp_filter").
// It writes /proc/sys directly rather than via sysctl(8), whose dot/slash
// swapping would mangle such device names.
func (ns *NS) Sysctl(key, value string) error {
	path := key
	if !strings.Contains(key, "/") {
		path = strings.ReplaceAll(key, ".", "/")
	}
	_, err := ns.Run("sh", "-c", `printf '%s\n' "$1" > "/proc/sys/$2"`, "sh", value, path)
	if err != nil {
		return fmt.Errorf("sysctl %s=%s: %w", key, value, err)
	}
	return nil
}

// MustSysctl is Sysctl that fails the test on error.
func (ns *NS) MustSysctl(key, value string) {
	ns.net.tb.Helper()
	if err := ns.Sysctl(key, value); err != nil {
		ns.net.tb.Fatalf("testnet: in %s: %v", ns.short, err)
	}
}

// Start runs a long-lived command (a listener, say) in the namespace; it
// is killed by Net.Close before the namespace is deleted.
func (ns *NS) Start(args ...string) (*exec.Cmd, error) {
	full := append([]string{"netns", "exec", ns.name}, args...)
	c := exec.Command("ip", full...)
	c.Stdout, c.Stderr = os.Stderr, os.Stderr
	if err := c.Start(); err != nil {
		return nil, fmt.Errorf("in %s: start %s: %w", ns.short, strings.Join(args, " "), err)
	}
	ns.net.trackProc(c)
	return c, nil
}
