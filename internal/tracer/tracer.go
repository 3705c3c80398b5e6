// Package tracer runs pktdrop's probes: it loads them, reads their events
// from the ring buffer and hands each decoded event to the caller.
package tracer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"time"

	"github.com/cilium/ebpf/ringbuf"
	"golang.org/x/sys/unix"

	"github.com/pktdrop/pktdrop/gen"
	"github.com/pktdrop/pktdrop/internal/event"
	"github.com/pktdrop/pktdrop/internal/probe"
)

// Options configures a Tracer.
type Options struct {
	Probe probe.Config
	// Netns lists namespaces (nsfs paths) where netfilter links are
	// attached when nf_hook_slow cannot be probed.
	Netns []string
}

// pollInterval bounds how long Run takes to notice that ctx ended, and how
// long an event can wait in the ring buffer: the probes wake the reader
// only once a backlog builds up (cfg_wakeup_bytes).
const pollInterval = 50 * time.Millisecond

// Tracer owns the attached probes and the ring buffer reader.
type Tracer struct {
	set *probe.Set
	rd  *ringbuf.Reader
}

// Counters are the kernel side's own counts, summed over CPUs.
type Counters struct {
	Events     uint64 // events written to the ring buffer
	Lost       uint64 // events the ring buffer had no room for
	TrackFull  uint64 // packets that could not be followed
	DropsMatch uint64 // drops that matched the filters
}

// Start loads and attaches the probes.
func Start(o Options) (*Tracer, error) {
	set, err := probe.Load(o.Probe)
	if err != nil {
		return nil, err
	}
	if o.Probe.Path && !set.Has("nf_hook_slow") && len(o.Netns) > 0 {
		// Not fatal: drops are still seen, only the hook attribution is lost.
		_ = set.AttachNetfilter(o.Netns)
	}
	set.ReleaseSpec()
	rd, err := ringbuf.NewReader(set.Events)
	if err != nil {
		set.Close()
		return nil, fmt.Errorf("open ring buffer: %w", err)
	}
	return &Tracer{set: set, rd: rd}, nil
}

// AddNetns brackets the netfilter hooks of namespaces that appeared since
// Start (pods come and go), when netfilter links are what pktdrop uses.
func (t *Tracer) AddNetns(paths []string) error {
	if !t.set.NetfilterLinks() {
		return nil
	}
	return t.set.AttachNetfilter(paths)
}

// SetNetns moves the --netns filter to another namespace.
func (t *Tracer) SetNetns(inode uint32) error { return t.set.SetNetns(inode) }

// NetfilterLinks tells whether netfilter links are in use.
func (t *Tracer) NetfilterLinks() bool { return t.set.NetfilterLinks() }

// KeepNetns releases the netfilter links of namespaces not in keep.
func (t *Tracer) KeepNetns(keep map[uint64]bool) int { return t.set.KeepNetns(keep) }

// CoveredNetns is how many namespaces have netfilter links.
func (t *Tracer) CoveredNetns() int { return t.set.CoveredNetns() }

// Covers tells whether namespace ino has its netfilter links (always
// true where nf_hook_slow is probed: that covers every namespace).
func (t *Tracer) Covers(ino uint64) bool {
	return !t.set.NetfilterLinks() || t.set.NetfilterNetns(ino)
}

// Status reports what each probe point got.
func (t *Tracer) Status() []probe.Status { return t.set.Status }

// Run reads events until ctx ends, calling fn for each. A record that does
// not decode is passed to bad and skipped, never fatal.
func (t *Tracer) Run(ctx context.Context, fn func(*event.Event) error, bad func(error)) error {
	return t.RunWith(ctx, Handlers{Event: fn, Bad: bad})
}

// Handlers are what RunWith calls; any may be nil.
type Handlers struct {
	// Raw sees each record first; when it returns true the record is
	// handled and neither decoded nor passed to Event.
	Raw   func(raw []byte) (bool, error)
	Event func(*event.Event) error
	Bad   func(error) // a record that does not decode (skipped)
	// Idle is called each time the ring buffer has been read empty: the
	// moment to flush buffered output, so that a burst costs one write
	// and a lone event is not held back.
	Idle func() error
}

// readerNice is the scheduling priority of the thread that reads the ring
// buffer. The probes write events at the kernel's pace and the ring holds
// only so many (tens of milliseconds of a drop storm): a reader that waits
// behind the busy threads that cause the storm for longer than that loses
// events. Nice -10 has it run soon after each wakeup; it needs little CPU
// (a microsecond or so per event) and sleeps when there is nothing to read.
const readerNice = -10

// prioritise runs the calling goroutine on a thread of its own at
// readerNice. Without the privilege to (no CAP_SYS_NICE) it stays as it
// is: only the margin before events are lost is smaller.
func prioritise() {
	runtime.LockOSThread()
	_ = unix.Setpriority(unix.PRIO_PROCESS, unix.Gettid(), readerNice)
}

// RunWith reads events until ctx ends. See Handlers.
func (t *Tracer) RunWith(ctx context.Context, h Handlers) error {
	prioritise()
	defer runtime.UnlockOSThread()
	var rec ringbuf.Record
	var ev event.Event
	pending := false // a record was handled since the last idle
	drained := func() error {
		if !pending || h.Idle == nil {
			return nil
		}
		pending = false
		return h.Idle()
	}
	for {
		if ctx.Err() != nil {
			return drained()
		}
		// ReadInto holds the reader's lock while it waits, so a deadline
		// cannot be set from outside to wake it: wake up regularly instead.
		t.rd.SetDeadline(time.Now().Add(pollInterval))
		if err := t.rd.ReadInto(&rec); err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				if err := drained(); err != nil {
					return err
				}
				continue
			}
			if errors.Is(err, ringbuf.ErrClosed) {
				return drained()
			}
			return fmt.Errorf("read ring buffer: %w", err)
		}
		handled := false
		if h.Raw != nil {
			var err error
			if handled, err = h.Raw(rec.RawSample); err != nil {
				return err
			}
			pending = pending || handled
		}
		if !handled {
			if err := event.Decode(rec.RawSample, &ev); err != nil {
				if h.Bad != nil {
					h.Bad(err)
				}
			} else if h.Event != nil {
				pending = true
				if err := h.Event(&ev); err != nil {
					return err
				}
			}
		}
		if rec.Remaining == 0 {
			if err := drained(); err != nil {
				return err
			}
		}
	}
}

// Counters sums the per-CPU counters.
func (t *Tracer) Counters() (Counters, error) {
	get := func(i gen.PktdropPdCounter) (uint64, error) {
		var vals []uint64
		if err := t.set.Counters.Lookup(uint32(i), &vals); err != nil {
			return 0, fmt.Errorf("read counter %d: %w", i, err)
		}
		var sum uint64
		for _, v := range vals {
			sum += v
		}
		return sum, nil
	}
	var c Counters
	var err error
	for _, f := range []struct {
		dst *uint64
		idx gen.PktdropPdCounter
	}{{&c.Events, gen.PktdropPdCounterPD_CNT_EVENTS}, {&c.Lost, gen.PktdropPdCounterPD_CNT_LOST},
		{&c.TrackFull, gen.PktdropPdCounterPD_CNT_TRACK_FULL}, {&c.DropsMatch, gen.PktdropPdCounterPD_CNT_DROPS_SEEN}} {
		if *f.dst, err = get(f.idx); err != nil {
			return c, err
		}
	}
	return c, nil
}

// Close detaches everything.
func (t *Tracer) Close() error {
	return errors.Join(t.rd.Close(), t.set.Close())
}
