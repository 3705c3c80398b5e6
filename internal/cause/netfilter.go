package cause

import (
	"fmt"
	"strings"

	"github.com/pktdrop/pktdrop/internal/report"
)

// netfilter names the hook and, where the path shows it, the table.
func netfilter(r *report.Report, _ System) {
	r.Cause = "netfilter"
	hook, table := lastHook(r)
	if r.Hook == "" {
		r.Hook = hook
	}
	if r.Table == "" {
		r.Table = table
	}
	var b strings.Builder
	b.WriteString("dropped by netfilter")
	if r.Hook != "" {
		b.WriteString(" in the " + r.Hook + " hook")
	}
	if r.Family != "" {
		b.WriteString(" (" + r.Family + ")")
	}
	if r.Table != "" {
		b.WriteString(", table " + r.Table)
	}
	switch r.Verdict {
	case "policy":
		b.WriteString(", by the policy of chain " + r.Chain + " (no rule matched)")
	case "rule":
		b.WriteString(", by rule " + r.Rule + " in chain " + r.Chain)
	}
	if w := where(r); w != "" {
		b.WriteString(", " + w)
	}
	r.Explanation = b.String()

	tool := "iptables"
	if r.Family == "ipv6" {
		tool = "ip6tables"
	}
	switch {
	case r.Hook == "FORWARD" && r.Verdict != "rule":
		r.Hint = "the FORWARD chain's policy is probably DROP (Docker sets it); allow this traffic, e.g. `" + tool +
			" -I DOCKER-USER -i " + orAny(r.Iface) + " -j ACCEPT` or an ACCEPT rule in FORWARD for the overlay device" +
			rulesHint(r)
	case r.Verdict == "rule" && r.RuleIndex != 0: // iptables-legacy names rules by position
		r.Hint = fmt.Sprintf("remove or change that rule (`%s-legacy -t %s -D %s %d` removes it), or add an ACCEPT before it",
			tool, r.Table, r.Chain, r.RuleIndex)
	case r.Verdict == "rule":
		r.Hint = "remove or change that rule, or add an ACCEPT before it"
	default:
		// Name only what is known: "<dev>" is a placeholder for a device,
		// not for an unknown hook or table.
		rules := "rules"
		if r.Hook != "" {
			rules = r.Hook + " rules"
		}
		if r.Table != "" {
			rules += " of table " + r.Table
		}
		r.Hint = "list the " + rules + " (`nft list ruleset` or `" + tool + "-save`) and allow this traffic" + rulesHint(r)
	}
}

// rulesHint points to --rules unless its verdict is already here (a chain
// alone comes from the drop probes and does not say which rule).
func rulesHint(r *report.Report) string {
	if r.Verdict != "" {
		return ""
	}
	return "; run with --rules to see the exact rule or policy"
}

func orAny(s string) string {
	if s == "" {
		return "<dev>"
	}
	return s
}

// lastHook is the last netfilter hook on the path in the drop's netns.
func lastHook(r *report.Report) (hook, table string) {
	for i := len(r.Path) - 1; i >= 0; i-- {
		s := r.Path[i]
		if !isHook(s.Where) || (r.Netns != 0 && s.Netns != r.Netns) {
			continue
		}
		if t, ok := strings.CutPrefix(s.Detail, "reached table "); ok {
			table = t
		}
		return s.Where, table
	}
	return "", ""
}

func isHook(w string) bool {
	switch w {
	case "PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING":
		return true
	}
	return false
}
