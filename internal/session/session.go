// Package session runs `pktdrop watch` and `pktdrop trace`: it wires the
// probes, the enrichment and the output together for one invocation.
package session

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf/btf"
	"golang.org/x/sys/unix"

	"github.com/pktdrop/pktdrop/internal/benign"
	"github.com/pktdrop/pktdrop/internal/cause"
	"github.com/pktdrop/pktdrop/internal/event"
	"github.com/pktdrop/pktdrop/internal/filter"
	"github.com/pktdrop/pktdrop/internal/filterexpr"
	"github.com/pktdrop/pktdrop/internal/ksym"
	"github.com/pktdrop/pktdrop/internal/metrics"
	"github.com/pktdrop/pktdrop/internal/netns"
	"github.com/pktdrop/pktdrop/internal/nfstate"
	"github.com/pktdrop/pktdrop/internal/output"
	"github.com/pktdrop/pktdrop/internal/pods"
	"github.com/pktdrop/pktdrop/internal/probe"
	"github.com/pktdrop/pktdrop/internal/reasons"
	"github.com/pktdrop/pktdrop/internal/report"
	"github.com/pktdrop/pktdrop/internal/rules"
	"github.com/pktdrop/pktdrop/internal/tracer"
)

// Options is everything `watch` and `trace` take.
type Options struct {
	Filter      filter.Options
	Expr        string // pcap-filter expression, ANDed with Filter
	Output      string
	Count       int
	Duration    time.Duration
	ReadyFile   string
	RingBufSize uint32
	NoPath      bool
	Trace       bool // report followed packets that were not dropped too
	Rules       bool // name the nf_tables rule via nftrace (installs a temporary table)
	All         bool // report benign frees too (internal/benign), labelled
	Force       map[string]probe.Mechanism
	Pcap        string // --pcap: write reported packets here ("-": stdout)
	Snaplen     int    // bytes of each packet to write
	Command     string // the command line, for the pcap file
	Version     string
	Node        Node  // --host-root, --cri-socket, --pod
	Agent       Agent // `serve`: exports every report as metrics
}

// Agent is `serve`'s exporter (internal/metrics): it sees every report
// and, once every probe is attached, the run's state.
type Agent interface {
	Observe(*report.Report)
	Ready(metrics.State)
}

// maxNetns bounds how many namespaces get netfilter links.
const maxNetns = 256

