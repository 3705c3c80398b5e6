package report_test

import (
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/pktdrop/pktdrop/internal/event"
	"github.com/pktdrop/pktdrop/internal/kenum"
	"github.com/pktdrop/pktdrop/internal/report"
)

const (
	hostNS   = 4026531840
	routerNS = 4026532176
)

// Hook and conntrack values as kenum reads them from BTF (UAPI values).
var enums = &kenum.Names{
	Hook:   map[uint8]string{0: "PREROUTING", 1: "INPUT", 2: "FORWARD", 3: "OUTPUT", 4: "POSTROUTING"},
	Family: map[uint8]string{2: "ipv4", 10: "ipv6"},
	CtInfo: map[uint8]string{0: "established", 1: "related", 2: "new", 3: "established reply", 4: "related reply"},
	Reply:  map[uint8]bool{3: true, 4: true},
}

func builder() *report.Builder {
	return &report.Builder{Boot: time.Date(2025, 6, 21, 5, 58, 30, 0, time.UTC), Names: report.Names{
		Reason:     func(v uint32) string { return map[uint32]string{7: "NETFILTER_DROP"}[v] },
		HasReasons: true,
		Symbol:     func(uint64) string { return "nf_hook_slow+0x44" },
		Netns:      func(i uint32) string { return map[uint32]string{hostNS: "host", routerNS: "router"}[i] },
		Device: func(ns, idx uint32) string {
			return map[uint32]string{1: "lo", 2: "eth0", 4: "tunl0", 5: "cni0", 6: "flannel.1"}[idx]
		},
		Enums: enums,
		Table: func(p int32) string { return map[int32]string{-101: "nat", -1: "filter"}[p] },
	}}
}

func tcp(src string, sport uint16, dst string, dport uint16) event.Tuple {
	return event.Tuple{Family: 4, Proto: 6, Src: netip.MustParseAddr(src), Dst: netip.MustParseAddr(dst),
		Sport: sport, Dport: dport, TCPFlags: 0x02}
}

func nf(hook uint8, t event.Tuple, ctinfo uint8) event.Step {
	return event.Step{Point: event.PointNFHook, Netns: hostNS, Ifindex: 5, Hook: hook, PF: 2, CtInfo: ctinfo, Ret: 1, Tuple: t}
}

