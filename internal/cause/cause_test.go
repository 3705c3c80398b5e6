package cause_test

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/pktdrop/pktdrop/internal/cause"
	"github.com/pktdrop/pktdrop/internal/recorded"
	"github.com/pktdrop/pktdrop/internal/report"
)

const (
	nodeNS   = 4026531840
	routerNS = 4026532176
	clientNS = 4026532257
)

// system is a fake netns with these sysctls (keys as /proc/sys paths) and
// routes; other namespaces do not exist, so a lookup in the wrong netns
// fails the test's expectations.
func system(inode uint32, sysctl map[string]string, routes ...recorded.Route) *recorded.System {
	return &recorded.System{Netns: map[uint32]*recorded.Netns{inode: {Sysctl: sysctl, Routes: routes}}}
}

// calicoNode: a packet from remote pod 10.244.2.15 arrives on tunl0; the
// route back leaves via eth0 unless the test adds one via tunl0.
func calicoNode(all, dev string, extra ...recorded.Route) *recorded.System {
	s := map[string]string{}
	if all != "" {
		s["net/ipv4/conf/all/rp_filter"] = all
	}
	if dev != "" {
		s["net/ipv4/conf/tunl0/rp_filter"] = dev
	}
	routes := append([]recorded.Route{{Dst: "0.0.0.0/0", Gateway: "192.168.10.1", Dev: "eth0"},
		{Dst: "192.168.10.0/24", Dev: "eth0"}}, extra...)
	return system(nodeNS, s, routes...)
}

var viaTunl0 = recorded.Route{Dst: "10.244.2.0/26", Gateway: "192.168.10.12", Dev: "tunl0"}

func tunl0Drop(reason, location string) *report.Report {
	return &report.Report{Kind: "drop", Reason: reason, Location: location, Netns: nodeNS, NetnsName: "host",
		Iface: "tunl0", Family: "ipv4", Proto: "tcp", Src: "10.244.2.15", Dst: "10.244.1.23", Sport: 48022, Dport: 80}
}

// expect holds what a test checks after Infer: exact cause, substrings
// that must (and must not) appear, and evidence entries.
type expect struct {
	cause       string
	explanation []string
	hint        []string
	notHint     []string
	notExpl     []string
	evidence    map[string]string
	noEvidence  []string
}

func (e expect) check(t *testing.T, r *report.Report) {
	t.Helper()
	if r.Cause != e.cause {
		t.Errorf("cause = %q; want %q (explanation: %s)", r.Cause, e.cause, r.Explanation)
	}
	for _, s := range e.explanation {
		if !strings.Contains(r.Explanation, s) {
			t.Errorf("explanation %q lacks %q", r.Explanation, s)
		}
	}
	for _, s := range e.notExpl {
		if strings.Contains(r.Explanation, s) {
			t.Errorf("explanation %q must not contain %q", r.Explanation, s)
		}
	}
	for _, s := range e.hint {
		if !strings.Contains(r.Hint, s) {
			t.Errorf("hint %q lacks %q", r.Hint, s)
		}
	}
	for _, s := range e.notHint {
		if strings.Contains(r.Hint, s) {
			t.Errorf("hint %q must not contain %q", r.Hint, s)
		}
	}
	for k, v := range e.evidence {
		if got, ok := r.Evidence[k]; !ok || got != v {
			t.Errorf("evidence[%q] = %q (present %v); want %q; all: %v", k, got, ok, v, r.Evidence)
		}
	}
	for _, k := range e.noEvidence {
		if _, ok := r.Evidence[k]; ok {
			t.Errorf("evidence has %q = %q; want none", k, r.Evidence[k])
		}
	}
}

