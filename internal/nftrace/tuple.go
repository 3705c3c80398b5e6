package nftrace

import (
	"encoding/binary"
	"net/netip"
)

// parseTuple builds a Tuple from the network and transport headers the
// kernel copies into a trace event (at most 40 and 20 bytes). ok is false
// when there is no usable network header.
func parseTuple(network, transport []byte) (t Tuple, ok bool) {
	if len(network) < 1 {
		return t, false
	}
	switch network[0] >> 4 {
	case 4:
		if len(network) < 20 {
			return t, false
		}
		t.Family = "ip"
		t.Proto = network[9]
		t.Src = netip.AddrFrom4([4]byte(network[12:16]))
		t.Dst = netip.AddrFrom4([4]byte(network[16:20]))
		// A non-first fragment's payload is not an L4 header.
		if binary.BigEndian.Uint16(network[6:8])&0x1fff != 0 {
			return t, true
		}
	case 6:
		if len(network) < 40 {
			return t, false
		}
		t.Family = "ip6"
		// Extension headers are not in the copy; Proto is then the first
		// next-header value and the L4 fields stay empty.
		t.Proto = network[6]
		t.Src = netip.AddrFrom16([16]byte(network[8:24]))
		t.Dst = netip.AddrFrom16([16]byte(network[24:40]))
	default:
		return t, false
	}
	parseL4(&t, transport)
	return t, true
}

func parseL4(t *Tuple, th []byte) {
	switch t.Proto {
	case 6, 17, 132, 136: // tcp, udp, sctp, udplite
		if len(th) >= 4 {
			t.Sport = binary.BigEndian.Uint16(th[0:2])
			t.Dport = binary.BigEndian.Uint16(th[2:4])
		}
	case 1, 58: // icmp, icmpv6
		if len(th) >= 2 {
			t.ICMPType, t.ICMPCode = th[0], th[1]
		}
		if len(th) >= 8 && isEcho(t.Proto, t.ICMPType) {
			t.ICMPID = binary.BigEndian.Uint16(th[4:6])
			t.ICMPSeq = binary.BigEndian.Uint16(th[6:8])
		}
	}
}

// isEcho reports whether the ICMP type carries an identifier and sequence.
func isEcho(proto, typ uint8) bool {
	if proto == 1 {
		return typ == 0 || typ == 8
	}
	return typ == 128 || typ == 129
}
