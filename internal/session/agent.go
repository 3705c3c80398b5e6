package session

import (
	"sync/atomic"

	"github.com/pktdrop/pktdrop/internal/metrics"
	"github.com/pktdrop/pktdrop/internal/netns"
	"github.com/pktdrop/pktdrop/internal/tracer"
)

// agentState is what the agent reads at scrape time.
func agentState(tr *tracer.Tracer, e *enricher, undecodable *atomic.Uint64) metrics.State {
	return metrics.State{
		Probes: tr.Status(),
		Lost: func() (uint64, uint64) {
			c, _ := tr.Counters()
			return c.Lost, undecodable.Load()
		},
		Netns: func() (int, int) { return len(e.res.All()), tr.NetfilterNetns() },
		// The resolver rescans on a miss at most once a second.
		Alive: func(inode uint32) bool { _, ok := e.res.Lookup(inode); return ok },
	}
}

// forgetGone closes the netfilter links of namespaces no longer found
// (pods that were deleted), so a long run does not keep them.
func forgetGone(tr *tracer.Tracer, known []netns.Info) {
	set := make(map[uint64]bool, len(known))
	for _, i := range known {
		set[uint64(i.Inode)] = true
	}
	tr.ForgetNetns(func(ino uint64) bool { return set[ino] })
}
