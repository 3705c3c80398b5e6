package filter

// Constants returns every filter variable of the BPF program, keyed by its C
// name, with a Go value of the C type's exact size, ready for
// CollectionSpec.Variables[name].Set. Unset filters get their "any" value so
// a reused spec never keeps a stale setting.
func (f *Filter) Constants() map[string]any {
	m := map[string]any{
		"cfg_proto":          f.proto,
		"cfg_family":         f.family,
		"cfg_port":           f.port,
		"cfg_sport":          f.sport,
		"cfg_dport":          f.dport,
		"cfg_netns":          f.netns,
		"cfg_ifname":         ifname(f.iface),
		"cfg_reason_incl_on": boolU8(len(f.incl) > 0),
		"cfg_reason_incl":    bitmap(f.incl),
		"cfg_reason_excl":    bitmap(f.excl),
	}
	for name, a := range map[string]addrFilter{"src": f.src, "dst": f.dst, "host": f.host} {
		var addr [16]byte
		var plen uint8
		if a.on {
			raw := a.prefix.Addr().AsSlice() // 4 or 16 bytes, network order
			copy(addr[:], raw)
			plen = uint8(a.prefix.Bits())
		}
		m["cfg_"+name+"_on"] = boolU8(a.on)
		m["cfg_"+name+"_fam"] = a.family()
		m["cfg_"+name+"_plen"] = plen
		m["cfg_"+name+"_addr"] = addr
	}
	return m
}

func ifname(s string) [16]byte {
	var b [16]byte
	copy(b[:15], s) // keep the NUL: the C side compares as a string
	return b
}

func bitmap(rs []reason) [4]uint64 {
	var b [4]uint64
	for _, r := range rs {
		b[r.value/64] |= 1 << (r.value % 64)
	}
	return b
}

func boolU8(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}
