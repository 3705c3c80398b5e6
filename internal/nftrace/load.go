package nftrace

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"time"

	"github.com/google/nftables"
	vnl "github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

var hookNames = map[string][]string{
	"ip":     {"prerouting", "input", "forward", "output", "postrouting", "ingress"},
	"ip6":    {"prerouting", "input", "forward", "output", "postrouting", "ingress"},
	"inet":   {"prerouting", "input", "forward", "output", "postrouting", "ingress"},
	"bridge": {"prerouting", "input", "forward", "output", "postrouting"},
	"arp":    {"input", "output", "forward"},
	"netdev": {"ingress", "egress"},
}

func hookName(family string, n uint32) string {
	if names := hookNames[family]; int(n) < len(names) {
		return names[n]
	}
	return fmt.Sprintf("hook%d", n)
}

// loadRuleset reads chains over netlink (always available to root) and rule
// text through the nft and iptables-nft-save binaries, or rendered from
// netlink where they are absent (best effort).
func loadRuleset(ctx context.Context, ns *nsHandle) (*Ruleset, error) {
	conn, err := nftables.New(nftables.WithNetNSFd(ns.fd))
	if err != nil {
		return nil, fmt.Errorf("open nftables conn in netns %s: %w", ns.path, err)
	}
	chains, err := conn.ListChains()
	if err != nil {
		return nil, fmt.Errorf("list chains in netns %s: %w", ns.path, err)
	}
	rs := &Ruleset{}
	for _, c := range chains {
		fam := familyName(uint8(c.Table.Family))
		ci := ChainInfo{Family: fam, Table: c.Table.Name, Name: c.Name, Type: string(c.Type)}
		if c.Hooknum != nil {
			ci.Base = true
			ci.Hook = hookName(fam, uint32(*c.Hooknum))
			if c.Priority != nil {
				ci.Priority = int32(*c.Priority)
			}
			if c.Policy != nil {
				ci.Policy = verdictName(int32(*c.Policy))
			}
		}
		rs.Chains = append(rs.Chains, ci)
	}
	rs.Links = loadLinks(ns)
	loadRuleText(ctx, ns, rs, conn)
	rs.index()
	return rs, nil
}

func loadLinks(ns *nsHandle) []Link {
	h, err := vnl.NewHandleAt(netns.NsHandle(ns.fd))
	if err != nil {
		return nil
	}
	defer h.Close()
	links, err := h.LinkList()
	if err != nil {
		return nil
	}
	out := make([]Link, 0, len(links))
	for _, l := range links {
		a := l.Attrs()
		out = append(out, Link{Index: uint32(a.Index), Name: a.Name})
	}
	return out
}

// loadRuleText fills rs.Rules; failures only leave a note, never an error,
// so a host without nft still gets rule handles.
func loadRuleText(ctx context.Context, ns *nsHandle, rs *Ruleset, conn *nftables.Conn) {
	if !ns.can("nft") {
		renderRules(conn, rs, true)
	} else {
		out, err := ns.run(ctx, "nft", "-a", "list", "ruleset")
		if err != nil {
			rs.Note = fmt.Sprintf("rule text unavailable: %v", err)
			return
		}
		rs.Rules = parseNftList(out)
	}
	seen := map[[2]string]bool{}
	missing := false
	for _, r := range rs.Rules {
		k := [2]string{r.Family, r.Table}
		if seen[k] || !iptablesTables[r.Table] || (r.Family != "ip" && r.Family != "ip6") {
			continue
		}
		seen[k] = true
		bin := "iptables-nft-save"
		if r.Family == "ip6" {
			bin = "ip6tables-nft-save"
		}
		save, err := ns.run(ctx, bin, "-t", r.Table)
		if err != nil {
			missing = missing || !ns.can(bin)
			continue // not an iptables-nft table, or no binary
		}
		attachIptables(rs.Rules, r.Family, r.Table, parseIptablesSave(save))
	}
	if missing {
		renderRules(conn, rs, false)
	}
}

// run executes a command inside the netns via nsenter(1); a fresh process
// is simpler and more reliable than setns on a locked Go thread before exec.
func (ns *nsHandle) run(ctx context.Context, name string, args ...string) (string, error) {
	bin, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%s not found: %w", name, err)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var cmd *exec.Cmd
	if ns.current {
		cmd = exec.CommandContext(ctx, bin, args...)
	} else {
		nsenter, err := exec.LookPath("nsenter")
		if err != nil {
			return "", fmt.Errorf("nsenter not found: %w", err)
		}
		cmd = exec.CommandContext(ctx, nsenter, append([]string{"--net=" + ns.path, "--", bin}, args...)...)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("run %s in netns %s: %w: %s", name, ns.path, err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}
