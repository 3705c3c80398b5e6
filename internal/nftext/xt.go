package nftext

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/google/nftables/expr"
	"github.com/google/nftables/xt"
	"golang.org/x/sys/unix"
)

// The xt blobs are the kernel's uapi structs (linux/netfilter/xt_*.h,
// nf_nat.h), in host byte order except where the uapi says __be: stable
// ABI, so they are decoded by layout here.

func xtFamily(family string) xt.TableFamily {
	if family == "ip6" {
		return unix.NFPROTO_IPV6
	}
	return unix.NFPROTO_IPV4
}

// blob gives the raw info back: the library decodes some infos into its
// own types; re-marshalling them yields the kernel's bytes.
func blob(family string, rev uint32, info xt.InfoAny) ([]byte, bool) {
	if u, ok := info.(*xt.Unknown); ok {
		return *u, true
	}
	if info == nil {
		return nil, false
	}
	b, err := xt.Marshal(xtFamily(family), rev, info)
	return b, err == nil
}

var ne = binary.NativeEndian

func xtMatch(family string, m *expr.Match) (string, bool) {
	b, ok := blob(family, m.Rev, m.Info)
	if !ok {
		return "", false
	}
	switch m.Name {
	case "comment":
		s := string(b)
		if i := strings.IndexByte(s, 0); i >= 0 {
			s = s[:i]
		}
		return "-m comment --comment " + saveString(s), true
	case "conntrack":
		return conntrack(m.Rev, b)
	case "state":
		if len(b) < 4 {
			return "", false
		}
		return "-m state --state " + stateNames(ne.Uint32(b), 1<<6), true
	case "addrtype":
		return addrtype(m.Rev, b)
	case "tcp", "udp":
		return ports(m.Name, b)
	case "mark":
		if m.Rev != 1 || len(b) < 9 {
			return "", false
		}
		s := "-m mark " + neg1(b[8] != 0) + fmt.Sprintf("--mark 0x%x", ne.Uint32(b))
		if mask := ne.Uint32(b[4:]); mask != 0xffffffff {
			s += fmt.Sprintf("/0x%x", mask)
		}
		return s, true
	case "physdev":
		return physdev(b)
	case "statistic":
		return statistic(b)
	case "recent":
		if m.Rev != 1 {
			return "", false
		}
		return recent(family, b)
	case "multiport":
		if m.Rev != 1 {
			return "", false
		}
		return multiport(b)
	}
	return "", false
}

// statistic reads xt_statistic_info {u16 mode, flags; u32 probability or
// every, packet, count} and prints as libxt_statistic does.
func statistic(b []byte) (string, bool) {
	if len(b) < 16 {
		return "", false
	}
	mode, inv := ne.Uint16(b), ne.Uint16(b[2:])&1 != 0
	not := ""
	if inv {
		not = " !"
	}
	switch mode {
	case 0:
		return fmt.Sprintf("-m statistic --mode random%s --probability %.11f", not, float64(ne.Uint32(b[4:]))/0x80000000), true
	case 1:
		s := fmt.Sprintf("-m statistic --mode nth%s --every %d", not, ne.Uint32(b[4:])+1)
		if p := ne.Uint32(b[8:]); p != 0 {
			s += fmt.Sprintf(" --packet %d", p)
		}
		return s, true
	}
	return "", false
}

// multiport reads xt_multiport_v1 {u8 flags, count; u16 ports[15]; u8
// pflags[15]; u8 invert}: a set pflag makes a port and the next a range.
func multiport(b []byte) (string, bool) {
	if len(b) < 48 || b[1] > 15 {
		return "", false
	}
	opt := map[byte]string{0: "--sports", 1: "--dports", 2: "--ports"}[b[0]]
	if opt == "" {
		return "", false
	}
	var ps []string
	for i := 0; i < int(b[1]); i++ {
		p := strconv.Itoa(int(ne.Uint16(b[2+2*i:])))
		if b[32+i] != 0 && i+1 < int(b[1]) {
			i++
			p += ":" + strconv.Itoa(int(ne.Uint16(b[2+2*i:])))
		}
		ps = append(ps, p)
	}
	return "-m multiport " + neg1(b[47] != 0) + opt + " " + strings.Join(ps, ","), true
}

var tcpFlagNames = []string{"FIN", "SYN", "RST", "PSH", "ACK", "URG"}

// tcpFlags prints a flag set as libxt_tcp does.
func tcpFlags(v byte) string {
	if v == 0 {
		return "NONE"
	}
	var out []string
	for i, n := range tcpFlagNames {
		if v&(1<<i) != 0 {
			out = append(out, n)
		}
	}
	return strings.Join(out, ",")
}

