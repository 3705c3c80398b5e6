package nftext

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// kind says how a loaded value prints.
type kind int

const (
	kHex kind = iota // 0x%08x, host order (marks)
	kDec             // host-order decimal (uid, gid, zone)
	kBE              // big-endian decimal (ports)
	kIfname
	kAddr
	kL4
	kNfproto
	kCtState
	kCtStatus
	kICMP
	kICMPv6
	kFibType
	kTCPFlags
	kRaw
)

// sel is what a register holds: the left-hand side of a match.
type sel struct {
	name   string
	kind   kind
	full   int    // full width in bytes; a shorter payload is a prefix
	load   int    // bytes loaded
	mask   []byte // from a bitwise
	l4dep  bool   // meta l4proto: a dependency nft hides
	nfdep  bool   // meta nfproto
	konst  []byte // an immediate
	isMeta expr.MetaKey
}

type nftRender struct {
	fam   string
	nh    string // network header in force: ip or ip6
	l4    byte
	out   []string
	regs  map[uint32]*sel
	depL4 int // index in out of a hideable meta l4proto, or -1
	depNF int
	sets  map[string]*set
}

// Nft renders a rule's expressions in nft syntax, as `nft -s list
// ruleset` prints them (counters without values). What it cannot render
// becomes a placeholder in angle brackets, never a guess.
func Nft(family string, exprs []expr.Any, sets map[string]*set) string {
	r := &nftRender{fam: family, regs: map[uint32]*sel{}, depL4: -1, depNF: -1, sets: sets}
	switch family {
	case "ip", "ip6":
		r.nh = family
	}
	for i := 0; i < len(exprs); i++ {
		if r.expr(exprs, i) {
			i++
		}
	}
	var words []string
	for _, w := range r.out {
		if w != "" {
			words = append(words, w)
		}
	}
	return strings.Join(words, " ")
}

// stmt is a statement that is not a match: nft keeps an l4proto dependency
// written before it.
func (r *nftRender) stmt(s string) {
	r.depL4 = -1
	r.out = append(r.out, s)
}

