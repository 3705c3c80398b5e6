package filter

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/cilium/ebpf/btf"

	"github.com/pktdrop/pktdrop/internal/reasons"
)

// testReasons uses made-up values on purpose: nothing may assume the
// kernel's numbering.
func testReasons() *reasons.Table {
	return reasons.FromEnum(&btf.Enum{Name: "skb_drop_reason", Size: 4, Values: []btf.EnumValue{
		{Name: "SKB_NOT_DROPPED_YET", Value: 0},
		{Name: "SKB_CONSUMED", Value: 1},
		{Name: "SKB_DROP_REASON_NOT_SPECIFIED", Value: 2},
		{Name: "SKB_DROP_REASON_NO_SOCKET", Value: 3},
		{Name: "SKB_DROP_REASON_NETFILTER_DROP", Value: 70},
		{Name: "SKB_DROP_REASON_FAR_AWAY", Value: 300},
	}})
}

// testNetns stands in for netns.ParseSpec: "blue" exists, inodes pass.
func testNetns(s string) (uint32, error) {
	if s == "blue" {
		return 4026532001, nil
	}
	if n, err := strconv.ParseUint(s, 10, 32); err == nil && n > 0 {
		return uint32(n), nil
	}
	return 0, fmt.Errorf("no netns named %q under /var/run/netns (named: blue); give a name, an inode number or a /proc/PID/ns/net path", s)
}

func TestParseGood(t *testing.T) {
	tests := []struct {
		opts Options
		want string
	}{
		{Options{}, "all packets"},
		{Options{Proto: "ICMP", Host: "10.1.2.3/8", Iface: "eth0"}, "proto icmp, host 10.0.0.0/8, iface eth0"},
		{Options{Proto: "ipv6-icmp", Dst: "fd00::1"}, "proto icmp6, dst fd00::1"},
		{Options{Proto: "icmpv6"}, "proto icmp6"},
		{Options{Proto: "47"}, "proto 47"},
		{Options{Proto: "17", Dport: 53}, "proto udp, dport 53"},
		{Options{Proto: "tcp", Port: 443, Sport: 1, Dport: 65535}, "proto tcp, port 443, sport 1, dport 65535"},
		{Options{Port: 80}, "port 80"},
		{Options{Src: "::ffff:192.0.2.7", Dst: "198.51.100.0/24"}, "src 192.0.2.7, dst 198.51.100.0/24"},
		{Options{Host: "::ffff:10.0.0.0/104"}, "host 10.0.0.0/8"},
		{Options{Proto: "icmp", Src: "::ffff:10.0.0.1"}, "proto icmp, src 10.0.0.1"},
		{Options{Src: "2001:db8::/32", Host: "2001:db8::5"}, "host 2001:db8::5, src 2001:db8::/32"},
		{Options{Netns: "blue"}, "netns blue (4026532001)"},
		{Options{Netns: "4026531840"}, "netns 4026531840"},
		{Options{Reasons: []string{"netfilter_drop,NO_SOCKET", "SKB_DROP_REASON_NO_SOCKET"}}, "reason NETFILTER_DROP|NO_SOCKET"},
		{Options{Reasons: []string{"NO_SOCKET,"}, ExcludeReasons: []string{"not_specified", "CONSUMED"}}, "reason NO_SOCKET, not reason NOT_SPECIFIED|CONSUMED"},
		{Options{Iface: "abcdefghijklmno"}, "iface abcdefghijklmno"},
	}
	for _, tt := range tests {
		f, err := Parse(tt.opts, testReasons(), testNetns)
		if err != nil {
			t.Errorf("Parse(%+v): %v", tt.opts, err)
			continue
		}
		if got := f.String(); got != tt.want {
			t.Errorf("Parse(%+v).String() = %q; want %q", tt.opts, got, tt.want)
		}
	}
}

