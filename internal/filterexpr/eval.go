package filterexpr

import "github.com/pktdrop/pktdrop/gen"

// Match runs the program the way bpf/expr.h does, step for step: the
// differential test holds these verdicts to libpcap's, and the kernel
// tests hold the C evaluator to the same packets.
func (e *Expr) Match(t *gen.PktdropPdTuple) bool {
	if !e.On() {
		return true
	}
	pc := uint32(0)
	for i := 0; i < MaxInsns; i++ {
		if pc >= MaxInsns {
			break
		}
		in := &e.prog[pc]
		if test(in, t) {
			pc = uint32(in.Jt)
		} else {
			pc = uint32(in.Jf)
		}
	}
	return pc == jumpTrue
}

func test(in *gen.PktdropPdExprInsn, t *gen.PktdropPdTuple) bool {
	var v uint16
	switch opT(in.Op) {
	case opSrc:
		return t.Family == in.Fam && prefix(&in.Addr, in.Plen, &t.Saddr)
	case opDst:
		return t.Family == in.Fam && prefix(&in.Addr, in.Plen, &t.Daddr)
	case opFamily:
		v = uint16(t.Family)
	case opProto:
		v = uint16(t.Proto)
	case opSport:
		v = t.Sport
	case opDport:
		v = t.Dport
	case opTCPFlags:
		v = uint16(t.TcpFlags)
	case opICMPType:
		v = uint16(t.IcmpType)
	case opICMPCode:
		v = uint16(t.IcmpCode)
	default:
		return false
	}
	v &= in.Mask
	return v >= in.Lo && v <= in.Hi
}

func prefix(net *[16]uint8, plen uint8, addr *[16]uint8) bool {
	for i := 0; i < 16; i++ {
		if plen == 0 {
			return true
		}
		mask := uint8(0xff)
		if plen < 8 {
			mask = uint8(0xff << (8 - plen))
		}
		if (addr[i]^net[i])&mask != 0 {
			return false
		}
		if plen >= 8 {
			plen -= 8
		} else {
			plen = 0
		}
	}
	return true
}
