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

// ErrnoWords renders a negative kernel error in words and by name:
// "network is unreachable (ENETUNREACH)".
func ErrnoWords(ret int32) string {
	if ret >= 0 {
		return strconv.Itoa(int(ret))
	}
	e := unix.Errno(-ret)
	n := unix.ErrnoName(e)
	if n == "" {
		return "errno " + strconv.Itoa(int(-ret))
	}
	return e.Error() + " (" + n + ")"
}

// FIBError names a failed route lookup's error by what it means: the
// kernel returns the error of the route type it found (fib_props,
// ip6_rt_type_to_error), or EAGAIN when this table has no route (or a
// throw route) and the next rule is tried.
func FIBError(ret int32) string {
	e := unix.Errno(-ret)
	n := unix.ErrnoName(e)
	switch e {
	case unix.EINVAL:
		return "blackhole route (" + n + ")"
	case unix.EHOSTUNREACH:
		return "unreachable route (" + n + ")"
	case unix.EACCES:
		return "prohibit route (" + n + ")"
	case unix.EAGAIN:
		return "no route here, next rule (" + n + ")"
	case unix.ENETUNREACH:
		return "no route, network is unreachable (" + n + ")"
	}
	return "no route, " + ErrnoWords(ret)
}

// rpError names fib_validate_source's error by what it means.
func rpError(ret int32) string {
	e := unix.Errno(-ret)
	switch e {
	case unix.EXDEV:
		return "the route back to the source leaves via another device (EXDEV)"
	case unix.EINVAL:
		return "no valid route back to the source (EINVAL)"
	}
	return ErrnoWords(ret)
}

// ICMPMTU is the next-hop MTU an ICMP "fragmentation needed" (type 3
// code 4, RFC 1191: the low 16 bits of the word echo uses for id and seq)
// or ICMPv6 "packet too big" (type 2, all 32 bits) carries.
func ICMPMTU(r *Report) (uint32, bool) {
	switch {
	case r.Proto == "icmp" && r.ICMPType == 3 && r.ICMPCode == 4:
		return uint32(r.ICMPSeq), true
	case r.Proto == "icmp6" && r.ICMPType == 2:
		return uint32(r.ICMPID)<<16 | uint32(r.ICMPSeq), true
	}
	return 0, false
}
