package cause

import (
	"fmt"
	"strings"

	"github.com/pktdrop/pktdrop/internal/nfstate"
	"github.com/pktdrop/pktdrop/internal/report"
)

// hint is the fix. A command in it must make the packet pass when run in
// the namespace: it inserts an accept ahead of the drop in the one chain
// that fits, for replies too where they cross the same hook (FORWARD).
// Rules that software manages point at that software's object instead.
func (n *nfWords) hint() string {
	r := n.r
	if r.Verdict == "rule" {
		if o := nfstate.Owner(r.Table, r.Chain); o != "" {
			return ownerHint(o, []string{r.Rule}, r.Chain, n.allow())
		}
		if r.RuleIndex != 0 { // iptables-legacy names rules by position
			return fmt.Sprintf("remove or change that rule (`%s-legacy -t %s -D %s %d` removes it), or add an ACCEPT before it",
				n.tool(), r.Table, r.Chain, r.RuleIndex)
		}
		return "remove or change that rule, or add an ACCEPT before it"
	}
	if n.c != nil {
		_, _, invalid, _ := nfstate.Kinds(n.d)
		if invalid > 0 && invalid == len(n.d) && n.c.Policy != "drop" {
			return "conntrack saw no connection this packet belongs to, or it was outside the TCP window: look for asymmetric " +
				"routing (the other direction bypasses this host), a flushed or full conntrack table (conntrack -S), or enable " +
				"net.netfilter.nf_conntrack_tcp_be_liberal; accepting INVALID packets hides the problem"
		}
		var texts []string
		for _, d := range n.d {
			texts = append(texts, d.Rule.Text)
		}
		if owners := nfstate.Owners(n.d); len(owners) == 1 && owners[0] != "" {
			if m := dockerMechanism(owners[0], n.d[0].Chain.Name, strings.Join(texts, " ")); m != "" {
				evidence(r, "docker_mechanism", m)
			}
			return ownerHint(owners[0], texts, n.d[0].Chain.Name, n.allow())
		}
		if n.iccDisabled() {
			evidence(r, "docker_mechanism", "icc disabled")
			h := "Docker disables communication between the containers of this network (icc=false, or the network option " +
				"com.docker.network.bridge.enable_icc=false): enable it"
			if allow := n.allow(); allow != "" {
				h += ", or allow this container's traffic in DOCKER-USER: " + allow
			}
			return h
		}
	}
	allow := n.allow()
	if r.Verdict == "policy" || (n.c != nil && len(n.d) == 0 && n.c.Policy == "drop") {
		why := "the chain's policy is DROP and no rule accepts this traffic"
		if n.f != nil && n.f.Docker && r.Hook == "FORWARD" {
			why = "the FORWARD policy is DROP (Docker sets it) and no rule accepts this traffic"
		}
		if allow != "" {
			return why + "; allow it: " + allow
		}
		return why + "; add an ACCEPT rule for it" + rulesHint(r)
	}
	if n.c != nil && allow != "" {
		return "change the rule that drops it, or allow this traffic ahead of it: " + allow + rulesHint(r)
	}
	list := "the rules"
	if r.Hook != "" {
		list = "the " + r.Hook + " rules"
	}
	if n.c != nil {
		list += " of " + tableName(n.c)
	} else if n.f != nil && len(n.f.Candidates) > 1 {
		list += " of the tables named above"
	} else if r.Table != "" {
		list += " of table " + r.Table
	}
	return "list " + list + " (`nft list ruleset` or `" + n.tool() + "-save`) and allow this traffic" + rulesHint(r)
}

func dockerMechanism(owner, chain, rules string) string {
	switch {
	case owner != "Docker":
		return ""
	case chain == "DOCKER-ISOLATION-STAGE-1" && (strings.Contains(rules, "! -d ") || strings.Contains(rules, "! -s ")):
		return "internal network"
	case strings.HasPrefix(chain, "DOCKER-ISOLATION"):
		return "isolation between networks"
	}
	return ""
}

// iccDisabled: the only rules that can have dropped this bridged packet
// are Docker's `-i <bridge> -o <bridge> -j DROP`.
func (n *nfWords) iccDisabled() bool {
	f := n.f
	if f == nil || !f.Docker || f.Bridge == "" || len(n.d) == 0 {
		return false
	}
	for _, d := range n.d {
		if !strings.Contains(d.Rule.Text, "-i "+f.Bridge+" -o "+f.Bridge+" -j DROP") {
			return false
		}
	}
	return true
}

func ownerHint(owner string, rules []string, chain, allow string) string {
	all := strings.Join(rules, " ")
	switch {
	case owner == "kube-proxy" && strings.Contains(all, "has no endpoints"):
		return "kube-proxy rejects traffic to a Service without endpoints: check that the Service's pods run and are ready " +
			"and that its selector matches their labels (kubectl get endpointslices -l kubernetes.io/service-name=<service>)"
	case owner == "kube-proxy":
		return "the rule belongs to kube-proxy (chain " + chain + "), which rewrites it from the Services: fix the Service " +
			"(its ports, selector, endpoints) rather than the rule"
	case owner == "Docker" && chain == "DOCKER-ISOLATION-STAGE-1" && (strings.Contains(all, "! -d ") || strings.Contains(all, "! -s ")):
		// Docker's rules for an --internal network: nothing enters or
		// leaves its subnet (its containers have no route out either).
		return "the Docker network is --internal: Docker drops what enters or leaves it; connect the container to a " +
			"network that is not internal (docker network connect <network> <container>) or recreate the network without --internal"
	case owner == "Docker" && strings.HasPrefix(chain, "DOCKER-ISOLATION"):
		h := "Docker isolates its networks from each other: connect the container to both networks " +
			"(docker network connect <network> <container>)"
		if allow != "" {
			h += ", or allow it in DOCKER-USER, both directions: " + allow
		}
		return h
	case owner == "Docker":
		h := "the rule belongs to Docker (chain " + chain + "), which rewrites it: change the container's network " +
			"settings (published ports, --internal, icc)"
		if allow != "" {
			h += ", or allow it in DOCKER-USER: " + allow
		}
		return h
	}
	return "the rule belongs to " + owner + " (chain " + chain + "), which rewrites it: change the " + owner +
		" network policy that selects this traffic rather than the rule"
}

