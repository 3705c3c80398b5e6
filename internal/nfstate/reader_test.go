package nfstate

import (
	"sync/atomic"
	"testing"
	"time"
)

// A stale answer is served at once while one read refreshes it.
func TestReaderServesStale(t *testing.T) {
	var reads atomic.Int32
	block := make(chan struct{})
	r := &Reader{In: func(_ uint32, fn func() error) error {
		if reads.Add(1) > 1 {
			<-block // the refresh
		}
		return fn() // reads the test's own namespace
	}}
	if _, err := r.state(7); err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	c := r.cache[7]
	c.expires = time.Now().Add(-time.Second)
	r.cache[7] = c
	r.mu.Unlock()
	for range 3 {
		if _, err := r.state(7); err != nil {
			t.Fatal(err)
		}
	}
	close(block)
	deadline := time.Now().Add(2 * time.Second)
	for reads.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if n := reads.Load(); n != 2 {
		t.Errorf("reads = %d, want 2 (the first and one refresh)", n)
	}
}

// A forgotten namespace is read afresh on the next question, not served
// from the cache.
func TestReaderForget(t *testing.T) {
	var reads atomic.Int32
	r := &Reader{In: func(_ uint32, fn func() error) error {
		reads.Add(1)
		return fn()
	}}
	for range 2 {
		if _, err := r.state(7); err != nil {
			t.Fatal(err)
		}
	}
	r.Forget(7)
	if _, err := r.state(7); err != nil {
		t.Fatal(err)
	}
	if n := reads.Load(); n != 2 {
		t.Errorf("reads = %d, want 2 (the first, and the one after Forget)", n)
	}
}