func TestRPFilter(t *testing.T) {
	cases := []struct {
		name string
		sys  *recorded.System
		want expect
	}{{
		name: "conf.all strict wins over a device at 0",
		sys:  calicoNode("1", "0"),
		want: expect{cause: "rp_filter",
			explanation: []string{"on tunl0 in netns host", "rp_filter is strict (1) for tunl0",
				"the larger of net.ipv4.conf.all.rp_filter=1 and net.ipv4.conf.tunl0.rp_filter=0",
				"the route back to 10.244.2.15 leaves via eth0, not tunl0"},
			hint: []string{"sysctl -w net.ipv4.conf.tunl0.rp_filter=2", "sysctl -w net.ipv4.conf.all.rp_filter=2",
				"the larger value applies", "replies to 10.244.2.15 leave via tunl0"},
			evidence: map[string]string{"net.ipv4.conf.all.rp_filter": "1", "net.ipv4.conf.tunl0.rp_filter": "0",
				"route_back": "10.244.2.15 via 192.168.10.1 dev eth0 table main"}},
	}, {
		name: "device loose over conf.all off; no conf.all in the hint",
		sys:  calicoNode("0", "2"),
		want: expect{cause: "rp_filter",
			explanation: []string{"rp_filter is loose (2) for tunl0"},
			hint:        []string{"sysctl -w net.ipv4.conf.tunl0.rp_filter=2"},
			notHint:     []string{"conf.all"}},
	}, {
		name: "conf.all loose over a strict device",
		sys:  calicoNode("2", "1"),
		want: expect{cause: "rp_filter", explanation: []string{"rp_filter is loose (2) for tunl0"},
			hint: []string{"net.ipv4.conf.all.rp_filter=2"}},
	}, {
		name: "route back via the same device",
		sys:  calicoNode("1", "1", viaTunl0),
		want: expect{cause: "rp_filter", explanation: []string{"the route back to 10.244.2.15 uses tunl0"},
			notExpl:  []string{"not tunl0"},
			evidence: map[string]string{"route_back": "10.244.2.15 via 192.168.10.12 dev tunl0 table main"}},
	}, {
		name: "no route back at all",
		sys:  system(nodeNS, map[string]string{"net/ipv4/conf/all/rp_filter": "1", "net/ipv4/conf/tunl0/rp_filter": "1"}),
		want: expect{cause: "rp_filter", explanation: []string{"there is no route back to 10.244.2.15"},
			noEvidence: []string{"route_back"}},
	}, {
		name: "sysctls unreadable: no mode claimed, no conf.all advice",
		sys:  calicoNode("", ""),
		want: expect{cause: "rp_filter", notExpl: []string{"rp_filter is"}, notHint: []string{"conf.all"},
			hint: []string{"net.ipv4.conf.tunl0.rp_filter=2"}},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := tunl0Drop("IP_RPFILTER", "ip_rcv_finish_core+0x1c1")
			cause.Infer(r, tc.sys)
			tc.want.check(t, r)
		})
	}
}

// sysctl spells a dot in a device name as a slash; /proc/sys keeps the dot.
func TestRPFilterDeviceWithDot(t *testing.T) {
	sys := system(nodeNS, map[string]string{"net/ipv4/conf/all/rp_filter": "0", "net/ipv4/conf/flannel.1/rp_filter": "1"},
		recorded.Route{Dst: "0.0.0.0/0", Gateway: "192.168.56.1", Dev: "eth0"})
	r := &report.Report{Kind: "drop", Reason: "IP_RPFILTER", Netns: nodeNS, NetnsName: "host", Iface: "flannel.1",
		Family: "ipv4", Src: "10.42.0.5", Dst: "10.42.1.7"}
	cause.Infer(r, sys)
	expect{cause: "rp_filter",
		explanation: []string{"rp_filter is strict (1) for flannel.1", "net.ipv4.conf.flannel/1.rp_filter=1"},
		hint:        []string{"sysctl -w net.ipv4.conf.flannel/1.rp_filter=2", "use loose mode on flannel.1"},
		notHint:     []string{"conf.flannel.1"},
		evidence:    map[string]string{"net.ipv4.conf.flannel/1.rp_filter": "1"},
		noEvidence:  []string{"net.ipv4.conf.flannel.1.rp_filter"},
	}.check(t, r)
}

