package pcapng

import "sync/atomic"

// lostCount is the running total of lost events, set by another goroutine.
type lostCount struct{ v atomic.Uint64 }

func (l *lostCount) set(total uint64) {
	for {
		old := l.v.Load()
		if total <= old || l.v.CompareAndSwap(old, total) {
			return
		}
	}
}

func (l *lostCount) get() uint64 { return l.v.Load() }
