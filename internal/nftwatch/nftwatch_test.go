package nftwatch

import (
	"testing"
	"time"

	"github.com/pktdrop/pktdrop/internal/privtest"
	"github.com/pktdrop/pktdrop/internal/testnet"
)

// Base chains added by nft and by iptables-nft, and a table deleted, are
// heard in the namespace they were made in, within Settle plus the
// kernel's delivery; a regular chain, a rule, and other namespaces' changes
// are not. Keep lets go of a namespace.
func TestChanges(t *testing.T) {
	privtest.RequireCmd(t, "nft")
	privtest.RequireCmd(t, "iptables-nft")
	n := testnet.New(t)
	a, b := n.NS("a"), n.NS("b")
	got := make(chan string, 16)
	w := New(func(path string) { got <- path })
	defer w.Close()
	if err := w.Add([]string{a.Path(), b.Path(), a.Path()}); err != nil {
		t.Fatal(err)
	}
	if w.Watching() != 2 {
		t.Fatalf("watching %d namespaces, want 2", w.Watching())
	}
	expect := func(what string, ns *testnet.NS, args ...string) {
		t.Helper()
		start := time.Now()
		ns.MustRun(args...)
		select {
		case p := <-got:
			if p != ns.Path() {
				t.Errorf("%s in %s reported for %s", what, ns.Name(), p)
			}
			t.Logf("%s: heard %v after the command started", what, time.Since(start).Round(time.Millisecond))
		case <-time.After(2 * time.Second):
			t.Fatalf("%s in %s not heard within 2s", what, ns.Name())
		}
	}
	quiet := func(what string, ns *testnet.NS, args ...string) {
		t.Helper()
		ns.MustRun(args...)
		select {
		case p := <-got:
			t.Errorf("%s reported a change in %s", what, p)
		case <-time.After(5 * Settle):
		}
	}
	expect("nft base chain", a, "nft", "add table ip nftw; add chain ip nftw in { type filter hook input priority 0; }")
	quiet("nft regular chain and rule", a, "nft", "add chain ip nftw sub; add rule ip nftw sub drop")
	expect("iptables-nft rule (table and chain made for it)", b, "iptables-nft", "-A", "INPUT", "-d", "10.9.9.9", "-j", "DROP")
	expect("nft table deleted", a, "nft", "delete table ip nftw")

	w.Keep(map[uint64]bool{uint64(b.Inode()): true})
	if w.Watching() != 1 {
		t.Fatalf("watching %d namespaces after Keep, want 1", w.Watching())
	}
	quiet("a chain in a namespace let go", a, "nft", "add table ip nftw; add chain ip nftw in { type filter hook input priority 0; }")
}
