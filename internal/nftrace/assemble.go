package nftrace

import (
	"strings"
	"time"
)

// ownTablePrefix marks pktdrop's trace tables (family inet); their events
// only say "nftrace was set" and are left out of Steps.
const ownTablePrefix = "pktdrop_"

func isOwn(ev Event) bool { return ev.Family == "inet" && strings.HasPrefix(ev.Table, ownTablePrefix) }

// hookStage orders hooks along a packet's path in one netns; an event at a
// lower stage than its group reached means the trace id was reused.
var hookStage = map[string]int{"ingress": -1, "prerouting": 0, "output": 0, "input": 1, "forward": 1, "postrouting": 2}

type annotated struct {
	ev   Event
	hook string
	base *ChainInfo
}

type groupKey struct {
	netns string
	id    uint32
}

type group struct {
	key    groupKey
	events []annotated
	base   *ChainInfo // base chain being traversed, for jumped-to chains
	last   time.Time
}

// assembler turns a stream of events into Decisions. lookup returns the
// ruleset of a netns; with miss set the caller may reload it first.
type assembler struct {
	idle   time.Duration
	lookup func(netns string, miss bool) *Ruleset
	inode  func(netns string) uint32
	groups map[groupKey]*group
	emit   func(Decision)
}

func newAssembler(idle time.Duration, lookup func(string, bool) *Ruleset, inode func(string) uint32, emit func(Decision)) *assembler {
	if idle <= 0 {
		idle = 200 * time.Millisecond
	}
	return &assembler{idle: idle, lookup: lookup, inode: inode, groups: map[groupKey]*group{}, emit: emit}
}

// chainOf resolves an event's chain, reloading the ruleset once if unknown.
func (a *assembler) chainOf(ev Event) *ChainInfo {
	c := a.lookup(ev.Netns, false).chain(ev.Family, ev.Table, ev.Chain)
	if c == nil {
		c = a.lookup(ev.Netns, true).chain(ev.Family, ev.Table, ev.Chain)
	}
	return c
}

func (a *assembler) add(ev Event) {
	a.expire(ev.Time)
	k := groupKey{ev.Netns, ev.ID}
	g := a.groups[k]
	c := a.chainOf(ev)
	var base *ChainInfo
	switch {
	case c != nil && c.Base:
		base = c
	case g != nil && g.base != nil && g.base.Family == ev.Family && g.base.Table == ev.Table:
		base = g.base
	}
	if g != nil && base != nil && g.base != nil && base != g.base && regressed(g.base, base) {
		a.flush(g)
		g = nil
	}
	if g == nil {
		g = &group{key: k}
		a.groups[k] = g
	}
	if base != nil {
		g.base = base
	}
	hook := ""
	if base != nil {
		hook = base.Hook
	}
	g.events = append(g.events, annotated{ev: ev, hook: hook, base: base})
	g.last = ev.Time
	if a.terminal(ev, base) {
		a.flush(g)
	}
}

// regressed reports whether entering base after cur means a new packet.
func regressed(cur, next *ChainInfo) bool {
	cs, ns := hookStage[cur.Hook], hookStage[next.Hook]
	if ns != cs {
		return ns < cs
	}
	return cur.Hook == next.Hook && next.Priority < cur.Priority
}

// terminal reports whether nothing more can follow for this packet.
func (a *assembler) terminal(ev Event, base *ChainInfo) bool {
	switch ev.Verdict {
	case "drop", "stolen", "queue":
		return true
	case "accept":
	default:
		return false
	}
	if base == nil || (base.Hook != "input" && base.Hook != "postrouting") {
		return false
	}
	// Accepted by the last base chain of a final hook.
	rs := a.lookup(ev.Netns, false)
	last, ties := int32(0), 0
	found := false
	for _, c := range rs.Chains {
		if !c.Base || c.Hook != base.Hook || (c.Family != ev.NFProto && c.Family != "inet") ||
			(c.Family == "inet" && strings.HasPrefix(c.Table, ownTablePrefix)) {
			continue
		}
		switch {
		case !found || c.Priority > last:
			last, ties, found = c.Priority, 1, true
		case c.Priority == last:
			ties++
		}
	}
	return found && base.Priority == last && ties == 1
}

// expire flushes groups idle for longer than a.idle at time now.
func (a *assembler) expire(now time.Time) {
	for _, g := range a.groups {
		if now.Sub(g.last) > a.idle {
			a.flush(g)
		}
	}
}

func (a *assembler) flushAll() {
	for _, g := range a.groups {
		a.flush(g)
	}
}

func (a *assembler) flush(g *group) {
	delete(a.groups, g.key)
	if d, ok := a.decide(g); ok {
		a.emit(d)
	}
}
