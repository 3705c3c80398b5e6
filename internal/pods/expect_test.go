package pods

import (
	"testing"
)

// Namespaces there at the first Expect are the host's own: no rescans for
// them. One that appears later is waited for until an owner answers.
func TestExpectWaitsForNewNamespacesOnly(t *testing.T) {
	x := New(Options{HostRoot: t.TempDir()}) // no runtime answers here
	x.Expect([]uint32{1, 2})
	if x.waiting() {
		t.Fatal("namespaces present at start are waited for")
	}
	x.Expect([]uint32{1, 2, 3})
	if !x.waiting() {
		t.Fatal("a namespace that appeared later is not waited for")
	}
	x.mu.Lock()
	x.byInode[3] = Owner{Kind: "pod", Namespace: "shop", Name: "web"}
	x.mu.Unlock()
	if x.waiting() {
		t.Fatal("a namespace with an owner is still waited for")
	}
	x.Expect([]uint32{1, 2})
	x.Expect([]uint32{1, 2, 3})
	x.mu.Lock()
	delete(x.byInode, 3)
	x.mu.Unlock()
	if !x.waiting() {
		t.Fatal("a namespace gone and back is not waited for afresh")
	}
}
