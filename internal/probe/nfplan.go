package probe

import (
	"os"

	"github.com/cilium/ebpf/link"
	"github.com/google/nftables"
	"golang.org/x/sys/unix"

	"github.com/pktdrop/pktdrop/internal/xtables"
)

// Which brackets a namespace gets. Every bracket is a program run for
// every packet that crosses the hook, so a namespace gets only those that
// tell its tables apart: bracket i names table i, and only a hook with a
// chain in table i's range can drop or change a packet there.
//
//   - a family without base chains: only INPUT, at the last bracket.
//     Nothing can stop a packet at its hooks, so the others would only
//     add a step that always reads "accepted" (kernels probed through
//     nf_hook_slow have none there either: the kernel runs no hook
//     without a chain); INPUT marks a packet delivered to a local socket,
//     which TCP frees where no tracepoint sees it, so that the next
//     packet at that skb address starts a path of its own (see track.h);
//   - in a family with base chains, every hook: the first bracket (the
//     hook's step) and the last (the packet passed it);
//   - a hook with a base chain at priority p: the bracket just before p
//     (a drop there names its table) and the next one (the packet passed
//     that table; for the NAT tables, where nf_link decides afresh about a
//     translated packet);
//   - a family with any base chain: the conntrack bracket at every hook,
//     as chains that use conntrack register its hooks at all of them.
//
// The steps are those of all eight brackets: a bracket left out has no
// chain before the next one, so no packet can stop between them. Tables
// of iptables-legacy (whose chains nftables does not list), or a
// namespace whose tables cannot be listed, get all brackets. Rescans
// (every AddNetns: the session replans a namespace when nf_tables tells it
// of a new table or base chain, and on a drop lacking its hook) add
// brackets as chains appear; until then a drop in a new chain is
// attributed to the bracket before it.
type nsPlan [2][unix.NF_INET_NUMHOOKS]uint8 // [family][hook]: bit i = bracket i

// nfFamilies are the families of nsPlan's first index.
var nfFamilies = []link.NetfilterProtocolFamily{unix.NFPROTO_IPV4, unix.NFPROTO_IPV6}

const (
	allBrackets   = 0xff
	lightBrackets = 1<<0 | 1<<7
	lastBracket   = 1 << 7
	ctBracket     = 1 << 1
)

var fullPlan = func() (p nsPlan) {
	for f := range p {
		for h := range p[f] {
			p[f][h] = allBrackets
		}
	}
	return p
}()

// baseChain is where an nftables base chain hooks in.
type baseChain struct {
	family nftables.TableFamily
	hook   uint32
	prio   int32
}

// planChains is the plan for a namespace with these base chains.
func planChains(chains []baseChain, prios [8]int32) nsPlan {
	var p nsPlan
	for f := range p {
		p[f][unix.NF_INET_LOCAL_IN] = lastBracket
	}
	for _, c := range chains {
		var fams []int
		switch c.family {
		case nftables.TableFamilyIPv4:
			fams = []int{0}
		case nftables.TableFamilyIPv6:
			fams = []int{1}
		case nftables.TableFamilyINet:
			fams = []int{0, 1}
		}
		if c.hook >= unix.NF_INET_NUMHOOKS {
			continue // inet ingress: before the IP hooks, not bracketed
		}
		before := -1 // the last bracket before the chain
		for i, b := range prios {
			if b < c.prio {
				before = i
			}
		}
		for _, f := range fams {
			for h := range p[f] {
				p[f][h] |= lightBrackets | ctBracket
			}
			if before >= 0 {
				p[f][c.hook] |= 1 << before
			}
			if before+1 < len(prios) {
				p[f][c.hook] |= 1 << (before + 1)
			}
		}
	}
	return p
}

// planNamespace plans the namespace the calling thread is in (path names
// it). When its tables cannot be read, all brackets.
func planNamespace(path string, prios [8]int32) nsPlan {
	if xtables.InUse(4) || xtables.InUse(6) {
		return fullPlan
	}
	f, err := os.Open(path)
	if err != nil {
		return fullPlan
	}
	defer f.Close()
	c, err := nftables.New(nftables.WithNetNSFd(int(f.Fd())))
	if err != nil {
		return fullPlan
	}
	list, err := c.ListChains()
	if err != nil {
		return fullPlan
	}
	var chains []baseChain
	for _, ch := range list {
		if ch.Hooknum == nil || ch.Priority == nil || ch.Table == nil {
			continue // a regular chain runs only when a base chain jumps to it
		}
		chains = append(chains, baseChain{family: ch.Table.Family, hook: uint32(*ch.Hooknum), prio: int32(*ch.Priority)})
	}
	return planChains(chains, prios)
}