// expr renders exprs[i]; true when it also consumed exprs[i+1].
func (r *nftRender) expr(exprs []expr.Any, i int) bool {
	switch e := exprs[i].(type) {
	case *expr.Meta:
		if e.SourceRegister {
			if e.Key != expr.MetaKeyMARK {
				r.stmt(fmt.Sprintf("<meta set key %d>", e.Key))
				return false
			}
			r.stmt("meta mark set " + r.konst(e.Register, kHex))
			return false
		}
		r.regs[e.Register] = metaSel(e.Key)
	case *expr.Ct:
		if !e.SourceRegister && e.Register == 0 {
			// A load always has a destination register: this is a "ct
			// set" whose source register google/nftables v0.3.0 does not
			// decode (NFTA_CT_SREG), so its value is unknown.
			r.stmt(fmt.Sprintf("<ct set %s>", strings.TrimPrefix(ctSel(e.Key).name, "ct ")))
			return false
		}
		if e.SourceRegister {
			if e.Key != expr.CtKeyMARK {
				r.stmt(fmt.Sprintf("<ct set key %d>", e.Key))
				return false
			}
			r.stmt("ct mark set " + r.konst(e.Register, kHex))
			return false
		}
		r.regs[e.Register] = ctSel(e.Key)
	case *expr.Payload:
		if e.OperationType != expr.PayloadLoad {
			r.stmt("<payload write>")
			return false
		}
		r.regs[e.DestRegister] = r.payloadSel(e)
	case *expr.Fib:
		s := &sel{name: "<fib>", kind: kRaw}
		if e.ResultADDRTYPE {
			var keys []string
			if e.FlagSADDR {
				keys = append(keys, "saddr")
			}
			if e.FlagDADDR {
				keys = append(keys, "daddr")
			}
			if e.FlagMARK {
				keys = append(keys, "mark")
			}
			if e.FlagIIF {
				keys = append(keys, "iif")
			}
			if e.FlagOIF {
				keys = append(keys, "oif")
			}
			s = &sel{name: "fib " + strings.Join(keys, " . ") + " type", kind: kFibType}
		}
		r.regs[e.Register] = s
	case *expr.Bitwise:
		s := r.regs[e.SourceRegister]
		if s == nil || anyNonZero(e.Xor) {
			r.regs[e.DestRegister] = &sel{name: "<bitwise>", kind: kRaw}
			return false
		}
		c := *s
		c.mask = e.Mask
		r.regs[e.DestRegister] = &c
	case *expr.Immediate:
		r.regs[e.Register] = &sel{konst: e.Data}
	case *expr.Cmp:
		s := r.regs[e.Register]
		if s == nil {
			r.out = append(r.out, "<cmp>")
			return false
		}
		if e.Op == expr.CmpOpGte && i+1 < len(exprs) {
			if n, ok := exprs[i+1].(*expr.Cmp); ok && n.Op == expr.CmpOpLte && n.Register == e.Register {
				r.match(s, "", r.value(s, e.Data)+"-"+r.value(s, n.Data))
				return true
			}
		}
		r.cmp(s, e.Op, e.Data)
	case *expr.Range:
		s := r.regs[e.Register]
		if s == nil {
			r.out = append(r.out, "<range>")
			return false
		}
		op := ""
		if e.Op == expr.CmpOpNeq {
			op = "!= "
		}
		r.match(s, op, r.value(s, e.FromData)+"-"+r.value(s, e.ToData))
	case *expr.Lookup:
		r.lookup(e)
	case *expr.Counter:
		r.stmt("counter")
	case *expr.Notrack:
		r.stmt("notrack")
	case *expr.Verdict:
		r.stmt(verdict(e))
	case *expr.Reject:
		r.stmt(r.reject(e))
	case *expr.NAT:
		r.stmt(r.nat(e))
	case *expr.Masq:
		s := "masquerade"
		if e.ToPorts {
			s += " to :" + r.ports(e.RegProtoMin, e.RegProtoMax)
		}
		r.stmt(s + natFlags(e.Random, e.FullyRandom, e.Persistent))
	case *expr.Redir:
		s := "redirect"
		if e.RegisterProtoMin != 0 {
			s += " to :" + r.ports(e.RegisterProtoMin, e.RegisterProtoMax)
		}
		r.stmt(s + natFlags(e.Flags&unix.NF_NAT_RANGE_PROTO_RANDOM != 0, e.Flags&unix.NF_NAT_RANGE_PROTO_RANDOM_FULLY != 0, e.Flags&unix.NF_NAT_RANGE_PERSISTENT != 0))
	case *expr.Log:
		r.stmt(logText(e))
	case *expr.Limit:
		r.stmt(limitText(e))
	case *expr.Match:
		r.stmt("<xt match " + e.Name + ">")
	case *expr.Target:
		r.stmt("<xt target " + e.Name + ">")
	default:
		r.stmt(fmt.Sprintf("<%s>", strings.ToLower(strings.TrimPrefix(fmt.Sprintf("%T", e), "*expr."))))
	}
	return false
}

func anyNonZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return true
		}
	}
	return false
}

func metaSel(k expr.MetaKey) *sel {
	s := &sel{isMeta: k}
	switch k {
	case expr.MetaKeyIIFNAME:
		s.name, s.kind = "iifname", kIfname
	case expr.MetaKeyOIFNAME:
		s.name, s.kind = "oifname", kIfname
	case expr.MetaKeyL4PROTO:
		s.name, s.kind, s.l4dep = "meta l4proto", kL4, true
	case expr.MetaKeyNFPROTO:
		s.name, s.kind, s.nfdep = "meta nfproto", kNfproto, true
	case expr.MetaKeyMARK:
		s.name, s.kind = "meta mark", kHex
	case expr.MetaKeySKUID:
		s.name, s.kind = "meta skuid", kDec
	case expr.MetaKeySKGID:
		s.name, s.kind = "meta skgid", kDec
	case expr.MetaKeyLEN:
		s.name, s.kind = "meta length", kDec
	default:
		s.name, s.kind = fmt.Sprintf("<meta key %d>", k), kRaw
	}
	return s
}