// Before 5.17 an rp_filter drop is an unexplained kfree_skb in
// ip_rcv_finish_core; only strict mode with the route back elsewhere, or
// no route back, is blamed on rp_filter.
func TestReceiveFinishWithoutReason(t *testing.T) {
	cases := []struct {
		name    string
		sys     *recorded.System
		rpCheck bool
		cause   string
	}{
		{"rp_check step on the path", calicoNode("0", "0", viaTunl0), true, "rp_filter"},
		{"strict, route back via eth0", calicoNode("1", "0"), false, "rp_filter"},
		{"strict, route back via tunl0", calicoNode("1", "1", viaTunl0), false, "input_route"},
		{"loose, route back via eth0", calicoNode("0", "2"), false, "input_route"},
		{"loose, no route back", system(nodeNS, map[string]string{"net/ipv4/conf/all/rp_filter": "2",
			"net/ipv4/conf/tunl0/rp_filter": "2"}), false, "rp_filter"},
		{"off", calicoNode("0", "0"), false, "input_route"},
		{"sysctls unreadable", calicoNode("", ""), false, "input_route"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := tunl0Drop("", "ip_rcv_finish_core.constprop.0+0x1c1")
			r.Path = []report.Step{{Where: "receive", Netns: nodeNS, Iface: "tunl0"}}
			if tc.rpCheck {
				r.Path = append(r.Path, report.Step{Where: "rp_check", Netns: nodeNS, Iface: "tunl0",
					Detail: "reverse path check failed (EXDEV)"})
			}
			cause.Infer(r, tc.sys)
			want := expect{cause: tc.cause}
			if tc.cause == "input_route" {
				want.explanation = []string{"dropped while routing the incoming packet", "on tunl0 in netns host"}
				want.hint = []string{"ip route get 10.244.1.23 from 10.244.2.15 iif tunl0"}
			}
			want.check(t, r)
		})
	}
}

func routerDrop(reason, location string) *report.Report {
	return &report.Report{Kind: "drop", Reason: reason, Location: location, Netns: routerNS, NetnsName: "router",
		Iface: "veth-rc", Family: "ipv4", Proto: "icmp", Src: "10.0.1.2", Dst: "10.0.2.2",
		Path: []report.Step{{Where: "receive", Netns: routerNS, Iface: "veth-rc"},
			{Where: "route", Netns: routerNS, Iface: "veth-rc", Detail: "table main: via veth-rs"}}}
}

var routerRoutes = []recorded.Route{{Dst: "10.0.1.0/24", Dev: "veth-rc"}, {Dst: "10.0.2.0/24", Dev: "veth-rs"}}

func forwarding(global, dev string) *recorded.System {
	s := map[string]string{}
	if global != "" {
		s["net/ipv4/ip_forward"] = global
	}
	if dev != "" {
		s["net/ipv4/conf/veth-rc/forwarding"] = dev
	}
	return system(routerNS, s, routerRoutes...)
}

