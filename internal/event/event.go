// Package event turns the raw records pktdrop's BPF programs write to the
// ring buffer into Go values. It is the only place that knows their layout,
// and that layout comes from bpf/event.h through bpf2go.
package event

import (
	"fmt"
	"net/netip"
	"unsafe"

	"github.com/pktdrop/pktdrop/gen"
)

// Kind tells a drop from a packet followed to its normal end.
type Kind uint8

const (
	KindDrop  = Kind(gen.PktdropPdKindPD_KIND_DROP)
	KindTrace = Kind(gen.PktdropPdKindPD_KIND_TRACE)
)

// Facts is what the free saw of the packet's socket and copies.
type Facts uint8

const (
	FactCloned = Facts(gen.PktdropPdSkbFactPD_FACT_CLONED) // a copy of the packet was made
	FactRxSk   = Facts(gen.PktdropPdSkbFactPD_FACT_RX_SK)  // SkState is the receiving socket's
	FactSkbSk  = Facts(gen.PktdropPdSkbFactPD_FACT_SKB_SK) // SkState is the owning socket's (skb->sk)
	FactShared = Facts(gen.PktdropPdSkbFactPD_FACT_SHARED) // a copy still held the data at the free
)

// Tuple is a packet's addresses and ports as one probe saw them.
type Tuple struct {
	Family   uint8 // 4 or 6; 0 when the headers could not be read
	Proto    uint8
	Src, Dst netip.Addr
	Sport    uint16
	Dport    uint16
	ICMPType uint8
	ICMPCode uint8
	ICMPID   uint16
	ICMPSeq  uint16
	TCPFlags uint8
	TTL      uint8
}

// Step is one place a packet was seen on its way.
type Step struct {
	Mono    uint64 // CLOCK_MONOTONIC ns
	Point   Point
	Netns   uint32
	Ifindex uint32
	Hook    uint8 // NF_INET_* at netfilter points
	PF      uint8 // NFPROTO_* at netfilter points
	CtInfo  uint8 // ip_conntrack_info + 1; 0 = untracked
	Prio    int32
	Ret     int32
	Aux     uint32
	Mark    uint32
	Tuple   Tuple
}

// Event is one packet's end: a drop, or (trace) its normal consumption.
type Event struct {
	Kind      Kind
	Mono      uint64
	Skb       uint64
	Location  uint64
	Reason    uint32
	Netns     uint32
	Ifindex   uint32
	Ifname    string
	NFTable   string // table whose hook function dropped it (fexit probes)
	NFChain   string // its base chain, for nf_tables
	Mark      uint32
	Len       uint32
	CPU       uint32
	CtInfo    uint8
	SkState   uint8 // TCP state + 1 of the socket that held it; 0 = none known
	Facts     Facts
	Tuple     Tuple
	Path      []Step
	StepsLost uint8
	Packet    Packet // --snaplen: the packet's first bytes
}

// Packet is the start of a packet as the kernel held it (--snaplen).
type Packet struct {
	Data []byte // captured bytes; empty without --snaplen
	Len  uint32 // the packet's length from the same start
	MAC  bool   // Data starts at an Ethernet header, else at the IP header
}

// SnapMax is the most packet bytes an event carries.
const SnapMax = int(gen.PktdropPdSnapPD_SNAP_MAX)

var (
	rawSize    = int(unsafe.Sizeof(gen.PktdropPdEvent{}))
	stepSize   = int(unsafe.Sizeof(gen.PktdropPdStep{}))
	headerSize = int(unsafe.Offsetof(gen.PktdropPdEvent{}.Path))
	maxSteps   = len(gen.PktdropPdEvent{}.Path)
)

// Decode fills ev from one ring buffer record. The kernel sends only the
// used part of the path, so a record is a header plus whole steps, plus
// caplen packet bytes with --snaplen.
func Decode(raw []byte, ev *Event) error {
	if len(raw) < headerSize {
		return fmt.Errorf("truncated event: %d bytes, header is %d", len(raw), headerSize)
	}
	var r gen.PktdropPdEvent
	copy(unsafe.Slice((*byte)(unsafe.Pointer(&r)), rawSize), raw)
	n, capLen := int(r.Nsteps), int(r.Caplen)
	if n > maxSteps || capLen > SnapMax || r.CapMac > 1 || headerSize+n*stepSize+capLen != len(raw) {
		return fmt.Errorf("malformed event: %d path steps and %d packet bytes in %d bytes", n, capLen, len(raw))
	}
	*ev = Event{
		Kind:      Kind(r.Kind),
		Mono:      r.Ts,
		Skb:       r.Skb,
		Location:  r.Location,
		Reason:    r.Reason,
		Netns:     r.Netns,
		Ifindex:   r.Ifindex,
		Ifname:    cString(r.Ifname[:]),
		NFTable:   cString(r.NfTable[:]),
		NFChain:   cString(r.NfChain[:]),
		Mark:      r.Mark,
		Len:       r.Len,
		CPU:       r.Cpu,
		CtInfo:    r.Ctinfo,
		SkState:   r.SkState,
		Facts:     Facts(r.Facts),
		Tuple:     tuple(&r.T),
		StepsLost: r.StepsLost,
		Path:      ev.Path[:0],
		Packet:    Packet{Data: ev.Packet.Data[:0], Len: r.CapLen, MAC: r.CapMac == 1},
	}
	for i := 0; i < n; i++ {
		ev.Path = append(ev.Path, step(&r.Path[i]))
	}
	ev.Packet.Data = append(ev.Packet.Data, raw[headerSize+n*stepSize:]...)
	return nil
}

