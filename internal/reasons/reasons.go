// Package reasons names kernel packet drop reasons.
//
// The values of enum skb_drop_reason change between kernel releases (new
// reasons are inserted in the middle), so names are always read from the
// running kernel's BTF and never compiled in.
package reasons

import (
	"errors"
	"fmt"
	"math/bits"
	"os"
	"slices"
	"strings"

	"github.com/cilium/ebpf/btf"
)

const (
	enumName       = "skb_drop_reason"
	subsysEnumName = "skb_drop_reason_subsys"
	longPrefix     = "SKB_DROP_REASON_"
	// SKB_NOT_DROPPED_YET and SKB_CONSUMED lack the DROP_REASON part.
	shortPrefix  = "SKB_"
	subsysPrefix = "SKB_DROP_REASON_SUBSYS_"
)

// defaultSubsysMask is used only when the kernel has subsystems but its enum
// does not carry SKB_DROP_REASON_SUBSYS_MASK; it is the documented layout
// (SKB_DROP_REASON_SUBSYS_SHIFT is a #define and so never reaches BTF).
const defaultSubsysMask = 0xffff0000

// subsysReasonEnums are the enums that subsystems use for their own reasons
// (values already carry the subsystem in the high bits). Only type names are
// listed; values still come from BTF.
var subsysReasonEnums = []string{"mac80211_drop_reason", "ovs_drop_reason"}

// SubsysModules are the kernel modules whose BTF may carry subsystem reason
// enums; Load reads them when the module is loaded.
var SubsysModules = []string{"mac80211", "openvswitch"}

// Table maps drop reason values to names for one kernel.
type Table struct {
	byValue map[uint32]string
	byName  map[string]uint32
	subsys  map[uint32]string // subsystem id -> name, e.g. 2 -> OPENVSWITCH
	mask    uint32
	notDrop map[uint32]bool
	hasEnum bool
}

// Load reads drop reasons from the running kernel's BTF and from the BTF of
// loaded modules that define subsystem reasons.
func Load() (*Table, error) {
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		return nil, fmt.Errorf("load kernel btf: %w", err)
	}
	return FromKernel(spec)
}

// FromKernel is Load with the kernel's BTF already decoded (pktdrop
// decodes it once for everything at start-up).
func FromKernel(spec *btf.Spec) (*Table, error) {
	t, err := FromSpec(spec)
	if err != nil {
		return nil, err
	}
	for _, mod := range SubsysModules {
		if _, err := os.Stat("/sys/kernel/btf/" + mod); err != nil {
			continue // not loaded, or no module BTF: its reasons stay numeric
		}
		mspec, err := btf.LoadKernelModuleSpec(mod)
		if err != nil {
			continue
		}
		if err := t.addSubsysEnums(mspec); err != nil {
			return nil, fmt.Errorf("read drop reasons of module %s: %w", mod, err)
		}
	}
	return t, nil
}

// FromSpec reads drop reasons from spec. A spec without enum skb_drop_reason
// (kernels before 5.17) gives an empty table, not an error.
func FromSpec(spec *btf.Spec) (*Table, error) {
	var enum *btf.Enum
	switch err := spec.TypeByName(enumName, &enum); {
	case errors.Is(err, btf.ErrNotFound):
		return FromEnum(nil), nil
	case err != nil:
		return nil, fmt.Errorf("find enum %s: %w", enumName, err)
	}
	t := FromEnum(enum)

	var subsys *btf.Enum
	switch err := spec.TypeByName(subsysEnumName, &subsys); {
	case errors.Is(err, btf.ErrNotFound):
	case err != nil:
		return nil, fmt.Errorf("find enum %s: %w", subsysEnumName, err)
	default:
		t.setSubsystems(subsys)
	}
	if err := t.addSubsysEnums(spec); err != nil {
		return nil, err
	}
	return t, nil
}

