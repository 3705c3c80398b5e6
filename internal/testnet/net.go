package testnet

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/pktdrop/pktdrop/internal/privtest"
)

// Net owns a set of namespaces that share a unique name prefix.
type Net struct {
	tb     testing.TB
	prefix string

	mu      sync.Mutex
	nss     []*NS
	closers []io.Closer
	procs   []*exec.Cmd
	closed  bool
}

// New returns an empty Net whose namespaces are removed in tb.Cleanup, also
// when the test fails. It skips (fails under CI=true) without root or ip.
func New(tb testing.TB) *Net {
	tb.Helper()
	privtest.Require(tb, "creates network namespaces")
	privtest.RequireCmd(tb, "ip")
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		tb.Fatalf("testnet: random prefix: %v", err)
	}
	n := &Net{tb: tb, prefix: "pd" + hex.EncodeToString(b[:])}
	tb.Cleanup(func() {
		if err := n.Close(); err != nil {
			tb.Errorf("testnet: cleanup: %v", err)
		}
	})
	return n
}

// Prefix is the unique prefix of every namespace name in this Net.
func (n *Net) Prefix() string { return n.prefix }

// TB is the test this Net belongs to.
func (n *Net) TB() testing.TB { return n.tb }

// Close kills processes started in the namespaces, closes listeners and
// deletes the namespaces (which destroys their veths). A process left
// running would pin the namespace after "ip netns del", so they go first.
// Close is idempotent.
func (n *Net) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	procs, closers, nss := n.procs, n.closers, n.nss
	n.mu.Unlock()

	var errs []error
	for _, p := range procs {
		if p.Process != nil {
			_ = p.Process.Kill()
			_ = p.Wait() // killed: the exit error is expected
		}
	}
	for _, c := range closers {
		_ = c.Close()
	}
	for i := len(nss) - 1; i >= 0; i-- {
		out, err := exec.Command("ip", "netns", "delete", nss[i].name).CombinedOutput()
		if err != nil && !strings.Contains(string(out), "No such file") {
			errs = append(errs, fmt.Errorf("delete netns %s: %v: %s", nss[i].name, err, strings.TrimSpace(string(out))))
		}
	}
	return errors.Join(errs...)
}

// NS creates namespace "<prefix>-<name>" with lo up and a known sysctl
// baseline, or fails the test.
func (n *Net) NS(name string) *NS {
	n.tb.Helper()
	ns, err := n.newNS(name)
	if err != nil {
		n.tb.Fatalf("testnet: %v", err)
	}
	return ns
}

func (n *Net) newNS(name string) (*NS, error) {
	full := n.prefix + "-" + name
	if out, err := exec.Command("ip", "netns", "add", full).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("add netns %s: %v: %s", full, err, strings.TrimSpace(string(out)))
	}
	ns := &NS{net: n, name: full, short: name}
	n.mu.Lock()
	n.nss = append(n.nss, ns)
	n.mu.Unlock()
	if _, err := ns.Run("ip", "link", "set", "lo", "up"); err != nil {
		return nil, err
	}
	// New namespaces inherit IPv4 devconf (rp_filter, ip_forward, ...)
	// from the init namespace (net.core.devconf_inherit_init_net=0), so
	// the host's settings would leak into scenarios. Pin what they
	// depend on; "default" applies to veths created afterwards.
	for _, kv := range [][2]string{
		{"net.ipv4.ip_forward", "0"},
		{"net.ipv4.conf.all.rp_filter", "0"},
		{"net.ipv4.conf.default.rp_filter", "0"},
		{"net.ipv4.conf.all.accept_local", "0"},
		{"net.ipv6.conf.all.forwarding", "0"},
		{"net.ipv6.conf.default.accept_dad", "0"},
		{"net.ipv6.conf.default.accept_ra", "0"},
		{"net.ipv6.conf.default.router_solicitations", "0"},
	} {
		if err := ns.Sysctl(kv[0], kv[1]); err != nil {
			return nil, err
		}
	}
	return ns, nil
}

func (n *Net) track(c io.Closer) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.closers = append(n.closers, c)
}

func (n *Net) trackProc(c *exec.Cmd) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.procs = append(n.procs, c)
}
