package nftrace

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// ruleExprs turns a Match into one or more expression lists; each list is a
// rule ending in `meta nftrace set 1`. "Host" and "Port" (either direction)
// and ports without a protocol are expanded into alternatives, because an
// nf_tables rule is a conjunction.
func ruleExprs(m Match) ([][]expr.Any, error) {
	fam, err := matchFamily(m)
	if err != nil {
		return nil, err
	}
	base := []expr.Any{}
	if fam != 0 {
		nfp := byte(unix.NFPROTO_IPV4)
		if fam == 6 {
			nfp = unix.NFPROTO_IPV6
		}
		base = append(base, &expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1}, eq([]byte{nfp}))
	}
	if m.Src.IsValid() {
		base = append(base, addrMatch(m.Src, true)...)
	}
	if m.Dst.IsValid() {
		base = append(base, addrMatch(m.Dst, false)...)
	}
	alts := [][]expr.Any{base}
	if m.Host.IsValid() {
		alts = fork(alts, addrMatch(m.Host, true), addrMatch(m.Host, false))
	}
	protos := []uint8{m.Proto}
	if m.Proto == 0 && (m.Sport|m.Dport|m.Port) != 0 {
		protos = []uint8{unix.IPPROTO_TCP, unix.IPPROTO_UDP, unix.IPPROTO_SCTP}
	}
	if protos[0] != 0 {
		var choices [][]expr.Any
		for _, p := range protos {
			choices = append(choices, []expr.Any{&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1}, eq([]byte{p})})
		}
		alts = fork(alts, choices...)
	}
	if m.Sport != 0 {
		alts = fork(alts, portMatch(m.Sport, 0))
	}
	if m.Dport != 0 {
		alts = fork(alts, portMatch(m.Dport, 2))
	}
	if m.Port != 0 {
		alts = fork(alts, portMatch(m.Port, 0), portMatch(m.Port, 2))
	}
	set := []expr.Any{
		&expr.Immediate{Register: 1, Data: []byte{1}},
		&expr.Meta{Key: expr.MetaKeyNFTRACE, SourceRegister: true, Register: 1},
	}
	for i := range alts {
		alts[i] = append(alts[i], set...)
	}
	return alts, nil
}

func matchFamily(m Match) (uint8, error) {
	fam := m.Family
	for _, p := range []netip.Prefix{m.Src, m.Dst, m.Host} {
		if !p.IsValid() {
			continue
		}
		f := uint8(4)
		if !p.Addr().Is4() {
			f = 6
		}
		if fam != 0 && fam != f {
			return 0, fmt.Errorf("filter mixes IPv4 and IPv6 (%s)", p)
		}
		fam = f
	}
	if fam != 0 && fam != 4 && fam != 6 {
		return 0, fmt.Errorf("unknown family %d", fam)
	}
	return fam, nil
}

// fork returns every list in alts extended by each choice.
func fork(alts [][]expr.Any, choices ...[]expr.Any) [][]expr.Any {
	var out [][]expr.Any
	for _, a := range alts {
		for _, c := range choices {
			n := append(append([]expr.Any{}, a...), c...)
			out = append(out, n)
		}
	}
	return out
}

func eq(data []byte) expr.Any {
	return &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: data}
}

func addrMatch(p netip.Prefix, src bool) []expr.Any {
	p = p.Masked()
	var off uint32
	a := p.Addr().Unmap()
	if a.Is4() {
		off = 16
		if src {
			off = 12
		}
	} else {
		off = 24
		if src {
			off = 8
		}
	}
	raw := a.AsSlice()
	n := uint32(len(raw))
	out := []expr.Any{&expr.Payload{OperationType: expr.PayloadLoad, DestRegister: 1,
		Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: n}}
	if p.Bits() < len(raw)*8 {
		mask := make([]byte, n)
		for i := 0; i < p.Bits(); i++ {
			mask[i/8] |= 0x80 >> (i % 8)
		}
		out = append(out, &expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: n,
			Mask: mask, Xor: make([]byte, n)})
	}
	return append(out, eq(raw))
}

// portMatch compares the 16-bit port at offset off (0 source, 2 dest) of
// the transport header.
func portMatch(port uint16, off uint32) []expr.Any {
	b := binary.BigEndian.AppendUint16(nil, port)
	return []expr.Any{
		&expr.Payload{OperationType: expr.PayloadLoad, DestRegister: 1,
			Base: expr.PayloadBaseTransportHeader, Offset: off, Len: 2},
		eq(b),
	}
}
