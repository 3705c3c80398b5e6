package bench

import (
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pktdrop/pktdrop/internal/cause"
	"github.com/pktdrop/pktdrop/internal/event"
	"github.com/pktdrop/pktdrop/internal/netns"
	"github.com/pktdrop/pktdrop/internal/output"
	"github.com/pktdrop/pktdrop/internal/report"
)

type noSystem struct{}

func (noSystem) Sysctl(uint32, string) (string, error) { return "0", nil }
func (noSystem) RouteGet(uint32, net.IP, netns.RouteOptions) (netns.Route, error) {
	return netns.Route{}, nil
}

// stormEvent is what the storm's drops look like: a UDP datagram dropped
// by nftables in B's INPUT hook after six path steps.
func stormEvent() []byte {
	tup := event.Tuple{Family: 4, Proto: 17, Src: netip.MustParseAddr(addrA), Dst: netip.MustParseAddr(addrB),
		Sport: 40000, Dport: stormPort, TTL: 64}
	step := func(p event.Point, ns uint32, hook uint8, prio int32) event.Step {
		return event.Step{Mono: 1e12, Point: p, Netns: ns, Ifindex: 2, Hook: hook, PF: 2, Prio: prio, Tuple: tup}
	}
	ev := &event.Event{Kind: event.KindDrop, Mono: 1e12, Skb: 0xffff888012345678, Location: 0xffffffff81234567,
		Reason: 6, Netns: 2, Ifindex: 2, Ifname: "pdb1", Len: 60, Tuple: tup,
		Path: []event.Step{step(event.PointNFLink, 1, 3, 300), step(event.PointNFLink, 1, 4, 300),
			step(event.PointDevQueue, 1, 0, 0), step(event.PointDevXmit, 1, 0, 0),
			step(event.PointNetifReceive, 2, 0, 0), step(event.PointNFLink, 2, 0, 300),
			step(event.PointFIBLookup, 2, 0, 255), step(event.PointNFLink, 2, 1, -1)}}
	return event.Encode(ev)
}

// BenchmarkPipeline is pktdrop's userspace per event, without the ring
// buffer: decode, build the report, infer the cause, write JSON.
func BenchmarkPipeline(b *testing.B) {
	raw := stormEvent()
	bld := report.Builder{Boot: time.Now(), Names: report.Names{
		Reason:     func(uint32) string { return "NETFILTER_DROP" },
		HasReasons: true,
		Symbol:     func(uint64) string { return "nft_do_chain+0x637" },
		Netns:      func(uint32) string { return "pdbench-b" },
		Device:     func(uint32, uint32) string { return "pdb1" },
		Table:      func(int32) string { return "filter" },
		Addr:       addrMemo(),
	}}
	w, err := output.New(io.Discard, "json")
	if err != nil {
		b.Fatal(err)
	}
	var ev event.Event
	b.ReportAllocs()
	for b.Loop() {
		if err := event.Decode(raw, &ev); err != nil {
			b.Fatal(err)
		}
		r := bld.Build(&ev)
		cause.Infer(r, noSystem{})
		if err := w.Write(r); err != nil {
			b.Fatal(err)
		}
	}
}

// addrMemo is what the session gives the builder.
func addrMemo() func(netip.Addr) string {
	m := map[netip.Addr]string{}
	return func(a netip.Addr) string {
		s, ok := m[a]
		if !ok {
			s = a.String()
			m[a] = s
		}
		return s
	}
}
