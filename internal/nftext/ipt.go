package nftext

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// iptRule collects a rule in iptables-save order: the fixed header
// fields, then matches in rule order, then the target.
type iptRule struct {
	fam                  string
	src, dst, in, out, p string
	matches              []string
	l4                   byte
	tcp                  int       // index of the open implicit "-m tcp"/"-m udp" match, or -1
	tcpOpts              [3]string // its --sport, --dport, --tcp-flags, printed in that order
	target               string
}

// Iptables renders a rule of an iptables-nft table in iptables-save form
// ("-A CHAIN ..."); false when any expression has no iptables form known
// here, so the caller keeps the nft syntax rather than a guess.
func Iptables(family, chain string, exprs []expr.Any) (string, bool) {
	r := &iptRule{fam: family, tcp: -1}
	regs := map[uint32]*sel{}
	nft := &nftRender{fam: family, nh: family, regs: regs}
	for i := 0; i < len(exprs); i++ {
		switch e := exprs[i].(type) {
		case *expr.Meta:
			if e.SourceRegister {
				// iptables-nft writes "-j MARK --set-mark" natively.
				k := regs[e.Register]
				if e.Key != expr.MetaKeyMARK || k == nil || k.konst == nil || r.target != "" {
					return "", false
				}
				r.target = fmt.Sprintf("-j MARK --set-xmark 0x%x/0xffffffff", u32(k.konst))
				continue
			}
			regs[e.Register] = metaSel(e.Key)
		case *expr.Immediate:
			regs[e.Register] = &sel{konst: e.Data}
		case *expr.Notrack:
			if r.target != "" {
				return "", false
			}
			r.target = "-j CT --notrack"
		case *expr.Payload:
			if e.OperationType != expr.PayloadLoad {
				return "", false
			}
			nft.l4 = r.l4
			regs[e.DestRegister] = nft.payloadSel(e)
		case *expr.Bitwise:
			s := regs[e.SourceRegister]
			if s == nil || anyNonZero(e.Xor) {
				return "", false
			}
			c := *s
			c.mask = e.Mask
			regs[e.DestRegister] = &c
		case *expr.Cmp:
			s := regs[e.Register]
			if s == nil {
				return "", false
			}
			if e.Op == expr.CmpOpGte && i+1 < len(exprs) {
				if n, ok := exprs[i+1].(*expr.Cmp); ok && n.Op == expr.CmpOpLte && n.Register == e.Register {
					if !r.port(s, false, e.Data, n.Data) {
						return "", false
					}
					i++
					continue
				}
			}
			if (e.Op != expr.CmpOpEq && e.Op != expr.CmpOpNeq) || !r.cmp(s, e.Op == expr.CmpOpNeq, e.Data) {
				return "", false
			}
		case *expr.Range:
			s := regs[e.Register]
			if s == nil || (e.Op != expr.CmpOpEq && e.Op != expr.CmpOpNeq) || !r.port(s, e.Op == expr.CmpOpNeq, e.FromData, e.ToData) {
				return "", false
			}
		case *expr.Limit:
			l, ok := limit(e)
			if !ok {
				return "", false
			}
			r.tcp = -1
			r.matches = append(r.matches, l)
		case *expr.Counter:
		case *expr.Match:
			r.tcp = -1
			m, ok := xtMatch(family, e)
			if !ok {
				return "", false
			}
			r.matches = append(r.matches, m)
		case *expr.Target:
			t, ok := xtTarget(family, e)
			if !ok || r.target != "" {
				return "", false
			}
			r.target = t
		case *expr.Verdict:
			if r.target != "" {
				return "", false
			}
			switch e.Kind {
			case expr.VerdictAccept:
				r.target = "-j ACCEPT"
			case expr.VerdictDrop:
				r.target = "-j DROP"
			case expr.VerdictReturn:
				r.target = "-j RETURN"
			case expr.VerdictJump:
				r.target = "-j " + e.Chain
			case expr.VerdictGoto:
				r.target = "-g " + e.Chain
			default:
				return "", false
			}
		default:
			return "", false
		}
	}
	parts := []string{"-A", chain}
	for _, f := range []struct{ flag, v string }{{"-s", r.src}, {"-d", r.dst}, {"-i", r.in}, {"-o", r.out}, {"-p", r.p}} {
		if f.v == "" {
			continue
		}
		if strings.HasPrefix(f.v, "!") {
			parts = append(parts, "!", f.flag, f.v[1:])
		} else {
			parts = append(parts, f.flag, f.v)
		}
	}
	parts = append(parts, r.matches...)
	if r.target != "" {
		parts = append(parts, r.target)
	}
	return strings.Join(parts, " "), true
}

func not(neg bool) string {
	if neg {
		return "!"
	}
	return ""
}

