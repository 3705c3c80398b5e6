package nftrace

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Tracer traces packets in one or more network namespaces.
type Tracer struct {
	out    chan Decision
	events chan Event
	cancel context.CancelFunc
	wg     sync.WaitGroup
	ns     []*nsState

	closeOnce sync.Once
	closeErr  error

	// record, when set before the loop starts (tests), receives every event.
	record func(Event)
}

type nsState struct {
	h      *nsHandle
	table  *traceTable
	trace  *netlink.Conn
	rs     *Ruleset
	loaded time.Time
}

// Start installs the trace table in every netns of o.Netns and starts
// decoding. The tables live until Close (or process death). One Tracer per
// process and netns: the table name is per process.
func Start(ctx context.Context, o Options) (*Tracer, error) {
	return start(ctx, o, nil)
}

func start(ctx context.Context, o Options, record func(Event)) (*Tracer, error) {
	paths := o.Netns
	if len(paths) == 0 {
		paths = []string{""}
	}
	ctx, cancel := context.WithCancel(ctx)
	t := &Tracer{out: make(chan Decision, 256), events: make(chan Event, 4096), cancel: cancel, record: record}
	name := fmt.Sprintf("%s%d", ownTablePrefix, os.Getpid())
	for _, p := range paths {
		st, err := openState(ctx, p, name, o.Match)
		if err != nil {
			t.teardown()
			cancel()
			return nil, err
		}
		t.ns = append(t.ns, st)
	}
	for _, st := range t.ns {
		t.wg.Add(1)
		go t.read(ctx, st)
	}
	t.wg.Add(1)
	go t.loop(ctx, o.Idle)
	return t, nil
}

// openState subscribes to trace events before installing the table, so the
// first traced packet is not missed.
func openState(ctx context.Context, path, table string, m Match) (*nsState, error) {
	h, err := openNetns(path)
	if err != nil {
		return nil, err
	}
	st := &nsState{h: h}
	st.trace, err = netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: h.fd})
	if err != nil {
		h.close()
		return nil, fmt.Errorf("open trace socket in netns %s: %w", h.path, err)
	}
	// A burst of traced packets produces many events; a large buffer keeps
	// ENOBUFS rare.
	_ = st.trace.SetReadBuffer(8 << 20)
	if err := st.trace.JoinGroup(unix.NFNLGRP_NFTRACE); err != nil {
		st.close()
		return nil, fmt.Errorf("join nftrace group in netns %s: %w", h.path, err)
	}
	st.table, err = installTable(h, table, m)
	if err != nil {
		st.close()
		return nil, fmt.Errorf("install trace table in netns %s: %w", h.path, err)
	}
	if st.rs, err = loadRuleset(ctx, h); err != nil {
		st.close()
		return nil, err
	}
	st.loaded = time.Now()
	return st, nil
}

func (st *nsState) close() error {
	var errs []error
	if st.table != nil {
		errs = append(errs, st.table.close())
		st.table = nil
	}
	if st.trace != nil {
		// A second Close of the trace socket (after Tracer.Close) is harmless.
		_ = st.trace.Close()
	}
	errs = append(errs, st.h.close())
	return errors.Join(errs...)
}

// read forwards decoded trace events of one netns to the loop.
func (t *Tracer) read(ctx context.Context, st *nsState) {
	defer t.wg.Done()
	for {
		msgs, err := st.trace.Receive()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if errors.Is(err, unix.ENOBUFS) {
				continue // events were lost; the idle timeout closes their groups
			}
			return
		}
		now := time.Now()
		for _, m := range msgs {
			ev, ok, err := decodeTrace(m)
			if err != nil || !ok {
				continue
			}
			ev.Netns, ev.Time = st.h.path, now
			select {
			case t.events <- ev:
			case <-ctx.Done():
				return
			}
		}
	}
}

// loop owns the assembler; only it touches the rulesets after Start.
func (t *Tracer) loop(ctx context.Context, idle time.Duration) {
	defer t.wg.Done()
	defer close(t.out)
	byPath := map[string]*nsState{}
	for _, st := range t.ns {
		byPath[st.h.path] = st
	}
	lookup := func(netns string, miss bool) *Ruleset {
		st := byPath[netns]
		if st == nil {
			return &Ruleset{}
		}
		// Reload on a miss, at most once a second, so a changing ruleset
		// cannot make us fork nft for every event.
		if miss && time.Since(st.loaded) > time.Second {
			if rs, err := loadRuleset(ctx, st.h); err == nil {
				st.rs = rs
			}
			st.loaded = time.Now()
		}
		return st.rs
	}
	inode := func(netns string) uint32 {
		if st := byPath[netns]; st != nil {
			return st.h.inode
		}
		return 0
	}
	emit := func(d Decision) {
		select {
		case t.out <- d:
		case <-ctx.Done():
		}
	}
	a := newAssembler(idle, lookup, inode, emit)
	tick := time.NewTicker(a.idle / 4)
	defer tick.Stop()
	for {
		select {
		case ev := <-t.events:
			if t.record != nil {
				t.record(ev)
			}
			a.add(ev)
		case now := <-tick.C:
			a.expire(now)
		case <-ctx.Done():
			return
		}
	}
}

// Decisions delivers one Decision per traced packet and netns (packets
// that crossed no chain besides pktdrop's own are not reported). The
// channel is closed by Close; a slow reader backs up event decoding, and
// the kernel then drops trace events (ENOBUFS) rather than packets.
func (t *Tracer) Decisions() <-chan Decision { return t.out }

// Close deletes the trace tables and stops tracing. It is safe to call more
// than once.
func (t *Tracer) Close() error {
	t.closeOnce.Do(func() {
		t.cancel()
		// Closing the trace sockets unblocks the readers; the tables go
		// only after the loop stopped using the netns handles.
		for _, st := range t.ns {
			st.trace.Close()
		}
		t.wg.Wait()
		t.closeErr = t.teardown()
	})
	return t.closeErr
}

// teardown deletes the tables and closes every netns.
func (t *Tracer) teardown() error {
	var errs []error
	for _, st := range t.ns {
		errs = append(errs, st.close())
	}
	return errors.Join(errs...)
}
