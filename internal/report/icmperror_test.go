package report_test

import (
	"net/netip"
	"testing"

	"github.com/pktdrop/pktdrop/internal/event"
)

func TestICMPErrorLookupsAreNotThePacket(t *testing.T) {
	a := netip.MustParseAddr
	pkt := event.Tuple{Family: 4, Proto: 1, Src: a("10.0.1.2"), Dst: a("10.0.9.9")}
	key := func(src, dst string) event.Tuple { return event.Tuple{Family: 4, Proto: 1, Src: a(src), Dst: a(dst)} }
	recv := event.Step{Point: event.PointNetifReceive, Netns: routerNS, Ifindex: 2, Tuple: pkt}
	fib := func(t event.Tuple, ret int32, table int32) event.Step {
		return event.Step{Point: event.PointFIBLookup, Netns: routerNS, Ifindex: 1, Prio: table, Ret: ret, Aux: 2, Tuple: t}
	}
	cases := []struct {
		name  string
		path  []event.Step
		where []string
	}{{
		name: "ip_error answers a failed lookup",
		path: []event.Step{recv, fib(key("10.0.1.2", "10.0.9.9"), -113, 254), fib(key("0.0.0.0", "10.0.1.2"), 0, 254),
			fib(key("10.0.1.1", "10.0.1.2"), 0, 255)},
		where: []string{"receive", "route", "icmp_error"},
	}, {
		name: "time exceeded after a good lookup: the reverse relookup is part of it",
		path: []event.Step{recv, fib(key("10.0.1.2", "10.0.9.9"), 0, 254), fib(key("0.0.0.0", "10.0.1.2"), 0, 254),
			fib(key("10.0.9.9", "10.0.1.2"), 0, 254)},
		where: []string{"receive", "route", "icmp_error"},
	}, {
		name:  "the reverse-path check is the packet's own",
		path:  []event.Step{recv, fib(key("10.0.1.2", "10.0.9.9"), 0, 254), fib(key("10.0.9.9", "10.0.1.2"), 0, 254)},
		where: []string{"receive", "route", "route"},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := builder().Build(&event.Event{Kind: event.KindDrop, Netns: routerNS, Tuple: pkt, Path: tc.path})
			var got []string
			for _, s := range r.Path {
				got = append(got, s.Where)
			}
			if len(got) != len(tc.where) {
				t.Fatalf("path %v, want %v", got, tc.where)
			}
			for i := range got {
				if got[i] != tc.where[i] {
					t.Fatalf("path %v, want %v", got, tc.where)
				}
			}
			if last := r.Path[len(r.Path)-1]; last.Where == "icmp_error" && last.Detail != "ICMP error sent back to 10.0.1.2 via eth0 (table main)" {
				t.Errorf("icmp_error detail %q", last.Detail)
			}
		})
	}
}
