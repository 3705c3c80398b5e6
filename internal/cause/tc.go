package cause

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/pktdrop/pktdrop/internal/netns"
	"github.com/pktdrop/pktdrop/internal/report"
)

// TCReader lists a device's tc filters (*netns.Resolver).
type TCReader interface {
	TCFilters(inode uint32, dev string) ([]netns.TCFilter, error)
}

// tcDrop names the tc filter that dropped the packet: of the filters on
// the device in that direction, those whose action drops or whose BPF
// program decides by itself (direct action).
func tcDrop(dir string) rule {
	return func(r *report.Report, sys System) {
		r.Cause = "tc"
		evidence(r, "tc_dev", r.Iface)
		evidence(r, "tc_direction", dir)
		r.Explanation = fmt.Sprintf("a tc %s filter on %s in netns %s dropped it", dir, r.Iface, r.NetnsName)
		r.Hint = fmt.Sprintf("list the filters with `tc filter show dev %s %s` in netns %s", r.Iface, dir, r.NetnsName)
		tr, ok := sys.(TCReader)
		if !ok || r.Iface == "" {
			return
		}
		fs, err := tr.TCFilters(r.Netns, r.Iface)
		if err != nil {
			if !errors.Is(err, errors.ErrUnsupported) {
				evidence(r, "tc_error", err.Error())
			}
			return
		}
		var cands []netns.TCFilter
		for _, f := range fs {
			if f.Direction == dir && (f.Drops || f.Decides) {
				cands = append(cands, f)
			}
		}
		switch len(cands) {
		case 0:
			r.Explanation += "; no filter there drops now (removed since?)"
		case 1:
			f := cands[0]
			evidence(r, "tc_chain", strconv.FormatUint(uint64(f.Chain), 10))
			evidence(r, "tc_pref", strconv.Itoa(int(f.Pref)))
			evidence(r, "tc_handle", fmt.Sprintf("0x%x", f.Handle))
			evidence(r, "tc_kind", f.Kind)
			evidence(r, "tc_filter", f.String())
			r.Explanation += ": the filter `" + f.String() + "`"
			del := fmt.Sprintf("`tc filter del dev %s %s pref %d handle 0x%x %s`", r.Iface, dir, f.Pref, f.Handle, f.Kind)
			if f.ProgID != 0 {
				evidence(r, "bpf_prog_id", strconv.Itoa(f.ProgID))
				evidence(r, "bpf_prog_name", f.ProgName)
				r.Explanation += fmt.Sprintf(", whose BPF program %s (id %d) returned TC_ACT_SHOT", f.ProgName, f.ProgID)
				r.Hint = fmt.Sprintf("see why the BPF program %s (id %d, `bpftool prog show id %d`) drops this packet, or remove the filter (%s) in netns %s",
					f.ProgName, f.ProgID, f.ProgID, del, r.NetnsName)
			} else {
				r.Hint = fmt.Sprintf("if this traffic should pass, change or remove that filter (%s) in netns %s", del, r.NetnsName)
			}
		default:
			var s []string
			for _, f := range cands {
				s = append(s, f.String())
			}
			evidence(r, "tc_candidates", strings.Join(s, "; "))
			r.Explanation += "; filters that can drop there: " + strings.Join(s, "; ")
		}
	}
}

// receiveCore: before drop reasons, __netif_receive_skb_core frees both
// what a tc ingress filter dropped (sch_handle_ingress is inlined there)
// and packets no protocol handles; the device's filters tell which.
func receiveCore(r *report.Report, sys System) {
	if tr, ok := sys.(TCReader); ok && r.Iface != "" {
		if fs, err := tr.TCFilters(r.Netns, r.Iface); err == nil {
			for _, f := range fs {
				if f.Direction == "ingress" && (f.Drops || f.Decides) {
					tcDrop("ingress")(r, sys)
					return
				}
			}
		}
	}
	fixed("unhandled_proto", "no protocol handler for this packet type", "nothing on this host handles that protocol")(r, sys)
}
