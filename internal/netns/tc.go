package netns

import (
	"fmt"
	"strconv"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"
)

// TCFilter is one tc filter on a device's clsact ingress or egress hook.
type TCFilter struct {
	Dev, Direction string // "ingress" or "egress"
	Chain          uint32
	Pref           uint16
	Handle         uint32
	Kind           string // u32, flower, matchall, bpf ...
	Actions        []string
	// Drops: an action of the filter drops (TC_ACT_SHOT); a BPF program
	// in direct-action mode may drop by itself (Decides).
	Drops, Decides bool
	ProgID         int
	ProgName       string // the kernel's name of the BPF program
	AttachName     string // the name given when attaching (often the object file)
}

// String renders the filter as `tc filter show` identifies it.
func (f TCFilter) String() string {
	s := fmt.Sprintf("dev %s %s chain %d pref %d %s handle 0x%x", f.Dev, f.Direction, f.Chain, f.Pref, f.Kind, f.Handle)
	if f.ProgID != 0 {
		s += fmt.Sprintf(" prog id %d name %s", f.ProgID, f.ProgName)
	}
	for _, a := range f.Actions {
		s += " action " + a
	}
	return s
}

// TCFilters lists the clsact filters of dev in netns inode, ingress
// first. BPF programs are named from the kernel by their id.
func (r *Resolver) TCFilters(inode uint32, dev string) ([]TCFilter, error) {
	var out []TCFilter
	err := r.withHandle(inode, func(h *netlink.Handle) error {
		l, err := h.LinkByName(dev)
		if err != nil {
			return err
		}
		for _, p := range []struct {
			dir    string
			parent uint32
		}{{"ingress", netlink.HANDLE_MIN_INGRESS}, {"egress", netlink.HANDLE_MIN_EGRESS}} {
			fs, err := h.FilterList(l, p.parent)
			if err != nil {
				return fmt.Errorf("list %s filters: %w", p.dir, err)
			}
			for _, f := range fs {
				out = append(out, tcFilter(dev, p.dir, f))
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("tc filters of %s in netns %d: %w", dev, inode, err)
	}
	return out, nil
}

func tcFilter(dev, dir string, f netlink.Filter) TCFilter {
	a := f.Attrs()
	tf := TCFilter{Dev: dev, Direction: dir, Pref: a.Priority, Handle: a.Handle, Kind: f.Type()}
	if a.Chain != nil {
		tf.Chain = *a.Chain
	}
	var acts []netlink.Action
	switch v := f.(type) {
	case *netlink.U32:
		acts = v.Actions
	case *netlink.Flower:
		acts = v.Actions
	case *netlink.MatchAll:
		acts = v.Actions
	case *netlink.BpfFilter:
		tf.ProgID, tf.AttachName, tf.Decides = v.Id, v.Name, v.DirectAction
		tf.ProgName = progName(v.Id)
	}
	for _, act := range acts {
		aa := act.Attrs()
		name := act.Type()
		if _, ok := act.(*netlink.GenericAction); ok {
			name = aa.Action.String()
		}
		if aa.Action == netlink.TC_ACT_SHOT {
			name, tf.Drops = "drop", true
		}
		tf.Actions = append(tf.Actions, name)
	}
	return tf
}

// progName asks the kernel for a BPF program's name; "" if it cannot.
func progName(id int) string {
	if id == 0 {
		return ""
	}
	p, err := ebpf.NewProgramFromID(ebpf.ProgramID(id))
	if err != nil {
		return ""
	}
	defer p.Close()
	info, err := p.Info()
	if err != nil {
		return "id " + strconv.Itoa(id)
	}
	return info.Name
}