// Run traces until ctx ends, Count reports were written or Duration passed.
func Run(ctx context.Context, o Options, stdout, stderr io.Writer) error {
	capt, stdout, err := openCapture(o, stdout, stderr)
	if err != nil {
		return err
	}
	defer capt.discard()
	// Reports are buffered and flushed whenever the ring buffer has been
	// read empty: a burst costs a few writes instead of one per report,
	// and a lone report still goes out at once.
	bw := bufio.NewWriterSize(stdout, 64<<10)
	quiet := o.Output == "none" // an agent that keeps reports to its metrics
	if quiet {
		o.Output = "json"
	}
	out, err := output.New(bw, o.Output)
	if err != nil {
		return &filter.UsageError{Flag: "output", Value: o.Output, Msg: "want text or json"}
	}
	if o.RingBufSize != 0 && (o.RingBufSize&(o.RingBufSize-1) != 0 || o.RingBufSize < 4096) {
		return &filter.UsageError{Flag: "ringbuf-size", Value: fmt.Sprint(o.RingBufSize), Msg: "want a power of two of at least 4096 bytes"}
	}
	warns, err := preflight(o.Node.HostRoot)
	if err != nil {
		return err
	}
	for _, w := range warns {
		fmt.Fprintln(stderr, "pktdrop: "+w)
	}
	// What does not depend on the filters loads meanwhile: the BTF decode
	// every program load needs. What reports need (kernel symbols, enum
	// names) loads once the programs are in (see below).
	lift := limitStartup()
	go probe.WarmBTF()
	bg := newBackground()
	// Drop reason names come from the same decode of the kernel's BTF as
	// the program loads: a second one would add its megabytes to the
	// start-up peak.
	var rt *reasons.Table
	err = probe.WithKernelSpec(func(spec *btf.Spec) (err error) {
		rt, err = reasons.FromKernel(spec)
		return err
	})
	if err != nil {
		return fmt.Errorf("read drop reasons: %w", err)
	}
	idx, err := startPods(ctx, o.Node, &o.Filter)
	if err != nil {
		return err
	}
	f, err := filter.Parse(o.Filter, rt, netns.ParseSpecAt(o.Node.HostRoot))
	if err != nil {
		return err
	}
	expr, err := filterexpr.Parse(o.Expr)
	if err != nil {
		return err
	}
	consts := f.Constants()
	for k, v := range expr.Constants() {
		consts[k] = v
	}
	e, err := newEnricher(rt, bg, stderr, o.Node.HostRoot, idx)
	if err != nil {
		return err
	}
	tr, err := tracer.Start(tracer.Options{
		Probe: probe.Config{Constants: capt.constants(consts), Path: !o.NoPath, Trace: o.Trace, RingBufSize: o.RingBufSize, Force: o.Force},
		Netns: e.namespaces(f),
	})
	if err != nil {
		return err
	}
	defer tr.Close()
	// The symbol table stays for the whole run, the BPF object and the
	// kernel's decoded BTF do not: loading it only now keeps the two out
	// of memory at once (the start-up peak). It is waited for before
	// pktdrop says it is ready (a storm already under way must not find
	// the reader waiting).
	probe.ReleaseBTF()
	bg.start()
	e.finish()
	// Start-up decoded the kernel's BTF and read every kernel symbol: give
	// the memory that is garbage now back to the system before the run,
	// rather than keep it as heap (tens of MiB) for all of it. From here
	// on little is allocated (reports of repeated drops allocate nothing),
	// so a tight GC goal costs little CPU and keeps the heap, and RSS,
	// within a quarter of what is live instead of growing to twice it.
	debug.FreeOSMemory()
	debug.SetGCPercent(25)
	lift()
	if w := missing(tr.Status()); w != "" {
		fmt.Fprintln(stderr, "pktdrop: "+w)
	}
	what := "drops"
	if o.Trace {
		what = "drops and delivered packets"
	}
	fmt.Fprintf(stderr, "pktdrop: watching %s of %s (Ctrl-C to stop)\n", what, describeFilters(f, expr))

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if o.Duration > 0 {
		ctx, cancel = context.WithTimeout(ctx, o.Duration)
		defer cancel()
	}
	var attr *rules.Attributor
	if o.Rules {
		if attr, err = rules.Start(ctx, e.namespaces(f), f.Packet()); err != nil {
			return err
		}
		defer attr.Close()
		for _, n := range attr.Notes {
			fmt.Fprintln(stderr, "pktdrop: --rules: "+n)
		}
	}
	if o.ReadyFile != "" {
		if err := os.WriteFile(o.ReadyFile, []byte(fmt.Sprintf("%d\n", os.Getpid())), 0o644); err != nil {
			return fmt.Errorf("write ready file: %w", err)
		}
	}

	var undecodable atomic.Uint64
	if o.Agent != nil {
		o.Agent.Ready(agentState(tr, e, &undecodable))
	}
	go reportLost(ctx, tr, &undecodable, stderr)
	go capt.followLost(ctx, tr, &undecodable)
	e.want.Store(f.Netns())
	if err := e.follow(ctx, tr, attr, f, o.Node, stderr); err != nil {
		return err
	}
	n := 0
	emit := func(r *report.Report) error {
		// The agent counts benign frees apart, so it sees them first.
		if o.Agent != nil {
			o.Agent.Observe(r)
		}
		if skipBenign(o, out, r) {
			return nil
		}
		if o.Count > 0 && n >= o.Count {
			return nil // already stopping
		}
		if quiet {
			out.Summary().Add(r)
		} else if err := out.Write(r); err != nil {
			return fmt.Errorf("write output: %w", err)
		}
		if err := capt.write(r); err != nil {
			return err
		}
		n++
		if o.Count > 0 && n >= o.Count {
			cancel()
		}
		return nil
	}
	// emitRepeat is emit for a memo hit: the report's rendering after its
	// time is the memo entry's too.
	emitRepeat := func(r *report.Report, tail *[]byte) error {
		if o.Agent != nil {
			o.Agent.Observe(r)
		}
		if skipBenign(o, out, r) {
			return nil
		}
		if o.Count > 0 && n >= o.Count {
			return nil
		}
		if quiet {
			out.Summary().Add(r)
		} else if err := out.WriteRepeat(r, tail); err != nil {
			return fmt.Errorf("write output: %w", err)
		}
		n++
		if o.Count > 0 && n >= o.Count {
			cancel()
		}
		return nil
	}
	bad := func(err error) {
		undecodable.Add(1)
		fmt.Fprintf(stderr, "pktdrop: skipped an event: %v\n", err)
	}
	flush := func() error {
		if err := bw.Flush(); err != nil {
			return fmt.Errorf("write output: %w", err)
		}
		return capt.flush()
	}
	if attr == nil {
		// Reports are not changed after emit here (unlike with --rules),
		// so the memo may share them.
		m := newMemo(e.b.Boot)
		raw := func(raw []byte) (bool, error) {
			if r, tail, ok := m.lookup(raw); ok {
				return true, emitRepeat(r, tail)
			}
			return false, nil
		}
		if capt != nil {
			raw = nil // every packet is written, so every event is decoded
		}
		err = tr.RunWith(ctx, tracer.Handlers{
			Raw: raw,
			Event: func(ev *event.Event) error {
				r := e.build(ev)
				m.store(r)
				capt.hold(r, ev.Packet)
				return emit(r)
			},
			Bad:  bad,
			Idle: flush,
		})
	} else {
		err = runWithRules(ctx, tr, e, attr, capt, emit, bad, flush)
	}
	if ferr := flush(); err == nil {
		err = ferr
	}
	c, cerr := tr.Counters()
	sumTo := stdout
	if o.Output == "json" {
		sumTo = stderr // keep stdout valid JSON Lines
	}
	if werr := out.Summary().Write(sumTo, output.Lost{Ringbuf: c.Lost, Decode: undecodable.Load()}); werr != nil && err == nil {
		err = werr
	}
	if perr := capt.close(c.Lost + undecodable.Load()); err == nil {
		err = perr
	}
	if err == nil {
		err = cerr
	}
	return err
}

