package benign

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/pktdrop/pktdrop/internal/event"
	"github.com/pktdrop/pktdrop/internal/report"
)

// fakeSockets is the namespace as a test sets it up.
type fakeSockets struct {
	raw    map[bool]bool     // v6 → a raw ICMP socket is open
	tcp    map[string]string // "local:lport-remote:rport" → state
	groups map[string]bool   // "dev group" joined
	sysctl map[string]string
	calls  int
}

func (f *fakeSockets) RawICMP(_ uint32, v6 bool) (bool, error) {
	f.calls++
	return f.raw[v6], nil
}

func (f *fakeSockets) Joined6(_ uint32, dev string, group netip.Addr) (bool, error) {
	f.calls++
	return f.groups[dev+" "+group.String()], nil
}

func (f *fakeSockets) Sysctl(_ uint32, key string) (string, error) {
	f.calls++
	if v, ok := f.sysctl[key]; ok {
		return v, nil
	}
	return "0", nil
}

func (f *fakeSockets) TCPState(_ uint32, local, remote string, lport, rport uint16) (string, error) {
	f.calls++
	return f.tcp[report.Tuple(local, lport)+"-"+report.Tuple(remote, rport)], nil
}

var states = func() map[uint8]string {
	return map[uint8]string{1: "ESTABLISHED", 6: "TIME-WAIT", 7: "CLOSE", 8: "CLOSE-WAIT", 10: "LISTEN"}
}

func echoReply(proto string, typ uint8, loc, reason string) *report.Report {
	return &report.Report{Kind: "drop", Proto: proto, ICMPType: typ, Location: loc, Reason: reason,
		Src: "10.0.0.2", Dst: "10.0.0.1", NetnsName: "a", Cause: "no_socket", Hint: "start the service"}
}

func tcpSeg(loc, reason, flags string) *report.Report {
	return &report.Report{Kind: "drop", Proto: "tcp", Location: loc, Reason: reason, TCPFlags: flags,
		Src: "10.0.0.1", Sport: 40000, Dst: "10.0.0.2", Dport: 5201, NetnsName: "b"}
}

func mld(dst string) *report.Report {
	return &report.Report{Kind: "drop", Proto: "0", Location: "ip6_mc_input+0x15e", Reason: "NOT_SPECIFIED",
		Src: "fe80::1", Dst: dst, Iface: "eth0", NetnsName: "a"}
}

func icmp6(typ uint8, reason string) *report.Report {
	return &report.Report{Kind: "drop", Proto: "icmp6", ICMPType: typ, Location: "icmpv6_rcv+0x1e3", Reason: reason,
		Src: "fd00::1", Dst: "fd00::2", NetnsName: "b"}
}