func (r *iptRule) cmp(s *sel, neg bool, data []byte) bool {
	switch {
	case s.name == "iifname" || s.name == "oifname":
		v := string(data)
		if i := strings.IndexByte(v, 0); i >= 0 {
			v = v[:i]
		} else {
			v += "+"
		}
		if s.name == "iifname" {
			r.in = not(neg) + v
		} else {
			r.out = not(neg) + v
		}
		return s.mask == nil
	case s.l4dep || s.kind == kL4: // meta l4proto, or ip protocol from older iptables-nft
		if s.mask != nil || len(data) != 1 {
			return false
		}
		r.l4 = data[0]
		r.p = not(neg) + protoName(data[0])
		return true
	case s.kind == kAddr:
		bits := s.load * 8
		if s.mask != nil {
			n, ok := prefixLen(s.mask)
			if !ok {
				return false
			}
			bits = n
		}
		b := make([]byte, s.full)
		copy(b, data)
		a, _ := netip.AddrFromSlice(b)
		v := not(neg) + a.String() + "/" + strconv.Itoa(bits)
		if strings.HasSuffix(s.name, "saddr") {
			r.src = v
		} else {
			r.dst = v
		}
		return true
	case s.isMeta == expr.MetaKeyMARK && s.name == "meta mark":
		m := fmt.Sprintf("0x%x", u32(data))
		if s.mask != nil && u32(s.mask) != 0xffffffff {
			m += fmt.Sprintf("/0x%x", u32(s.mask))
		}
		r.tcp = -1
		r.matches = append(r.matches, "-m mark "+neg1(neg)+"--mark "+m)
		return true
	case s.kind == kBE:
		return r.port(s, neg, data, nil)
	case s.kind == kTCPFlags:
		if s.mask == nil || len(s.mask) != 1 || len(data) != 1 {
			return false
		}
		return r.implicit("tcp", 2, neg1(neg)+"--tcp-flags "+tcpFlags(s.mask[0])+" "+tcpFlags(data[0]))
	}
	return false
}

// limit prints a native limit as libxt_limit does: the rate goes through
// xt_rateinfo's avg (XT_LIMIT_SCALE * seconds / rate) and back.
func limit(e *expr.Limit) (string, bool) {
	if e.Type != expr.LimitTypePkts || e.Over || e.Rate == 0 {
		return "", false
	}
	const scale = 10000
	period := scale * uint64(e.Unit) / e.Rate
	if period == 0 {
		return "", false
	}
	rates := []struct {
		name string
		mult uint64
	}{{"day", scale * 24 * 60 * 60}, {"hour", scale * 60 * 60}, {"min", scale * 60}, {"sec", scale}}
	i := 1
	for ; i < len(rates); i++ {
		if period > rates[i].mult || rates[i].mult/period < rates[i].mult%period {
			break
		}
	}
	s := fmt.Sprintf("-m limit --limit %d/%s", rates[i-1].mult/period, rates[i-1].name)
	if e.Burst != 5 {
		s += fmt.Sprintf(" --limit-burst %d", e.Burst)
	}
	return s, true
}

func neg1(neg bool) string {
	if neg {
		return "! "
	}
	return ""
}

// port adds a native tcp/udp port match to the implicit "-m tcp" match
// iptables-nft prints for it; consecutive ports share one.
func (r *iptRule) port(s *sel, neg bool, from, to []byte) bool {
	if s.kind != kBE || s.mask != nil || len(from) != 2 {
		return false
	}
	proto, dir, _ := strings.Cut(s.name, " ")
	v := strconv.Itoa(int(binary.BigEndian.Uint16(from)))
	if to != nil {
		v += ":" + strconv.Itoa(int(binary.BigEndian.Uint16(to)))
	}
	slot := 0
	if dir == "dport" {
		slot = 1
	}
	return r.implicit(proto, slot, neg1(neg)+"--"+dir+" "+v)
}

// implicit adds an option to the "-m tcp"/"-m udp" match that
// iptables-nft prints for native port and flag matches; consecutive ones
// share a match, in libxt_tcp's order.
func (r *iptRule) implicit(proto string, slot int, opt string) bool {
	if r.tcp < 0 || !strings.HasPrefix(r.matches[r.tcp], "-m "+proto+" ") || r.tcpOpts[slot] != "" {
		r.matches = append(r.matches, "")
		r.tcp, r.tcpOpts = len(r.matches)-1, [3]string{}
	}
	r.tcpOpts[slot] = opt
	parts := []string{"-m", proto}
	for _, o := range r.tcpOpts {
		if o != "" {
			parts = append(parts, o)
		}
	}
	r.matches[r.tcp] = strings.Join(parts, " ")
	return true
}

// protoName is the name iptables prints for -p (from /etc/protocols).
func protoName(p byte) string {
	switch p {
	case unix.IPPROTO_ICMPV6:
		return "ipv6-icmp"
	}
	if n, ok := l4Names[p]; ok {
		return n
	}
	return strconv.Itoa(int(p))
}
