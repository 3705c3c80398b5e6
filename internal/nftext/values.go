package nftext

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"net/netip"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Values: how nft prints what a match compares with.
func prefixLen(mask []byte) (int, bool) {
	n, done := 0, false
	for _, b := range mask {
		if done && b != 0 {
			return 0, false
		}
		o := bits.LeadingZeros8(^b)
		if b<<o != 0 {
			return 0, false
		}
		n += o
		done = o < 8
	}
	return n, true
}

func (r *nftRender) addr(data []byte, full int) string {
	b := make([]byte, full)
	copy(b, data)
	a, _ := netip.AddrFromSlice(b)
	return a.String()
}

var l4Names = map[byte]string{1: "icmp", 2: "igmp", 6: "tcp", 17: "udp", 33: "dccp", 47: "gre", 50: "esp", 51: "ah", 58: "ipv6-icmp", 132: "sctp", 136: "udplite"}

var icmpTypes = map[byte]string{0: "echo-reply", 3: "destination-unreachable", 4: "source-quench", 5: "redirect", 8: "echo-request",
	9: "router-advertisement", 10: "router-solicitation", 11: "time-exceeded", 12: "parameter-problem",
	13: "timestamp-request", 14: "timestamp-reply", 15: "info-request", 16: "info-reply", 17: "address-mask-request", 18: "address-mask-reply"}

var icmpv6Types = map[byte]string{1: "destination-unreachable", 2: "packet-too-big", 3: "time-exceeded", 4: "parameter-problem",
	128: "echo-request", 129: "echo-reply", 133: "nd-router-solicit", 134: "nd-router-advert", 135: "nd-neighbor-solicit", 136: "nd-neighbor-advert"}

var ctStates = []string{"invalid", "established", "related", "new", "", "", "untracked"}
var ctStatuses = []string{"expected", "seen-reply", "assured", "confirmed", "snat", "dnat", "", "", "", "dying"}
var rtnTypes = []string{"unspec", "unicast", "local", "broadcast", "anycast", "multicast", "blackhole", "unreachable", "prohibit"}

func u32(b []byte) uint32 {
	var x [4]byte
	copy(x[:], b)
	return binary.NativeEndian.Uint32(x[:])
}

func flagNames(v uint32, names []string) string {
	var out []string
	for i, n := range names {
		if v&(1<<i) != 0 && n != "" {
			out = append(out, n)
			v &^= 1 << i
		}
	}
	if v != 0 || len(out) == 0 {
		out = append(out, fmt.Sprintf("0x%x", v))
	}
	return strings.Join(out, ",")
}

func (r *nftRender) value(s *sel, data []byte) string {
	switch s.kind {
	case kHex:
		return fmt.Sprintf("0x%08x", u32(data))
	case kDec:
		return strconv.FormatUint(uint64(u32(data)), 10)
	case kBE:
		if len(data) == 2 {
			return strconv.Itoa(int(binary.BigEndian.Uint16(data)))
		}
	case kIfname:
		if i := strings.IndexByte(string(data), 0); i >= 0 {
			return strconv.Quote(string(data[:i]))
		}
		return strconv.Quote(string(data) + "*")
	case kAddr:
		return r.addr(data, s.full)
	case kL4:
		if len(data) > 0 {
			if n, ok := l4Names[data[0]]; ok {
				return n
			}
			return strconv.Itoa(int(data[0]))
		}
	case kNfproto:
		switch {
		case len(data) > 0 && data[0] == unix.NFPROTO_IPV4:
			return "ipv4"
		case len(data) > 0 && data[0] == unix.NFPROTO_IPV6:
			return "ipv6"
		}
	case kCtState:
		return flagNames(u32(data), ctStates)
	case kCtStatus:
		return flagNames(u32(data), ctStatuses)
	case kICMP, kICMPv6:
		names := icmpTypes
		if s.kind == kICMPv6 {
			names = icmpv6Types
		}
		if len(data) > 0 {
			if n, ok := names[data[0]]; ok {
				return n
			}
			return strconv.Itoa(int(data[0]))
		}
	case kTCPFlags:
		if len(data) == 1 {
			return flagNames(uint32(data[0]), []string{"fin", "syn", "rst", "psh", "ack", "urg", "ecn", "cwr"})
		}
	case kFibType:
		if v := u32(data); int(v) < len(rtnTypes) {
			return rtnTypes[v]
		}
	}
	return fmt.Sprintf("0x%x", data)
}

func (r *nftRender) konst(reg uint32, k kind) string {
	s := r.regs[reg]
	if s == nil || s.konst == nil {
		return "<register>"
	}
	return r.value(&sel{kind: k}, s.konst)
}