func TestNATIsATupleChangeWithinOneHook(t *testing.T) {
	orig := tcp("10.42.1.5", 51234, "10.43.0.10", 80)
	dnat := tcp("10.42.1.5", 51234, "10.42.1.7", 8080)
	reply := tcp("10.42.1.7", 8080, "10.42.1.5", 51234)
	unnat := tcp("10.43.0.10", 80, "10.42.1.5", 51234)
	outer := event.Tuple{Family: 4, Proto: 4, Src: netip.MustParseAddr("192.168.10.12"),
		Dst: netip.MustParseAddr("192.168.10.11")}
	vxlan := event.Tuple{Family: 4, Proto: 17, Src: netip.MustParseAddr("192.168.56.10"),
		Dst: netip.MustParseAddr("192.168.56.11"), Sport: 41823, Dport: 8472}
	cases := []struct {
		name string
		path []event.Step
		want []report.NAT
	}{{
		name: "DNAT of a new connection by a rule",
		path: []event.Step{nf(0, orig, 0), nf(0, dnat, 3)},
		want: []report.NAT{{Hook: "PREROUTING", NetnsName: "host", Before: "10.42.1.5:51234 > 10.43.0.10:80",
			After: "10.42.1.5:51234 > 10.42.1.7:8080", By: "rule"}},
	}, {
		name: "reply un-DNATed by conntrack",
		path: []event.Step{nf(4, reply, 4), nf(4, unnat, 4)},
		want: []report.NAT{{Hook: "POSTROUTING", NetnsName: "host", Before: "10.42.1.7:8080 > 10.42.1.5:51234",
			After: "10.43.0.10:80 > 10.42.1.5:51234", By: "conntrack (established reply)"}},
	}, {
		name: "untracked packet counts as a rule",
		path: []event.Step{nf(3, orig, 0), nf(3, dnat, 0)},
		want: []report.NAT{{Hook: "OUTPUT", NetnsName: "host", Before: "10.42.1.5:51234 > 10.43.0.10:80",
			After: "10.42.1.5:51234 > 10.42.1.7:8080", By: "rule"}},
	}, {
		name: "NF_LINK brackets of one hook",
		path: []event.Step{{Point: event.PointNFLink, Netns: hostNS, Hook: 0, Prio: -101, Tuple: orig},
			{Point: event.PointNFLink, Netns: hostNS, Hook: 0, Prio: -1, CtInfo: 3, Tuple: dnat}},
		want: []report.NAT{{Hook: "PREROUTING", NetnsName: "host", Before: "10.42.1.5:51234 > 10.43.0.10:80",
			After: "10.42.1.5:51234 > 10.42.1.7:8080", By: "rule"}},
	}, {
		name: "IPIP decapsulation is not NAT",
		path: []event.Step{nf(1, outer, 3), {Point: event.PointNetifReceive, Netns: hostNS, Ifindex: 4,
			Tuple: tcp("10.244.2.15", 48022, "10.244.1.23", 80)}},
	}, {
		name: "VXLAN encapsulation is not NAT",
		path: []event.Step{{Point: event.PointDevXmit, Netns: hostNS, Ifindex: 6, Tuple: dnat}, nf(3, vxlan, 0)},
	}, {
		name: "same tuple in two hooks",
		path: []event.Step{nf(0, dnat, 3), nf(2, dnat, 3), nf(4, dnat, 3)},
	}, {
		name: "change between different hooks is not attributed",
		path: []event.Step{nf(0, orig, 3), nf(2, dnat, 3)},
	}, {
		name: "route lookup keys are not the packet",
		path: []event.Step{nf(0, dnat, 3), {Point: event.PointFIBLookup, Netns: hostNS, Prio: 254,
			Tuple: event.Tuple{Family: 4, Proto: 6, Src: dnat.Src, Dst: dnat.Dst}}, nf(0, dnat, 3)},
	}, {
		name: "same hook in two namespaces",
		path: []event.Step{nf(0, orig, 3), func() event.Step { s := nf(0, dnat, 3); s.Netns = routerNS; return s }()},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := builder().Build(&event.Event{Kind: event.KindTrace, Netns: hostNS, Tuple: dnat, Path: tc.path})
			if len(r.NAT) != len(tc.want) {
				t.Fatalf("NAT = %+v; want %+v", r.NAT, tc.want)
			}
			for i := range tc.want {
				if r.NAT[i] != tc.want[i] {
					t.Errorf("NAT[%d] = %+v; want %+v", i, r.NAT[i], tc.want[i])
				}
			}
		})
	}
}

