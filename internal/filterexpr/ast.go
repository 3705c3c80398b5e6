package filterexpr

import "github.com/pktdrop/pktdrop/gen"

// The parser reduces every primitive to a boolean tree over atoms, each
// one test the BPF evaluator (bpf/expr.h) can make on a parsed tuple.
type node interface{ isNode() }

type andNode struct{ l, r node }
type orNode struct{ l, r node }
type notNode struct{ x node }
type constNode bool

type opT = gen.PktdropPdExprOp

// atom is one instruction without its jumps.
type atom struct {
	op        gen.PktdropPdExprOp
	mask      uint16
	lo, hi    uint16
	fam, plen uint8
	addr      [16]byte
}

func (andNode) isNode()   {}
func (orNode) isNode()    {}
func (notNode) isNode()   {}
func (constNode) isNode() {}
func (*atom) isNode()     {}

const (
	opSrc      = gen.PktdropPdExprOpPD_EXPR_SRC
	opDst      = gen.PktdropPdExprOpPD_EXPR_DST
	opFamily   = gen.PktdropPdExprOpPD_EXPR_FAMILY
	opProto    = gen.PktdropPdExprOpPD_EXPR_PROTO
	opSport    = gen.PktdropPdExprOpPD_EXPR_SPORT
	opDport    = gen.PktdropPdExprOpPD_EXPR_DPORT
	opTCPFlags = gen.PktdropPdExprOpPD_EXPR_TCPFLAGS
	opICMPType = gen.PktdropPdExprOpPD_EXPR_ICMPTYPE
	opICMPCode = gen.PktdropPdExprOpPD_EXPR_ICMPCODE
)

// eq tests field == v.
func eq(op gen.PktdropPdExprOp, v uint16) node {
	return &atom{op: op, mask: 0xffff, lo: v, hi: v}
}

func rng(op gen.PktdropPdExprOp, lo, hi uint16) node {
	return &atom{op: op, mask: 0xffff, lo: lo, hi: hi}
}

func and(ns ...node) node {
	out := ns[0]
	for _, n := range ns[1:] {
		out = andNode{out, n}
	}
	return out
}

func or(ns ...node) node {
	out := ns[0]
	for _, n := range ns[1:] {
		out = orNode{out, n}
	}
	return out
}

// fold removes constants below the root, so every constant the compiler
// sees is the whole expression.
func fold(n node) node {
	switch n := n.(type) {
	case andNode:
		l, r := fold(n.l), fold(n.r)
		if c, ok := l.(constNode); ok {
			if !c {
				return constNode(false)
			}
			return r
		}
		if c, ok := r.(constNode); ok {
			if !c {
				return constNode(false)
			}
			return l
		}
		return andNode{l, r}
	case orNode:
		l, r := fold(n.l), fold(n.r)
		if c, ok := l.(constNode); ok {
			if c {
				return constNode(true)
			}
			return r
		}
		if c, ok := r.(constNode); ok {
			if c {
				return constNode(true)
			}
			return l
		}
		return orNode{l, r}
	case notNode:
		x := fold(n.x)
		if c, ok := x.(constNode); ok {
			return constNode(!c)
		}
		return notNode{x}
	}
	return n
}
