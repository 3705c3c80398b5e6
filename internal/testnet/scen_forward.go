package testnet

import (
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"
)

// flannelIf is the router's ingress device in the FORWARD-policy cases,
// named like the overlay device of field case 1 (a valid veth name).
const flannelIf = "flannel.1"

// ErrUnavailable is wrapped by constructors that return an error when the
// machine lacks what the scenario needs (e.g. iptables-legacy).
var ErrUnavailable = errors.New("scenario unavailable")

// dockerForward is what Docker leaves in filter/FORWARD: policy DROP and a
// DOCKER-USER chain that returns, so routed traffic matches no rule.
var dockerForward = [][]string{
	{"-P", "FORWARD", "DROP"},
	{"-N", "DOCKER-USER"},
	{"-A", "DOCKER-USER", "-j", "RETURN"},
	{"-A", "FORWARD", "-j", "DOCKER-USER"},
}

// ForwardPolicyDrop is field case 1: the router's filter/FORWARD policy is
// DROP (iptables-nft, Docker-style), so a ping from client to server dies
// in FORWARD on flannel.1 by the policy.
func ForwardPolicyDrop(tb testing.TB) *Scenario {
	tb.Helper()
	return forwardPolicy(tb, "iptables-nft", false)
}

// ForwardPolicyDrop6 is ForwardPolicyDrop over IPv6 with ip6tables-nft.
func ForwardPolicyDrop6(tb testing.TB) *Scenario {
	tb.Helper()
	return forwardPolicy(tb, "ip6tables-nft", true)
}

// ForwardPolicyDropLegacy is ForwardPolicyDrop with iptables-legacy
// (x_tables, ipt_do_table), the backend on many older hosts. It returns
// an error wrapping ErrUnavailable when iptables-legacy is missing or the
// kernel lacks legacy tables.
func ForwardPolicyDropLegacy(tb testing.TB) (*Scenario, error) {
	tb.Helper()
	return forwardPolicyLegacy(tb, "iptables-legacy", false)
}

// ForwardPolicyDrop6Legacy is ForwardPolicyDropLegacy over IPv6.
func ForwardPolicyDrop6Legacy(tb testing.TB) (*Scenario, error) {
	tb.Helper()
	return forwardPolicyLegacy(tb, "ip6tables-legacy", true)
}

func forwardPolicyLegacy(tb testing.TB, tool string, v6 bool) (*Scenario, error) {
	if err := haveLegacy(tb, tool); err != nil {
		return nil, err
	}
	return forwardPolicy(tb, tool, v6), nil
}

// haveLegacy returns an error wrapping ErrUnavailable unless tool (an
// iptables-legacy binary) exists and the kernel has its x_tables.
func haveLegacy(tb testing.TB, tool string) error {
	if _, err := exec.LookPath(tool); err != nil {
		return fmt.Errorf("%s: %w: %v", tool, ErrUnavailable, err)
	}
	n := New(tb)
	defer n.Close()
	if _, err := n.NS("probe").Run(tool, "-w", "-L", "FORWARD", "-n"); err != nil {
		return fmt.Errorf("%s: %w: %v", tool, ErrUnavailable, err)
	}
	return nil
}

// blockOverlay is a rule an operator adds to DOCKER-USER, ahead of its
// RETURN, in the user-chain cases.
var blockOverlay = []string{"-I", "DOCKER-USER", "-i", flannelIf, "-m", "comment", "--comment", "block overlay", "-j", "DROP"}

// UserChainDrop is ForwardPolicyDrop with a commented DROP rule for the
// overlay device in DOCKER-USER, the chain FORWARD jumps to: the rule, not
// the policy, drops the ping.
func UserChainDrop(tb testing.TB) *Scenario {
	tb.Helper()
	return userChainDrop(forwardPolicy(tb, "iptables-nft", false), "iptables-nft")
}

// UserChainDropLegacy is UserChainDrop with iptables-legacy.
func UserChainDropLegacy(tb testing.TB) (*Scenario, error) {
	tb.Helper()
	s, err := ForwardPolicyDropLegacy(tb)
	if err != nil {
		return nil, err
	}
	return userChainDrop(s, "iptables-legacy"), nil
}

func userChainDrop(s *Scenario, tool string) *Scenario {
	ipt(s.Net.tb, s.Router, tool, blockOverlay)
	s.Name = strings.Replace(s.Name, "ForwardPolicyDrop", "UserChainDrop", 1)
	s.Expect.Chain, s.Expect.Policy, s.Expect.RuleIndex = "DOCKER-USER", false, 1
	s.Expect.Rule = `-A DOCKER-USER -i ` + flannelIf + ` -m comment --comment "block overlay" -j DROP`
	return s
}

func forwardPolicy(tb testing.TB, tool string, v6 bool) *Scenario {
	tb.Helper()
	n, c, r, s := line(tb, flannelIf, v6)
	src, dst, proto := clientIP, serverIP, "icmp"
	if v6 {
		src, dst, proto = clientIP6, serverIP6, "icmpv6"
	}
	control(tb, c, dst)
	ipt(tb, r, tool, dockerForward...)
	name := "ForwardPolicyDrop"
	loc := "nft_do_chain"
	if v6 {
		name += "6"
	}
	if strings.HasSuffix(tool, "-legacy") {
		name += "Legacy"
		// ipt_do_table returns NF_DROP and nf_hook_slow frees the skb
		// (measured on 6.18); only nf_tables frees it in the chain.
		loc = "nf_hook_slow"
	}
	return &Scenario{
		Name: name, Net: n, Client: c, Router: r, Server: s,
		Trigger: pingDropped(c, dst),
		Expect: Expect{
			Drop: true, Reason: "NETFILTER_DROP", Location: loc, Cause: CauseNetfilter,
			Netns: r.Name(), Iface: flannelIf,
			Hook: "FORWARD", Table: "filter", Chain: "FORWARD", Policy: true,
			Src: src, Dst: dst, Proto: proto,
		},
		Notes: []string{"iptables backend: " + tool},
	}
}
