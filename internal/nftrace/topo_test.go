package nftrace

import (
	"crypto/rand"
	"encoding/hex"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pktdrop/pktdrop/internal/privtest"
)

// testNet is a set of throwaway namespaces named pdnft-<rand>-<short>,
// removed in t.Cleanup even when the test fails.
type testNet struct {
	t      *testing.T
	prefix string
}

func newTestNet(t *testing.T, tools ...string) *testNet {
	t.Helper()
	privtest.Require(t, "creates network namespaces and nf_tables tables")
	for _, tool := range append([]string{"ip", "nft", "nsenter", "ping"}, tools...) {
		privtest.RequireCmd(t, tool)
	}
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return &testNet{t: t, prefix: "pdnft-" + hex.EncodeToString(b[:])}
}

// ns creates a namespace and returns its full name.
func (n *testNet) ns(short string) string {
	n.t.Helper()
	name := n.prefix + "-" + short
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		n.t.Fatalf("ip netns add %s: %v: %s", name, err, out)
	}
	n.t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", name).Run() })
	n.run(name, "ip", "link", "set", "lo", "up")
	return name
}

func nsPath(name string) string { return filepath.Join("/var/run/netns", name) }

// run runs a command in ns and fails the test on error.
func (n *testNet) run(ns string, args ...string) string {
	n.t.Helper()
	out, err := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...).CombinedOutput()
	if err != nil {
		n.t.Fatalf("in %s: %s: %v: %s", ns, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// try runs a command in ns, ignoring failure (e.g. a ping that is dropped).
func (n *testNet) try(ns string, args ...string) {
	_ = exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...).Run()
}

// link creates a veth pair between two namespaces with addresses.
func (n *testNet) link(a, aIf, aAddr, b, bIf, bAddr string) {
	n.t.Helper()
	n.run(a, "ip", "link", "add", aIf, "type", "veth", "peer", "name", bIf, "netns", b)
	for _, e := range [][3]string{{a, aIf, aAddr}, {b, bIf, bAddr}} {
		args := []string{"ip", "addr", "add", e[2], "dev", e[1]}
		if strings.Contains(e[2], ":") {
			args = []string{"ip", "-6", "addr", "add", e[2], "dev", e[1], "nodad"}
		}
		n.run(e[0], args...)
		n.run(e[0], "ip", "link", "set", e[1], "up")
	}
}

type line struct {
	client, router, server string
	serverIP, routerIn     string
}

// newLine builds client(cl0) — (flannel.1)router(rt-out) — (sv0)server
// with forwarding on in the router.
func newLine(t *testing.T, v6 bool, tools ...string) (*testNet, line) {
	n := newTestNet(t, tools...)
	l := line{client: n.ns("client"), router: n.ns("router"), server: n.ns("server")}
	if v6 {
		l.serverIP, l.routerIn = "fd00:231:2::2", "fd00:231:1::1"
		n.link(l.client, "cl0", "fd00:231:1::2/64", l.router, "flannel.1", l.routerIn+"/64")
		n.link(l.router, "rt-out", "fd00:231:2::1/64", l.server, "sv0", l.serverIP+"/64")
		n.run(l.client, "ip", "-6", "route", "add", "default", "via", l.routerIn)
		n.run(l.server, "ip", "-6", "route", "add", "default", "via", "fd00:231:2::1")
		n.run(l.router, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1")
		return n, l
	}
	l.serverIP, l.routerIn = "10.231.2.2", "10.231.1.1"
	n.link(l.client, "cl0", "10.231.1.2/24", l.router, "flannel.1", l.routerIn+"/24")
	n.link(l.router, "rt-out", "10.231.2.1/24", l.server, "sv0", l.serverIP+"/24")
	n.run(l.client, "ip", "route", "add", "default", "via", l.routerIn)
	n.run(l.server, "ip", "route", "add", "default", "via", "10.231.2.1")
	n.run(l.router, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	return n, l
}