// allow is the command(s) that let this packet, and its replies, through
// the one chain that fits ("" when a needed name is unknown).
func (n *nfWords) allow() string {
	r, c := n.r, n.c
	in := n.ingress()
	if c == nil || in == "" {
		return ""
	}
	hook := strings.ToUpper(c.Hook)
	inHook := hook == "PREROUTING" || hook == "INPUT" || hook == "FORWARD" || hook == "INGRESS"
	dev := in
	if !inHook {
		dev = r.Iface
	}
	bridged := n.f != nil && n.f.Bridge != ""
	if c.Backend == "nft" {
		dir := "oifname"
		if inHook {
			dir = "iifname"
		}
		base := fmt.Sprintf("nft insert rule %s %s %s ", c.Family, c.Table, c.Name)
		cmds := []string{base + dir + ` "` + dev + `" accept`}
		if hook == "FORWARD" {
			reply := `oifname "` + dev + `" ct state established,related accept`
			if c.Family == "bridge" {
				reply = `oifname "` + dev + `" accept` // bridge conntrack needs nf_conntrack_bridge
			}
			cmds = append(cmds, base+reply)
		}
		return quoteCmds(cmds)
	}
	tool := n.tool()
	if c.Backend == "iptables-legacy" {
		tool += "-legacy"
	}
	chain, table := c.Name, ""
	if c.Table != "filter" {
		table = " -t " + c.Table
	}
	if n.f != nil && n.f.Docker && hook == "FORWARD" && c.Table == "filter" {
		chain = "DOCKER-USER" // FORWARD jumps there first; Docker keeps it
	}
	base := tool + table + " -I " + chain + " "
	var first, reply string
	switch {
	case bridged:
		// iptables sees the bridge as the device of bridged traffic,
		// the port only through physdev.
		first = "-m physdev --physdev-in " + dev + " -j ACCEPT"
		reply = "-m physdev --physdev-out " + dev + " -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"
	case inHook:
		first = "-i " + dev + " -j ACCEPT"
		reply = "-o " + dev + " -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"
	default:
		first = "-o " + dev + " -j ACCEPT"
	}
	cmds := []string{base + first}
	if hook == "FORWARD" {
		cmds = append(cmds, base+reply)
	}
	return quoteCmds(cmds)
}

// ingress is the device the packet came in on in the drop's namespace:
// at the bridge's forward hook the kernel already points the packet at
// the port it leaves by.
func (n *nfWords) ingress() string { return n.ingressOf(n.c) }

func (n *nfWords) ingressOf(c *nfstate.Chain) string {
	r := n.r
	for i := len(r.Path) - 1; i >= 0; i-- {
		if s := r.Path[i]; s.Where == "receive" && s.Netns == r.Netns && s.Iface != "" {
			return s.Iface
		}
	}
	if c != nil && c.Family == "bridge" {
		return "" // the device of the drop is the way out
	}
	return r.Iface
}

// devices are the input and output devices a rule of chain c matched
// against (each "" when unknown).
func (n *nfWords) devices(c *nfstate.Chain) (in, out string) {
	r := n.r
	if n.f != nil && n.f.Bridge != "" && c.Family != "bridge" {
		return n.f.Bridge, n.f.Bridge // iptables sees the bridge, not its ports
	}
	in = n.ingressOf(c)
	switch strings.ToUpper(c.Hook) {
	case "OUTPUT", "POSTROUTING":
		return "", r.Iface
	case "FORWARD":
		if c.Family == "bridge" {
			return in, r.Iface // the port it was leaving by
		}
		return in, n.routeDev()
	}
	return in, ""
}

// routeDev is the device of the route lookup before the packet's last
// hook in the drop's netns (lookups after it route an ICMP error back).
func (n *nfWords) routeDev() string {
	r := n.r
	hooked := false
	for i := len(r.Path) - 1; i >= 0; i-- {
		s := r.Path[i]
		if s.Netns != r.Netns {
			continue
		}
		hooked = hooked || isHook(s.Where)
		if s.Where != "route" || !hooked {
			continue
		}
		if _, dev, ok := strings.Cut(s.Detail, ": via "); ok {
			return dev
		}
		return ""
	}
	return ""
}

func quoteCmds(cmds []string) string {
	for i, c := range cmds {
		cmds[i] = "`" + c + "`"
	}
	return strings.Join(cmds, " and ")
}

func (n *nfWords) tool() string {
	if n.r.Family == "ipv6" {
		return "ip6tables"
	}
	return "iptables"
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