func TestForwardingDisabled(t *testing.T) {
	cases := []struct {
		name   string
		reason string
		loc    string
		sys    *recorded.System
		want   expect
	}{{
		name: "ip_forward=0", reason: "IP_INADDRERRORS", sys: forwarding("0", "0"),
		want: expect{cause: "forwarding_disabled",
			explanation: []string{"the packet to 10.0.2.2 needed forwarding", "disabled for veth-rc in netns router",
				"net.ipv4.ip_forward=0", "net.ipv4.conf.veth-rc.forwarding=0"},
			hint:     []string{"sysctl -w net.ipv4.ip_forward=1", "/etc/sysctl.d/"},
			evidence: map[string]string{"net.ipv4.ip_forward": "0", "net.ipv4.conf.veth-rc.forwarding": "0"}},
	}, {
		// Writing ip_forward=1 when it is already 1 changes nothing in
		// the kernel, so the hint must name the device's switch.
		name: "only conf.<dev>.forwarding=0", reason: "IP_INADDRERRORS", sys: forwarding("1", "0"),
		want: expect{cause: "forwarding_disabled",
			explanation: []string{"net.ipv4.ip_forward=1", "net.ipv4.conf.veth-rc.forwarding=0"},
			hint:        []string{"sysctl -w net.ipv4.conf.veth-rc.forwarding=1"},
			notHint:     []string{"net.ipv4.ip_forward=1"}},
	}, {
		name: "only ip_forward readable", reason: "IP_INADDRERRORS", sys: forwarding("0", ""),
		want: expect{cause: "forwarding_disabled", hint: []string{"sysctl -w net.ipv4.ip_forward=1"}},
	}, {
		name: "forwarding on: a bad destination", reason: "IP_INADDRERRORS", sys: forwarding("1", "1"),
		want: expect{cause: "bad_destination", explanation: []string{"the destination 10.0.2.2 is not valid here"},
			hint: []string{"ip route get 10.0.2.2 from 10.0.1.2 iif veth-rc"}},
	}, {
		name: "sysctls unreadable: not blamed on forwarding", reason: "IP_INADDRERRORS", sys: forwarding("", ""),
		want: expect{cause: "bad_destination"},
	}, {
		name: "no reason, ip_error, forwarding off", loc: "ip_error+0x94", sys: forwarding("0", "0"),
		want: expect{cause: "forwarding_disabled", hint: []string{"net.ipv4.ip_forward=1"}},
	}, {
		name: "no reason, ip_error, forwarding on: no route", loc: "ip_error+0x94", sys: forwarding("1", "1"),
		want: expect{cause: "no_route"},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := routerDrop(tc.reason, tc.loc)
			cause.Infer(r, tc.sys)
			tc.want.check(t, r)
		})
	}
}

func TestForwardingDisabledIPv6(t *testing.T) {
	sys := system(routerNS, map[string]string{"net/ipv6/conf/all/forwarding": "0", "net/ipv6/conf/veth-rc/forwarding": "0"})
	r := routerDrop("", "ip_error+0x94")
	r.Family, r.Src, r.Dst = "ipv6", "fd00:1::2", "fd00:2::2"
	cause.Infer(r, sys)
	expect{cause: "forwarding_disabled", explanation: []string{"net.ipv6.conf.all.forwarding=0"},
		hint: []string{"sysctl -w net.ipv6.conf.all.forwarding=1"}}.check(t, r)
}

func TestNoRoute(t *testing.T) {
	cases := []struct {
		name string
		path []report.Step
		sys  *recorded.System
		want expect
	}{{
		name: "table from the failed lookup on the path",
		path: []report.Step{{Where: "receive"}, {Where: "route", Detail: "table main: no route (EAGAIN)"}},
		sys:  system(routerNS, nil, routerRoutes...),
		want: expect{cause: "no_route",
			explanation: []string{"no route to 10.0.9.9 in netns router", "(routing table main consulted)", "arriving on veth-rc"},
			hint:        []string{"add a route for 10.0.9.9 in netns router", "default route"},
			evidence:    map[string]string{"table": "main", "route_get": "route get 10.0.9.9 in netns 4026532176: network is unreachable"}},
	}, {
		name: "the last lookup counts",
		path: []report.Step{{Where: "route", Detail: "table main: via veth-rs"}, {Where: "PREROUTING", Detail: "accepted"},
			{Where: "route", Detail: "table 100: no route (ENETUNREACH)"}},
		sys:  system(routerNS, nil, routerRoutes...),
		want: expect{cause: "no_route", explanation: []string{"(routing table 100 consulted)"}, evidence: map[string]string{"table": "100"}},
	}, {
		name: "no lookup on the path",
		sys:  system(routerNS, nil, routerRoutes...),
		want: expect{cause: "no_route", notExpl: []string{"consulted"}, noEvidence: []string{"table"}},
	}, {
		name: "a route exists now (added since)",
		path: []report.Step{{Where: "route", Detail: "table main: no route (EAGAIN)"}},
		sys:  system(routerNS, nil, recorded.Route{Dst: "0.0.0.0/0", Gateway: "10.0.2.2", Dev: "veth-rs"}),
		want: expect{cause: "no_route", noEvidence: []string{"route_get"}},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := routerDrop("IP_INNOROUTES", "ip_error+0x1d5")
			r.Dst, r.Path = "10.0.9.9", tc.path
			cause.Infer(r, tc.sys)
			tc.want.check(t, r)
		})
	}
}