func ctSel(k expr.CtKey) *sel {
	switch k {
	case expr.CtKeySTATE:
		return &sel{name: "ct state", kind: kCtState}
	case expr.CtKeySTATUS:
		return &sel{name: "ct status", kind: kCtStatus}
	case expr.CtKeyMARK:
		return &sel{name: "ct mark", kind: kHex}
	case expr.CtKeyZONE:
		return &sel{name: "ct zone", kind: kDec}
	}
	return &sel{name: fmt.Sprintf("<ct key %d>", k), kind: kRaw}
}

func (r *nftRender) payloadSel(e *expr.Payload) *sel {
	raw := &sel{name: fmt.Sprintf("<payload base %d offset %d len %d>", e.Base, e.Offset, e.Len), kind: kRaw}
	switch e.Base {
	case expr.PayloadBaseNetworkHeader:
		switch {
		case r.nh == "ip" && e.Offset == 12 && e.Len <= 4:
			return &sel{name: "ip saddr", kind: kAddr, full: 4, load: int(e.Len)}
		case r.nh == "ip" && e.Offset == 16 && e.Len <= 4:
			return &sel{name: "ip daddr", kind: kAddr, full: 4, load: int(e.Len)}
		case r.nh == "ip" && e.Offset == 9 && e.Len == 1:
			return &sel{name: "ip protocol", kind: kL4}
		case r.nh == "ip6" && e.Offset == 8 && e.Len <= 16:
			return &sel{name: "ip6 saddr", kind: kAddr, full: 16, load: int(e.Len)}
		case r.nh == "ip6" && e.Offset == 24 && e.Len <= 16:
			return &sel{name: "ip6 daddr", kind: kAddr, full: 16, load: int(e.Len)}
		case r.nh == "ip6" && e.Offset == 6 && e.Len == 1:
			return &sel{name: "ip6 nexthdr", kind: kL4}
		}
	case expr.PayloadBaseTransportHeader:
		var p string
		switch r.l4 {
		case unix.IPPROTO_TCP:
			p = "tcp"
		case unix.IPPROTO_UDP:
			p = "udp"
		case unix.IPPROTO_ICMP:
			if e.Offset == 0 && e.Len == 1 {
				return &sel{name: "icmp type", kind: kICMP}
			}
		case unix.IPPROTO_ICMPV6:
			if e.Offset == 0 && e.Len == 1 {
				return &sel{name: "icmpv6 type", kind: kICMPv6}
			}
		}
		if p == "tcp" && e.Offset == 13 && e.Len == 1 {
			return &sel{name: "tcp flags", kind: kTCPFlags}
		}
		if p != "" && e.Len == 2 && (e.Offset == 0 || e.Offset == 2) {
			name := p + " sport"
			if e.Offset == 2 {
				name = p + " dport"
			}
			return &sel{name: name, kind: kBE}
		}
	}
	return raw
}

// hide drops a dependency nft would not print: the payload that follows
// implies it.
func (r *nftRender) hide(s *sel) {
	if strings.HasPrefix(s.name, "ip ") || strings.HasPrefix(s.name, "ip6 ") {
		if r.depNF >= 0 {
			r.out[r.depNF], r.depNF = "", -1
		}
	}
	if strings.HasPrefix(s.name, "tcp ") || strings.HasPrefix(s.name, "udp ") || strings.HasPrefix(s.name, "icmp ") || strings.HasPrefix(s.name, "icmpv6 ") {
		if r.depL4 >= 0 {
			r.out[r.depL4], r.depL4 = "", -1
			// icmp and icmpv6 also imply the network protocol.
			if strings.HasPrefix(s.name, "icmp") && r.depNF >= 0 {
				r.out[r.depNF], r.depNF = "", -1
			}
		}
	}
}

func (r *nftRender) match(s *sel, op, val string) {
	r.hide(s)
	r.out = append(r.out, s.name+" "+op+val)
}

