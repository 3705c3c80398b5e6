package testnet

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestPrimitives exercises the building blocks on a two-namespace link.
func TestPrimitives(t *testing.T) {
	t.Parallel()
	n := New(t)
	a, b := n.NS("a"), n.NS("b")
	if !strings.HasPrefix(a.Name(), n.Prefix()+"-") || len(n.Prefix()) != 8 {
		t.Fatalf("name %q, prefix %q", a.Name(), n.Prefix())
	}
	if _, err := os.Stat(a.Path()); err != nil {
		t.Fatal(err)
	}
	if a.Inode() == 0 || a.Inode() == b.Inode() {
		t.Fatalf("inodes %d %d", a.Inode(), b.Inode())
	}
	n.Link(a, "a0", "10.231.1.2/24", b, "b0", "10.231.1.3/24")
	a.Addr("a0", "fd00:231:1::2/64")
	b.Addr("b0", "fd00:231:1::3/64")
	for _, dst := range []string{"10.231.1.3", "fd00:231:1::3"} {
		if ok, err := a.Ping(dst, 1, 2*time.Second); err != nil || !ok {
			t.Errorf("ping %s: %v %v", dst, ok, err)
		}
	}
	if ok, err := a.Ping("10.231.1.99", 1, time.Second); err != nil || ok {
		t.Errorf("ping to nobody: %v %v", ok, err)
	}
	if err := b.ListenTCP(80, "b"); err != nil {
		t.Fatal(err)
	}
	if got, err := a.Fetch("10.231.1.3", 80, 2*time.Second); err != nil || got != "b" {
		t.Errorf("fetch: %q %v", got, err)
	}
	if err := a.TCPConnect("10.231.1.3", 81, 2*time.Second); err == nil {
		t.Error("connect to closed port succeeded")
	}
	if err := a.UDP("10.231.1.3", 9, []byte("x")); err != nil {
		t.Error(err)
	}
	// Sysctl with a dotted device name needs the slash form.
	b.MustRun("ip", "link", "add", "flannel.1", "type", "veth", "peer", "name", "fl-peer")
	b.MustSysctl("net/ipv4/conf/flannel.1/rp_filter", "2")
	if got := strings.TrimSpace(b.MustRun("cat", "/proc/sys/net/ipv4/conf/flannel.1/rp_filter")); got != "2" {
		t.Errorf("rp_filter = %q", got)
	}
	// The host namespace must not have been touched: no such device there.
	if err := exec.Command("ip", "link", "show", "a0").Run(); err == nil {
		t.Error("a0 visible in the init namespace")
	}
}

// TestCloseRemovesNamespaces checks that Close deletes every namespace,
// also with a process still running in one.
func TestCloseRemovesNamespaces(t *testing.T) {
	t.Parallel()
	n := New(t)
	a := n.NS("a")
	n.NS("b")
	if _, err := a.Start("sleep", "60"); err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), n.Prefix()) {
		t.Fatalf("namespaces left after Close:\n%s", out)
	}
}
