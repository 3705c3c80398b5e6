package filter

import "net/netip"

// Packet is the part of the filter that selects packets by their headers,
// for consumers other than the BPF program (the nftrace rule tracer).
type Packet struct {
	Family         uint8 // 0, 4 or 6
	Proto          uint8
	Src, Dst, Host netip.Prefix // invalid when unset
	Sport, Dport   uint16
	Port           uint16
}

// Packet returns the header filters.
func (f *Filter) Packet() Packet {
	p := Packet{Family: f.family, Proto: f.proto, Sport: f.sport, Dport: f.dport, Port: f.port}
	if f.src.on {
		p.Src = f.src.prefix
	}
	if f.dst.on {
		p.Dst = f.dst.prefix
	}
	if f.host.on {
		p.Host = f.host.prefix
	}
	return p
}