func (r *nftRender) cmp(s *sel, op expr.CmpOp, data []byte) {
	ops := map[expr.CmpOp]string{expr.CmpOpEq: "", expr.CmpOpNeq: "!= ", expr.CmpOpLt: "< ", expr.CmpOpLte: "<= ", expr.CmpOpGt: "> ", expr.CmpOpGte: ">= "}
	o := ops[op]
	if s.mask != nil {
		switch {
		case s.kind == kCtState || s.kind == kCtStatus:
			// flags & mask != 0 is "flags a,b"; == 0 is "!= a,b".
			if anyNonZero(data) {
				break
			}
			neg := ""
			if op == expr.CmpOpEq {
				neg = "!= "
			}
			r.match(s, neg, r.value(s, s.mask))
			return
		case s.kind == kAddr:
			if n, ok := prefixLen(s.mask); ok {
				r.match(s, o, r.addr(data, s.full)+"/"+strconv.Itoa(n))
				return
			}
		}
		if s.kind == kTCPFlags && op == expr.CmpOpEq && !anyNonZero(data) {
			r.match(s, "! ", r.value(s, s.mask))
			return
		}
		if s.kind == kTCPFlags && op == expr.CmpOpEq {
			r.match(s, "", r.value(s, data)+" / "+r.value(s, s.mask))
			return
		}
		if s.kind == kHex {
			if op == expr.CmpOpEq {
				o = "== "
			}
			r.match(s, "& "+r.value(s, s.mask)+" ", o+r.value(s, data))
			return
		}
		r.match(&sel{name: "<masked " + s.name + ">"}, "", "")
		return
	}
	if s.kind == kAddr && s.load < s.full {
		r.match(s, o, r.addr(data, s.full)+"/"+strconv.Itoa(s.load*8))
		return
	}
	v := r.value(s, data)
	if op == expr.CmpOpEq && len(data) > 0 {
		if s.l4dep || s.kind == kL4 {
			r.l4 = data[0]
		}
		if s.nfdep {
			switch data[0] {
			case unix.NFPROTO_IPV4:
				r.nh = "ip"
			case unix.NFPROTO_IPV6:
				r.nh = "ip6"
			}
		}
	}
	r.match(s, o, v)
	if op == expr.CmpOpEq {
		if s.l4dep {
			r.depL4 = len(r.out) - 1
		}
		if s.nfdep {
			r.depNF = len(r.out) - 1
		}
	}
}

func (r *nftRender) lookup(e *expr.Lookup) {
	s := r.regs[e.SourceRegister]
	if s == nil {
		r.out = append(r.out, "<lookup>")
		return
	}
	op := ""
	if e.Invert {
		op = "!= "
	}
	st := r.sets[e.SetName]
	isMap := e.IsDestRegSet
	if st == nil || !st.Anonymous {
		if isMap && e.DestRegister == 0 {
			r.match(s, "vmap ", "@"+e.SetName)
			return
		}
		if isMap {
			r.match(s, "map ", "@"+e.SetName)
			return
		}
		r.match(s, op, "@"+e.SetName)
		return
	}
	if isMap && e.DestRegister != 0 {
		r.match(s, "map ", "<anonymous map>")
		return
	}
	elems := append([]nftables.SetElement(nil), st.elems...)
	sort.SliceStable(elems, func(i, j int) bool { return string(elems[i].Key) < string(elems[j].Key) })
	var items []string
	for i := 0; i < len(elems); i++ {
		el := elems[i]
		if el.IntervalEnd {
			continue
		}
		v := r.value(s, el.Key)
		if st.Interval && i+1 < len(elems) && elems[i+1].IntervalEnd {
			end := decrement(elems[i+1].Key)
			if string(end) != string(el.Key) {
				v += "-" + r.value(s, end)
			}
			i++
		}
		if el.VerdictData != nil {
			v += " : " + verdict(el.VerdictData)
		}
		items = append(items, v)
	}
	val := "{ " + strings.Join(items, ", ") + " }"
	if isMap {
		r.match(s, "vmap ", val)
		return
	}
	r.match(s, op, val)
}

func decrement(b []byte) []byte {
	out := append([]byte(nil), b...)
	for i := len(out) - 1; i >= 0; i-- {
		out[i]--
		if out[i] != 0xff {
			break
		}
	}
	return out
}
