// Package xtables reads iptables-legacy (x_tables) rulesets with their
// counters, as iptables-legacy-save -c prints them, and names the rule or
// chain policy whose counter a dropped or translated packet moved.
//
// x_tables has no trace facility that pktdrop could use without adding
// rules of its own (TRACE needs a rule, and nothing would remove it after
// a SIGKILL), and the matching rule is not visible to a probe on
// ipt_do_table: the loop that finds it calls no function with it when the
// target is a plain verdict (DROP, or the policy). Every rule that matches
// does increment its own counter, though, so comparing the counters before
// and after the packet names it; reading counters changes nothing.
package xtables

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Ruleset is the tables of one family in one network namespace.
type Ruleset struct {
	Tables map[string]*Table
}

// Table is one x_tables table (filter, nat, mangle, raw, security).
type Table struct {
	Name   string
	Chains map[string]*Chain
}

// Chain is a built-in chain (with a policy) or a user chain (Policy "-").
type Chain struct {
	Name   string
	Policy string
	Pkts   uint64 // packets the policy decided (built-in chains)
	Rules  []Rule
}

// Rule is one rule as iptables-legacy-save prints it.
type Rule struct {
	Index  int    // 1-based position in its chain, as in iptables -L --line-numbers
	Text   string // "-A CHAIN ..." without the counters
	Pkts   uint64
	Target string // what -j or -g names ("" when none)
	Goto   bool   // -g: the chain does not return here
}

// Parse reads iptables-save -c output.
func Parse(r io.Reader) (*Ruleset, error) {
	rs := &Ruleset{Tables: map[string]*Table{}}
	var t *Table
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#':
		case line[0] == '*':
			t = &Table{Name: line[1:], Chains: map[string]*Chain{}}
			rs.Tables[t.Name] = t
		case line == "COMMIT":
			t = nil
		case t == nil:
			return nil, fmt.Errorf("line %d: %q outside a table", n, line)
		case line[0] == ':':
			c, err := parseChain(line[1:])
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", n, err)
			}
			t.Chains[c.Name] = c
		case line[0] == '[':
			if err := t.addRule(line); err != nil {
				return nil, fmt.Errorf("line %d: %w", n, err)
			}
		default:
			return nil, fmt.Errorf("line %d: unexpected %q (want the -c form)", n, line)
		}
	}
	return rs, sc.Err()
}

// parseChain reads "FORWARD DROP [3:252]".
func parseChain(s string) (*Chain, error) {
	f := strings.Fields(s)
	if len(f) != 3 {
		return nil, fmt.Errorf("chain line %q", s)
	}
	pkts, err := counters(f[2])
	if err != nil {
		return nil, err
	}
	return &Chain{Name: f[0], Policy: f[1], Pkts: pkts}, nil
}

// addRule reads "[1:84] -A FORWARD -j DOCKER-USER".
func (t *Table) addRule(line string) error {
	cnt, text, ok := strings.Cut(line, " ")
	if !ok {
		return fmt.Errorf("rule line %q", line)
	}
	pkts, err := counters(cnt)
	if err != nil {
		return err
	}
	words := split(text)
	if len(words) < 2 || words[0] != "-A" {
		return fmt.Errorf("rule line %q", line)
	}
	c := t.Chains[words[1]]
	if c == nil {
		return fmt.Errorf("rule of undeclared chain %s", words[1])
	}
	r := Rule{Index: len(c.Rules) + 1, Text: text, Pkts: pkts}
	for i := 2; i+1 < len(words); i++ {
		if words[i] == "-j" || words[i] == "--jump" || words[i] == "-g" || words[i] == "--goto" {
			r.Target, r.Goto = words[i+1], words[i][1] == 'g' || words[i] == "--goto"
		}
	}
	c.Rules = append(c.Rules, r)
	return nil
}

// counters reads "[pkts:bytes]" and returns pkts.
func counters(s string) (uint64, error) {
	in, ok := strings.CutPrefix(s, "[")
	in, ok2 := strings.CutSuffix(in, "]")
	p, _, ok3 := strings.Cut(in, ":")
	if !ok || !ok2 || !ok3 {
		return 0, fmt.Errorf("counters %q (want [packets:bytes])", s)
	}
	return strconv.ParseUint(p, 10, 64)
}

// split cuts a rule into words, keeping "quoted strings" (comments) whole.
func split(s string) []string {
	var out []string
	var b strings.Builder
	quoted, in := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && quoted && i+1 < len(s):
			i++
			b.WriteByte(s[i])
		case c == '"':
			quoted, in = !quoted, true
		case c == ' ' && !quoted:
			if in {
				out = append(out, b.String())
				b.Reset()
				in = false
			}
		default:
			b.WriteByte(c)
			in = true
		}
	}
	if in {
		out = append(out, b.String())
	}
	return out
}