func TestParseBad(t *testing.T) {
	valid := "CONSUMED, FAR_AWAY, NETFILTER_DROP, NOT_DROPPED_YET, NOT_SPECIFIED, NO_SOCKET"
	tests := []struct {
		opts Options
		want string
	}{
		{Options{Proto: "foo"}, `invalid --proto "foo": want icmp, icmp6, tcp, udp, sctp or a protocol number 0-255`},
		{Options{Proto: "256"}, `invalid --proto "256": want icmp, icmp6, tcp, udp, sctp or a protocol number 0-255`},
		{Options{Proto: "-1"}, `invalid --proto "-1": want icmp, icmp6, tcp, udp, sctp or a protocol number 0-255`},
		{Options{Proto: "0"}, `invalid --proto "0": protocol 0 cannot be filtered on; omit --proto to match any protocol`},
		{Options{Host: "10.0.0.256"}, `invalid --host "10.0.0.256": want an IPv4 or IPv6 address or CIDR prefix, e.g. 10.0.0.1, 10.0.0.0/8 or fd00::/64`},
		{Options{Src: "10.0.0.0/33"}, `invalid --src "10.0.0.0/33": want an IPv4 or IPv6 address or CIDR prefix, e.g. 10.0.0.1, 10.0.0.0/8 or fd00::/64`},
		{Options{Dst: "fe80::1%eth0"}, `invalid --dst "fe80::1%eth0": want an IPv4 or IPv6 address or CIDR prefix, e.g. 10.0.0.1, 10.0.0.0/8 or fd00::/64`},
		{Options{Dst: "example.com"}, `invalid --dst "example.com": want an IPv4 or IPv6 address or CIDR prefix, e.g. 10.0.0.1, 10.0.0.0/8 or fd00::/64`},
		{Options{Proto: "icmp", Host: "fd00::1"}, `invalid --host "fd00::1": IPv6 address conflicts with --proto icmp (IPv4)`},
		{Options{Proto: "icmp6", Dst: "10.0.0.1"}, `invalid --dst "10.0.0.1": IPv4 address conflicts with --proto icmp6 (IPv6)`},
		{Options{Src: "10.0.0.1", Dst: "fd00::1"}, `invalid --dst "fd00::1": IPv6 address conflicts with --src "10.0.0.1" (IPv4)`},
		{Options{Host: "fd00::/8", Src: "10.0.0.1"}, `invalid --src "10.0.0.1": IPv4 address conflicts with --host "fd00::/8" (IPv6)`},
		{Options{Port: 70000}, `invalid --port "70000": want a port number 1-65535`},
		{Options{Sport: -1}, `invalid --sport "-1": want a port number 1-65535`},
		{Options{Proto: "icmp", Dport: 53}, `invalid --dport "53": ports need --proto tcp, udp or sctp, not icmp`},
		{Options{Proto: "47", Port: 1}, `invalid --port "1": ports need --proto tcp, udp or sctp, not 47`},
		{Options{Iface: "abcdefghijklmnop"}, `invalid --iface "abcdefghijklmnop": want a device name of 1-15 bytes without '/', ':' or spaces`},
		{Options{Iface: "eth0:1"}, `invalid --iface "eth0:1": want a device name of 1-15 bytes without '/', ':' or spaces`},
		{Options{Iface: ".."}, `invalid --iface "..": want a device name of 1-15 bytes without '/', ':' or spaces`},
		{Options{Netns: "red"}, `invalid --netns "red": no netns named "red" under /var/run/netns (named: blue); give a name, an inode number or a /proc/PID/ns/net path`},
		{Options{Reasons: []string{"BOGUS"}}, `invalid --reason "BOGUS": unknown drop reason; valid: ` + valid},
		{Options{ExcludeReasons: []string{"NO_SOCKET,bogus"}}, `invalid --exclude-reason "bogus": unknown drop reason; valid: ` + valid},
		{Options{Reasons: []string{" , "}}, `invalid --reason " , ": want one or more drop reason names, e.g. NETFILTER_DROP`},
		{Options{Reasons: []string{"far_away"}}, `invalid --reason "far_away": FAR_AWAY has value 300, beyond the 256 reasons the kernel-side filter can hold`},
		{Options{Reasons: []string{"NO_SOCKET"}, ExcludeReasons: []string{"SKB_DROP_REASON_NO_SOCKET"}}, `invalid --exclude-reason "NO_SOCKET": also given to --reason, so nothing could match`},
	}
	for _, tt := range tests {
		_, err := Parse(tt.opts, testReasons(), testNetns)
		if err == nil || err.Error() != tt.want {
			t.Errorf("Parse(%+v) error:\n got %v\nwant %s", tt.opts, err, tt.want)
			continue
		}
		var ue *UsageError
		if !errors.As(err, &ue) {
			t.Errorf("Parse(%+v) error %T is not a *UsageError", tt.opts, err)
		}
	}
}

