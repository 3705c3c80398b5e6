package nfstate

import (
	"bufio"
	"bytes"
	"os/exec"
	"strconv"
	"strings"
)

// readRuleText gives nf_tables rules their text: nft syntax from `nft -s`
// (stateless: no counters), or the iptables-save form for tables that
// iptables-nft wrote. Without the tools the text is rendered from the
// rules' expressions (nsFd is the calling thread's netns).
func readRuleText(s *State, nsFd int) {
	_, err := exec.LookPath("nft")
	rendered := err != nil
	if rendered {
		renderText(s, nsFd, true)
	} else {
		out, err := run("nft", "-s", "-a", "list", "ruleset")
		if err != nil {
			if len(s.Chains) > 0 {
				s.note("rule text unavailable: " + err.Error())
			}
			return
		}
		text := parseNft(out)
		for _, c := range s.Chains {
			for i := range c.Rules {
				c.Rules[i].Text = text[ruleKey{c.Family, c.Table, c.Rules[i].Handle}]
				fromText(&c.Rules[i])
			}
		}
	}
	for _, t := range iptablesTables(s) {
		tool := "iptables-nft-save"
		if t[0] == "ip6" {
			tool = "ip6tables-nft-save"
		}
		if _, err := exec.LookPath(tool); err != nil {
			if !rendered {
				renderText(s, nsFd, false)
			}
			return
		}
		out, err := run(tool, "-t", t[1])
		if err != nil {
			continue
		}
		attachIptables(s, t[0], t[1], out)
	}
}

type ruleKey struct {
	family, table string
	handle        uint64
}

func run(name string, args ...string) (string, error) {
	var stderr bytes.Buffer
	// The child starts on the calling (locked) thread: in its namespace.
	cmd := exec.Command(name, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", &runError{name, err, strings.TrimSpace(stderr.String())}
	}
	return string(out), nil
}

type runError struct {
	name   string
	err    error
	stderr string
}

func (e *runError) Error() string { return e.name + ": " + e.err.Error() + " " + e.stderr }

// parseNft reads `nft -a list ruleset`: a rule is a line inside a chain
// block that ends in "# handle N".
func parseNft(out string) map[ruleKey]string {
	m := map[ruleKey]string{}
	var family, table string
	inChain := false
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		f := strings.Fields(line)
		switch {
		case len(f) >= 3 && f[0] == "table":
			family, table, inChain = f[1], f[2], false
		case len(f) >= 2 && f[0] == "chain":
			inChain = true
		case line == "}":
			inChain = false
		case inChain:
			i := strings.LastIndex(line, " # handle ")
			if i < 0 {
				continue
			}
			h, err := strconv.ParseUint(strings.TrimSpace(line[i+len(" # handle "):]), 10, 64)
			if err == nil {
				m[ruleKey{family, table, h}] = strings.TrimSpace(line[:i])
			}
		}
	}
	return m
}

var standardTables = map[string]bool{"filter": true, "nat": true, "mangle": true, "raw": true, "security": true}

// iptablesTables are the nf_tables tables iptables-nft may have written.
func iptablesTables(s *State) [][2]string {
	var out [][2]string
	seen := map[[2]string]bool{}
	for _, c := range s.Chains {
		k := [2]string{c.Family, c.Table}
		if c.Backend == "nft" && (c.Family == "ip" || c.Family == "ip6") && standardTables[c.Table] && !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	return out
}

// attachIptables gives the Nth rule of each chain the Nth -A line of that
// chain. A chain whose counts differ keeps its nft text: a wrong text is
// worse than another syntax.
func attachIptables(s *State, family, table, save string) {
	lines := map[string][]string{}
	for _, l := range strings.Split(save, "\n") {
		l = strings.TrimSpace(l)
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "-A" {
			lines[f[1]] = append(lines[f[1]], l)
		}
	}
	for _, c := range s.Chains {
		if c.Family != family || c.Table != table {
			continue
		}
		c.Backend = "iptables-nft"
		if ls := lines[c.Name]; len(ls) == len(c.Rules) {
			for i := range c.Rules {
				c.Rules[i].Text = ls[i]
				fromText(&c.Rules[i])
			}
		}
	}
}

// fromText adds what the expressions did not say: xt matches and targets
// that iptables-nft writes are opaque to the decoder.
func fromText(r *Rule) {
	if textInvalid(r.Text) {
		r.Invalid = true
	}
	if r.Verdict == "reject" && strings.Contains(r.Text, "--reject-with ") {
		r.Reject = rejectFromText(r.Text)
	}
}
