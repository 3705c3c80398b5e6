package report

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/pktdrop/pktdrop/internal/event"
	"github.com/pktdrop/pktdrop/internal/kenum"
)

// Names turns the kernel's numbers into names. Each func may be nil.
type Names struct {
	Reason func(uint32) string
	Symbol func(uint64) string
	Netns  func(uint32) string
	// Pod names the pod (namespace, name, UID) or container (name only)
	// living in a netns; ok is false when nobody known does.
	Pod    func(uint32) (namespace, name, uid string, ok bool)
	Device func(netns, ifindex uint32) string
	Enums  *kenum.Names
	Table  func(prio int32) string // netfilter bracket priority → next table ("" = past all)
	// Addr, when set, renders an address (a memo of netip.Addr.String:
	// every report renders the same few addresses again and again).
	Addr       func(netip.Addr) string
	HasReasons bool
}

// Builder makes Reports from events.
type Builder struct {
	Names Names
	// Boot is the wall-clock time of CLOCK_MONOTONIC zero.
	Boot time.Time
}

// Build makes the Report of one event, without a cause (see package cause).
func (b *Builder) Build(ev *event.Event) *Report {
	n := b.Names
	r := &Report{
		Time:      b.Boot.Add(time.Duration(ev.Mono)),
		Kind:      "drop",
		Netns:     ev.Netns,
		Iface:     ev.Ifname,
		Ifindex:   ev.Ifindex,
		Len:       ev.Len,
		Mark:      ev.Mark,
		Path:      make([]Step, 0, len(ev.Path)),
		NAT:       []NAT{},
		StepsLost: int(ev.StepsLost),
	}
	t := ev.Tuple
	if last := lastPacketStep(ev); last != nil {
		// By the time a delivered packet is freed, skb->dev has been
		// cleared or reused by the socket layer and its headers may be
		// gone: where it was last seen is where it ended.
		if ev.Kind == event.KindTrace || r.Netns == 0 {
			r.Netns, r.Ifindex, r.Iface = last.Netns, last.Ifindex, ""
		}
		if t.Family == 0 {
			t = last.Tuple
		}
	}
	if ev.Kind == event.KindTrace {
		r.Kind = "trace"
	}
	if ev.Kind == event.KindDrop && n.Reason != nil && n.HasReasons {
		r.Reason = n.Reason(ev.Reason)
	}
	if ev.Location != 0 && n.Symbol != nil {
		r.Location = n.Symbol(ev.Location)
	}
	r.NetnsName = b.netns(r.Netns)
	r.PodNS, r.Pod, r.PodUID = b.pod(r.Netns)
	if r.Iface == "" && r.Ifindex != 0 && n.Device != nil {
		r.Iface = n.Device(r.Netns, r.Ifindex)
	}
	r.Family, r.Proto = Family(t.Family), Proto(t.Proto, t.Family)
	r.Src, r.Dst, r.Sport, r.Dport = b.addr(t.Src), b.addr(t.Dst), t.Sport, t.Dport
	r.TTL = t.TTL
	if isICMP(t.Proto) {
		r.ICMPType, r.ICMPCode, r.ICMPID, r.ICMPSeq = t.ICMPType, t.ICMPCode, t.ICMPID, t.ICMPSeq
	}
	if t.Proto == 6 {
		r.TCPFlags = TCPFlags(t.TCPFlags)
	}
	// Probed where the table's hook function returned NF_DROP: exact,
	// so it wins over the table guessed from the path.
	r.Table, r.Chain = ev.NFTable, ev.NFChain
	b.path(ev, r)
	return r
}

// lastPacketStep is the last step that saw the packet itself (route steps
// carry a lookup key instead).
func lastPacketStep(ev *event.Event) *event.Step {
	for i := len(ev.Path) - 1; i >= 0; i-- {
		if p := ev.Path[i].Point; p != event.PointFIBLookup && p != event.PointFIBValidate {
			return &ev.Path[i]
		}
	}
	return nil
}

func (b *Builder) netns(inode uint32) string {
	if b.Names.Netns == nil || inode == 0 {
		return ""
	}
	return b.Names.Netns(inode)
}

func (b *Builder) pod(inode uint32) (ns, name, uid string) {
	if b.Names.Pod == nil || inode == 0 {
		return "", "", ""
	}
	ns, name, uid, _ = b.Names.Pod(inode)
	return ns, name, uid
}

func (b *Builder) device(netns, ifindex uint32) string {
	if ifindex == 0 || b.Names.Device == nil {
		return ""
	}
	return b.Names.Device(netns, ifindex)
}