// runWithRules passes reports through a queue so that each one can wait
// for its rule decision without holding up the ring buffer reader; the
// queue keeps the kernel's order.
func runWithRules(ctx context.Context, tr *tracer.Tracer, e *enricher, attr *rules.Attributor, capt *capture,
	emit func(*report.Report) error, bad func(error), flush func() error) error {
	pending := make(chan *report.Report, 4096)
	errc := make(chan error, 1)
	go func() {
		var werr error
		for r := range pending {
			if werr != nil {
				continue
			}
			if rules.Needs(r) && attr.Attach(r, time.Now().Add(rules.Wait)) {
				cause.Infer(r, e.sys)
			}
			if werr = emit(r); werr == nil && len(pending) == 0 {
				werr = flush()
			}
		}
		errc <- werr
	}()
	err := tr.Run(ctx, func(ev *event.Event) error {
		r := e.build(ev)
		capt.hold(r, ev.Packet)
		pending <- r
		return nil
	}, bad)
	close(pending)
	if werr := <-errc; err == nil {
		err = werr
	}
	return err
}

// reportLost says, at most once a second, how many events the ring buffer
// had no room for.
func reportLost(ctx context.Context, tr *tracer.Tracer, undecodable *atomic.Uint64, stderr io.Writer) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var last uint64
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		c, err := tr.Counters()
		if err != nil {
			continue
		}
		if c.Lost > last {
			fmt.Fprintf(stderr, "pktdrop: %d events lost in the last second (ring buffer full: raise --ringbuf-size or narrow the filters); %d lost in all\n",
				c.Lost-last, c.Lost)
			last = c.Lost
		}
	}
}

