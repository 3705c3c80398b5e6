package testnet

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// nstat reads one absolute counter in ns without touching nstat's history
// file (-s), which is shared by all namespaces of the user.
func nstat(t *testing.T, ns *NS, name string) int {
	t.Helper()
	out := ns.MustRun("nstat", "-asz", name)
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) >= 2 && f[0] == name {
			v, err := strconv.Atoi(f[1])
			if err != nil {
				t.Fatalf("nstat %s: %q", name, l)
			}
			return v
		}
	}
	t.Fatalf("nstat: no counter %s in %q", name, out)
	return 0
}

var policyRE = regexp.MustCompile(`\(policy \w+ (\d+) packets`)

// policyPackets is the packet count of a chain's policy.
func policyPackets(t *testing.T, ns *NS, tool, table, chain string) int {
	t.Helper()
	out := ns.MustRun(tool, "-w", "-t", table, "-L", chain, "-v", "-x", "-n")
	m := policyRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("%s -L %s: no policy counter in %q", tool, chain, out)
	}
	v, _ := strconv.Atoi(m[1])
	return v
}

// rulePackets is the packet count of each rule in a chain, in order.
func rulePackets(t *testing.T, ns *NS, tool, table, chain string) []int {
	t.Helper()
	out := ns.MustRun(tool, "-w", "-t", table, "-L", chain, "-v", "-x", "-n")
	var counts []int
	for _, l := range strings.Split(out, "\n")[2:] {
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		v, err := strconv.Atoi(f[0])
		if err != nil {
			t.Fatalf("%s -L %s: bad rule line %q", tool, chain, l)
		}
		counts = append(counts, v)
	}
	return counts
}
