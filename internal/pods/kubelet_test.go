package pods

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// A node whose runtime socket is out of reach: pods are still named from
// the pod UID in a process's cgroup and kubelet's log directories, under
// the host root a debug pod mounts.
func TestKubeletFallback(t *testing.T) {
	root := t.TempDir()
	uid := "8f3c2a1e-1111-4222-8333-444455556666"
	mk := func(p string) {
		if err := os.MkdirAll(filepath.Join(root, p), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(p, s string) {
		mk(filepath.Dir(p))
		if err := os.WriteFile(filepath.Join(root, p), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mk("var/log/pods/shop_web_" + uid + "/nginx")
	mk("var/log/pods/shop_web_" + uid + "/sidecar")
	// cgroupfs driver (pod<uid>) and systemd driver (pod<uid with _>.slice).
	write("proc/4242/cgroup", "12:pids:/kubepods/besteffort/pod"+uid+"/0123abcd\n")
	write("proc/4343/cgroup", "0::/kubepods.slice/kubepods-pod8f3c2a1e_1111_4222_8333_444455556666.slice/cri-containerd-1.scope\n")
	write("proc/1/cgroup", "0::/init.scope\n")
	for pid, ino := range map[string]string{"4242": "4026532999", "4343": "4026532999", "1": "4026531840"} {
		mk("proc/" + pid + "/ns")
		if err := os.Symlink("net:["+ino+"]", filepath.Join(root, "proc", pid, "ns/net")); err != nil {
			t.Fatal(err)
		}
	}
	x := New(Options{HostRoot: root})
	x.Refresh(context.Background())
	o, ok := x.Lookup(4026532999)
	if !ok || o.String() != "pod shop/web" || o.UID != uid || len(o.Containers) != 2 {
		t.Errorf("Lookup = %+v, %v; want pod shop/web uid %s with 2 containers", o, ok, uid)
	}
	if _, ok := x.Lookup(4026531840); ok {
		t.Error("init's namespace named as a pod")
	}
	if ino, _, ok := x.Find("shop", "web"); !ok || ino != 4026532999 {
		t.Errorf("Find(shop, web) = %d, %v", ino, ok)
	}
}