func fwdPath() []report.Step {
	return []report.Step{
		{Where: "OUTPUT", Netns: clientNS, Detail: "accepted"},
		{Where: "POSTROUTING", Netns: clientNS, Iface: "veth-c", Detail: "accepted"},
		{Where: "receive", Netns: routerNS, Iface: "veth-rc"},
		{Where: "PREROUTING", Netns: routerNS, Iface: "veth-rc", Detail: "accepted"},
		{Where: "route", Netns: routerNS, Detail: "table main: via veth-rs"},
		{Where: "FORWARD", Netns: routerNS, Iface: "veth-rc", Detail: "dropped"},
	}
}

func TestNetfilter(t *testing.T) {
	cases := []struct {
		name  string
		setup func(*report.Report)
		want  expect
		hook  string
		table string
	}{{
		name: "FORWARD from the last hook in the drop's netns", setup: func(*report.Report) {},
		hook: "FORWARD",
		want: expect{cause: "netfilter",
			explanation: []string{"dropped by netfilter in the FORWARD hook (ipv4)", "on veth-rc in netns router"},
			// Without the namespace's tables nothing says Docker or a
			// policy: the hint only points at the rules.
			hint:    []string{"list the FORWARD rules", "run with --rules to see the exact rule or policy"},
			notHint: []string{"DOCKER-USER", "policy is", "<dev>"}},
	}, {
		name: "a later hook in another netns is not the one",
		setup: func(r *report.Report) {
			r.Path = append(r.Path, report.Step{Where: "POSTROUTING", Netns: clientNS, Detail: "accepted"})
		},
		hook: "FORWARD", want: expect{cause: "netfilter"},
	}, {
		name: "table from a netfilter link step",
		setup: func(r *report.Report) {
			r.Path[len(r.Path)-1].Detail = "reached table filter"
		},
		hook: "FORWARD", table: "filter",
		want: expect{cause: "netfilter", explanation: []string{"in the FORWARD hook (ipv4), table filter"}},
	}, {
		name: "ipv6 uses ip6tables",
		setup: func(r *report.Report) {
			r.Family = "ipv6"
		},
		hook: "FORWARD",
		want: expect{cause: "netfilter", explanation: []string{"(ipv6)"}, hint: []string{"ip6tables-save"}},
	}, {
		name: "unknown device placeholder",
		setup: func(r *report.Report) {
			r.Iface = ""
		},
		hook: "FORWARD",
		want: expect{cause: "netfilter", hint: []string{"list the FORWARD rules"}, notHint: []string{"<dev>"}, notExpl: []string{"on "}},
	}, {
		name: "policy verdict from --rules",
		setup: func(r *report.Report) {
			r.Hook, r.Table, r.Chain, r.Verdict = "FORWARD", "filter", "FORWARD", "policy"
		},
		hook: "FORWARD", table: "filter",
		want: expect{cause: "netfilter",
			explanation: []string{"table filter, by the policy of chain FORWARD (no rule matched)"},
			hint:        []string{"policy is DROP"}, notHint: []string{"--rules", "Docker"}},
	}, {
		name: "rule verdict from --rules",
		setup: func(r *report.Report) {
			r.Hook, r.Table, r.Chain, r.Verdict = "FORWARD", "filter", "FORWARD", "rule"
			r.Rule = "-A FORWARD -s 10.0.1.0/24 -j DROP"
		},
		hook: "FORWARD", table: "filter",
		want: expect{cause: "netfilter",
			explanation: []string{"by rule -A FORWARD -s 10.0.1.0/24 -j DROP in chain FORWARD"},
			hint:        []string{"remove or change that rule"}, notHint: []string{"DOCKER-USER"}},
	}, {
		name: "table and chain from the drop probes, no verdict: --rules still helps",
		setup: func(r *report.Report) {
			r.Table, r.Chain = "filter", "FORWARD"
		},
		hook: "FORWARD", table: "filter",
		want: expect{cause: "netfilter", explanation: []string{"table filter"}, notExpl: []string{"by rule", "policy"},
			hint: []string{"list the FORWARD rules of table filter", "run with --rules"}, notHint: []string{"Docker"}},
	}, {
		name: "hook from --rules is kept",
		setup: func(r *report.Report) {
			r.Hook, r.Table = "PREROUTING", "raw"
		},
		hook: "PREROUTING", table: "raw",
		want: expect{cause: "netfilter", hint: []string{"list the PREROUTING rules of table raw"}},
	}, {
		name: "INPUT without a table names no table",
		setup: func(r *report.Report) {
			r.Path[len(r.Path)-1].Where = "INPUT"
		},
		hook: "INPUT",
		want: expect{cause: "netfilter", hint: []string{"list the INPUT rules (`nft list ruleset` or `iptables-save`)"},
			notHint: []string{"<dev>", "of table"}},
	}, {
		name: "no path: nothing invented",
		setup: func(r *report.Report) {
			r.Path = nil
		},
		want: expect{cause: "netfilter", notExpl: []string{"hook"}, hint: []string{"list the rules ("},
			notHint: []string{"<dev>"}},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := routerDrop("NETFILTER_DROP", "nf_hook_slow+0x44")
			r.Path = fwdPath()
			tc.setup(r)
			cause.Infer(r, system(routerNS, nil))
			tc.want.check(t, r)
			if r.Hook != tc.hook || r.Table != tc.table {
				t.Errorf("hook, table = %q, %q; want %q, %q", r.Hook, r.Table, tc.hook, tc.table)
			}
		})
	}
}

