package cause_test

import (
	"net"
	"testing"

	"github.com/pktdrop/pktdrop/internal/cause"
	"github.com/pktdrop/pktdrop/internal/netns"
	"github.com/pktdrop/pktdrop/internal/recorded"
	"github.com/pktdrop/pktdrop/internal/report"
	"golang.org/x/sys/unix"
)

// policySystem answers PolicyRoute with a fixed decision.
type policySystem struct {
	*recorded.System
	d netns.Decision
}

func (p policySystem) PolicyRoute(uint32, netns.Query) (netns.Decision, error) { return p.d, nil }

func TestRouteTypes(t *testing.T) {
	_, pod, _ := net.ParseCIDR("10.0.9.0/24")
	main := netns.Rule{Priority: 32766, Action: unix.FR_ACT_TO_TBL, Table: unix.RT_TABLE_MAIN, SuppressPrefixlen: -1}
	_, from, _ := net.ParseCIDR("10.0.1.0/24")
	custom := netns.Rule{Priority: 1000, Action: unix.FR_ACT_TO_TBL, Table: 100, Src: from, SuppressPrefixlen: -1}
	route := func(typ, table int) *netns.RouteEntry { return &netns.RouteEntry{Type: typ, Prefix: pod, Table: table} }
	cases := []struct {
		name   string
		detail string // the failed lookup on the path
		d      netns.Decision
		want   expect
	}{{
		name: "blackhole", detail: "table main: blackhole route (EINVAL)",
		d: netns.Decision{Rule: &main, Route: route(unix.RTN_BLACKHOLE, unix.RT_TABLE_MAIN)},
		want: expect{cause: "blackhole_route", explanation: []string{"blackhole 10.0.9.0/24", "got nothing"},
			hint:     []string{"ip route del blackhole 10.0.9.0/24 table main"},
			evidence: map[string]string{"route_type": "blackhole", "route_prefix": "10.0.9.0/24", "route_table": "main"}},
	}, {
		name: "prohibit chosen by a rule", detail: "table 100: prohibit route (EACCES)",
		d: netns.Decision{Rule: &custom, Route: route(unix.RTN_PROHIBIT, 100)},
		want: expect{cause: "prohibit_route", explanation: []string{"table 100 was chosen by the rule `1000: from 10.0.1.0/24 lookup 100`", "type 3 code 13"},
			hint:     []string{"ip rule del pref 1000"},
			evidence: map[string]string{"route_table": "100", "rule_priority": "1000", "rule_selector": "from 10.0.1.0/24"}},
	}, {
		name: "the kernel's answer wins over tables that changed since", detail: "table main: unreachable route (EHOSTUNREACH)",
		d:    netns.Decision{Rule: &main, Route: &netns.RouteEntry{Type: unix.RTN_UNICAST, Prefix: pod, Table: unix.RT_TABLE_MAIN}},
		want: expect{cause: "unreachable_route", explanation: []string{"host unreachable"}, noEvidence: []string{"route_prefix"}},
	}, {
		name: "throw", detail: "table main: no route here, next rule (EAGAIN)",
		d:    netns.Decision{Thrown: []netns.RouteEntry{*route(unix.RTN_THROW, unix.RT_TABLE_MAIN)}},
		want: expect{cause: "throw_route", explanation: []string{"throw 10.0.9.0/24", "net unreachable"}},
	}, {
		name: "a plain missing route stays no_route", detail: "table main: no route here, next rule (EAGAIN)",
		want: expect{cause: "no_route"},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := routerDrop("", "ip_error+0x94")
			r.Dst = "10.0.9.9"
			r.Path = append(r.Path[:1], report.Step{Where: "route", Dst: "10.0.9.9", Detail: tc.detail})
			cause.Infer(r, policySystem{system(routerNS, nil, routerRoutes...), tc.d})
			tc.want.check(t, r)
		})
	}
}
