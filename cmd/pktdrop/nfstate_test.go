package main

import (
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pktdrop/pktdrop/internal/output"
	"github.com/pktdrop/pktdrop/internal/privtest"
	"github.com/pktdrop/pktdrop/internal/report"
	"github.com/pktdrop/pktdrop/internal/testnet"
)

// nfCase is a netfilter drop without --rules and the deciding facts
// pktdrop must state: they come from the namespace's tables (which exist,
// their family and backend, the policy), never from the priority alone.
type nfCase struct {
	name  string
	build func(testing.TB) (*testnet.Scenario, error)
	// evidence that must be there with this value ("*": any value), or
	// absent ("-").
	evidence map[string]string
	// hint words that must be there, or must not.
	hint, notHint []string
	// fix: the hint holds commands that must let the traffic through.
	fix bool
}

var nfCases = []nfCase{
	{name: "NativeTableDrop", build: ok(testnet.NativeTableDrop),
		evidence: map[string]string{"table": "ip myfilter", "backend": "nft", "policy": "-", "docker_chains": "-"},
		notHint:  []string{"Docker", "policy is"}, fix: true},
	{name: "NativeSetDrop", build: ok(testnet.NativeSetDrop),
		evidence: map[string]string{"table": "ip myfilter", "backend": "nft", "policy": "-"}, fix: true},
	{name: "NativeTableDrop6", build: ok(testnet.NativeTableDrop6),
		evidence: map[string]string{"table": "ip6 myfilter6", "backend": "nft", "policy": "-"}, fix: true},
	{name: "RejectICMP", build: ok(testnet.RejectICMP),
		evidence: map[string]string{"table": "ip filter", "backend": "iptables-nft", "verdict": "reject: icmp port-unreachable", "policy": "-"},
		notHint:  []string{"Docker"}, fix: true},
	{name: "RejectTCP", build: ok(testnet.RejectTCP),
		evidence: map[string]string{"table": "ip filter", "verdict": "reject: tcp reset", "policy": "-"}, fix: true},
	{name: "ConntrackInvalid", build: ok(testnet.ConntrackInvalid),
		evidence: map[string]string{"table": "ip filter", "conntrack": "invalid", "policy": "-", "verdict": "-"},
		hint:     []string{"INVALID"}, notHint: []string{"Docker", "-j ACCEPT"}},
	{name: "LegacyRuleDrop", build: testnet.LegacyRuleDrop,
		evidence: map[string]string{"table": "ip filter", "backend": "iptables-legacy", "policy": "-"},
		hint:     []string{"iptables-legacy -I FORWARD"}, fix: true},
	{name: "RuleDropPolicyAccept", build: ok(testnet.RuleDropPolicyAccept),
		evidence: map[string]string{"table": "ip filter", "backend": "iptables-nft", "policy": "-", "docker_chains": "-"},
		notHint:  []string{"Docker", "policy is"}, fix: true},
	{name: "PolicyDropNoDocker", build: ok(testnet.PolicyDropNoDocker),
		evidence: map[string]string{"table": "ip filter", "policy": "drop", "docker_chains": "-"},
		hint:     []string{"policy is DROP"}, notHint: []string{"Docker"}, fix: true},
	// Field case 1: policy DROP and Docker's DOCKER-USER chain; the fix
	// must let the replies through too.
	{name: "ForwardPolicyDrop", build: ok(testnet.ForwardPolicyDrop),
		evidence: map[string]string{"table": "ip filter", "policy": "drop", "docker_chains": "present"},
		hint:     []string{"Docker sets it", "DOCKER-USER"}, fix: true},
	{name: "ForwardPolicyDrop6", build: ok(testnet.ForwardPolicyDrop6),
		evidence: map[string]string{"table": "ip6 filter", "policy": "drop", "docker_chains": "present"},
		hint:     []string{"ip6tables -I DOCKER-USER"}, fix: true},
	{name: "DockerIsolation", build: ok(testnet.DockerIsolation),
		evidence: map[string]string{"table": "ip filter", "owner": "Docker", "docker_chains": "present", "policy": "-"},
		hint:     []string{"docker network connect", "DOCKER-USER"}, fix: true},
	{name: "KubeNoEndpoints", build: ok(testnet.KubeNoEndpoints),
		evidence: map[string]string{"table": "ip filter", "owner": "kube-proxy", "verdict": "reject: icmp port-unreachable"},
		hint:     []string{"selector", "endpoints"}, notHint: []string{"remove", "Docker"}},
	{name: "BridgeFamilyDrop", build: testnet.BridgeFamilyDrop,
		evidence: map[string]string{"table": "bridge brfilter", "backend": "nft", "bridge": "br0 (ports brp-c, brp-s)", "policy": "-"},
		fix:      true},
	{name: "BrNetfilterDrop", build: testnet.BrNetfilterDrop,
		evidence: map[string]string{"table": "ip filter", "backend": "iptables-nft", "bridge": "br0 (ports brp-c, brp-s)", "policy": "-"},
		hint:     []string{"--physdev-in brp-c"}, fix: true},
}

