package nftrace

import (
	"fmt"
	"regexp"
)

var (
	natStmt    = regexp.MustCompile(`\b(dnat|snat|masquerade|redirect)\b|-j (DNAT|SNAT|MASQUERADE|REDIRECT)\b`)
	rejectStmt = regexp.MustCompile(`\breject\b|-j REJECT\b`)
)

// decide summarizes one packet's events. Groups that only crossed pktdrop's
// own table say nothing about the ruleset and are dropped.
func (a *assembler) decide(g *group) (Decision, bool) {
	d := Decision{Netns: g.key.netns, TraceID: g.key.id}
	if a.inode != nil {
		d.NetnsInode = a.inode(g.key.netns)
	}
	decisive := -1
	var in, out uint32
	var decIn, decOut uint32
	for i, e := range g.events {
		ev := e.ev
		if d.Time.IsZero() {
			d.Time = ev.Time
		}
		if d.Family == "" {
			d.Family = ev.NFProto
		}
		if d.Tuple.Family == "" {
			if t, ok := parseTuple(ev.Network, ev.Transport); ok {
				d.Tuple = t
			}
		}
		if ev.IIF != 0 || ev.OIF != 0 || ev.Network != nil {
			in, out = ev.IIF, ev.OIF
		}
		if isOwn(ev) {
			continue
		}
		d.Steps = append(d.Steps, Step{Hook: e.hook, Family: ev.Family, Table: ev.Table, Chain: ev.Chain,
			Type: stepType(ev), RuleHandle: ev.Handle, Verdict: ev.Verdict, VerdictChain: ev.VerdictChain})
		if decisive >= 0 && g.events[decisive].ev.Verdict != "accept" {
			continue
		}
		switch ev.Verdict {
		case "drop", "stolen", "queue", "accept":
			decisive, decIn, decOut = i, in, out
		}
		if nat, ok := a.natRule(g, i); ok {
			d.NAT = append(d.NAT, nat)
		}
	}
	if len(d.Steps) == 0 || decisive < 0 {
		return d, false
	}
	e := g.events[decisive]
	rs := a.lookup(g.key.netns, false)
	d.Hook, d.Verdict = e.hook, e.ev.Verdict
	d.Table, d.TableFamily, d.Chain = e.ev.Table, e.ev.Family, e.ev.Chain
	d.In, d.Out = rs.link(decIn), rs.link(decOut)
	d.Kind = "rule"
	if e.ev.Type == "policy" {
		d.Kind = "policy"
		return d, true
	}
	d.RuleHandle = e.ev.Handle
	if r := a.ruleOf(e.ev); r != nil {
		d.Rule, d.IptablesRule = r.Text, r.Iptables
		if d.Verdict == "drop" && rejectStmt.MatchString(r.Text+" "+r.Iptables) {
			d.Verdict = "reject"
		}
	} else {
		d.RuleTextNote = a.missingNote(e.ev)
	}
	return d, true
}

// ruleOf finds a rule's text, reloading the ruleset once if unknown.
func (a *assembler) ruleOf(ev Event) *RuleInfo {
	r := a.lookup(ev.Netns, false).rule(ev.Family, ev.Table, ev.Handle)
	if r == nil {
		r = a.lookup(ev.Netns, true).rule(ev.Family, ev.Table, ev.Handle)
	}
	return r
}

func (a *assembler) missingNote(ev Event) string {
	if rs := a.lookup(ev.Netns, false); rs != nil && rs.Note != "" {
		return rs.Note
	}
	return fmt.Sprintf("rule handle %d not found in %s %s (deleted since?)", ev.Handle, ev.Family, ev.Table)
}

// natRule reports the i-th event as a NAT translation: an accepting rule in
// a nat-type chain whose statement translates addresses. Without rule text
// an accepting rule in a nat chain is assumed to translate.
func (a *assembler) natRule(g *group, i int) (NATRule, bool) {
	e := g.events[i]
	if e.base == nil || e.base.Type != "nat" || e.ev.Type != "rule" || e.ev.Verdict != "accept" {
		return NATRule{}, false
	}
	n := NATRule{Hook: e.hook, Family: e.ev.Family, Table: e.ev.Table, Chain: e.ev.Chain, RuleHandle: e.ev.Handle}
	if r := a.ruleOf(e.ev); r != nil {
		if !natStmt.MatchString(r.Text + " " + r.Iptables) {
			return NATRule{}, false
		}
		n.Rule, n.IptablesRule = r.Text, r.Iptables
	}
	// The next base chain's copy of the header shows the translation;
	// without one, derive it from the rule's target.
	for _, next := range g.events[i+1:] {
		if t, ok := parseTuple(next.ev.Network, next.ev.Transport); ok {
			n.After = &t
			return n, true
		}
	}
	var before Tuple
	for _, prev := range g.events[:i+1] {
		if t, ok := parseTuple(prev.ev.Network, prev.ev.Transport); ok {
			before = t
		}
	}
	if t, ok := translated(before, n.Rule+" "+n.IptablesRule); ok && before.Family != "" {
		n.After = &t
	}
	return n, true
}

// stepType names the handle-less "rule" event with verdict continue that
// the kernel (6.x) sends when evaluation falls off the end of a chain.
func stepType(ev Event) string {
	if ev.Type == "rule" && ev.Handle == 0 && ev.Verdict == "continue" {
		return "end"
	}
	return ev.Type
}