// saveString quotes as xtables_save_string does.
func saveString(s string) string {
	plain := s != ""
	for _, c := range s {
		if !(c == '_' || c == '-' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			plain = false
		}
	}
	if plain {
		return s
	}
	var b strings.Builder
	b.WriteByte('"')
	for _, c := range s {
		if c == '"' || c == '\\' || c == '\'' {
			b.WriteByte('\\')
		}
		b.WriteRune(c)
	}
	b.WriteByte('"')
	return b.String()
}

// XT_CONNTRACK_STATE_BIT(ctinfo) = 1 << (ctinfo + 1); INVALID is bit 0;
// SNAT, DNAT, UNTRACKED are 1 << (IP_CT_NUMBER (5) + 1, 2, 3). xt_state
// has UNTRACKED at 1 << (IP_CT_NUMBER + 1) and no SNAT or DNAT.
func ctStateNames(v uint32) string { return stateNames(v, 1<<8) }

func stateNames(v, untracked uint32) string {
	bitsNames := []struct {
		bit  uint32
		name string
	}{{1, "INVALID"}, {8, "NEW"}, {4, "RELATED"}, {2, "ESTABLISHED"}, {untracked, "UNTRACKED"}, {1 << 6, "SNAT"}, {1 << 7, "DNAT"}}
	if untracked == 1<<6 {
		bitsNames = bitsNames[:5]
	}
	var out []string
	for _, n := range bitsNames {
		if v&n.bit != 0 {
			out = append(out, n.name)
		}
	}
	return strings.Join(out, ",")
}

var ctStatusNames = []string{"EXPECTED", "SEEN_REPLY", "ASSURED", "CONFIRMED"}

// conntrack reads xt_conntrack_mtinfo1/2/3: eight 16-byte addresses and
// masks, expires min/max, l4proto and four ports, then match_flags,
// invert_flags and the state and status masks (u8 in rev 1, u16 after).
func conntrack(rev uint32, b []byte) (string, bool) {
	const (
		flagState, flagStatus, flagAlias = 1 << 0, 1 << 6, 1 << 13
		off                              = 8*16 + 4 + 4 + 2 + 4*2
	)
	if len(b) < off+6 || rev < 1 || rev > 3 {
		return "", false
	}
	flags, inv := ne.Uint16(b[off:]), ne.Uint16(b[off+2:])
	var state, status uint32
	if rev == 1 {
		state, status = uint32(b[off+4]), uint32(b[off+5])
	} else {
		state, status = uint32(ne.Uint16(b[off+4:])), uint32(ne.Uint16(b[off+6:]))
	}
	if flags&^(flagState|flagStatus|flagAlias) != 0 {
		return "", false
	}
	if flags&flagAlias != 0 {
		if flags != flagState|flagAlias {
			return "", false
		}
		return "-m state " + neg1(inv&flagState != 0) + "--state " + ctStateNames(state), true
	}
	s := "-m conntrack"
	if flags&flagState != 0 {
		s += " " + neg1(inv&flagState != 0) + "--ctstate " + ctStateNames(state)
	}
	if flags&flagStatus != 0 {
		var n []string
		for i, name := range ctStatusNames {
			if status&(1<<i) != 0 {
				n = append(n, name)
			}
		}
		s += " " + neg1(inv&flagStatus != 0) + "--ctstatus " + strings.Join(n, ",")
	}
	return s, true
}

var addrTypes = []string{"UNSPEC", "UNICAST", "LOCAL", "BROADCAST", "ANYCAST", "MULTICAST", "BLACKHOLE", "UNREACHABLE", "PROHIBIT", "THROW", "NAT", "XRESOLVE"}

func typeNames(v uint16) string {
	var out []string
	for i, n := range addrTypes {
		if v&(1<<i) != 0 {
			out = append(out, n)
		}
	}
	return strings.Join(out, ",")
}

// addrtype reads xt_addrtype_info_v1 {u16 source, dest; u32 flags} or
// rev 0 {u16 source, dest; u32 invert_source, invert_dest}.
func addrtype(rev uint32, b []byte) (string, bool) {
	if len(b) < 8 || rev > 1 {
		return "", false
	}
	src, dst := ne.Uint16(b), ne.Uint16(b[2:])
	var invSrc, invDst bool
	var flags uint32
	if rev == 1 {
		flags = ne.Uint32(b[4:])
		invSrc, invDst = flags&1 != 0, flags&2 != 0
	} else if len(b) >= 12 {
		invSrc, invDst = ne.Uint32(b[4:]) != 0, ne.Uint32(b[8:]) != 0
	}
	s := "-m addrtype"
	if src != 0 {
		s += " " + neg1(invSrc) + "--src-type " + typeNames(src)
	}
	if dst != 0 {
		s += " " + neg1(invDst) + "--dst-type " + typeNames(dst)
	}
	if flags&4 != 0 {
		s += " --limit-iface-in"
	}
	if flags&8 != 0 {
		s += " --limit-iface-out"
	}
	return s, true
}

