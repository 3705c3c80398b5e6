package pods_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/pktdrop/pktdrop/internal/critest"
	"github.com/pktdrop/pktdrop/internal/pods"
	"github.com/pktdrop/pktdrop/internal/privtest"
)

// TestCRISandboxes asks a real containerd (critest) for two pod sandboxes
// and wants the index to name each one's namespace by pod.
func TestCRISandboxes(t *testing.T) {
	privtest.Require(t, "containerd runs pod sandboxes as root")
	before := critest.Host(t)
	var rt *critest.Runtime
	t.Cleanup(func() {
		if rt == nil {
			return
		}
		rt.Stop()
		for _, c := range rt.Changes(before, critest.Host(t)) {
			t.Error(c)
		}
	})
	rt, err := critest.Start(t)
	if errors.Is(err, critest.ErrUnavailable) {
		privtest.Unavailable(t, err.Error())
	}
	if err != nil {
		t.Fatal(err)
	}
	a, err := rt.RunPod("ns1", "pod-a")
	if err != nil {
		t.Fatal(err)
	}
	b, err := rt.RunPod("ns2", "pod-b")
	if err != nil {
		t.Fatal(err)
	}
	x := pods.New(pods.Options{CRISocket: rt.Socket})
	x.Refresh(context.Background())
	for _, p := range []*critest.Pod{a, b} {
		ino, o, ok := x.Find(p.Namespace, p.Name)
		if !ok {
			t.Fatalf("index has no %s/%s; sources %v; all %v", p.Namespace, p.Name, x.Sources(), x.All())
		}
		if o.UID != p.UID || o.String() != "pod "+p.Namespace+"/"+p.Name || o.NetnsPath != p.NetnsPath {
			t.Errorf("owner of %s = %+v; want uid %s, netns %s", p.Name, o, p.UID, p.NetnsPath)
		}
		if got, ok := x.Lookup(ino); !ok || got.Name != p.Name {
			t.Errorf("Lookup(%d) = %+v, %v", ino, got, ok)
		}
	}
	if !slices.Contains(x.Sources(), "cri:"+rt.Socket) {
		t.Errorf("sources %v lack the CRI socket", x.Sources())
	}
}
