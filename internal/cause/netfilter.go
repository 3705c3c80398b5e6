package cause

import (
	"errors"
	"fmt"
	"strings"

	"github.com/pktdrop/pktdrop/internal/nfstate"
	"github.com/pktdrop/pktdrop/internal/report"
)

// NetfilterReader is a System that can also read the netfilter tables of
// a namespace (read-only). Without it, causes name only what the probes
// saw.
type NetfilterReader interface {
	NetfilterFind(inode uint32, q nfstate.Query) (*nfstate.Finding, error)
}

// netfilter names the hook, and the table and chain when the namespace's
// tables say which one it must have been; it never guesses a policy or an
// owner that the tables do not show.
func netfilter(r *report.Report, sys System) {
	r.Cause = "netfilter"
	exact := r.Table != "" // probed in the table's own hook function
	hook, bracket, step := lastHook(r)
	if r.Hook == "" {
		r.Hook = hook
	}
	f := find(r, sys, exact, bracket)
	if f == nil && r.Table == "" {
		r.Table = bracket // no tables to check it against
	}
	n := &nfWords{r: r, f: f, step: step, exact: exact && r.Chain != ""}
	n.pick()
	r.Explanation = n.explain()
	r.Hint = n.hint()
}

func find(r *report.Report, sys System, exact bool, bracket string) *nfstate.Finding {
	nr, ok := sys.(NetfilterReader)
	if !ok || r.Netns == 0 {
		return nil
	}
	q := nfstate.Query{Family: r.Family, Hook: r.Hook, Iface: r.Iface}
	if exact {
		q.Table, q.Chain = r.Table, r.Chain
	} else {
		q.Bracket = bracket
	}
	f, err := nr.NetfilterFind(r.Netns, q)
	if errors.Is(err, errNoTables) {
		return nil
	}
	if err != nil {
		evidence(r, "netfilter_tables", "unreadable: "+err.Error())
		return nil
	}
	if f.Note != "" {
		evidence(r, "netfilter_tables", f.Note)
	}
	return f
}

// nfWords builds the words of one netfilter drop.
type nfWords struct {
	r *report.Report
	f *nfstate.Finding
	c *nfstate.Chain    // the one chain that fits, if one does
	d []nfstate.Decider // its rules that drop or reject
	// step is the last netfilter link bracket the packet passed.
	step *report.Step
	// exact: a probe in nft_do_chain named the table and base chain.
	exact bool
}

func (n *nfWords) pick() {
	f, r := n.f, n.r
	if f == nil {
		return
	}
	if f.Bridge != "" {
		evidence(r, "bridge", f.Bridge+" (ports "+strings.Join(f.Ports, ", ")+")")
	}
	if f.Docker {
		evidence(r, "docker_chains", "present")
	}
	f.Narrow(n.devices)
	if len(f.Candidates) == 1 {
		if o := nfstate.Owners(f.Deciders[0]); len(o) == 1 && o[0] != "" {
			evidence(r, "owner", o[0])
		}
	}
	switch len(f.Candidates) {
	case 1:
		n.c, n.d = f.Candidates[0], f.Deciders[0]
		r.Table = n.c.Table
		if (r.Hook == "" && n.c.Family == "bridge") || (n.exact && n.c.Hook != "") {
			r.Hook = strings.ToUpper(n.c.Hook) // the chain's own hook is the truth
		}
		if n.step != nil && strings.HasPrefix(n.step.Detail, "reached table ") {
			// The bracket's name was a guess from the priority.
			n.step.Detail = "reached table " + n.c.Family + " " + n.c.Table
		}
		evidence(r, "table", n.c.Family+" "+n.c.Table)
		evidence(r, "backend", n.c.Backend)
		evidence(r, "base_chain", fmt.Sprintf("%s (hook %s, priority %d, policy %s)", n.c.Name, n.c.Hook, n.c.Prio, n.c.Policy))
	case 0:
		// r.Table stays what a probe named, never the bracket's guess.
	default:
		if r.Verdict == "" {
			r.Table = "" // several fit: list them, pick none
		}
		var refs []string
		for _, c := range f.Candidates {
			refs = append(refs, c.Ref())
		}
		evidence(r, "candidates", strings.Join(refs, "; "))
	}
}

