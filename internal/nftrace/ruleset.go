package nftrace

import (
	"bufio"
	"strconv"
	"strings"
)

// Ruleset is the snapshot of one netns's nf_tables state that Decisions are
// explained with. Live tracers load it (and reload it when a chain or rule
// handle is unknown); recordings store it beside the events.
type Ruleset struct {
	Chains []ChainInfo `json:"chains"`
	Rules  []RuleInfo  `json:"rules"`
	Links  []Link      `json:"links,omitempty"`
	// Note explains missing rule text (e.g. nft not installed).
	Note string `json:"note,omitempty"`

	chains map[chainKey]*ChainInfo
	rules  map[ruleKey]*RuleInfo
}

// ChainInfo describes a chain; base chains have a hook.
type ChainInfo struct {
	Family   string `json:"family"`
	Table    string `json:"table"`
	Name     string `json:"name"`
	Base     bool   `json:"base,omitempty"`
	Type     string `json:"type,omitempty"` // filter, nat, route
	Hook     string `json:"hook,omitempty"`
	Priority int32  `json:"priority,omitempty"`
	Policy   string `json:"policy,omitempty"`
}

// RuleInfo is a rule's text in nft syntax and, for iptables-nft tables, in
// iptables-save syntax.
type RuleInfo struct {
	Family   string `json:"family"`
	Table    string `json:"table"`
	Chain    string `json:"chain"`
	Handle   uint64 `json:"handle"`
	Text     string `json:"text"`
	Iptables string `json:"iptables,omitempty"`
}

// Link names an interface index in the netns.
type Link struct {
	Index uint32 `json:"index"`
	Name  string `json:"name"`
}

type chainKey struct{ family, table, chain string }
type ruleKey struct {
	family, table string
	handle        uint64
}

func (rs *Ruleset) index() {
	rs.chains = make(map[chainKey]*ChainInfo, len(rs.Chains))
	for i := range rs.Chains {
		c := &rs.Chains[i]
		rs.chains[chainKey{c.Family, c.Table, c.Name}] = c
	}
	rs.rules = make(map[ruleKey]*RuleInfo, len(rs.Rules))
	for i := range rs.Rules {
		r := &rs.Rules[i]
		rs.rules[ruleKey{r.Family, r.Table, r.Handle}] = r
	}
}

func (rs *Ruleset) chain(family, table, name string) *ChainInfo {
	if rs == nil {
		return nil
	}
	if rs.chains == nil {
		rs.index()
	}
	return rs.chains[chainKey{family, table, name}]
}

func (rs *Ruleset) rule(family, table string, handle uint64) *RuleInfo {
	if rs == nil {
		return nil
	}
	if rs.rules == nil {
		rs.index()
	}
	return rs.rules[ruleKey{family, table, handle}]
}

func (rs *Ruleset) link(index uint32) string {
	if rs == nil || index == 0 {
		return ""
	}
	for _, l := range rs.Links {
		if l.Index == index {
			return l.Name
		}
	}
	return "if" + strconv.FormatUint(uint64(index), 10)
}

// parseNftList reads `nft -a list ruleset` output: rules are the lines
// inside a chain block that end in "# handle N".
func parseNftList(out string) []RuleInfo {
	var rules []RuleInfo
	var family, table, chain string
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		f := strings.Fields(line)
		switch {
		case len(f) >= 3 && f[0] == "table":
			family, table, chain = f[1], f[2], ""
		case len(f) >= 2 && f[0] == "chain":
			chain = strings.Trim(f[1], `"`)
		case line == "}":
			chain = ""
		case chain != "":
			i := strings.LastIndex(line, " # handle ")
			if i < 0 {
				continue
			}
			h, err := strconv.ParseUint(strings.TrimSpace(line[i+len(" # handle "):]), 10, 64)
			if err != nil {
				continue
			}
			rules = append(rules, RuleInfo{Family: family, Table: table, Chain: chain,
				Handle: h, Text: strings.TrimSpace(line[:i])})
		}
	}
	return rules
}

// parseIptablesSave returns the "-A CHAIN ..." lines per chain, in order.
func parseIptablesSave(out string) map[string][]string {
	m := map[string][]string{}
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "-A ") {
			continue
		}
		f := strings.Fields(line)
		if len(f) >= 2 {
			m[f[1]] = append(m[f[1]], line)
		}
	}
	return m
}

// iptablesTables are the table names iptables-nft creates.
var iptablesTables = map[string]bool{"filter": true, "nat": true, "mangle": true, "raw": true, "security": true}

// attachIptables maps the Nth rule of each chain of table (in nft order) to
// the Nth -A line of that chain. A chain whose counts differ is left alone:
// a wrong attribution is worse than none.
func attachIptables(rules []RuleInfo, family, table string, save map[string][]string) {
	byChain := map[string][]int{}
	for i, r := range rules {
		if r.Family == family && r.Table == table {
			byChain[r.Chain] = append(byChain[r.Chain], i)
		}
	}
	for chain, idx := range byChain {
		lines := save[chain]
		if len(lines) != len(idx) {
			continue
		}
		for n, i := range idx {
			rules[i].Iptables = lines[n]
		}
	}
}
