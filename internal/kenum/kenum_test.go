package kenum

import (
	"os"
	"testing"
)

func TestLoadKernel(t *testing.T) {
	if _, err := os.Stat("/sys/kernel/btf/vmlinux"); err != nil {
		t.Skip("no kernel BTF")
	}
	n, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	hooks := map[string]bool{}
	for _, h := range n.Hook {
		hooks[h] = true
	}
	for _, want := range []string{"PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"} {
		if !hooks[want] {
			t.Errorf("hook %s missing from %v", want, n.Hook)
		}
	}
	fams := map[string]bool{}
	for _, f := range n.Family {
		fams[f] = true
	}
	if !fams["ipv4"] || !fams["ipv6"] {
		t.Errorf("families: %v", n.Family)
	}
	replies := 0
	for v, r := range n.Reply {
		if r {
			replies++
			if n.CtInfo[v] == "" {
				t.Errorf("reply value %d has no name", v)
			}
		}
	}
	if replies == 0 {
		t.Errorf("no reply conntrack states in %v", n.CtInfo)
	}
}