func (n *nfWords) explain() string {
	r, f := n.r, n.f
	var b strings.Builder
	b.WriteString("dropped by netfilter")
	if n.rejects() {
		b.WriteString(" (REJECT: the sender got " + n.d[0].Rule.Reject + ")")
	}
	if r.Hook != "" && n.c != nil && n.c.Family == "bridge" {
		b.WriteString(" in the bridge " + r.Hook + " hook")
	} else if r.Hook != "" {
		b.WriteString(" in the " + r.Hook + " hook")
	}
	if r.Family != "" {
		b.WriteString(" (" + r.Family + ")")
	}
	switch {
	case n.c != nil:
		b.WriteString(", " + tableName(n.c))
	case f != nil && len(f.Candidates) > 1:
		var refs []string
		for _, c := range f.Candidates {
			refs = append(refs, tableName(c)+" chain "+c.Name)
		}
		b.WriteString(", in one of: " + strings.Join(refs, "; "))
	case r.Table != "":
		b.WriteString(", table " + r.Table)
	}
	switch r.Verdict {
	case "policy":
		b.WriteString(", by the policy of chain " + r.Chain + " (no rule matched)")
	case "rule":
		b.WriteString(", by rule " + r.Rule + " in chain " + r.Chain)
	default:
		b.WriteString(n.deciders())
	}
	if f != nil && f.Bridge != "" {
		b.WriteString(", bridged on " + f.Bridge + " (ports " + strings.Join(f.Ports, ", ") + ")")
	}
	if w := where(r); w != "" {
		b.WriteString(", " + w)
	}
	return b.String()
}

// deciders says which rules of the one chain can have dropped it.
func (n *nfWords) deciders() string {
	if n.c == nil {
		return ""
	}
	drop, reject, invalid, _ := nfstate.Kinds(n.d)
	switch {
	case len(n.d) == 0 && n.c.Policy == "drop":
		evidence(n.r, "policy", "drop")
		return ", by the policy of chain " + n.c.Name + ": its policy is DROP and none of its rules drops"
	case invalid > 0 && invalid == len(n.d) && n.c.Policy != "drop":
		evidence(n.r, "conntrack", "invalid")
		return ", because conntrack found it INVALID: the only rules that drop here match ct state invalid (" + ruleList(n.d) + ")"
	case len(n.d) > 0 && n.c.Policy == "drop":
		evidence(n.r, "policy", "drop")
		return ", by " + ruleList(n.d) + " or the chain's DROP policy"
	case reject > 0 && drop == 0:
		return ", by " + ruleList(n.d)
	case len(n.d) > 0:
		return ", by " + ruleList(n.d)
	}
	return ""
}

func (n *nfWords) rejects() bool {
	if n.c == nil || len(n.d) == 0 || n.c.Policy == "drop" {
		return false
	}
	for _, d := range n.d {
		if d.Rule.Verdict != "reject" {
			return false
		}
	}
	evidence(n.r, "verdict", "reject: "+n.d[0].Rule.Reject)
	return true
}

func ruleList(d []nfstate.Decider) string {
	var parts []string
	for i, x := range d {
		if i == 3 {
			parts = append(parts, fmt.Sprintf("%d more", len(d)-3))
			break
		}
		t := x.Rule.Text
		if t == "" {
			t = x.Rule.Verdict + " rule (handle " + fmt.Sprint(x.Rule.Handle) + ")"
		}
		parts = append(parts, "rule `"+t+"` in chain "+x.Chain.Name)
	}
	if len(d) > 1 {
		return "one of " + strings.Join(parts, "; ")
	}
	return parts[0]
}

func tableName(c *nfstate.Chain) string {
	s := "table " + c.Family + " " + c.Table
	if c.Backend != "nft" {
		s += " (" + c.Backend + ")"
	}
	return s
}

// lastHook is the last netfilter hook on the path in the drop's netns, the
// table its netfilter link bracket precedes, and that step.
func lastHook(r *report.Report) (hook, table string, step *report.Step) {
	for i := len(r.Path) - 1; i >= 0; i-- {
		s := &r.Path[i]
		if !isHook(s.Where) || (r.Netns != 0 && s.Netns != r.Netns) {
			continue
		}
		if t, ok := strings.CutPrefix(s.Detail, "reached table "); ok {
			table = t
		}
		if table != "" {
			step = s
		}
		return s.Where, table, step
	}
	return "", "", nil
}

func isHook(w string) bool {
	switch w {
	case "PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING":
		return true
	}
	return false
}
