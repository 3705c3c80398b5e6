package reasons

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/cilium/ebpf/btf"
)

// kernelEnumValue reads an enumerator straight from BTF so the assertions
// track whatever the running kernel says instead of a literal number.
func kernelEnumValue(t *testing.T, spec *btf.Spec, enum, name string) uint32 {
	t.Helper()
	var e *btf.Enum
	if err := spec.TypeByName(enum, &e); err != nil {
		t.Fatalf("find enum %s: %v", enum, err)
	}
	for _, v := range e.Values {
		if v.Name == name {
			return uint32(v.Value)
		}
	}
	t.Fatalf("enum %s has no %s", enum, name)
	return 0
}

// TestKernelBTF checks Load against the running kernel's own enum, so each
// kernel is held to what it has: no enum before 5.17, and the not-a-drop
// values came later than the enum (Debian's 6.1 has no SKB_CONSUMED).
func TestKernelBTF(t *testing.T) {
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		t.Skipf("no kernel btf: %v", err)
	}
	tab, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	var e *btf.Enum
	switch err := spec.TypeByName(enumName, &e); {
	case errors.Is(err, btf.ErrNotFound):
		// No drop reasons in this kernel: Load must still succeed and
		// report an empty table, which is how pktdrop degrades there.
		if tab.Available() {
			t.Error("Available() = true on a kernel without enum " + enumName)
		}
		if names := tab.Names(); len(names) != 0 {
			t.Errorf("Names() = %v on a kernel without drop reasons", names)
		}
		if v, ok := tab.Value("NETFILTER_DROP"); ok {
			t.Errorf("Value(NETFILTER_DROP) = %d on a kernel without drop reasons", v)
		}
		return
	case err != nil:
		t.Fatalf("find enum %s: %v", enumName, err)
	}
	if !tab.Available() {
		t.Fatal("Available() = false on a kernel with drop reasons")
	}
	for _, name := range []string{"NETFILTER_DROP", "NO_SOCKET"} {
		want := kernelEnumValue(t, spec, enumName, longPrefix+name)
		for _, in := range []string{name, strings.ToLower(name), longPrefix + name} {
			got, ok := tab.Value(in)
			if !ok || got != want {
				t.Errorf("Value(%q) = %d, %v; want %d", in, got, ok, want)
			}
		}
		if got := tab.Name(want); got != name {
			t.Errorf("Name(%d) = %q; want %q", want, got, name)
		}
	}
	// The not-a-drop values exist only in later kernels; each one the
	// kernel has must be recognised.
	for _, v := range e.Values {
		if v.Name == "SKB_NOT_DROPPED_YET" || v.Name == "SKB_CONSUMED" {
			if !tab.NotDrop(uint32(v.Value)) {
				t.Errorf("NotDrop(%s=%d) = false", v.Name, v.Value)
			}
		}
	}
	if nf, _ := tab.Value("NETFILTER_DROP"); tab.NotDrop(nf) {
		t.Error("NotDrop(NETFILTER_DROP) = true")
	}
	names := tab.Names()
	if !slices.IsSorted(names) || !slices.Contains(names, "NETFILTER_DROP") {
		t.Errorf("Names() not sorted or missing NETFILTER_DROP: %v", names)
	}
	if slices.Contains(names, "MAX") || slices.Contains(names, "SUBSYS_MASK") {
		t.Errorf("Names() lists enum bounds: %v", names)
	}
}