// Encode is Decode's inverse, for recorded test data and fuzzing.
func Encode(ev *Event) []byte {
	var r gen.PktdropPdEvent
	r.Kind, r.Ts, r.Skb, r.Location, r.Reason = uint8(ev.Kind), ev.Mono, ev.Skb, ev.Location, ev.Reason
	r.Netns, r.Ifindex, r.Mark, r.Len, r.Cpu, r.Ctinfo = ev.Netns, ev.Ifindex, ev.Mark, ev.Len, ev.CPU, ev.CtInfo
	// All 16 bytes, like Decode reads them: a name without a terminator
	// must come back whole (the kernel always sends one, fuzzing does not).
	for i := 0; i < len(ev.Ifname) && i < len(r.Ifname); i++ {
		r.Ifname[i] = int8(ev.Ifname[i])
	}
	putString(r.NfTable[:], ev.NFTable)
	putString(r.NfChain[:], ev.NFChain)
	r.T = rawTuple(ev.Tuple)
	r.StepsLost = ev.StepsLost
	r.SkState, r.Facts = ev.SkState, uint8(ev.Facts)
	n := min(len(ev.Path), maxSteps)
	r.Nsteps = uint8(n)
	for i := 0; i < n; i++ {
		s := ev.Path[i]
		r.Path[i] = gen.PktdropPdStep{Ts: s.Mono, Netns: s.Netns, Ifindex: s.Ifindex, Point: uint8(s.Point),
			Hook: s.Hook, Pf: s.PF, Ctinfo: s.CtInfo, Prio: s.Prio, Ret: s.Ret, Aux: s.Aux, Mark: s.Mark, T: rawTuple(s.Tuple)}
	}
	c := min(len(ev.Packet.Data), SnapMax)
	r.Caplen, r.CapLen = uint16(c), ev.Packet.Len
	if ev.Packet.MAC {
		r.CapMac = 1
	}
	b := unsafe.Slice((*byte)(unsafe.Pointer(&r)), rawSize)
	return append(append([]byte(nil), b[:headerSize+n*stepSize]...), ev.Packet.Data[:c]...)
}

func step(s *gen.PktdropPdStep) Step {
	return Step{Mono: s.Ts, Point: Point(s.Point), Netns: s.Netns, Ifindex: s.Ifindex, Hook: s.Hook, PF: s.Pf,
		CtInfo: s.Ctinfo, Prio: s.Prio, Ret: s.Ret, Aux: s.Aux, Mark: s.Mark, Tuple: tuple(&s.T)}
}

func tuple(t *gen.PktdropPdTuple) Tuple {
	out := Tuple{Family: t.Family, Proto: t.Proto, Sport: t.Sport, Dport: t.Dport, ICMPType: t.IcmpType,
		ICMPCode: t.IcmpCode, ICMPID: t.IcmpId, ICMPSeq: t.IcmpSeq, TCPFlags: t.TcpFlags, TTL: t.Ttl}
	switch t.Family {
	case 4:
		out.Src = netip.AddrFrom4([4]byte(t.Saddr[:4]))
		out.Dst = netip.AddrFrom4([4]byte(t.Daddr[:4]))
	case 6:
		out.Src = netip.AddrFrom16(t.Saddr)
		out.Dst = netip.AddrFrom16(t.Daddr)
	}
	return out
}

func rawTuple(t Tuple) gen.PktdropPdTuple {
	r := gen.PktdropPdTuple{Family: t.Family, Proto: t.Proto, Sport: t.Sport, Dport: t.Dport, IcmpType: t.ICMPType,
		IcmpCode: t.ICMPCode, IcmpId: t.ICMPID, IcmpSeq: t.ICMPSeq, TcpFlags: t.TCPFlags, Ttl: t.TTL}
	if t.Src.IsValid() {
		s := t.Src.As16()
		if t.Src.Is4() {
			a := t.Src.As4()
			s = [16]byte{}
			copy(s[:], a[:])
		}
		r.Saddr = s
	}
	if t.Dst.IsValid() {
		d := t.Dst.As16()
		if t.Dst.Is4() {
			a := t.Dst.As4()
			d = [16]byte{}
			copy(d[:], a[:])
		}
		r.Daddr = d
	}
	return r
}

func putString(dst []int8, s string) {
	for i := 0; i < len(s) && i < len(dst); i++ {
		dst[i] = int8(s[i])
	}
}

func cString(b []int8) string {
	out := make([]byte, 0, len(b))
	for _, c := range b {
		if c == 0 {
			break
		}
		out = append(out, byte(c))
	}
	return string(out)
}
