package nftrace

import (
	"net/netip"
	"os/exec"
	"strings"
	"testing"
)

// These tests build real rulesets in namespaces and send real traffic. They
// skip without root or tools, and fail instead under CI=true (privtest). On
// kernels before 5.12 capture only checks that Start refuses (startTracer).

func isDrop(d Decision) bool { return d.Verdict == "drop" || d.Verdict == "reject" }

func TestForwardPolicyDrop(t *testing.T) { forwardPolicyDrop(t, false) }

func TestForwardPolicyDrop6(t *testing.T) { forwardPolicyDrop(t, true) }

// forwardPolicyDrop is field case 1: Docker's FORWARD policy DROP with a
// DOCKER-USER chain that only returns.
func forwardPolicyDrop(t *testing.T, v6 bool) {
	ipt, name, fam, proto := "iptables-nft", "forward-policy-drop", "ip", uint8(1)
	if v6 {
		ipt, name, fam, proto = "ip6tables-nft", "forward-policy-drop6", "ip6", 58
	}
	n, l := newLine(t, v6, ipt, ipt+"-save")
	n.run(l.router, ipt, "-N", "DOCKER-USER")
	n.run(l.router, ipt, "-A", "DOCKER-USER", "-j", "RETURN")
	n.run(l.router, ipt, "-A", "FORWARD", "-j", "DOCKER-USER")
	n.run(l.router, ipt, "-P", "FORWARD", "DROP")
	dst := netip.MustParseAddr(l.serverIP)
	d, ok := capture(t, name, map[string]string{nsPath(l.router): "router"},
		Match{Proto: proto, Dst: netip.PrefixFrom(dst, dst.BitLen())},
		func() { n.try(l.client, "ping", "-c", "2", "-i", "0.3", "-W", "1", l.serverIP) },
		isDrop)
	if !ok {
		return
	}
	want := Decision{Verdict: "drop", Kind: "policy", TableFamily: fam, Table: "filter", Chain: "FORWARD", Hook: "forward", In: "flannel.1", Out: "rt-out"}
	checkVerdict(t, d, want)
	if d.Tuple.Dst != dst || d.Tuple.Proto != proto {
		t.Errorf("tuple %+v, want dst %s proto %d", d.Tuple, dst, proto)
	}
	if !hasStep(d, "DOCKER-USER", "return") {
		t.Errorf("steps %+v lack the DOCKER-USER return", d.Steps)
	}
}

// TestUserChainDropRule: a commented DROP rule in a chain jumped to from
// FORWARD; the iptables-save line must come back verbatim.
func TestUserChainDropRule(t *testing.T) {
	n, l := newLine(t, false, "iptables-nft", "iptables-nft-save")
	n.run(l.router, "iptables-nft", "-N", "DOCKER-USER")
	n.run(l.router, "iptables-nft", "-A", "DOCKER-USER", "-i", "flannel.1", "-m", "comment", "--comment", "block overlay", "-j", "DROP")
	n.run(l.router, "iptables-nft", "-A", "DOCKER-USER", "-j", "RETURN")
	n.run(l.router, "iptables-nft", "-A", "FORWARD", "-j", "DOCKER-USER")
	dst := netip.MustParseAddr(l.serverIP)
	d, ok := capture(t, "user-chain-drop-rule", map[string]string{nsPath(l.router): "router"},
		Match{Proto: 1, Dst: netip.PrefixFrom(dst, 32)},
		func() { n.try(l.client, "ping", "-c", "2", "-i", "0.3", "-W", "1", l.serverIP) },
		isDrop)
	if !ok {
		return
	}
	checkVerdict(t, d, Decision{Verdict: "drop", Kind: "rule", TableFamily: "ip", Table: "filter", Chain: "DOCKER-USER", Hook: "forward", In: "flannel.1", Out: "rt-out"})
	if want := `-A DOCKER-USER -i flannel.1 -m comment --comment "block overlay" -j DROP`; d.IptablesRule != want {
		t.Errorf("iptables rule %q, want %q", d.IptablesRule, want)
	}
	if !strings.Contains(d.Rule, `iifname "flannel.1"`) || !strings.Contains(d.Rule, "drop") {
		t.Errorf("nft rule %q", d.Rule)
	}
}

// TestNativeInputDrop: an nftables-native inet table dropping ICMP echo on
// input in the server.
func TestNativeInputDrop(t *testing.T) {
	n, l := newLine(t, false)
	n.run(l.server, "nft", "add table inet fw")
	n.run(l.server, "nft", "add chain inet fw input { type filter hook input priority 0; policy accept; }")
	n.run(l.server, "nft", `add rule inet fw input icmp type echo-request counter drop comment "no ping"`)
	dst := netip.MustParseAddr(l.serverIP)
	d, ok := capture(t, "native-input-drop", map[string]string{nsPath(l.server): "server"},
		Match{Proto: 1, Host: netip.PrefixFrom(dst, 32)},
		func() { n.try(l.client, "ping", "-c", "2", "-i", "0.3", "-W", "1", l.serverIP) },
		isDrop)
	if !ok {
		return
	}
	checkVerdict(t, d, Decision{Verdict: "drop", Kind: "rule", TableFamily: "inet", Table: "fw", Chain: "input", Hook: "input", In: "sv0"})
	if !strings.Contains(d.Rule, "drop") || d.IptablesRule != "" {
		t.Errorf("rule %q iptables %q", d.Rule, d.IptablesRule)
	}
}

