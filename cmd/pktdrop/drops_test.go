package main

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/pktdrop/pktdrop/internal/privtest"
	"github.com/pktdrop/pktdrop/internal/report"
	"github.com/pktdrop/pktdrop/internal/testnet"
)

// dropCase is one field-case reproduction and the words pktdrop must use
// about it (field-cases.md, "pktdrop must say").
type dropCase struct {
	name  string
	build func(testing.TB) (*testnet.Scenario, error)
	// explain and hint are substrings the explanation and the fix must
	// contain; explainFn adds ones that depend on the built scenario.
	explain   []string
	explainFn func(s *testnet.Scenario) []string
	hint      []string
}

func ok(f func(testing.TB) *testnet.Scenario) func(testing.TB) (*testnet.Scenario, error) {
	return func(tb testing.TB) (*testnet.Scenario, error) { return f(tb), nil }
}

// Field case 1: netfilter, hook FORWARD, the device, and DOCKER-USER as
// the fix. That the chain's policy (not a rule) dropped it needs --rules
// (TestRules).
var forwardPolicyWords = dropCase{
	explain: []string{"netfilter", "FORWARD", "flannel.1"},
	hint:    []string{"DOCKER-USER"},
}

var dropCases = []dropCase{
	withName("ForwardPolicyDrop", ok(testnet.ForwardPolicyDrop), forwardPolicyWords),
	withName("ForwardPolicyDrop6", ok(testnet.ForwardPolicyDrop6), forwardPolicyWords),
	withName("ForwardPolicyDropLegacy", testnet.ForwardPolicyDropLegacy, forwardPolicyWords),
	{
		// Field case 2: which sysctl, its value, and how to turn it on.
		name: "ForwardingDisabled", build: ok(testnet.ForwardingDisabled),
		explain: []string{"forwarding", "net.ipv4.ip_forward=0", "eth0"},
		hint:    []string{"sysctl -w net.ipv4.ip_forward=1", "persist"},
	},
	{
		// The failed lookup is in table main; later lookups on the path
		// route the ICMP error back and must not be named instead.
		name: "NoRoute", build: ok(testnet.NoRoute),
		explain: []string{"no route", "10.232.0.10", "rt-in", "routing table main"},
		hint:    []string{"route"},
	},
	{
		// Field case 3: strict mode on tunl0, where the value comes from
		// (max of conf.all and conf.tunl0), and the route back via ens18.
		name: "RPFilterStrict", build: ok(testnet.RPFilterStrict),
		explain: []string{"reverse-path", "strict", "tunl0", "ens18",
			"net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.tunl0.rp_filter=1"},
		hint: []string{"rp_filter=2"},
	},
	{
		name: "UDPNoListener", build: ok(testnet.UDPNoListener),
		explain: []string{"nothing listens", "udp", "31337"},
		hint:    []string{"ss -lnp"},
	},
	{
		name: "UDPNoListener6", build: ok(testnet.UDPNoListener6),
		explain: []string{"nothing listens", "udp", "31337"},
		hint:    []string{"ss -lnp"},
	},
	{
		name: "TCPNoListener", build: ok(testnet.TCPNoListener),
		explain: []string{"nothing listens", "tcp", "31338", "reset"},
		hint:    []string{"ss -lnp"},
	},
}

func withName(name string, build func(testing.TB) (*testnet.Scenario, error), words dropCase) dropCase {
	words.name, words.build = name, build
	return words
}

// TestDrops runs pktdrop against each drop reproduction and checks every
// field of its report against what the scenario is known to do.
func TestDrops(t *testing.T) {
	for _, c := range dropCases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s := buildScenario(t, c.build)
			res := watch(t, s.Trigger, 1, scenarioFilter(s)...)
			checkDrop(t, s, c, res)
		})
	}
}

