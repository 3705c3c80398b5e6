package session

import (
	"net/netip"
	"strings"

	"github.com/pktdrop/pktdrop/internal/netns"
)

// names memoizes the name lookups of report.Builder for the reader
// goroutine, which alone calls them: each report asks for a namespace
// and device name per path step, and the resolver behind takes a lock and
// reads the clock for each. Answers are kept for nameTTL of event time
// (now, set from each event's timestamp, so no clock read either), which
// the resolver's own caching already allows to be stale.
type names struct {
	res      *netns.Resolver
	reasonOf func(uint32) string
	symOf    func(uint64) string
	now      uint64 // CLOCK_MONOTONIC ns of the event being built
	// seen, when set, hears of each namespace once per nameTTL (the
	// follower rescans for one that has no coverage yet).
	seen func(inode uint32)

	netnsNames map[uint32]named
	devNames   map[devKey]named
	reasons    map[uint32]string // immutable answers: no expiry
	syms       map[uint64]string
	addrs      map[netip.Addr]string
}

const (
	nameTTL  = uint64(1e9) // ns
	namesMax = 4096        // entries per map before it is cleared
	// unknownTTL keeps an unnamed namespace's answer briefly: a storm
	// from it costs a lookup per 50 ms, and its name shows soon after.
	unknownTTL = uint64(50e6) // ns
)

type named struct {
	name    string
	expires uint64
	pod     podName // netns names only
}

type podName struct {
	ns, name, uid string
	ok            bool
}

type devKey struct{ netns, ifindex uint32 }

func newNames(res *netns.Resolver, reason func(uint32) string, sym func(uint64) string) *names {
	return &names{res: res, reasonOf: reason, symOf: sym, netnsNames: map[uint32]named{}, devNames: map[devKey]named{},
		reasons: map[uint32]string{}, syms: map[uint64]string{}, addrs: map[netip.Addr]string{}}
}

func (n *names) netns(inode uint32) string {
	if e, ok := n.netnsNames[inode]; ok && n.now < e.expires {
		return e.name
	}
	return n.lookupNetns(inode).name
}

// pod is netns for the pod fields: the same memo entry.
func (n *names) pod(inode uint32) (ns, name, uid string, ok bool) {
	e, hit := n.netnsNames[inode]
	if !hit || n.now >= e.expires {
		e = n.lookupNetns(inode)
	}
	return e.pod.ns, e.pod.name, e.pod.uid, e.pod.ok
}

func (n *names) lookupNetns(inode uint32) named {
	e := named{name: n.res.Name(inode), expires: n.now + nameTTL}
	if strings.HasPrefix(e.name, "netns:") {
		// Unknown yet: the rescan it causes names it within moments.
		e.expires = n.now + unknownTTL
	}
	if o, ok := n.res.Owner(inode); ok && o.Kind == "pod" {
		e.pod = podName{o.Namespace, o.Name, o.UID, true}
	} else if !ok {
		// A pod's netns is named (by its /run/netns file) before its
		// runtime lists the pod: the owner may answer within moments.
		e.expires = n.now + unknownTTL
	}
	if n.seen != nil {
		n.seen(inode)
	}
	if len(n.netnsNames) >= namesMax {
		clear(n.netnsNames)
	}
	n.netnsNames[inode] = e
	return e
}

func (n *names) device(inode, ifindex uint32) string {
	k := devKey{inode, ifindex}
	if e, ok := n.devNames[k]; ok && n.now < e.expires {
		return e.name
	}
	name := n.res.DeviceName(inode, ifindex)
	if len(n.devNames) >= namesMax {
		clear(n.devNames)
	}
	n.devNames[k] = named{name: name, expires: n.now + nameTTL}
	return name
}

// reason and symbol answer from tables loaded at start, which do not
// change; caching saves the formatting (and its allocation) per report.
func (n *names) reason(v uint32) string {
	if s, ok := n.reasons[v]; ok {
		return s
	}
	s := n.reasonOf(v)
	if len(n.reasons) >= namesMax {
		clear(n.reasons)
	}
	n.reasons[v] = s
	return s
}

func (n *names) symbol(addr uint64) string {
	if s, ok := n.syms[addr]; ok {
		return s
	}
	s := n.symOf(addr)
	if len(n.syms) >= namesMax {
		clear(n.syms)
	}
	n.syms[addr] = s
	return s
}

// addr renders an address once instead of allocating a string for it
// twice per path step of every report.
func (n *names) addr(a netip.Addr) string {
	if s, ok := n.addrs[a]; ok {
		return s
	}
	s := a.String()
	if len(n.addrs) >= namesMax {
		clear(n.addrs)
	}
	n.addrs[a] = s
	return s
}