// path renders the steps and finds the translations between them.
func (b *Builder) path(ev *event.Event, r *Report) {
	var prev *event.Step
	for i := range ev.Path {
		s := &ev.Path[i]
		st := Step{Where: b.where(s), Netns: s.Netns, NetnsName: b.netns(s.Netns), Iface: b.device(s.Netns, s.Ifindex),
			Src: b.addr(s.Tuple.Src), Dst: b.addr(s.Tuple.Dst), Sport: s.Tuple.Sport, Dport: s.Tuple.Dport, Detail: b.detail(s)}
		st.PodNS, st.Pod, st.PodUID = b.pod(s.Netns)
		r.Path = append(r.Path, st)
		if s.Point == event.PointFIBLookup || s.Point == event.PointFIBValidate {
			continue // their tuple is a lookup key, not the packet
		}
		if prev != nil && sameHook(prev, s) && translated(prev.Tuple, s.Tuple) {
			r.NAT = append(r.NAT, NAT{Hook: st.Where, NetnsName: st.NetnsName,
				Before: Tuple(b.addr(prev.Tuple.Src), prev.Tuple.Sport) + " > " + Tuple(b.addr(prev.Tuple.Dst), prev.Tuple.Dport),
				After:  Tuple(st.Src, st.Sport) + " > " + Tuple(st.Dst, st.Dport),
				By:     b.natBy(s.CtInfo)})
		}
		prev = s
	}
	markICMPErrors(ev, r)
	// nf_hook_slow frees a packet its hook drops before returning, so the
	// verdict of a drop's last hook is never seen: the drop is it.
	if n := len(r.Path); n > 0 && ev.Kind == event.KindDrop && ev.Path[n-1].Point == event.PointNFHook &&
		ev.Path[n-1].Ret == event.VerdictPending {
		r.Path[n-1].Detail = "dropped"
	}
}

// A rule translates only the first packet of a connection; conntrack
// applies the same translation to every later packet and to replies.
func (b *Builder) natBy(ctinfo uint8) string {
	if ctinfo == 0 || b.Names.Enums == nil {
		return "rule"
	}
	if b.Names.Enums.CtInfo[ctinfo-1] == "new" {
		return "rule"
	}
	return "conntrack (" + b.Names.Enums.CtInfo[ctinfo-1] + ")"
}

// sameHook: only netfilter translates, and the probes record a translation
// as a second step of the hook that made it. Headers that change anywhere
// else are a tunnel adding or removing its outer header (IPIP, VXLAN), not
// NAT.
func sameHook(a, b *event.Step) bool {
	isNF := func(p event.Point) bool { return p == event.PointNFHook || p == event.PointNFLink }
	return isNF(a.Point) && isNF(b.Point) && a.Hook == b.Hook && a.Netns == b.Netns
}

func translated(a, b event.Tuple) bool {
	if a.Family == 0 || b.Family == 0 || a.Family != b.Family {
		return false
	}
	return a.Src != b.Src || a.Dst != b.Dst || a.Sport != b.Sport || a.Dport != b.Dport
}

func (b *Builder) where(s *event.Step) string {
	switch s.Point {
	case event.PointNFHook, event.PointNFLink:
		if b.Names.Enums != nil {
			if h, ok := b.Names.Enums.Hook[s.Hook]; ok {
				return h
			}
		}
		return "hook " + strconv.Itoa(int(s.Hook))
	}
	return s.Point.String()
}

func (b *Builder) detail(s *event.Step) string {
	switch s.Point {
	case event.PointNFLink:
		if b.Names.Table == nil {
			return ""
		}
		if t := b.Names.Table(s.Prio); t != "" {
			return "reached table " + t
		}
		return "accepted"
	case event.PointNFHook:
		switch {
		case s.Ret == event.VerdictPending:
			return "no verdict seen"
		case s.Ret == 1:
			return "accepted"
		case s.Ret == 0:
			return "stolen or queued"
		default:
			return "dropped"
		}
	case event.PointFIBLookup:
		tbl := TableName(uint32(s.Prio))
		if s.Ret != 0 {
			return fmt.Sprintf("table %s: %s", tbl, FIBError(s.Ret))
		}
		if dev := b.device(s.Netns, s.Aux); dev != "" {
			return fmt.Sprintf("table %s: via %s", tbl, dev)
		}
		return "table " + tbl
	case event.PointFIBValidate:
		return "reverse path check failed: " + rpError(s.Ret)
	}
	return ""
}

func (b *Builder) addr(a netip.Addr) string {
	if b.Names.Addr != nil && a.IsValid() {
		return b.Names.Addr(a)
	}
	return addr(a)
}

// addr takes netip.Addr itself: an interface parameter would box (and
// allocate) each address on its way in, twice per path step.
func addr(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

// TCPFlags renders the flags byte as "SYN,ACK".
func TCPFlags(f uint8) string {
	names := []string{"FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"}
	var out []string
	for i, n := range names {
		if f&(1<<i) != 0 {
			out = append(out, n)
		}
	}
	return strings.Join(out, ",")
}