func TestStepDetails(t *testing.T) {
	key := event.Tuple{Family: 4, Proto: 1, Src: netip.MustParseAddr("10.0.1.2"), Dst: netip.MustParseAddr("10.0.9.9")}
	cases := []struct {
		name      string
		step      event.Step
		where     string
		iface     string
		detail    string
		wantPorts bool
	}{
		{"verdict pending at the drop", event.Step{Point: event.PointNFHook, Hook: 2, Ret: event.VerdictPending}, "FORWARD", "", "dropped", false},
		{"accepted", event.Step{Point: event.PointNFHook, Hook: 1, Ret: 1}, "INPUT", "", "accepted", false},
		{"stolen", event.Step{Point: event.PointNFHook, Hook: 1, Ret: 0}, "INPUT", "", "stolen or queued", false},
		{"dropped (-EPERM)", event.Step{Point: event.PointNFHook, Hook: 2, Ret: -1}, "FORWARD", "", "dropped", false},
		{"hook the kernel enum does not name", event.Step{Point: event.PointNFHook, Hook: 9, Ret: 1}, "hook 9", "", "accepted", false},
		{"link reached a table", event.Step{Point: event.PointNFLink, Hook: 2, Prio: -1}, "FORWARD", "", "reached table filter", false},
		{"link past every table", event.Step{Point: event.PointNFLink, Hook: 4, Prio: 101}, "POSTROUTING", "", "accepted", false},
		{"route found", event.Step{Point: event.PointFIBLookup, Ifindex: 2, Prio: 254, Aux: 6, Tuple: key}, "route", "eth0", "table main: via flannel.1", false},
		{"route in a numbered table", event.Step{Point: event.PointFIBLookup, Prio: 100, Tuple: key}, "route", "", "table 100", false},
		{"no route", event.Step{Point: event.PointFIBLookup, Prio: 254, Ret: -101, Tuple: key}, "route", "", "table main: no route, network is unreachable (ENETUNREACH)", false},
		{"no route in local", event.Step{Point: event.PointFIBLookup, Prio: 255, Ret: -11, Tuple: key}, "route", "", "table local: no route here, next rule (EAGAIN)", false},
		{"rp check", event.Step{Point: event.PointFIBValidate, Ifindex: 4, Ret: -18}, "rp_check", "tunl0", "reverse path check failed: the route back to the source leaves via another device (EXDEV)", false},
		{"plain point", event.Step{Point: event.PointIPForward, Ifindex: 5, Tuple: tcp("10.0.0.1", 1, "10.0.0.2", 2)}, "forward", "cni0", "", true},
		{"unknown point", event.Step{Point: 200}, "unknown", "", "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.step.Netns = hostNS
			r := builder().Build(&event.Event{Kind: event.KindDrop, Path: []event.Step{tc.step}})
			s := r.Path[0]
			if s.Where != tc.where || s.Iface != tc.iface || s.Detail != tc.detail || s.NetnsName != "host" {
				t.Errorf("step = %+v; want where %q iface %q detail %q in netns host", s, tc.where, tc.iface, tc.detail)
			}
			if (s.Sport != 0) != tc.wantPorts {
				t.Errorf("step ports %d>%d; want ports: %v", s.Sport, s.Dport, tc.wantPorts)
			}
		})
	}
}

// A hook whose verdict was not seen is the drop only when it is a drop's
// last step.
func TestPendingVerdictElsewhere(t *testing.T) {
	pending := event.Step{Point: event.PointNFHook, Hook: 2, Ret: event.VerdictPending, Netns: hostNS}
	for _, ev := range []event.Event{
		{Kind: event.KindTrace, Path: []event.Step{pending}},
		{Kind: event.KindDrop, Path: []event.Step{pending, {Point: event.PointIPForward, Netns: hostNS}}},
	} {
		if d := builder().Build(&ev).Path[0].Detail; d != "no verdict seen" {
			t.Errorf("kind %v, %d steps: detail %q, want %q", ev.Kind, len(ev.Path), d, "no verdict seen")
		}
	}
}

// Without the netfilter priorities (no Table func), a link step says nothing
// rather than guessing.
func TestLinkStepWithoutPriorities(t *testing.T) {
	b := builder()
	b.Names.Table = nil
	r := b.Build(&event.Event{Kind: event.KindDrop, Path: []event.Step{{Point: event.PointNFLink, Hook: 2, Prio: -1}}})
	if r.Path[0].Detail != "" {
		t.Errorf("detail = %q; want none", r.Path[0].Detail)
	}
}

