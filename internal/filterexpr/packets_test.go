package filterexpr

import (
	"encoding/binary"
	"math/rand"
	"net/netip"

	"github.com/pktdrop/pktdrop/gen"
)

// Test packets: Ethernet frames (libpcap's view) of IPv4/IPv6 TCP, UDP,
// SCTP, ICMP, ICMPv6 and other protocols, over a small pool of addresses
// and ports so that host, net and port tests both match and miss.
var (
	pool4    = []string{"10.0.0.1", "10.0.0.2", "10.1.2.3", "192.168.1.1", "172.16.5.4", "10.42.1.7"}
	pool6    = []string{"fd00::1", "fd00::2", "2001:db8::5", "fe80::1", "fd00:1::7"}
	poolPort = []uint16{22, 53, 80, 443, 999, 1000, 1500, 2000, 2001, 8080, 65535, 0}
	poolTCP  = []uint8{0x02, 0x12, 0x10, 0x04, 0x14, 0x01, 0x11, 0x18, 0xc2, 0x00, 0xff, 0x29}
	poolICMP = []uint8{0, 3, 8, 11, 5}
	poolICM6 = []uint8{128, 129, 1, 2, 135, 136}
)

type pkt struct {
	v6         bool
	proto      uint8
	src, dst   netip.Addr
	sport      uint16
	dport      uint16
	flags      uint8
	itype      uint8
	icode      uint8
	ipOptions  bool // IPv4 header of 24 bytes
	moreFrags  bool // first fragment: L4 header present
	frame      []byte
	descriptor string
}

func genPackets(r *rand.Rand, n int) []*pkt {
	protos4 := []uint8{6, 6, 17, 17, 132, 1, 1, 47, 58}
	protos6 := []uint8{6, 6, 17, 17, 132, 58, 58, 47, 1}
	var out []*pkt
	for i := 0; i < n; i++ {
		p := &pkt{v6: r.Intn(2) == 1}
		pick := func(s []string) netip.Addr { return netip.MustParseAddr(s[r.Intn(len(s))]) }
		if p.v6 {
			p.proto = protos6[r.Intn(len(protos6))]
			p.src, p.dst = pick(pool6), pick(pool6)
		} else {
			p.proto = protos4[r.Intn(len(protos4))]
			p.src, p.dst = pick(pool4), pick(pool4)
			p.ipOptions = r.Intn(5) == 0
			p.moreFrags = r.Intn(8) == 0
		}
		p.sport, p.dport = poolPort[r.Intn(len(poolPort))], poolPort[r.Intn(len(poolPort))]
		p.flags = poolTCP[r.Intn(len(poolTCP))]
		if p.proto == 58 {
			p.itype = poolICM6[r.Intn(len(poolICM6))]
		} else {
			p.itype = poolICMP[r.Intn(len(poolICMP))]
		}
		p.icode = uint8(r.Intn(4))
		p.frame = p.build()
		out = append(out, p)
	}
	return out
}

func (p *pkt) l4() []byte {
	switch p.proto {
	case 6:
		h := make([]byte, 20)
		binary.BigEndian.PutUint16(h[0:], p.sport)
		binary.BigEndian.PutUint16(h[2:], p.dport)
		h[12] = 5 << 4
		h[13] = p.flags
		return h
	case 17, 132:
		h := make([]byte, 12)
		binary.BigEndian.PutUint16(h[0:], p.sport)
		binary.BigEndian.PutUint16(h[2:], p.dport)
		return h
	case 1, 58:
		return []byte{p.itype, p.icode, 0, 0, 0x12, 0x34, 0, 1}
	}
	return []byte{0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4}
}

func (p *pkt) build() []byte {
	l4 := append(p.l4(), []byte("payload.")...)
	eth := make([]byte, 14)
	copy(eth, []byte{2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2})
	if p.v6 {
		binary.BigEndian.PutUint16(eth[12:], 0x86dd)
		ip := make([]byte, 40)
		ip[0] = 0x60
		binary.BigEndian.PutUint16(ip[4:], uint16(len(l4)))
		ip[6] = p.proto
		ip[7] = 64
		copy(ip[8:], p.src.AsSlice())
		copy(ip[24:], p.dst.AsSlice())
		return append(append(eth, ip...), l4...)
	}
	binary.BigEndian.PutUint16(eth[12:], 0x0800)
	hl := 20
	if p.ipOptions {
		hl = 24
	}
	ip := make([]byte, hl)
	ip[0] = 0x40 | byte(hl/4)
	binary.BigEndian.PutUint16(ip[2:], uint16(hl+len(l4)))
	if p.moreFrags {
		ip[6] = 0x20
	}
	ip[8] = 64
	ip[9] = p.proto
	copy(ip[12:], p.src.AsSlice())
	copy(ip[16:], p.dst.AsSlice())
	if p.ipOptions {
		ip[20] = 1 // NOP options
		ip[21], ip[22], ip[23] = 1, 1, 0
	}
	return append(append(eth, ip...), l4...)
}

// tuple mirrors parse_skb and parse_l4 in bpf/parse.h on the frame's
// network header: what the kernel side hands the evaluator.
func tuple(frame []byte) (*gen.PktdropPdTuple, bool) {
	h := frame[14:]
	t := &gen.PktdropPdTuple{}
	switch h[0] >> 4 {
	case 4:
		ihl := int(h[0] & 0xf)
		t.Family = 4
		t.Ttl = h[8]
		copy(t.Saddr[:4], h[12:16])
		copy(t.Daddr[:4], h[16:20])
		t.Proto = h[9]
		if binary.BigEndian.Uint16(h[6:])&0x1fff != 0 {
			return t, true
		}
		parseL4(h[ihl*4:], h[9], t)
		return t, true
	case 6:
		t.Family = 6
		t.Ttl = h[7]
		copy(t.Saddr[:], h[8:24])
		copy(t.Daddr[:], h[24:40])
		parseL4(h[40:], h[6], t)
		return t, true
	}
	return nil, false
}

func parseL4(h []byte, proto uint8, t *gen.PktdropPdTuple) {
	b := make([]byte, 16) // reads past a short packet see zeros
	copy(b, h)
	t.Proto = proto
	switch proto {
	case 6:
		t.Sport, t.Dport = binary.BigEndian.Uint16(b[0:]), binary.BigEndian.Uint16(b[2:])
		t.TcpFlags = b[13]
	case 17, 132:
		t.Sport, t.Dport = binary.BigEndian.Uint16(b[0:]), binary.BigEndian.Uint16(b[2:])
	case 1, 58:
		t.IcmpType, t.IcmpCode = b[0], b[1]
		t.IcmpId, t.IcmpSeq = binary.BigEndian.Uint16(b[4:]), binary.BigEndian.Uint16(b[6:])
	}
}