// missing is the one-line warning about probe points left uncovered.
func missing(st []probe.Status) string {
	var none, fallback []string
	for _, s := range st {
		switch {
		case s.Skipped != "":
		case s.Mechanism == "":
			none = append(none, s.Point)
		case s.Mechanism == probe.NFLink:
			fallback = append(fallback, s.Point+" (via netfilter links)")
		}
	}
	if len(none) == 0 {
		return ""
	}
	msg := "this kernel does not allow probing " + strings.Join(none, ", ")
	if len(fallback) > 0 {
		msg += "; using " + strings.Join(fallback, ", ")
	}
	return msg + "; paths will lack those steps (`pktdrop probes` says why)"
}

// withTables is the resolver that also reads netfilter tables.
type withTables struct {
	*netns.Resolver
	nf *nfstate.Reader
}

func (w withTables) NetfilterFind(inode uint32, q nfstate.Query) (*nfstate.Finding, error) {
	return w.nf.Find(inode, q)
}

// enricher turns events into reports with names and causes.
type enricher struct {
	b     report.Builder
	res   *netns.Resolver
	pods  *pods.Index
	sys   cause.System    // res behind a one-second answer cache
	nf    *nfstate.Reader // the tables behind sys, forgotten when they change
	names *names
	// benign marks benign frees (internal/benign).
	benign *benign.Classifier
	want   atomic.Uint32 // the --netns/--pod namespace, 0 for all
	// unplaced hears of a netfilter drop without its hook: a chain the
	// namespace's links were not planned for (follow.go).
	unplaced func(netns uint32)

	bg     *background
	once   sync.Once
	table  *ksym.Table
	stderr io.Writer
}

func newEnricher(rt *reasons.Table, bg *background, stderr io.Writer, hostRoot string, idx *pods.Index) (*enricher, error) {
	prios, err := probe.Priorities()
	if err != nil {
		return nil, err
	}
	res := netns.NewResolverAt(netns.Options{HostRoot: hostRoot, Owners: idx})
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return nil, fmt.Errorf("read monotonic clock: %w", err)
	}
	boot := time.Now().Add(-time.Duration(ts.Nano()))
	nf := &nfstate.Reader{In: res.Do, Brackets: prios,
		Bracket: func(hook, table string) (int32, bool) { return probe.BracketPriority(prios, hook, table) }}
	e := &enricher{res: res, pods: idx, sys: cause.NewCached(withTables{res, nf}, time.Second), nf: nf, bg: bg, stderr: stderr}
	nm := newNames(res, rt.Name, e.symbol)
	e.names = nm
	e.benign = newBenign(res, e)
	e.b = report.Builder{Boot: boot,
		Names: report.Names{Reason: nm.reason, HasReasons: rt.Available(), Symbol: nm.symbol, Netns: nm.netns, Pod: nm.pod,
			Device: nm.device, Addr: nm.addr, Table: func(p int32) string { return probe.BracketTable(prios, p) }},
	}
	return e, nil
}

func (e *enricher) build(ev *event.Event) *report.Report {
	e.finish()
	e.names.now = ev.Mono
	r := e.b.Build(ev)
	cause.Infer(r, e.sys)
	if e.unplaced != nil && r.Hook == "" && r.Cause == "netfilter" {
		e.unplaced(r.Netns)
	}
	e.benign.Classify(ev, r)
	return r
}

// namespaces lists where netfilter links go: the filtered netns, or all
// that can be found (bounded).
func (e *enricher) namespaces(f *filter.Filter) []string {
	var paths []string
	want := f.Netns()
	if w := e.want.Load(); w != 0 {
		want = w
	}
	for _, in := range e.res.All() {
		if want != 0 && in.Inode != want {
			continue
		}
		if in.Path != "" {
			paths = append(paths, in.Path)
		}
		if len(paths) == maxNetns {
			break
		}
	}
	return paths
}

// describeFilters is the banner's "of ...": the flags, then the expression.
func describeFilters(f *filter.Filter, expr *filterexpr.Expr) string {
	if !expr.On() {
		return f.String()
	}
	if s := f.String(); s != "all packets" {
		return s + ", expression '" + expr.String() + "'"
	}
	return "'" + expr.String() + "'"
}
