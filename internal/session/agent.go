package session

import (
	"sync/atomic"

	"github.com/pktdrop/pktdrop/internal/metrics"
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
		Netns: func() (int, int) { return len(e.res.All()), tr.CoveredNetns() },
		// The resolver rescans on a miss at most once a second.
		Alive: func(inode uint32) bool { _, ok := e.res.Lookup(inode); return ok },
	}
}
