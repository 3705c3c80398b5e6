package nftrace

import (
	"sort"
	"time"
)

// Recording is a captured trace: the events in arrival order and, per netns
// path, the netns inode and ruleset they are explained with.
type Recording struct {
	Netns  map[string]RecordedNetns `json:"netns"`
	Events []Event                  `json:"events"`
}

// RecordedNetns is one netns's identity and ruleset snapshot.
type RecordedNetns struct {
	Inode   uint32  `json:"inode"`
	Ruleset Ruleset `json:"ruleset"`
}

// Replay turns a recorded sequence of trace events into Decisions exactly as
// a live Tracer would (same grouping, idle timeout measured on event times),
// without touching the kernel. Decisions are ordered by their first event.
func Replay(rec Recording, idle time.Duration) []Decision {
	var out []Decision
	lookup := func(netns string, _ bool) *Ruleset {
		if n, ok := rec.Netns[netns]; ok {
			rs := n.Ruleset
			return &rs
		}
		return &Ruleset{}
	}
	// Index each ruleset once; lookup must hand out stable pointers because
	// groups compare base chains by identity.
	cache := map[string]*Ruleset{}
	cached := func(netns string, miss bool) *Ruleset {
		if rs, ok := cache[netns]; ok {
			return rs
		}
		rs := lookup(netns, miss)
		rs.index()
		cache[netns] = rs
		return rs
	}
	inode := func(netns string) uint32 { return rec.Netns[netns].Inode }
	a := newAssembler(idle, cached, inode, func(d Decision) { out = append(out, d) })
	for _, ev := range rec.Events {
		a.add(ev)
	}
	a.flushAll()
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].Time.Equal(out[j].Time) {
			return out[i].Time.Before(out[j].Time)
		}
		return out[i].TraceID < out[j].TraceID
	})
	return out
}