func TestBuildHeader(t *testing.T) {
	ev := &event.Event{Kind: event.KindDrop, Mono: uint64(90 * time.Second), Location: 0xffffffff81acf7f4, Reason: 7,
		Netns: routerNS, Ifindex: 2, Len: 60, Mark: 0x4000, StepsLost: 3,
		Tuple: event.Tuple{Family: 4, Proto: 6, Src: netip.MustParseAddr("10.0.1.2"), Dst: netip.MustParseAddr("10.0.2.2"),
			Sport: 40112, Dport: 80, TCPFlags: 0x12, ICMPType: 8, ICMPID: 5}}
	r := builder().Build(ev)
	want := report.Report{Time: time.Date(2025, 6, 21, 5, 60, 0, 0, time.UTC), Kind: "drop", Reason: "NETFILTER_DROP",
		Location: "nf_hook_slow+0x44", Netns: routerNS, NetnsName: "router", Iface: "eth0", Ifindex: 2,
		Family: "ipv4", Proto: "tcp", Src: "10.0.1.2", Dst: "10.0.2.2", Sport: 40112, Dport: 80, TCPFlags: "SYN,ACK",
		Len: 60, Mark: 0x4000, StepsLost: 3}
	// ICMP fields of a TCP tuple are leftovers of the parser, not data;
	// path and nat are empty lists so JSON has [] rather than null.
	want.Path, want.NAT = []report.Step{}, []report.NAT{}
	if !reflect.DeepEqual(*r, want) {
		t.Errorf("Build:\n got %+v\nwant %+v", *r, want)
	}
}

func TestBuildNamesOnlyWhatTheKernelTold(t *testing.T) {
	cases := []struct {
		name  string
		ev    event.Event
		names func(*report.Names)
		check func(*report.Report) string
	}{
		{"no reasons on this kernel", event.Event{Kind: event.KindDrop, Reason: 7},
			func(n *report.Names) { n.HasReasons = false },
			func(r *report.Report) string { return r.Reason }},
		{"a trace has no reason", event.Event{Kind: event.KindTrace, Reason: 7}, nil,
			func(r *report.Report) string { return r.Reason }},
		{"no location", event.Event{Kind: event.KindDrop}, nil,
			func(r *report.Report) string { return r.Location }},
		{"no netns", event.Event{Kind: event.KindDrop}, nil,
			func(r *report.Report) string { return r.NetnsName }},
		{"non-IP packet has no family or proto", event.Event{Kind: event.KindDrop, Tuple: event.Tuple{Proto: 6}}, nil,
			func(r *report.Report) string { return r.Family + r.Proto + r.TCPFlags }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := builder()
			if tc.names != nil {
				tc.names(&b.Names)
			}
			if got := tc.check(b.Build(&tc.ev)); got != "" {
				t.Errorf("got %q; want nothing", got)
			}
		})
	}
}

func TestIfnameFromEventWinsOverLookup(t *testing.T) {
	r := builder().Build(&event.Event{Kind: event.KindDrop, Netns: hostNS, Ifindex: 2, Ifname: "eth0.100"})
	if r.Iface != "eth0.100" {
		t.Errorf("iface = %q; want the name the kernel sent", r.Iface)
	}
	r = builder().Build(&event.Event{Kind: event.KindDrop, Netns: hostNS, Ifindex: 4})
	if r.Iface != "tunl0" {
		t.Errorf("iface = %q; want tunl0 looked up by ifindex", r.Iface)
	}
}

func TestNames(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{report.Family(4), "ipv4"}, {report.Family(6), "ipv6"}, {report.Family(0), ""},
		{report.Proto(1, 4), "icmp"}, {report.Proto(58, 6), "icmp6"}, {report.Proto(47, 4), "gre"},
		{report.Proto(253, 4), "253"}, {report.Proto(6, 0), ""},
		{report.TableName(254), "main"}, {report.TableName(255), "local"}, {report.TableName(253), "default"},
		{report.TableName(100), "100"},
		{report.Errno(-101), "ENETUNREACH"}, {report.Errno(-18), "EXDEV"}, {report.Errno(0), "0"},
		{report.Errno(-4095), "errno 4095"}, {report.Errno(-1), "EPERM"},
		{report.TCPFlags(0), ""}, {report.TCPFlags(0x02), "SYN"}, {report.TCPFlags(0xff), "FIN,SYN,RST,PSH,ACK,URG,ECE,CWR"},
		{report.Tuple("10.0.0.1", 80), "10.0.0.1:80"}, {report.Tuple("fd00::1", 443), "[fd00::1]:443"},
		{report.Tuple("10.0.0.1", 0), "10.0.0.1"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q; want %q", tc.got, tc.want)
		}
	}
}