// buildScenario builds a scenario, turning "not available here" into a
// skip (a failure under CI=true).
func buildScenario(t *testing.T, build func(testing.TB) (*testnet.Scenario, error)) *testnet.Scenario {
	t.Helper()
	requireRoot(t)
	s, err := build(t)
	if errors.Is(err, testnet.ErrUnavailable) {
		privtest.Unavailable(t, err.Error())
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range s.Notes {
		t.Log(n)
	}
	return s
}

// scenarioFilter selects exactly the scenario's packets: the namespace
// names are unique per test, the addresses are not (scenarios reuse them).
func scenarioFilter(s *testnet.Scenario) []string {
	e := s.Expect
	args := []string{"--netns", e.Netns, "--proto", e.Proto, "--src", e.Src, "--dst", e.Dst}
	if e.DstPort != 0 {
		args = append(args, "--dport", strconv.Itoa(e.DstPort))
	}
	return args
}

// protoName is pktdrop's name for testnet's protocol names.
func protoName(p string) string {
	if p == "icmpv6" {
		return "icmp6"
	}
	return p
}

// checkDrop wants the first report to be the scenario's drop, fully
// described.
func checkDrop(t *testing.T, s *testnet.Scenario, c dropCase, res result) {
	t.Helper()
	if len(res.Reports) == 0 {
		return // watch already failed the test
	}
	e := s.Expect
	r := res.Reports[0]
	t.Logf("report: %s", brief([]report.Report{r}))
	eq := func(field, got, want string) {
		t.Helper()
		if got != want {
			t.Errorf("%s = %q, want %q", field, got, want)
		}
	}
	eq("kind", r.Kind, "drop")
	eq("cause", r.Cause, e.Cause)
	eq("netns_name", r.NetnsName, e.Netns)
	eq("iface", r.Iface, e.Iface)
	eq("src", r.Src, e.Src)
	eq("dst", r.Dst, e.Dst)
	eq("proto", r.Proto, protoName(e.Proto))
	if e.DstPort != 0 && int(r.Dport) != e.DstPort {
		t.Errorf("dport = %d, want %d", r.Dport, e.DstPort)
	}
	if e.Cause == testnet.CauseNetfilter {
		eq("hook", r.Hook, e.Hook)
		if nfLinksGiveHook() {
			eq("table", r.Table, e.Table)
		}
	}
	if kernelHasReasons(t) && e.Reason != "" {
		eq("reason", r.Reason, e.Reason)
	}
	if fn := function(r.Location); e.Location != "" && !locationOK(e, fn) {
		t.Errorf("location = %q, want function %s", r.Location, e.Location)
	}
	words := append([]string{}, c.explain...)
	if c.explainFn != nil {
		words = append(words, c.explainFn(s)...)
	}
	for _, w := range words {
		if !strings.Contains(r.Explanation, w) {
			t.Errorf("explanation %q lacks %q", r.Explanation, w)
		}
	}
	if r.Hint == "" {
		t.Error("hint is empty")
	}
	for _, w := range c.hint {
		if !strings.Contains(r.Hint, w) {
			t.Errorf("hint %q lacks %q", r.Hint, w)
		}
	}
	checkPathEnds(t, r, e.Netns)
	if t.Failed() {
		t.Logf("pktdrop stderr:\n%s", res.Stderr)
		if e.Cause == testnet.CauseNetfilter && r.Hook == "" && strings.Contains(res.Stderr, "netfilter hooks;") {
			// The kernel allows one BPF netfilter hook per priority: a
			// second pktdrop watching this namespace gets EBUSY.
			t.Log("note: pktdrop could not attach its netfilter links; is another pktdrop (without --netns) running on this machine?")
		}
	}
}

// checkPathEnds wants a path whose last step is in netns: the packet's
// story must end where it died.
func checkPathEnds(t *testing.T, r report.Report, netns string) {
	t.Helper()
	if len(r.Path) == 0 {
		t.Error("path is empty")
		return
	}
	if last := r.Path[len(r.Path)-1]; last.NetnsName != netns {
		t.Errorf("path ends in netns %q (%s), want %q", last.NetnsName, last.Where, netns)
	}
}

// function is the function part of a location ("nft_do_chain+0x4a5/0x...").
func function(loc string) string {
	fn, _, _ := strings.Cut(loc, "+")
	return fn
}

// locationOK accepts the function measured on 6.18 and its compiler
// clones (ip_rcv_finish_core.constprop.0); netfilter drops may also be
// freed by nf_hook_slow (x_tables, and nf_tables before it freed in
// nft_do_chain).
func locationOK(e testnet.Expect, fn string) bool {
	for _, want := range []string{e.Location, "nf_hook_slow"} {
		if fn == want || strings.HasPrefix(fn, want+".") {
			return true
		}
		if e.Cause != testnet.CauseNetfilter {
			break
		}
	}
	return false
}

// TestRules: with --rules pktdrop names the chain and the rule, or that
// the chain's policy dropped the packet (field case 1), for nf_tables
// (iptables-nft) and for iptables-legacy, whose rules are named from
// their counters (and also where nftrace is refused, before 5.12).
func TestRules(t *testing.T) {
	cases := []struct {
		name   string
		build  func(testing.TB) (*testnet.Scenario, error)
		legacy bool
	}{
		{"ForwardPolicyDrop", ok(testnet.ForwardPolicyDrop), false},
		{"ForwardPolicyDrop6", ok(testnet.ForwardPolicyDrop6), false},
		{"UserChainDrop", ok(testnet.UserChainDrop), false},
		{"ForwardPolicyDropLegacy", testnet.ForwardPolicyDropLegacy, true},
		{"ForwardPolicyDrop6Legacy", testnet.ForwardPolicyDrop6Legacy, true},
		{"UserChainDropLegacy", testnet.UserChainDropLegacy, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s := buildScenario(t, c.build)
			args := append(scenarioFilter(s), "--rules")
			if !c.legacy && nftRulesUnavailable(t, append([]string{"watch"}, args...)...) {
				return
			}
			res := watch(t, s.Trigger, 1, args...)
			e := s.Expect
			words := forwardPolicyWords
			words.name = c.name
			if e.Policy {
				words.explain = append([]string{"policy of chain FORWARD", "no rule matched"}, words.explain...)
			} else {
				words.explain = []string{"by rule " + e.Rule + " in chain " + e.Chain}
				words.hint = []string{"remove or change that rule"}
			}
			checkDrop(t, s, words, res)
			if len(res.Reports) == 0 {
				return
			}
			r := res.Reports[0]
			verdict := "rule"
			if e.Policy {
				verdict = "policy"
			}
			if r.Table != e.Table || r.Chain != e.Chain || r.Verdict != verdict || r.Rule != e.Rule {
				t.Errorf("table/chain/verdict/rule = %q/%q/%q/%q, want %q/%q/%q/%q", r.Table, r.Chain, r.Verdict, r.Rule,
					e.Table, e.Chain, verdict, e.Rule)
			}
			if c.legacy && r.RuleIndex != e.RuleIndex {
				t.Errorf("rule_index = %d, want %d", r.RuleIndex, e.RuleIndex)
			}
			if strings.Contains(r.Hint, "--rules") {
				t.Errorf("hint still suggests --rules although it was given: %q", r.Hint)
			}
		})
	}
}

// TestFallbackTracepoint forces the classic skb:kfree_skb tracepoint (what
// kernels without BTF tracepoint support get) and wants the same report.
func TestFallbackTracepoint(t *testing.T) {
	t.Parallel()
	privtest.RequireCmd(t, "bpftool")
	s := buildScenario(t, ok(testnet.ForwardPolicyDrop))
	args := append(scenarioFilter(s), "--probe-mechanism", "kfree_skb=tracepoint")
	res := watchReady(t, s.Trigger, 1, func(p *proc) {
		// The forced mechanism must really be the one attached.
		names := progNames(t, bpfIDs(t, p.cmd.Process.Pid, "prog_id"))
		if !names["tp_kfree_skb"] || names["tpb_kfree_skb"] || names["tpb_kfree_skb_n"] || names["tpb_kfree_skb_s"] {
			t.Errorf("kfree_skb=tracepoint: programs attached are %v, want tp_kfree_skb and no tp_btf one", keys(names))
		}
	}, args...)
	checkDrop(t, s, forwardPolicyWords, res)
}