const kubeSep = "KUBE-SEP-6ESQAMORAOJ7JTEK"

// TestDNATShadowed is field case 4: PREROUTING jumps to KUBE-SERVICES,
// whose chain DNATs tcp/80 to the pod; the later PREROUTING DNAT to the VM
// never matches. The NAT list must name the KUBE-SEP rule only.
func TestDNATShadowed(t *testing.T) {
	n, l := newLine(t, false, "iptables-nft", "iptables-nft-save", "bash", "timeout")
	ipt := func(args ...string) { n.run(l.router, append([]string{"iptables-nft", "-t", "nat"}, args...)...) }
	ipt("-N", "KUBE-SERVICES")
	ipt("-N", kubeSep)
	ipt("-A", "PREROUTING", "-m", "comment", "--comment", "kubernetes service portals", "-j", "KUBE-SERVICES")
	ipt("-A", "PREROUTING", "-d", l.routerIn+"/32", "-p", "tcp", "-m", "tcp", "--dport", "80", "-j", "DNAT", "--to-destination", "10.231.2.3:80")
	ipt("-A", "KUBE-SERVICES", "-d", l.routerIn+"/32", "-p", "tcp", "-m", "comment", "--comment", "kube-system/traefik:web loadbalancer IP", "-m", "tcp", "--dport", "80", "-j", kubeSep)
	ipt("-A", kubeSep, "-p", "tcp", "-m", "comment", "--comment", "kube-system/traefik:web", "-m", "tcp", "-j", "DNAT", "--to-destination", l.serverIP+":8000")
	d, ok := capture(t, "dnat-shadowed", map[string]string{nsPath(l.router): "router"},
		Match{Proto: 6, Dport: 80},
		func() {
			n.try(l.client, "timeout", "3", "bash", "-c", "exec 3<>/dev/tcp/"+l.routerIn+"/80")
		},
		func(d Decision) bool { return len(d.NAT) > 0 })
	if !ok {
		return
	}
	checkVerdict(t, d, Decision{Verdict: "accept", Kind: "rule", TableFamily: "ip", Table: "nat", Chain: kubeSep, Hook: "prerouting", In: "flannel.1"})
	if len(d.NAT) != 1 {
		t.Fatalf("NAT %+v, want exactly the KUBE-SEP rule", d.NAT)
	}
	nat := d.NAT[0]
	want := `-A ` + kubeSep + ` -p tcp -m comment --comment "kube-system/traefik:web" -m tcp -j DNAT --to-destination ` + l.serverIP + `:8000`
	if nat.Chain != kubeSep || nat.IptablesRule != want || !strings.Contains(nat.Rule, "dnat to "+l.serverIP+":8000") {
		t.Errorf("NAT rule %+v, want chain %s iptables %q", nat, kubeSep, want)
	}
	if nat.After == nil || nat.After.Dst.String() != l.serverIP || nat.After.Dport != 8000 {
		t.Errorf("NAT after %+v, want %s:8000", nat.After, l.serverIP)
	}
	for _, s := range d.Steps {
		if s.Chain == "PREROUTING" && s.Verdict == "accept" {
			t.Errorf("the shadowed PREROUTING DNAT appears in the steps: %+v", s)
		}
	}
}

func checkVerdict(t *testing.T, d, w Decision) {
	t.Helper()
	got := [...]string{d.Verdict, d.Kind, d.TableFamily, d.Table, d.Chain, d.Hook, d.In, d.Out}
	want := [...]string{w.Verdict, w.Kind, w.TableFamily, w.Table, w.Chain, w.Hook, w.In, w.Out}
	if got != want {
		t.Errorf("verdict/kind/family/table/chain/hook/in/out = %q, want %q", got, want)
	}
}

func hasStep(d Decision, chain, verdict string) bool {
	for _, s := range d.Steps {
		if s.Chain == chain && s.Verdict == verdict {
			return true
		}
	}
	return false
}

// TestRuleTextWithoutTools: without nft and nsenter on PATH the rule's
// text is rendered from netlink, in the rule's own netns.
func TestRuleTextWithoutTools(t *testing.T) {
	n, l := newLine(t, false)
	n.run(l.server, "nft", "add table inet fw")
	n.run(l.server, "nft", "add chain inet fw input { type filter hook input priority 0; policy accept; }")
	n.run(l.server, "nft", "add rule inet fw input icmp type echo-request drop")
	ip, err := exec.LookPath("ip")
	if err != nil {
		t.Fatal(err)
	}
	ping, err := exec.LookPath("ping")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", t.TempDir())
	d, ok := capture(t, "", map[string]string{nsPath(l.server): "server"}, Match{Proto: 1},
		func() {
			_ = exec.Command(ip, "netns", "exec", l.client, ping, "-c", "2", "-i", "0.3", "-W", "1", l.serverIP).Run()
		},
		isDrop)
	if !ok {
		return
	}
	checkVerdict(t, d, Decision{Verdict: "drop", Kind: "rule", TableFamily: "inet", Table: "fw", Chain: "input", Hook: "input", In: "sv0"})
	if d.RuleHandle == 0 || d.Rule != "icmp type echo-request drop" || d.RuleTextNote != "" {
		t.Errorf("handle %d rule %q note %q", d.RuleHandle, d.Rule, d.RuleTextNote)
	}
}
