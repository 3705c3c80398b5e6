package output_test

import (
	"strings"
	"testing"
	"time"

	"github.com/pktdrop/pktdrop/internal/output"
	"github.com/pktdrop/pktdrop/internal/report"
)

func TestPacket(t *testing.T) {
	cases := []struct {
		name string
		r    report.Report
		want string
	}{
		{"icmp echo", report.Report{Family: "ipv4", Proto: "icmp", Src: "10.0.1.2", Dst: "10.0.2.2", ICMPType: 8,
			ICMPID: 7, ICMPSeq: 1, Len: 84}, "icmp 10.0.1.2 > 10.0.2.2 echo-request id 7 seq 1 len 84"},
		{"icmp unreachable with code, no id", report.Report{Family: "ipv4", Proto: "icmp", Src: "10.0.2.1", Dst: "10.0.1.2",
			ICMPType: 3, ICMPCode: 13, Len: 56}, "icmp 10.0.2.1 > 10.0.1.2 dest-unreachable code 13 len 56"},
		{"icmp6 echo", report.Report{Family: "ipv6", Proto: "icmp6", Src: "fd00::1", Dst: "fd00::2", ICMPType: 128,
			ICMPID: 1, ICMPSeq: 2, Len: 104}, "icmp6 fd00::1 > fd00::2 echo-request id 1 seq 2 len 104"},
		{"icmp6 type the table lacks", report.Report{Family: "ipv6", Proto: "icmp6", Src: "fd00::1", Dst: "ff02::1",
			ICMPType: 143, Len: 76}, "icmp6 fd00::1 > ff02::1 type 143 code 0 len 76"},
		{"tcp v6 with flags", report.Report{Family: "ipv6", Proto: "tcp", Src: "fd00::1", Dst: "fd00::2", Sport: 443,
			Dport: 50000, TCPFlags: "RST,ACK", Len: 60}, "tcp [fd00::1]:443 > [fd00::2]:50000 [RST,ACK] len 60"},
		{"numbered protocol", report.Report{Family: "ipv4", Proto: "253", Src: "10.0.0.1", Dst: "10.0.0.2", Len: 40},
			"253 10.0.0.1 > 10.0.0.2 len 40"},
		{"non-IP", report.Report{Len: 60}, "non-IP packet, 60 bytes"},
	}
	for _, tc := range cases {
		if got := output.Packet(&tc.r); got != tc.want {
			t.Errorf("%s: Packet = %q; want %q", tc.name, got, tc.want)
		}
	}
}

// --rules fills Chain, Rule and Verdict; the text names the rule, or the
// chain's policy when no rule matched, or just the chain.
func TestTextRuleLine(t *testing.T) {
	base := report.Report{Time: time.Date(2025, 1, 2, 3, 4, 5, 6000, time.UTC), Kind: "drop", Family: "ipv4",
		Proto: "udp", Src: "10.0.1.2", Dst: "10.0.2.2", Sport: 1, Dport: 2, Len: 30, Hook: "FORWARD", Table: "filter",
		Chain: "FORWARD"}
	policy, rule, probed := base, base, base
	policy.Verdict = "policy"
	rule.Verdict, rule.Rule = "rule", "ip saddr 10.0.1.0/24 drop"
	for _, tc := range []struct {
		r    report.Report
		want string
	}{
		{policy, "  rule   table filter chain FORWARD: policy of chain FORWARD\n"},
		{rule, "  rule   table filter chain FORWARD: ip saddr 10.0.1.0/24 drop\n"},
		// Table and chain from the drop probes, without --rules.
		{probed, "  rule   table filter chain FORWARD\n"},
	} {
		got := output.Text(&tc.r)
		if !strings.Contains(got, tc.want) {
			t.Errorf("text lacks %q:\n%s", tc.want, got)
		}
		if !strings.HasPrefix(got, "03:04:05.000006 DROP udp") || !strings.Contains(got, "hook FORWARD table filter") {
			t.Errorf("header or at line wrong:\n%s", got)
		}
	}
}

func TestPathEmptyIsOmitted(t *testing.T) {
	r := report.Report{Kind: "drop", StepsLost: 3}
	if p := output.Path(&r); p != "" {
		t.Errorf("Path of no steps = %q; want empty (not just the lost count)", p)
	}
}
