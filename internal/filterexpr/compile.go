// Package filterexpr compiles a pcap-filter expression (`tcp and port 80`)
// into the jump program bpf/expr.h evaluates in the kernel on each packet's
// parsed headers. The grammar is libpcap's, restricted to what the tuple
// holds; a differential test holds the verdicts to libpcap's own.
package filterexpr

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/pktdrop/pktdrop/gen"
	"github.com/pktdrop/pktdrop/internal/filter"
)

// maxLen bounds the parser's work (nested parentheses are parsed twice).
const maxLen = 4096

// MaxInsns is PD_EXPR_MAX in bpf/expr.h.
const MaxInsns = 64

// Jump targets that end the program (PD_EXPR_TRUE, PD_EXPR_FALSE).
const (
	jumpTrue  = 254
	jumpFalse = 255
)

// Supported lists the grammar for error messages and help.
const Supported = "host, net (CIDR or mask), port, portrange, src/dst qualifiers, ip, ip6, icmp, icmp6, tcp, udp, sctp, " +
	"proto N, ip proto N, ip6 proto N, tcp[tcpflags] / tcp[13], icmp[icmptype|icmpcode], icmp6[icmp6type|icmp6code] " +
	"compared with & and ==, !=, <, <=, >, >=, and/&&, or/||, not/!, parentheses"

// Expr is a compiled expression; the zero Expr (no expression) is off.
type Expr struct {
	text string
	prog [MaxInsns]gen.PktdropPdExprInsn
	n    int
}

// Parse compiles s. An empty s gives an Expr that is off. Errors are
// *filter.UsageError naming the column of the problem.
func Parse(s string) (*Expr, error) {
	e := &Expr{text: strings.TrimSpace(s)}
	if e.text == "" {
		return e, nil
	}
	if len(s) > maxLen {
		return nil, usageError(s[:40]+"...", &posError{pos: -1, msg: fmt.Sprintf("longer than %d bytes", maxLen)})
	}
	toks, perr := lex(s)
	if perr == nil {
		p := &parser{toks: toks}
		var n node
		if n, perr = p.parseExpr(); perr == nil {
			if t := p.peek(); t.kind != tEOF {
				perr = errAt(t, "expected and, or or the end, found %s", describe(t))
			} else if perr = e.compile(fold(n)); perr != nil {
				perr.pos = -1
			}
		}
	}
	if perr != nil {
		return nil, usageError(s, perr)
	}
	return e, nil
}

func usageError(s string, pe *posError) error {
	where := ""
	if pe.pos >= 0 {
		where = fmt.Sprintf(" at column %d", utf8.RuneCountInString(s[:pe.pos])+1)
	}
	return &filter.UsageError{Msg: fmt.Sprintf("invalid filter expression %q%s: %s; supported: %s", s, where, pe.msg, Supported)}
}

// String is the expression as given.
func (e *Expr) String() string { return e.text }

// On reports whether there is an expression.
func (e *Expr) On() bool { return e.n > 0 }

// Len is the number of instructions.
func (e *Expr) Len() int { return e.n }

// Constants are the BPF variables of bpf/expr.h, for
// CollectionSpec.Variables[name].Set; always all of them, so a reused
// spec never keeps a stale program.
func (e *Expr) Constants() map[string]any {
	on := uint8(0)
	if e.On() {
		on = 1
	}
	return map[string]any{"cfg_expr_on": on, "cfg_expr": e.prog}
}

// compile lays the tree out as forward jumps, emitting from the end:
// each node's code is placed before the code it jumps to.
func (e *Expr) compile(root node) *posError {
	if c, ok := root.(constNode); ok {
		// Always true or false: one test that always holds.
		target := uint8(jumpFalse)
		if c {
			target = jumpTrue
		}
		e.prog[0] = gen.PktdropPdExprInsn{Op: uint8(opFamily), Jt: target, Jf: target}
		e.n = 1
		return nil
	}
	var rev []gen.PktdropPdExprInsn // rev[k] is instruction len-1-k
	var labels [][2]int             // rev[k]'s jump targets, as rev indexes
	const tTrue, tFalse = -1, -2
	var gen1 func(n node, t, f int) int
	gen1 = func(n node, t, f int) int {
		switch n := n.(type) {
		case andNode:
			r := gen1(n.r, t, f)
			return gen1(n.l, r, f)
		case orNode:
			r := gen1(n.r, t, f)
			return gen1(n.l, t, r)
		case notNode:
			return gen1(n.x, f, t)
		case *atom:
			rev = append(rev, gen.PktdropPdExprInsn{Op: uint8(n.op), Mask: n.mask, Lo: n.lo, Hi: n.hi,
				Fam: n.fam, Plen: n.plen, Addr: n.addr})
			labels = append(labels, [2]int{t, f})
			return len(rev) - 1
		}
		panic(fmt.Sprintf("filterexpr: constant %v below the root", n))
	}
	gen1(root, tTrue, tFalse)
	if len(rev) > MaxInsns {
		return &posError{msg: fmt.Sprintf("the expression needs %d tests; the kernel program holds %d", len(rev), MaxInsns)}
	}
	e.n = len(rev)
	at := func(label int) uint8 {
		switch label {
		case tTrue:
			return jumpTrue
		case tFalse:
			return jumpFalse
		}
		return uint8(e.n - 1 - label)
	}
	for k, in := range rev {
		in.Jt, in.Jf = at(labels[k][0]), at(labels[k][1])
		e.prog[e.n-1-k] = in
	}
	return nil
}