// specFromTypes round-trips types through the BTF wire format, like a
// recorded kernel BTF blob would be read.
func specFromTypes(t *testing.T, types ...btf.Type) *btf.Spec {
	t.Helper()
	b, err := btf.NewBuilder(types, nil)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := b.Marshal(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	spec, err := btf.LoadSpecFromReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	return spec
}

// The values here are deliberately not the kernel's: the table must follow
// whatever the BTF says.
func syntheticSpec(t *testing.T) *btf.Spec {
	reason := &btf.Enum{Name: enumName, Size: 4, Values: []btf.EnumValue{
		{Name: "SKB_NOT_DROPPED_YET", Value: 0},
		{Name: "SKB_CONSUMED", Value: 1},
		{Name: "SKB_DROP_REASON_NETFILTER_DROP", Value: 7},
		{Name: "SKB_DROP_REASON_NO_SOCKET", Value: 9},
		{Name: "SKB_DROP_REASON_MAX", Value: 10},
		{Name: "SKB_DROP_REASON_SUBSYS_MASK", Value: 0xffff0000},
	}}
	subsys := &btf.Enum{Name: subsysEnumName, Size: 4, Values: []btf.EnumValue{
		{Name: "SKB_DROP_REASON_SUBSYS_CORE", Value: 0},
		{Name: "SKB_DROP_REASON_SUBSYS_MAC80211_UNUSABLE", Value: 1},
		{Name: "SKB_DROP_REASON_SUBSYS_OPENVSWITCH", Value: 2},
		{Name: "SKB_DROP_REASON_SUBSYS_NUM", Value: 3},
	}}
	ovs := &btf.Enum{Name: "ovs_drop_reason", Size: 4, Values: []btf.EnumValue{
		{Name: "OVS_DROP_LAST_ACTION", Value: 2<<16 | 1},
		{Name: "OVS_DROP_MAX", Value: 2<<16 | 2},
	}}
	return specFromTypes(t, reason, subsys, ovs)
}

func TestSyntheticEnum(t *testing.T) {
	tab, err := FromSpec(syntheticSpec(t))
	if err != nil {
		t.Fatal(err)
	}
	if !tab.Available() {
		t.Fatal("Available() = false")
	}
	names := map[uint32]string{
		0:            "NOT_DROPPED_YET",
		1:            "CONSUMED",
		7:            "NETFILTER_DROP",
		9:            "NO_SOCKET",
		10:           "UNKNOWN(10)", // MAX is a bound, not a reason
		123:          "UNKNOWN(123)",
		2<<16 | 1:    "OVS_DROP_LAST_ACTION",
		2<<16 | 5:    "OPENVSWITCH:5",
		1<<16 | 3:    "MAC80211_UNUSABLE:3",
		0x7f<<16 | 4: "SUBSYS(127):4",
	}
	for v, want := range names {
		if got := tab.Name(v); got != want {
			t.Errorf("Name(%#x) = %q; want %q", v, got, want)
		}
	}
	values := map[string]uint32{
		"NETFILTER_DROP":                 7,
		"netfilter_drop":                 7,
		"SKB_DROP_REASON_NETFILTER_DROP": 7,
		" no_socket ":                    9,
		"CONSUMED":                       1,
		"SKB_CONSUMED":                   1,
		"ovs_drop_last_action":           2<<16 | 1,
	}
	for in, want := range values {
		if got, ok := tab.Value(in); !ok || got != want {
			t.Errorf("Value(%q) = %d, %v; want %d", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "MAX", "SUBSYS_MASK", "NOPE", "OVS_DROP_MAX"} {
		if v, ok := tab.Value(in); ok {
			t.Errorf("Value(%q) = %d; want not found", in, v)
		}
	}
	want := []string{"CONSUMED", "NETFILTER_DROP", "NOT_DROPPED_YET", "NO_SOCKET", "OVS_DROP_LAST_ACTION"}
	if got := tab.Names(); !slices.Equal(got, want) {
		t.Errorf("Names() = %v; want %v", got, want)
	}
	if !tab.NotDrop(0) || !tab.NotDrop(1) || tab.NotDrop(7) {
		t.Error("NotDrop wrong for NOT_DROPPED_YET/CONSUMED/NETFILTER_DROP")
	}
}

func TestMissingEnum(t *testing.T) {
	spec := specFromTypes(t, &btf.Int{Name: "int", Size: 4, Encoding: btf.Signed})
	tab, err := FromSpec(spec)
	if err != nil {
		t.Fatalf("FromSpec without the enum: %v", err)
	}
	if tab.Available() {
		t.Error("Available() = true without the enum")
	}
	if got := tab.Name(3); got != "UNKNOWN(3)" {
		t.Errorf("Name(3) = %q", got)
	}
	if _, ok := tab.Value("NO_SOCKET"); ok {
		t.Error("Value found a reason in an empty table")
	}
	if len(tab.Names()) != 0 || tab.NotDrop(0) {
		t.Error("empty table reports names or not-drop values")
	}
}