// TestNetfilterState: for each case pktdrop names what the tables show,
// and each command in its hint, run in the namespace, lets the traffic
// through.
func TestNetfilterState(t *testing.T) {
	for _, c := range nfCases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s := buildScenario(t, func(tb testing.TB) (*testnet.Scenario, error) {
				s, err := c.build(tb)
				if errors.Is(err, testnet.ErrNoBrNetfilter) || errors.Is(err, testnet.ErrInert) {
					// Derived from the kernel, not a missing tool: without
					// br_netfilter no iptables rule sees bridged traffic.
					// In CI that fails: the kernels CI runs it on have it.
					privtest.Unavailable(t, err.Error())
				}
				return s, err
			})
			res := watch(t, s.Trigger, 1, scenarioFilter(s)...)
			if len(res.Reports) == 0 {
				return
			}
			r := res.Reports[0]
			t.Logf("pktdrop said:\n%s", output.Text(&r))
			checkNF(t, s, c, r)
			if c.fix && !t.Failed() {
				applyFix(t, s, r)
			}
		})
	}
}

func checkNF(t *testing.T, s *testnet.Scenario, c nfCase, r report.Report) {
	t.Helper()
	e := s.Expect
	if r.Cause != testnet.CauseNetfilter || r.NetnsName != e.Netns || r.Iface != e.Iface {
		t.Errorf("cause/netns/iface = %q/%q/%q, want %q/%q/%q", r.Cause, r.NetnsName, r.Iface, testnet.CauseNetfilter, e.Netns, e.Iface)
	}
	if e.Hook != "" && r.Hook != e.Hook {
		t.Errorf("hook = %q, want %q", r.Hook, e.Hook)
	}
	if r.Table != e.Table {
		t.Errorf("table = %q, want %q", r.Table, e.Table)
	}
	for k, want := range c.evidence {
		got, has := r.Evidence[k]
		switch {
		case want == "-" && has:
			t.Errorf("evidence %s = %q, want none", k, got)
		case want == "*" && !has, want != "-" && want != "*" && got != want:
			t.Errorf("evidence %s = %q, want %q", k, got, want)
		}
	}
	for _, w := range c.hint {
		if !strings.Contains(r.Hint, w) {
			t.Errorf("hint %q lacks %q", r.Hint, w)
		}
	}
	for _, w := range c.notHint {
		if strings.Contains(r.Hint, w) || (w != "remove" && w != "-j ACCEPT" && strings.Contains(r.Explanation, w)) {
			t.Errorf("hint or explanation says %q: %q / %q", w, r.Explanation, r.Hint)
		}
	}
	if _, policy := r.Evidence["policy"]; policy != strings.Contains(r.Explanation, "policy") {
		t.Errorf("explanation mentions a policy (%v) although the evidence says policy DROP is %v: %q",
			!policy, policy, r.Explanation)
	}
	checkPathEnds(t, r, e.Netns)
}

// fixCmd is a command in backquotes that changes the ruleset.
var fixCmd = regexp.MustCompile("`((?:iptables|ip6tables|iptables-legacy|ip6tables-legacy|nft) (?:[^`]* )?(?:-I|insert) [^`]*)`")

// applyFix runs each command of the hint in the namespace of the drop and
// wants the traffic to pass, both ways (a reply is what proves it).
func applyFix(t *testing.T, s *testnet.Scenario, r report.Report) {
	t.Helper()
	cmds := fixCmd.FindAllStringSubmatch(r.Hint, -1)
	if len(cmds) == 0 {
		t.Errorf("hint has no command to apply: %q", r.Hint)
		return
	}
	for _, m := range cmds {
		if out, err := s.Router.Run("sh", "-c", m[1]); err != nil {
			t.Errorf("applying %q: %v: %s", m[1], err, out)
			return
		}
		t.Logf("applied in %s: %s", s.Router.Short(), m[1])
	}
	e := s.Expect
	if e.Proto == "tcp" {
		if err := s.Client.TCPConnect(e.Dst, e.DstPort, 3*time.Second); err != nil {
			t.Errorf("after the fix: %v", err)
		}
		return
	}
	if ok, err := s.Client.Ping(e.Dst, 2, 3*time.Second); err != nil || !ok {
		t.Errorf("after the fix, ping %s from %s got no reply (err %v)", e.Dst, s.Client.Short(), err)
	}
}
