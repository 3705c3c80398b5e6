package filter

import (
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/cilium/ebpf"
)

// constantSizes is the C contract (sizeof each declaration in
// bpf/config.h). A Go value of another size would make
// VariableSpec.Set fail at load time, far from the cause.
var constantSizes = map[string]int{
	"cfg_proto": 1, "cfg_family": 1,
	"cfg_src_on": 1, "cfg_dst_on": 1, "cfg_host_on": 1,
	"cfg_src_fam": 1, "cfg_dst_fam": 1, "cfg_host_fam": 1,
	"cfg_src_plen": 1, "cfg_dst_plen": 1, "cfg_host_plen": 1,
	"cfg_src_addr": 16, "cfg_dst_addr": 16, "cfg_host_addr": 16,
	"cfg_port": 2, "cfg_sport": 2, "cfg_dport": 2,
	"cfg_ifname":         16,
	"cfg_netns":          4,
	"cfg_reason_incl_on": 1,
	"cfg_reason_incl":    32,
	"cfg_reason_excl":    32,
}

func fullFilter(t *testing.T) *Filter {
	f, err := Parse(Options{Proto: "tcp", Host: "10.0.0.1", Src: "10.0.0.0/8", Dst: "10.1.0.0/16", Port: 1, Sport: 2, Dport: 3,
		Iface: "eth0", Netns: "blue", Reasons: []string{"NO_SOCKET"}, ExcludeReasons: []string{"CONSUMED"}}, testReasons(), testNetns)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestConstantSizes(t *testing.T) {
	c := fullFilter(t).Constants()
	if len(c) != len(constantSizes) {
		t.Errorf("Constants() has %d entries; contract has %d", len(c), len(constantSizes))
	}
	for name, size := range constantSizes {
		v, ok := c[name]
		if !ok {
			t.Errorf("Constants() lacks %s", name)
			continue
		}
		if got := binary.Size(v); got != size {
			t.Errorf("%s: Go value %T is %d bytes; C declares %d", name, v, got, size)
		}
	}
}

// TestConstantsAgainstConfigHeader compiles the real bpf/config.h and sets
// every constant through cilium/ebpf, the way the loader will.
func TestConstantsAgainstConfigHeader(t *testing.T) {
	header, _ := filepath.Abs("../../bpf/config.h")
	if _, err := os.Stat(header); err != nil {
		t.Skipf("no %s: %v", header, err)
	}
	clang, err := exec.LookPath("clang")
	if err != nil {
		t.Skip("clang not installed")
	}
	obj := filepath.Join(t.TempDir(), "config.o")
	cmd := exec.Command(clang, "-target", "bpf", "-g", "-O2", "-c", "-I", filepath.Dir(header),
		"-o", obj, "testdata/config_check.c")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("compile config.h: %v\n%s", err, out)
	}
	spec, err := ebpf.LoadCollectionSpec(obj)
	if err != nil {
		t.Fatal(err)
	}
	for name, v := range fullFilter(t).Constants() {
		vs, ok := spec.Variables[name]
		if !ok {
			t.Errorf("bpf/config.h does not declare %s", name)
			continue
		}
		if int(vs.Size()) != binary.Size(v) {
			t.Errorf("%s: C size %d, Go %T size %d", name, vs.Size(), v, binary.Size(v))
		}
		if err := vs.Set(v); err != nil {
			t.Errorf("set %s: %v", name, err)
		}
	}
}
