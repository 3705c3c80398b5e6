package report

import (
	"strconv"

	"golang.org/x/sys/unix"
)

// Family names an address family as 4 or 6.
func Family(f uint8) string {
	switch f {
	case 4:
		return "ipv4"
	case 6:
		return "ipv6"
	}
	return ""
}

var protoNames = map[uint8]string{unix.IPPROTO_ICMP: "icmp", unix.IPPROTO_TCP: "tcp", unix.IPPROTO_UDP: "udp",
	unix.IPPROTO_ICMPV6: "icmp6", unix.IPPROTO_SCTP: "sctp", unix.IPPROTO_GRE: "gre", unix.IPPROTO_IPIP: "ipip",
	unix.IPPROTO_ESP: "esp"}

// Proto names an IP protocol number.
func Proto(p, family uint8) string {
	if family == 0 {
		return ""
	}
	if n, ok := protoNames[p]; ok {
		return n
	}
	return strconv.Itoa(int(p))
}

func isICMP(p uint8) bool { return p == unix.IPPROTO_ICMP || p == unix.IPPROTO_ICMPV6 }

// TableName names a routing table id.
func TableName(id uint32) string {
	switch id {
	case unix.RT_TABLE_MAIN:
		return "main"
	case unix.RT_TABLE_LOCAL:
		return "local"
	case unix.RT_TABLE_DEFAULT:
		return "default"
	}
	return strconv.FormatUint(uint64(id), 10)
}

// Errno renders a negative kernel error as its name, e.g. "ENETUNREACH".
func Errno(ret int32) string {
	if ret >= 0 {
		return strconv.Itoa(int(ret))
	}
	e := unix.Errno(-ret)
	if n := unix.ErrnoName(e); n != "" {
		return n
	}
	return "errno " + strconv.Itoa(int(-ret))
}