// FromEnum builds a table from an enum skb_drop_reason; nil gives an empty
// table. It exists so tests elsewhere can build a table without a BTF blob.
func FromEnum(enum *btf.Enum) *Table {
	t := &Table{
		byValue: map[uint32]string{},
		byName:  map[string]uint32{},
		subsys:  map[uint32]string{},
		notDrop: map[uint32]bool{},
		mask:    defaultSubsysMask,
	}
	if enum == nil {
		return t
	}
	t.hasEnum = true
	for _, v := range enum.Values {
		switch v.Name {
		case longPrefix + "MAX":
			continue // a bound, not a reason
		case longPrefix + "SUBSYS_MASK":
			t.mask = uint32(v.Value)
			continue
		}
		short := shortName(v.Name)
		t.add(short, uint32(v.Value))
		if short == "NOT_DROPPED_YET" || short == "CONSUMED" {
			t.notDrop[uint32(v.Value)] = true
		}
	}
	return t
}

func (t *Table) setSubsystems(e *btf.Enum) {
	for _, v := range e.Values {
		name := strings.TrimPrefix(v.Name, subsysPrefix)
		if name == "NUM" || name == "CORE" {
			continue // NUM is a bound; CORE reasons live in the main enum
		}
		t.subsys[uint32(v.Value)] = name
	}
}

func (t *Table) addSubsysEnums(spec *btf.Spec) error {
	for _, name := range subsysReasonEnums {
		var e *btf.Enum
		switch err := spec.TypeByName(name, &e); {
		case errors.Is(err, btf.ErrNotFound):
			continue
		case err != nil:
			return fmt.Errorf("find enum %s: %w", name, err)
		}
		for _, v := range e.Values {
			// Sentinels like OVS_DROP_MAX share the enum; skip values that do
			// not name a distinct reason.
			if strings.HasSuffix(v.Name, "_MAX") || strings.HasSuffix(v.Name, "_NUM") {
				continue
			}
			if _, dup := t.byValue[uint32(v.Value)]; dup {
				continue
			}
			t.add(v.Name, uint32(v.Value))
		}
	}
	return nil
}

func (t *Table) add(name string, v uint32) {
	if _, dup := t.byValue[v]; !dup {
		t.byValue[v] = name
	}
	t.byName[name] = v
}

func shortName(full string) string {
	if s, ok := strings.CutPrefix(full, longPrefix); ok {
		return s
	}
	return strings.TrimPrefix(full, shortPrefix)
}

// Available reports whether the kernel exposes drop reasons at all.
func (t *Table) Available() bool { return t.hasEnum }

// Name returns the short name of v, e.g. NETFILTER_DROP. Values the table
// does not know are still rendered usefully: UNKNOWN(v) for core reasons,
// SUBSYS:code or SUBSYS(id):code for subsystem reasons.
func (t *Table) Name(v uint32) string {
	if n, ok := t.byValue[v]; ok {
		return n
	}
	if id := t.subsysOf(v); id != 0 {
		code := v &^ t.mask
		if n, ok := t.subsys[id]; ok {
			return fmt.Sprintf("%s:%d", n, code)
		}
		return fmt.Sprintf("SUBSYS(%d):%d", id, code)
	}
	return fmt.Sprintf("UNKNOWN(%d)", v)
}

func (t *Table) subsysOf(v uint32) uint32 {
	if t.mask == 0 {
		return 0
	}
	return (v & t.mask) >> bits.TrailingZeros32(t.mask)
}

// Value looks a reason up by name: short (NETFILTER_DROP), any case, or the
// full enumerator name (SKB_DROP_REASON_NETFILTER_DROP).
func (t *Table) Value(name string) (uint32, bool) {
	n := strings.ToUpper(strings.TrimSpace(name))
	if v, ok := t.byName[n]; ok {
		return v, true
	}
	v, ok := t.byName[shortName(n)]
	return v, ok
}

// Names returns every known reason name, sorted. It is meant for error
// messages, so it builds the list on demand instead of caching it; that keeps
// a Table immutable after construction and safe to share.
func (t *Table) Names() []string {
	names := make([]string, 0, len(t.byName))
	for n := range t.byName {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// NotDrop reports whether v means the packet was not dropped (freed without
// a drop, or consumed normally), so it should not be reported as a drop.
func (t *Table) NotDrop(v uint32) bool { return t.notDrop[v] }
