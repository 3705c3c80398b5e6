package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/pktdrop/pktdrop/internal/testnet"
)

// TestFilterExpr runs real drops while pktdrop watches with a pcap-filter
// expression that must, or must not, select them: the expression is
// evaluated in the kernel (bpf/expr.h), for the drop and the path steps.
func TestFilterExpr(t *testing.T) {
	type tc struct {
		name  string
		build func(testing.TB) *testnet.Scenario
		args  func(s *testnet.Scenario) []string
		want  bool
	}
	fpd, fpd6, udp, udp6, tcp := testnet.ForwardPolicyDrop, testnet.ForwardPolicyDrop6, testnet.UDPNoListener,
		testnet.UDPNoListener6, testnet.TCPNoListener
	ns := func(s *testnet.Scenario, expr string) []string {
		return []string{"watch", "--netns", s.Expect.Netns, expr}
	}
	cases := []tc{
		{"udp_dst_port", udp, func(s *testnet.Scenario) []string {
			return ns(s, fmt.Sprintf("udp and dst port %d", s.Expect.DstPort))
		}, true},
		{"udp_dst_port_other", udp, func(s *testnet.Scenario) []string {
			return ns(s, fmt.Sprintf("udp and dst port %d", s.Expect.DstPort+1))
		}, false},
		{"udp_src_port_is_not_dst", udp, func(s *testnet.Scenario) []string {
			return ns(s, fmt.Sprintf("udp and src port %d", s.Expect.DstPort))
		}, false},
		{"icmp_and_host", fpd, func(s *testnet.Scenario) []string {
			return ns(s, "icmp and host "+s.Expect.Dst)
		}, true},
		{"icmp_and_host_other", fpd, func(s *testnet.Scenario) []string {
			return ns(s, "icmp and host 10.231.1.99")
		}, false},
		{"not_icmp", fpd, func(s *testnet.Scenario) []string {
			// The host's own traffic matches "not icmp" too: limit the
			// followed packets to the scenario's, since a followed skb
			// whose address is reused unnoticed keeps being followed.
			return ns(s, "host "+s.Expect.Src+" and not icmp")
		}, false},
		{"not_udp", fpd, func(s *testnet.Scenario) []string {
			return ns(s, "host "+s.Expect.Src+" and ! udp")
		}, true},
		{"inherited_host_or", fpd, func(s *testnet.Scenario) []string {
			// `host a or b`: b is a host too (tcpdump's inheritance).
			return ns(s, "(host 10.231.1.99 or "+s.Expect.Dst+") and not udp")
		}, true},
		{"tcp_syn", tcp, func(s *testnet.Scenario) []string {
			return ns(s, fmt.Sprintf("tcp[tcpflags] & tcp-syn != 0 and dst port %d", s.Expect.DstPort))
		}, true},
		{"tcp13_syn_only", tcp, func(s *testnet.Scenario) []string {
			return ns(s, "tcp[13] == 2")
		}, true},
		{"tcp_fin_or_rst", tcp, func(s *testnet.Scenario) []string {
			return ns(s, "tcp[tcpflags] & (tcp-fin|tcp-rst) != 0")
		}, false},
		{"ip6_udp_net", udp6, func(s *testnet.Scenario) []string {
			return ns(s, fmt.Sprintf("ip6 and udp dst port %d and src net fd00::/8", s.Expect.DstPort))
		}, true},
		{"ip6_is_not_ip", udp6, func(s *testnet.Scenario) []string {
			return ns(s, "ip and udp")
		}, false},
		{"icmp6_host", fpd6, func(s *testnet.Scenario) []string {
			return ns(s, "icmp6 and dst host "+s.Expect.Dst)
		}, true},
		{"long_expression", udp, func(s *testnet.Scenario) []string {
			// About 50 of the 64 instructions: the verifier must still
			// take it on every kernel (it follows each jump).
			hosts := "host " + s.Expect.Src
			for i := 1; i <= 13; i++ {
				hosts += fmt.Sprintf(" or 10.231.9.%d", i)
			}
			ports := fmt.Sprintf("udp dst port %d", s.Expect.DstPort)
			for i := 1; i <= 5; i++ {
				ports += fmt.Sprintf(" or %d", s.Expect.DstPort+i)
			}
			return ns(s, "("+hosts+" or net fd00::/8) and ("+ports+") and not tcp[13] & 4 != 0 and not (icmp or icmp6) and portrange 1-65535")
		}, true},
		{"flags_and_expression_match", udp, func(s *testnet.Scenario) []string {
			return append(ns(s, fmt.Sprintf("dst port %d", s.Expect.DstPort)), "--proto", "udp", "--src", s.Expect.Src)
		}, true},
		{"flags_and_expression_anded", udp, func(s *testnet.Scenario) []string {
			// Each alone selects the drop; together they cannot.
			return append(ns(s, "dst port 9"), "--dport", fmt.Sprint(s.Expect.DstPort))
		}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s := buildScenario(t, ok(c.build))
			want := 0
			if c.want {
				want = 1
			}
			res := watch(t, s.Trigger, want, c.args(s)...)
			checkSelected(t, s, res, c.want)
			if c.want {
				for _, r := range res.Reports {
					if len(r.Path) == 0 {
						t.Errorf("the expression must select the path steps too; report has none:\n%s", brief(res.Reports))
					}
				}
			}
		})
	}
}

// TestFilterExprBad: an expression outside the grammar is bad input: exit
// 2, one line with the column of the mistake and what is supported.
func TestFilterExprBad(t *testing.T) {
	requireRoot(t)
	for _, c := range []struct {
		expr, where string
	}{
		{"icmp and hots 10.0.0.1", "at column 10"},
		{"tcp[tcpflags] & tcp-syn", "at column 24"},
		{"ether host 1", "at column 1"},
		{"(udp or tcp", "at column 12"},
	} {
		for _, cmd := range []string{"watch", "trace"} {
			t.Run(cmd+" "+c.expr, func(t *testing.T) {
				t.Parallel()
				res := run(t, cmd, c.expr)
				checkUsageError(t, res, c.where)
				if !strings.Contains(res.Stderr, "supported: host, net") {
					t.Errorf("stderr does not list the supported primitives: %s", res.Stderr)
				}
			})
		}
	}
}

// TestTraceFilterExpr: `trace` follows only what the expression selects,
// here the SYNs of a connection through a DNAT, with their translation.
func TestTraceFilterExpr(t *testing.T) {
	s := buildScenario(t, ok(testnet.DNATShadowed))
	rs := traceRun(t, s, "tcp[tcpflags] & tcp-syn != 0")
	checkTrace(t, s, rs)
	for _, r := range rs {
		if !strings.Contains(r.TCPFlags, "SYN") {
			t.Errorf("traced a packet without SYN (%s): %s %s > %s", r.TCPFlags, r.Kind, r.Src, r.Dst)
		}
	}
}