func TestNoSocket(t *testing.T) {
	for _, tc := range []struct {
		proto string
		port  uint16
		want  expect
	}{
		{"udp", 9999, expect{cause: "no_socket", explanation: []string{"nothing listens on udp port 9999 at 10.0.2.2 in netns server"},
			notExpl: []string{"reset"}, hint: []string{"ss -lnp", "udp port 9999"}}},
		{"tcp", 22, expect{cause: "no_socket", explanation: []string{"tcp port 22", "(the sender gets a TCP reset)"},
			hint: []string{"tcp port 22"}}},
	} {
		t.Run(tc.proto, func(t *testing.T) {
			r := &report.Report{Kind: "drop", Reason: "NO_SOCKET", NetnsName: "server", Proto: tc.proto, Dst: "10.0.2.2",
				Dport: tc.port, Family: "ipv4"}
			cause.Infer(r, system(0, nil))
			tc.want.check(t, r)
		})
	}
}

func TestFallback(t *testing.T) {
	cases := []struct {
		name, reason, location string
		want                   expect
	}{
		{"reason this build has no rule for", "UNKNOWN(999)", "tcp_v4_rcv+0x5e9",
			expect{cause: "unknown(999)", explanation: []string{"the kernel dropped it with reason UNKNOWN(999)"}}},
		{"new kernel reason", "TCP_AOFAILURE", "tcp_v4_rcv+0x5e9",
			expect{cause: "tcp_aofailure", explanation: []string{"with reason TCP_AOFAILURE"}}},
		{"no reason, location means nothing", "", "skb_release_data+0x120",
			expect{cause: "unknown", explanation: []string{"the kernel dropped it in skb_release_data+0x120 without saying why"}}},
		{"NOT_SPECIFIED, location means nothing", "NOT_SPECIFIED", "dev_hard_start_xmit+0x2d",
			expect{cause: "not_specified", explanation: []string{"with reason NOT_SPECIFIED"}}},
		{"NOT_SPECIFIED at a known location", "NOT_SPECIFIED", "__udp4_lib_rcv+0x4bc",
			expect{cause: "no_socket"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := &report.Report{Kind: "drop", Reason: tc.reason, Location: tc.location, Proto: "udp", Family: "ipv4"}
			cause.Infer(r, system(0, nil))
			tc.want.check(t, r)
		})
	}
}

