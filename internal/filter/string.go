package filter

import (
	"strconv"
	"strings"
)

// String summarises the filter for the "watching ..." banner, in flag
// order, e.g. "proto icmp, host 10.0.0.0/8, iface eth0".
func (f *Filter) String() string {
	var parts []string
	add := func(s ...string) { parts = append(parts, strings.Join(s, " ")) }
	if f.proto != 0 {
		add("proto", f.protoName)
	}
	for _, a := range []struct {
		name string
		af   addrFilter
	}{{"host", f.host}, {"src", f.src}, {"dst", f.dst}} {
		if a.af.on {
			add(a.name, prefixString(a.af))
		}
	}
	for _, p := range []struct {
		name string
		v    uint16
	}{{"port", f.port}, {"sport", f.sport}, {"dport", f.dport}} {
		if p.v != 0 {
			add(p.name, strconv.Itoa(int(p.v)))
		}
	}
	if f.iface != "" {
		add("iface", f.iface)
	}
	if f.netns != 0 {
		ino := strconv.FormatUint(uint64(f.netns), 10)
		if f.netnsSpec == ino {
			add("netns", ino)
		} else {
			add("netns", f.netnsSpec, "("+ino+")")
		}
	}
	if len(f.incl) > 0 {
		add("reason", reasonList(f.incl))
	}
	if len(f.excl) > 0 {
		add("not reason", reasonList(f.excl))
	}
	if len(parts) == 0 {
		return "all packets"
	}
	return strings.Join(parts, ", ")
}

func prefixString(a addrFilter) string {
	if a.prefix.IsSingleIP() {
		return a.prefix.Addr().String()
	}
	return a.prefix.String()
}

func reasonList(rs []reason) string {
	names := make([]string, len(rs))
	for i, r := range rs {
		names[i] = r.name
	}
	return strings.Join(names, "|")
}
