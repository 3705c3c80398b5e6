package main

import (
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/pktdrop/pktdrop/internal/testnet"
)

// TestRuleTextWithoutBinaries runs pktdrop as in a scratch image: no nft,
// no iptables*, no nsenter on PATH (nothing at all). The rule that drops
// must still be named with its exact text, rendered from netlink: with
// --rules in the report's rule, and without in the cause's explanation.
func TestRuleTextWithoutBinaries(t *testing.T) {
	cases := []struct {
		name  string
		build func(testing.TB) (*testnet.Scenario, error)
		rule  func(*testnet.Scenario) string
	}{
		{"IptablesNft", ok(testnet.UserChainDrop), func(s *testnet.Scenario) string { return s.Expect.Rule }},
		{"Native", ok(testnet.NativeTableDrop), func(s *testnet.Scenario) string { return "ip daddr " + s.Expect.Dst + " drop" }},
	}
	env := []string{"PATH=" + t.TempDir()}
	for _, v := range os.Environ() {
		if !strings.HasPrefix(v, "PATH=") {
			env = append(env, v)
		}
	}
	for _, c := range cases {
		for _, rules := range []bool{true, false} {
			name := c.name
			if rules {
				name += "Rules"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				s := buildScenario(t, c.build)
				want := c.rule(s)
				args := append([]string{"watch"}, scenarioFilter(s)...)
				if rules {
					if nftRulesUnavailable(t, append(args, "--rules")...) {
						return
					}
					args = append(args, "--rules")
				}
				p := startEnv(t, env, append(args, "-o", "json")...)
				if err := s.Trigger(); err != nil {
					t.Errorf("trigger: %v", err)
				}
				p.waitReports(1, reportTimeout)
				res := p.stop(syscall.SIGINT)
				if len(res.Reports) == 0 {
					t.Fatalf("no report; stderr:\n%s", res.Stderr)
				}
				r := res.Reports[0]
				if rules && r.Rule != want {
					t.Errorf("rule = %q, want %q (explanation %q)", r.Rule, want, r.Explanation)
				}
				if !rules && !strings.Contains(r.Explanation, "rule `"+want+"`") {
					t.Errorf("explanation %q does not name rule `%s`", r.Explanation, want)
				}
				if rules && r.Chain != s.Expect.Chain {
					t.Errorf("chain = %q, want %q", r.Chain, s.Expect.Chain)
				}
			})
		}
	}
}

// TestLegacyRuleTextNeedsTool: iptables-legacy rules have no netlink form,
// so without iptables-legacy-save pktdrop says exactly that, in the
// evidence without --rules and in its notes with.
func TestLegacyRuleTextNeedsTool(t *testing.T) {
	const need = "rule text needs iptables-legacy-save (not found)"
	env := []string{"PATH=" + t.TempDir()}
	for _, v := range os.Environ() {
		if !strings.HasPrefix(v, "PATH=") {
			env = append(env, v)
		}
	}
	for _, rules := range []bool{true, false} {
		name := "Cause"
		if rules {
			name = "Rules"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := buildScenario(t, testnet.LegacyRuleDrop)
			args := append([]string{"watch"}, scenarioFilter(s)...)
			if rules {
				args = append(args, "--rules")
			}
			p := startEnv(t, env, append(args, "-o", "json")...)
			if err := s.Trigger(); err != nil {
				t.Errorf("trigger: %v", err)
			}
			p.waitReports(1, reportTimeout)
			res := p.stop(syscall.SIGINT)
			if len(res.Reports) == 0 {
				t.Fatalf("no report; stderr:\n%s", res.Stderr)
			}
			r := res.Reports[0]
			said := res.Stderr + " " + r.Evidence["netfilter_tables"] + " " + r.Explanation
			t.Logf("evidence netfilter_tables %q", r.Evidence["netfilter_tables"])
			if !strings.Contains(said, need) {
				t.Errorf("pktdrop does not say %q; evidence %v, stderr:\n%s", need, r.Evidence, res.Stderr)
			}
		})
	}
}
