package kenum

import (
	"os"
	"reflect"
	"testing"

	"github.com/cilium/ebpf/btf"
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

// TestRawMatchesSpec: the raw scan finds what cilium/ebpf's decoded BTF
// of the running kernel holds.
func TestRawMatchesSpec(t *testing.T) {
	if _, err := os.Stat(vmlinuxBTF); err != nil {
		t.Skip("no kernel BTF")
	}
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		t.Fatal(err)
	}
	want, err := FromSpec(spec)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(vmlinuxBTF)
	if err != nil {
		t.Fatal(err)
	}
	got, err := FromRaw(raw)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("raw scan: %+v\nspec: %+v", got, want)
	}
	if _, err := FromRaw(raw[:100]); err == nil {
		t.Error("a truncated blob gave no error")
	}
}
