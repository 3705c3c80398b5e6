package xtables

import (
	"sort"
	"strings"
)

// Decision is a rule or policy that a packet met.
type Decision struct {
	Table, Chain string
	Verdict      string // "rule" or "policy"
	Rule         string // "-A CHAIN ..." (rule verdicts)
	Target       string // what the rule's -j or -g names
	Index        int    // the rule's 1-based position in Chain
}

func (d Decision) String() string {
	if d.Verdict == "policy" {
		return "policy of " + d.Table + "/" + d.Chain
	}
	return d.Rule
}

// Ledger holds, per rule and policy, the packets that moved its counter
// and that no report has claimed yet: a read of the counters after one
// drop may already hold the next drop's packet.
type Ledger struct {
	last    *Ruleset
	pending map[Decision]uint64
}

// NewLedger starts counting from base (counters before any report).
func NewLedger(base *Ruleset) *Ledger {
	return &Ledger{last: base, pending: map[Decision]uint64{}}
}

// Update adds what the counters moved by since the last read. A counter
// that went down (rules replaced, counters zeroed) starts over.
func (l *Ledger) Update(now *Ruleset) {
	for tn, t := range now.Tables {
		for cn, c := range t.Chains {
			prev := l.last.chain(tn, cn)
			if c.Policy != "-" {
				d := Decision{Table: tn, Chain: cn, Verdict: "policy"}
				l.pending[d] += delta(c.Pkts, prev, func(p *Chain) (uint64, bool) { return p.Pkts, true })
			}
			for _, r := range c.Rules {
				d := Decision{Table: tn, Chain: cn, Verdict: "rule", Rule: r.Text, Target: r.Target, Index: r.Index}
				l.pending[d] += delta(r.Pkts, prev, func(p *Chain) (uint64, bool) {
					if r.Index <= len(p.Rules) && p.Rules[r.Index-1].Text == r.Text {
						return p.Rules[r.Index-1].Pkts, true
					}
					return 0, false
				})
			}
		}
	}
	l.last = now
}

func delta(now uint64, prev *Chain, was func(*Chain) (uint64, bool)) uint64 {
	if prev == nil {
		return now
	}
	if p, ok := was(prev); ok && now >= p {
		return now - p
	}
	return now
}

func (rs *Ruleset) chain(table, chain string) *Chain {
	if rs == nil || rs.Tables[table] == nil {
		return nil
	}
	return rs.Tables[table].Chains[chain]
}

// Claim finds what decided a packet that kind says (Drop or Translate) at
// hook (PREROUTING, INPUT, FORWARD, OUTPUT, POSTROUTING) in one of tables
// (all when empty): the candidates are the rules of that kind in the
// chains reachable from the hook's built-in chain, and its policy, whose
// counters moved and are unclaimed. One candidate is claimed and returned;
// several are returned unclaimed, for the report to list.
func (l *Ledger) Claim(kind Kind, hook string, tables []string) (Decision, []Decision) {
	var cands []Decision
	for tn, t := range l.last.Tables {
		if len(tables) > 0 && !contains(tables, tn) {
			continue
		}
		reach := t.reachable(hook)
		for d, n := range l.pending {
			if n == 0 || d.Table != tn || !reach[d.Chain] {
				continue
			}
			if d.Verdict == "policy" && kind == Drop && t.Chains[d.Chain].Policy == "DROP" && d.Chain == hook ||
				d.Verdict == "rule" && kind.targets(d.Target) {
				cands = append(cands, d)
			}
		}
	}
	sort.Slice(cands, func(i, j int) bool { return cands[i].String() < cands[j].String() })
	if len(cands) != 1 {
		return Decision{}, cands
	}
	l.pending[cands[0]]--
	return cands[0], nil
}

// Kind is what a packet met: a drop or an address translation.
type Kind int

const (
	Drop Kind = iota
	Translate
)

func (k Kind) targets(t string) bool {
	switch k {
	case Drop:
		return t == "DROP" || t == "REJECT"
	case Translate:
		return t == "DNAT" || t == "SNAT" || t == "MASQUERADE" || t == "REDIRECT" || t == "NETMAP"
	}
	return false
}

// reachable is the built-in chain hook and every user chain it jumps or
// goes to, directly or not.
func (t *Table) reachable(hook string) map[string]bool {
	seen := map[string]bool{}
	var walk func(string)
	walk = func(name string) {
		c := t.Chains[name]
		if c == nil || seen[name] {
			return
		}
		seen[name] = true
		for _, r := range c.Rules {
			if r.Target != "" && t.Chains[r.Target] != nil {
				walk(r.Target)
			}
		}
	}
	walk(hook)
	return seen
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if strings.EqualFold(x, v) {
			return true
		}
	}
	return false
}