// ports reads xt_tcp {u16 spts[2], dpts[2]; u8 option, flg_mask, flg_cmp,
// invflags} and xt_udp {u16 spts[2], dpts[2]; u8 invflags}.
func ports(name string, b []byte) (string, bool) {
	if len(b) < 9 {
		return "", false
	}
	inv := b[8]
	if name == "tcp" {
		if len(b) < 12 {
			return "", false
		}
		inv = b[11]
	}
	s := "-m " + name
	for i, dir := range []string{"sport", "dport"} {
		lo, hi := ne.Uint16(b[i*4:]), ne.Uint16(b[i*4+2:])
		if lo == 0 && hi == 0xffff {
			continue
		}
		v := strconv.Itoa(int(lo))
		if hi != lo {
			v += ":" + strconv.Itoa(int(hi))
		}
		s += " " + neg1(inv&(1<<i) != 0) + "--" + dir + " " + v
	}
	if name == "tcp" {
		if b[8] != 0 {
			s += " " + neg1(inv&8 != 0) + "--tcp-option " + strconv.Itoa(int(b[8]))
		}
		if b[9] != 0 {
			s += " " + neg1(inv&4 != 0) + "--tcp-flags " + tcpFlags(b[9]) + " " + tcpFlags(b[10])
		}
	}
	return s, true
}

// physdev reads xt_physdev_info: four IFNAMSIZ names and masks, then u8
// invert and bitmask.
func physdev(b []byte) (string, bool) {
	if len(b) < 66 {
		return "", false
	}
	inv, mask := b[64], b[65]
	name := func(o int) string {
		n := string(b[o : o+16])
		if i := strings.IndexByte(n, 0); i >= 0 {
			n = n[:i]
		}
		if m := b[o+16 : o+32]; len(n) < 16 && m[len(n)] == 0 {
			n += "+"
		}
		return n
	}
	s := "-m physdev"
	if mask&8 != 0 {
		s += " " + neg1(inv&8 != 0) + "--physdev-is-in"
	}
	if mask&1 != 0 {
		s += " " + neg1(inv&1 != 0) + "--physdev-in " + name(0)
	}
	if mask&16 != 0 {
		s += " " + neg1(inv&16 != 0) + "--physdev-is-out"
	}
	if mask&2 != 0 {
		s += " " + neg1(inv&2 != 0) + "--physdev-out " + name(32)
	}
	if mask&4 != 0 {
		s += " " + neg1(inv&4 != 0) + "--physdev-is-bridged"
	}
	return s, true
}

// recent reads xt_recent_mtinfo_v1 {u32 seconds, hit_count; u8 check_set,
// invert; char name[200]; u8 side; union nf_inet_addr mask (at 212)} and
// prints in libxt_recent's order (kube-proxy's session affinity).
func recent(family string, b []byte) (string, bool) {
	if len(b) < 228 {
		return "", false
	}
	seconds, hits, flags := ne.Uint32(b), ne.Uint32(b[4:]), b[8]
	s := "-m recent"
	if b[9] != 0 {
		s += " !"
	}
	for _, f := range []struct {
		bit  byte
		name string
	}{{2, "--set"}, {1, "--rcheck"}, {4, "--update"}, {8, "--remove"}} {
		if flags&f.bit != 0 {
			s += " " + f.name
		}
	}
	if seconds != 0 {
		s += " --seconds " + strconv.Itoa(int(seconds))
	}
	if flags&32 != 0 {
		s += " --reap"
	}
	if hits != 0 {
		s += " --hitcount " + strconv.Itoa(int(hits))
	}
	if flags&16 != 0 {
		s += " --rttl"
	}
	name := string(b[10:210])
	if i := strings.IndexByte(name, 0); i >= 0 {
		name = name[:i]
	}
	mask := netip.AddrFrom16([16]byte(b[212:228]))
	if family != "ip6" {
		mask = netip.AddrFrom4([4]byte(b[212:216]))
	}
	s += " --name " + name + " --mask " + mask.String()
	switch b[210] {
	case 0:
		s += " --rsource"
	case 1:
		s += " --rdest"
	}
	return s, true
}
