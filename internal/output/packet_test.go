package output_test

import (
	"testing"

	"github.com/pktdrop/pktdrop/internal/output"
	"github.com/pktdrop/pktdrop/internal/report"
)

func TestPacketICMPMTU(t *testing.T) {
	cases := []struct {
		r    report.Report
		want string
	}{
		{report.Report{Family: "ipv4", Proto: "icmp", Src: "10.0.1.1", Dst: "10.0.1.2", ICMPType: 3, ICMPCode: 4, ICMPSeq: 1280, Len: 576},
			"icmp 10.0.1.1 > 10.0.1.2 dest-unreachable frag-needed mtu 1280 len 576"},
		{report.Report{Family: "ipv6", Proto: "icmp6", Src: "fd00::1", Dst: "fd00::2", ICMPType: 2, ICMPID: 1, ICMPSeq: 0x2000, Len: 1280},
			"icmp6 fd00::1 > fd00::2 packet-too-big mtu 73728 len 1280"},
		{report.Report{Family: "ipv4", Proto: "icmp", Src: "10.0.1.1", Dst: "10.0.1.2", ICMPType: 8, ICMPID: 7, ICMPSeq: 1, Len: 84},
			"icmp 10.0.1.1 > 10.0.1.2 echo-request id 7 seq 1 len 84"},
	}
	for _, tc := range cases {
		if got := output.Packet(&tc.r); got != tc.want {
			t.Errorf("Packet = %q, want %q", got, tc.want)
		}
	}
}