func TestClassify(t *testing.T) {
	cloned := &event.Event{Facts: event.FactCloned}
	none := &event.Event{}
	rxTW := &event.Event{Facts: event.FactRxSk, SkState: 6 + 1}
	rxCW := &event.Event{Facts: event.FactRxSk, SkState: 8 + 1}
	owned := &event.Event{Facts: event.FactSkbSk, SkState: 7 + 1}
	withRaw := &fakeSockets{raw: map[bool]bool{false: true, true: true}}
	noRaw := &fakeSockets{}
	tw := &fakeSockets{tcp: map[string]string{"10.0.0.2:5201-10.0.0.1:40000": "TIME-WAIT"}}
	listen := &fakeSockets{tcp: map[string]string{"10.0.0.2:5201-10.0.0.1:40000": "LISTEN"}}
	cases := []struct {
		name   string
		socks  *fakeSockets
		ev     *event.Event
		r      *report.Report
		benign bool
		why    string
	}{
		{"echo reply, copy made, raw socket open", withRaw, cloned, echoReply("icmp", 0, "ping_rcv+0xab", "NO_SOCKET"), true, "raw ICMP socket"},
		{"echo reply v6", withRaw, cloned, echoReply("icmp6", 129, "ping_rcv+0xab", "NO_SOCKET"), true, "raw ICMP6 socket"},
		{"echo reply on 5.10 (no reasons)", withRaw, cloned, echoReply("icmp", 0, "icmp_rcv+0x1f0", ""), true, "icmp_rcv"},
		{"echo reply nobody copied", withRaw, none, echoReply("icmp", 0, "ping_rcv+0xab", "NO_SOCKET"), false, ""},
		{"echo reply, raw socket closed since, copy held at the free", noRaw, &event.Event{Facts: event.FactCloned | event.FactShared},
			echoReply("icmp", 0, "ping_rcv+0xab", "NO_SOCKET"), true, "still held its copy"},
		{"echo reply, no raw socket", noRaw, cloned, echoReply("icmp", 0, "ping_rcv+0xab", "NO_SOCKET"), false, ""},
		{"echo request is never an echo reply", withRaw, cloned, echoReply("icmp", 8, "ping_rcv+0xab", "NO_SOCKET"), false, ""},
		{"echo reply dropped by netfilter", withRaw, cloned, echoReply("icmp", 0, "nft_do_chain+0x1", "NETFILTER_DROP"), false, ""},
		{"ACK in CLOSE_WAIT (rx_sk)", noRaw, rxCW, tcpSeg("tcp_rcv_state_process+0x1c1", "NOT_SPECIFIED", "ACK"), true, "CLOSE-WAIT"},
		{"FIN to TIME_WAIT (rx_sk)", noRaw, rxTW, tcpSeg("tcp_v4_rcv+0x79", "NOT_SPECIFIED", "FIN,ACK"), true, "TIME-WAIT"},
		{"FIN to TIME_WAIT (sock_diag, 5.10)", tw, none, tcpSeg("tcp_v4_rcv+0x79", "", "FIN,ACK"), true, "TIME-WAIT in netns b"},
		{"ACK to a listener (rx_sk)", noRaw, &event.Event{Facts: event.FactRxSk, SkState: 10 + 1}, tcpSeg("tcp_v4_rcv+0x79", "NOT_SPECIFIED", "ACK"), false, ""},
		{"state not named", noRaw, &event.Event{Facts: event.FactRxSk, SkState: 42 + 1}, tcpSeg("tcp_v4_rcv+0x79", "NOT_SPECIFIED", "ACK"), false, ""},
		{"data to TIME_WAIT is lost", noRaw, rxTW, tcpSeg("tcp_v4_rcv+0x79", "NOT_SPECIFIED", "PSH,ACK"), false, ""},
		{"SYN to a closed port", noRaw, none, tcpSeg("tcp_v4_rcv+0x79", "NO_SOCKET", "SYN"), false, ""},
		{"SYN, 5.10", tw, none, tcpSeg("tcp_v4_rcv+0x79", "", "SYN"), false, ""},
		{"ACK without a socket, 5.10", noRaw, none, tcpSeg("tcp_v4_rcv+0x79", "", "ACK"), false, ""},
		{"ACK where only a listener is", listen, none, tcpSeg("tcp_v4_rcv+0x79", "", "ACK"), false, ""},
		{"state machine without rx_sk (6.1)", noRaw, none, tcpSeg("tcp_rcv_state_process+0x1c1", "NOT_SPECIFIED", "ACK"), true, "tcp_rcv_state_process"},
		{"specific TCP reason stays a drop", noRaw, rxCW, tcpSeg("tcp_rcv_state_process+0x1c1", "TCP_INVALID_SEQUENCE", "ACK"), false, ""},
		{"queue purge of a socket's packet", noRaw, owned, &report.Report{Kind: "drop", Proto: "udp", Reason: "QUEUE_PURGE", Location: "skb_queue_purge_reason+0x1"}, true, "QUEUE_PURGE"},
		{"purge on 5.10", noRaw, owned, &report.Report{Kind: "drop", Proto: "udp", Location: "skb_queue_purge+0x1"}, true, "skb_queue_purge"},
		{"purge of a device queue", noRaw, none, &report.Report{Kind: "drop", Proto: "udp", Reason: "QUEUE_PURGE", Location: "skb_queue_purge_reason+0x1"}, false, ""},
		{"MLD report to routers, not joined", noRaw, none, mld("ff02::16"), true, "ff02::16, a group eth0 has not joined"},
		{"multicast to a joined group", &fakeSockets{groups: map[string]bool{"eth0 ff02::1": true}}, none, mld("ff02::1"), false, ""},
		{"unicast freed in ip6_mc_input", noRaw, none, mld("fd00::1"), false, ""},
		{"5.10: echo request answered", noRaw, none, icmp6(128, ""), true, "echo_ignore_all=0"},
		{"5.10: echo request ignored", &fakeSockets{sysctl: map[string]string{"net.ipv6.icmp.echo_ignore_all": "1"}}, none, icmp6(128, ""), false, ""},
		{"5.10: neighbour solicitation", noRaw, none, icmp6(135, ""), true, "neighbour solicitation handled"},
		{"5.10: destination unreachable", noRaw, none, icmp6(1, ""), false, ""},
		{"kernel with reasons: icmpv6_rcv free is a drop", noRaw, none, icmp6(135, "IPV6_NDISC_BAD_OPTIONS"), false, ""},
		{"UDP to a closed port", withRaw, cloned, &report.Report{Kind: "drop", Proto: "udp", Reason: "NO_SOCKET", Location: "__udp4_lib_rcv+0x4bc", Dport: 31337}, false, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			New(tc.socks, states).Classify(tc.ev, tc.r)
			if tc.r.Benign != tc.benign {
				t.Fatalf("benign = %v (%q), want %v", tc.r.Benign, tc.r.BenignWhy, tc.benign)
			}
			if !tc.benign {
				if tc.r.BenignWhy != "" || tc.r.Cause == "benign" {
					t.Errorf("a drop got benign_why %q, cause %q", tc.r.BenignWhy, tc.r.Cause)
				}
				return
			}
			if !strings.Contains(tc.r.BenignWhy, tc.why) {
				t.Errorf("benign_why %q lacks %q", tc.r.BenignWhy, tc.why)
			}
			if tc.r.Cause != "benign" || tc.r.Hint != "" {
				t.Errorf("cause %q hint %q: a benign free keeps no drop cause or fix", tc.r.Cause, tc.r.Hint)
			}
		})
	}
}

// TestRawMemory: ping exits right after its last reply; the raw socket
// seen a moment before still counts, for a while.
func TestRawMemory(t *testing.T) {
	f := &fakeSockets{raw: map[bool]bool{false: true}}
	c := New(f, states)
	now := time.Unix(1000, 0)
	c.now = func() time.Time { return now }
	ev := &event.Event{Facts: event.FactCloned}
	classify := func() bool {
		r := echoReply("icmp", 0, "ping_rcv+0xab", "NO_SOCKET")
		c.Classify(ev, r)
		return r.Benign
	}
	if !classify() {
		t.Fatal("first reply with ping running: not benign")
	}
	f.raw[false] = false // ping exited
	now = now.Add(rawMemory / 2)
	if !classify() {
		t.Error("reply just after ping exited: not benign")
	}
	now = now.Add(rawMemory)
	if classify() {
		t.Error("reply long after the raw socket closed: still benign")
	}
}