func TestKernelWithoutReasons(t *testing.T) {
	const want = `invalid --reason "NO_SOCKET": this kernel has no drop reasons (enum skb_drop_reason is missing from its BTF; needs Linux 5.17 or later)`
	for _, rt := range []*reasons.Table{nil, reasons.FromEnum(nil)} {
		_, err := Parse(Options{Reasons: []string{"NO_SOCKET"}}, rt, testNetns)
		if err == nil || err.Error() != want {
			t.Errorf("error = %v; want %s", err, want)
		}
		if _, err := Parse(Options{Proto: "tcp"}, rt, testNetns); err != nil {
			t.Errorf("filters without reasons must work: %v", err)
		}
	}
}

func TestUsageErrorIsOneLine(t *testing.T) {
	nsErr := func(string) (uint32, error) { return 0, errors.New("first line\nsecond line") }
	_, err := Parse(Options{Netns: "x"}, nil, nsErr)
	if err == nil || strings.Contains(err.Error(), "\n") {
		t.Fatalf("error %q is not one line", err)
	}
}

func TestConstantsValues(t *testing.T) {
	f, err := Parse(Options{Proto: "udp", Src: "192.0.2.0/24", Dst: "::ffff:198.51.100.9", Dport: 53, Iface: "eth0",
		Reasons: []string{"NETFILTER_DROP", "NO_SOCKET"}, ExcludeReasons: []string{"CONSUMED"}}, testReasons(), testNetns)
	if err != nil {
		t.Fatal(err)
	}
	c := f.Constants()
	checks := map[string]any{
		"cfg_proto":          uint8(17),
		"cfg_family":         uint8(4),
		"cfg_src_on":         uint8(1),
		"cfg_src_fam":        uint8(4),
		"cfg_src_plen":       uint8(24),
		"cfg_src_addr":       [16]byte{192, 0, 2},
		"cfg_dst_plen":       uint8(32),
		"cfg_dst_addr":       [16]byte{198, 51, 100, 9},
		"cfg_host_on":        uint8(0),
		"cfg_dport":          uint16(53),
		"cfg_port":           uint16(0),
		"cfg_ifname":         [16]byte{'e', 't', 'h', '0'},
		"cfg_netns":          uint32(0),
		"cfg_reason_incl_on": uint8(1),
		"cfg_reason_incl":    [4]uint64{1 << 3, 1 << (70 - 64)},
		"cfg_reason_excl":    [4]uint64{1 << 1},
	}
	for k, want := range checks {
		if got := c[k]; got != want {
			t.Errorf("%s = %#v; want %#v", k, got, want)
		}
	}
}

// TestKernelReasons holds --reason to what the running kernel has: with
// drop reasons (5.17+) the name selects the kernel's value; without them
// the flag must be refused with a message naming the 5.17 requirement,
// not accepted to silently match nothing.
func TestKernelReasons(t *testing.T) {
	rt, err := reasons.Load()
	if errors.Is(err, btf.ErrNotSupported) {
		t.Skipf("no kernel BTF: %v", err) // nothing to derive the expectation from
	}
	if err != nil {
		t.Fatalf("load drop reasons: %v", err)
	}
	f, err := Parse(Options{Reasons: []string{"netfilter_drop"}}, rt, testNetns)
	if !rt.Available() {
		var ue *UsageError
		if !errors.As(err, &ue) || ue.Flag != "reason" || !strings.Contains(ue.Msg, "5.17") {
			t.Fatalf("--reason on a kernel without drop reasons: got %v, want a --reason usage error naming 5.17", err)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	v, _ := rt.Value("NETFILTER_DROP")
	bm := f.Constants()["cfg_reason_incl"].([4]uint64)
	if bm[v/64] != 1<<(v%64) {
		t.Errorf("bitmap %v does not select NETFILTER_DROP=%d", bm, v)
	}
}