func TestTraceGetsNoCause(t *testing.T) {
	r := &report.Report{Kind: "trace", Reason: "NETFILTER_DROP", Location: "nf_hook_slow+0x44"}
	cause.Infer(r, system(0, nil))
	if r.Cause != "" || r.Explanation != "" || r.Hint != "" || r.Evidence != nil {
		t.Errorf("a delivered packet got a cause: %+v", r)
	}
}

// Kernels before 5.17 give no reason; the function that freed the packet
// stands in for it.
func TestLocationWithoutReasons(t *testing.T) {
	cases := []struct {
		location string
		cause    string
	}{
		{"nft_do_chain+0x637 [nf_tables]", "netfilter"},
		{"ipt_do_table+0x3c1 [ip_tables]", "netfilter"},
		{"nf_hook_slow+0x97", "netfilter"},
		{"ip_error+0x94", "no_route"},
		{"ip6_pkt_drop+0x7c", "no_route"},
		{"__udp4_lib_rcv+0x4bc", "no_socket"},
		{"__udp6_lib_rcv+0x52a", "no_socket"},
		{"tcp_v4_rcv+0x8e1", "no_socket"},
		{"neigh_invalidate+0x8b", "neighbour"},
		{"__dev_queue_xmit+0x8a3", "queue_full"},
		{"enqueue_to_backlog+0x10c", "queue_full"},
		{"sk_filter_trim_cap+0x1d1", "socket_filter"},
		{"__udp_queue_rcv_skb+0x71", "socket_buffer_full"},
		{"ip_rcv_finish_core.constprop.0+0x1c1", "input_route"},
		// Another function that only shares a prefix is not a match.
		{"ip_error_extra+0x10", "unknown"},
	}
	for _, tc := range cases {
		t.Run(tc.location, func(t *testing.T) {
			r := routerDrop("", tc.location)
			cause.Infer(r, forwarding("1", "1"))
			if r.Cause != tc.cause {
				t.Errorf("cause = %q; want %q (%s)", r.Cause, tc.cause, r.Explanation)
			}
		})
	}
}

// Every reason with a fixed text gets all three parts.
func TestFixedReasonsAreComplete(t *testing.T) {
	fixed := map[string]string{
		"OTHERHOST": "otherhost", "TCP_CSUM": "checksum", "UDP_CSUM": "checksum", "IP_CSUM": "checksum",
		"ICMP_CSUM": "checksum", "SOCKET_RCVBUFF": "socket_buffer_full", "PROTO_MEM": "socket_buffer_full",
		"SOCKET_BACKLOG": "socket_buffer_full", "NEIGH_FAILED": "neighbour", "NEIGH_QUEUEFULL": "neighbour",
		"NEIGH_DEAD": "neighbour", "NEIGH_CREATEFAIL": "neighbour", "IP_OUTNOROUTES": "no_route", "PKT_TOO_BIG": "mtu",
		"IP_INHDR": "bad_header", "QDISC_DROP": "queue_full", "CPU_BACKLOG": "queue_full", "TC_INGRESS": "tc",
		"TC_EGRESS": "tc", "XDP": "xdp", "SOCKET_FILTER": "socket_filter", "IPV6DISABLED": "ipv6_disabled",
		"UNHANDLED_PROTO": "unhandled_proto", "IP_NOPROTO": "unhandled_proto",
	}
	for _, reason := range slices.Sorted(maps.Keys(fixed)) {
		r := &report.Report{Kind: "drop", Reason: reason}
		cause.Infer(r, system(0, nil))
		if r.Cause != fixed[reason] || r.Explanation == "" || r.Hint == "" {
			t.Errorf("%s: cause %q (want %q), explanation %q, hint %q", reason, r.Cause, fixed[reason], r.Explanation, r.Hint)
		}
	}
}
