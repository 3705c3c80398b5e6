package recorded

import (
	"errors"
	"net"
	"syscall"
	"testing"

	"github.com/pktdrop/pktdrop/internal/netns"
)

// The fake must answer like netns.Resolver, or cause tests prove nothing.
func TestSystemAnswersLikeTheResolver(t *testing.T) {
	s := &System{Netns: map[uint32]*Netns{7: {Name: "router", Devices: map[uint32]string{2: "eth0", 3: "eth1"},
		Sysctl: map[string]string{"net/ipv4/ip_forward": "1"},
		Routes: []Route{{Dst: "0.0.0.0/0", Gateway: "10.0.0.1", Dev: "eth0"}, {Dst: "10.1.0.0/16", Dev: "eth1"},
			{Dst: "10.1.2.3", Dev: "eth0", Table: 255}}}}}

	for _, tc := range []struct {
		dst, dev string
		table    int
		gw       bool
	}{
		{"192.0.2.1", "eth0", 254, true},
		{"10.1.9.9", "eth1", 254, false},
		{"10.1.2.3", "eth0", 255, false}, // the longest prefix wins
	} {
		rt, err := s.RouteGet(7, net.ParseIP(tc.dst), netns.RouteOptions{})
		if err != nil || rt.Dev != tc.dev || rt.Table != tc.table || (rt.Gateway != nil) != tc.gw {
			t.Errorf("RouteGet(%s) = %+v, %v; want dev %s table %d gateway %v", tc.dst, rt, err, tc.dev, tc.table, tc.gw)
		}
	}
	if _, err := s.RouteGet(7, net.ParseIP("fd00::1"), netns.RouteOptions{}); !errors.Is(err, syscall.ENETUNREACH) {
		t.Errorf("IPv6 lookup over IPv4 routes: err %v; want ENETUNREACH", err)
	}
	if _, err := s.RouteGet(8, net.ParseIP("10.1.9.9"), netns.RouteOptions{}); err == nil {
		t.Error("RouteGet in an unknown netns succeeded")
	}
	if v, err := s.Sysctl(7, "net/ipv4/ip_forward"); v != "1" || err != nil {
		t.Errorf("Sysctl = %q, %v", v, err)
	}
	if _, err := s.Sysctl(7, "net/ipv4/conf/eth0/rp_filter"); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("missing sysctl: err %v; want ENOENT", err)
	}
	if got := s.NetnsName(7) + " " + s.NetnsName(9); got != "router netns:9" {
		t.Errorf("netns names %q", got)
	}
	if got := s.Device(7, 3) + " " + s.Device(7, 42) + " " + s.Device(7, 0) + "|"; got != "eth1 if42 |" {
		t.Errorf("device names %q", got)
	}
}

// Reason values are positions in the fixture's list; 6.12 inserts names,
// so a name's value differs between the two kernels, as on real ones.
func TestKernelReasonTables(t *testing.T) {
	k61, err := LoadKernel("6.1.0-50-amd64")
	if err != nil {
		t.Fatal(err)
	}
	k612, err := LoadKernel("6.12.95+deb12-amd64")
	if err != nil {
		t.Fatal(err)
	}
	v61, ok1 := k61.Reasons.Value("NETFILTER_DROP")
	v612, ok2 := k612.Reasons.Value("NETFILTER_DROP")
	if !ok1 || !ok2 || v61 == v612 {
		t.Errorf("NETFILTER_DROP = %d (%v) on 6.1, %d (%v) on 6.12; want known and different", v61, ok1, v612, ok2)
	}
	if !k61.Reasons.NotDrop(1) || k61.Reasons.Name(999) != "UNKNOWN(999)" {
		t.Errorf("6.1 table: NotDrop(1) %v, Name(999) %q", k61.Reasons.NotDrop(1), k61.Reasons.Name(999))
	}
	k510, err := LoadKernel("5.10.0-32-amd64")
	if err != nil {
		t.Fatal(err)
	}
	if k510.Reasons.Available() {
		t.Error("5.10 fixture has drop reasons; it must have none")
	}
	if got := k510.Symbols.Format(0xffffffffc0a1cf20 + 0x637); got != "nft_do_chain+0x637 [nf_tables]" {
		t.Errorf("symbol %q", got)
	}
	if k61.Brackets != [8]int32{-301, -201, -151, -101, -1, 49, 99, 101} {
		t.Errorf("brackets %v", k61.Brackets)
	}
}
