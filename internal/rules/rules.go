// Package rules attaches to pktdrop's reports the nf_tables rule, or chain
// policy, that dropped or translated the packet, from the kernel's nftrace
// (see internal/nftrace). Decisions arrive on their own schedule, so a
// report waits a short, bounded time for its decision.
package rules

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/pktdrop/pktdrop/internal/filter"
	"github.com/pktdrop/pktdrop/internal/nftrace"
	"github.com/pktdrop/pktdrop/internal/report"
)

// Wait is how long a report waits for its decision: nftrace groups a
// packet's events and flushes accepted packets after 200 ms of silence.
const Wait = 400 * time.Millisecond

// keep is how long an unclaimed decision is remembered.
const keep = 5 * time.Second

// Attributor correlates nftrace decisions with reports.
type Attributor struct {
	trs    []*nftrace.Tracer
	legacy *legacy
	// Notes says what rule attribution is missing here, and why.
	Notes []string

	// Namespaces that come and go (follow.go).
	ctx     context.Context
	match   nftrace.Match
	trMu    sync.Mutex
	byIno   map[uint64]*nftrace.Tracer
	closing sync.Once

	mu      sync.Mutex
	changed chan struct{} // closed and replaced whenever a decision arrives
	byKey   map[string][]entry
	done    chan struct{}
}

type entry struct {
	d  *nftrace.Decision
	at time.Time
}

// Start installs the trace tables in the namespaces and begins collecting.
// Each namespace gets its own tracer, so that one that vanished between
// listing and attaching (pods come and go) is skipped, not fatal; a kernel
// that cannot guarantee the tables' removal is.
func Start(ctx context.Context, nsPaths []string, p filter.Packet) (*Attributor, error) {
	m := nftrace.Match{Family: p.Family, Proto: p.Proto, Src: p.Src, Dst: p.Dst, Host: p.Host,
		Sport: p.Sport, Dport: p.Dport, Port: p.Port}
	a := &Attributor{changed: make(chan struct{}), byKey: map[string][]entry{}, done: make(chan struct{}),
		ctx: ctx, match: m, byIno: map[uint64]*nftrace.Tracer{}}
	a.legacy, a.Notes = startLegacy(nsPaths, p.Family)
	var failed []string
	for _, path := range nsPaths {
		tr, err := nftrace.Start(ctx, nftrace.Options{Netns: []string{path}, Match: m})
		if errors.Is(err, nftrace.ErrOwnerUnsupported) {
			// Nothing is installed where removal cannot be promised;
			// iptables-legacy rules are named from counters, which
			// installs nothing, so they still are.
			a.closeTracers()
			a.trs = nil
			a.Notes = append(a.Notes, "nf_tables rules (nftables, iptables-nft) cannot be named on this kernel: "+
				err.Error()+"; iptables-legacy rules still are")
			failed = nil
			break
		}
		if err != nil {
			if _, serr := os.Stat(path); serr == nil {
				failed = append(failed, err.Error())
			}
			continue
		}
		a.trs = append(a.trs, tr)
		a.byIno[inodeOf(path)] = tr
	}
	if len(a.trs) == 0 && len(failed) > 0 {
		return nil, fmt.Errorf("start rule tracing (--rules): %s", strings.Join(failed, "; "))
	}
	for _, tr := range a.trs {
		go a.collect(tr)
	}
	return a, nil
}

func (a *Attributor) collect(tr *nftrace.Tracer) {
	for d := range tr.Decisions() {
		d := d
		now := time.Now()
		a.mu.Lock()
		keys := []string{key(d.NetnsInode, d.Tuple)}
		for _, n := range d.NAT {
			if n.After != nil {
				keys = append(keys, key(d.NetnsInode, *n.After))
			}
		}
		for _, k := range keys {
			a.byKey[k] = append(prune(a.byKey[k], now), entry{d: &d, at: now})
		}
		close(a.changed)
		a.changed = make(chan struct{})
		a.mu.Unlock()
	}
}

func prune(es []entry, now time.Time) []entry {
	out := es[:0]
	for _, e := range es {
		if now.Sub(e.at) < keep {
			out = append(out, e)
		}
	}
	return out
}

// Needs tells whether a report can gain from a decision.
func Needs(r *report.Report) bool {
	if r.Kind == "drop" && r.Cause == "netfilter" {
		return true
	}
	// Later packets of a connection are translated by conntrack: no rule
	// runs for them, so there is nothing to wait for.
	for _, n := range r.NAT {
		if n.By == "rule" {
			return true
		}
	}
	return false
}

// Attach waits until deadline for the decisions about r and fills in the
// rule, chain, table and verdict kind, and the rules behind translations.
// It reports whether anything was found.
func (a *Attributor) Attach(r *report.Report, deadline time.Time) bool {
	if a.legacy.attach(r) {
		return true
	}
	a.trMu.Lock()
	none := len(a.trs) == 0
	a.trMu.Unlock()
	if none {
		return false
	}
	for {
		a.mu.Lock()
		found := a.apply(r)
		ch := a.changed
		a.mu.Unlock()
		if found {
			return true
		}
		wait := time.Until(deadline)
		if wait <= 0 {
			return false
		}
		select {
		case <-ch:
		case <-time.After(wait):
		case <-a.done:
			return false
		}
	}
}

// apply looks for r's decisions under every tuple r had on its path.
func (a *Attributor) apply(r *report.Report) bool {
	tuples := map[string]bool{}
	add := func(netns uint32, src, dst string, sport, dport uint16) {
		tuples[keyStrings(netns, r.Proto, src, dst, sport, dport, r.ICMPID, r.ICMPSeq)] = true
	}
	add(r.Netns, r.Src, r.Dst, r.Sport, r.Dport)
	for _, s := range r.Path {
		if s.Where != "route" && s.Where != "rp_check" {
			add(s.Netns, s.Src, s.Dst, s.Sport, s.Dport)
		}
	}
	found := false
	for k := range tuples {
		for _, e := range a.byKey[k] {
			found = fill(r, e.d) || found
		}
	}
	return found
}

// fill copies what d says into r; true when it settled what r waits for.
func fill(r *report.Report, d *nftrace.Decision) bool {
	settled := false
	if r.Kind == "drop" && d.NetnsInode == r.Netns && (d.Verdict == "drop" || d.Verdict == "reject") {
		r.Table, r.Chain, r.Verdict, r.RuleHandle = d.Table, d.Chain, d.Kind, d.RuleHandle
		r.Hook = strings.ToUpper(hookName(d.Hook))
		r.Rule = d.IptablesRule
		if r.Rule == "" {
			r.Rule = d.Rule
		}
		settled = true
	}
	for _, n := range d.NAT {
		for i := range r.NAT {
			if r.NAT[i].Hook == strings.ToUpper(hookName(n.Hook)) && r.NAT[i].Rule == "" {
				r.NAT[i].Rule = n.IptablesRule
				if r.NAT[i].Rule == "" {
					r.NAT[i].Rule = n.Rule
				}
				r.NAT[i].By = "rule in " + n.Table + "/" + n.Chain
				settled = true
			}
		}
	}
	return settled
}

// hookName maps nftables' hook names to the iptables ones pktdrop uses.
func hookName(h string) string {
	switch h {
	case "prerouting":
		return "PREROUTING"
	case "input":
		return "INPUT"
	case "forward":
		return "FORWARD"
	case "output":
		return "OUTPUT"
	case "postrouting":
		return "POSTROUTING"
	}
	return h
}

func key(netns uint32, t nftrace.Tuple) string {
	proto := report.Proto(t.Proto, map[string]uint8{"ip": 4, "ip6": 6}[t.Family])
	return keyStrings(netns, proto, t.Src.String(), t.Dst.String(), t.Sport, t.Dport, t.ICMPID, t.ICMPSeq)
}

func keyStrings(netns uint32, proto, src, dst string, sport, dport, id, seq uint16) string {
	if proto == "icmp" || proto == "icmp6" {
		sport, dport = id, seq
	}
	return fmt.Sprintf("%d|%s|%s|%s|%d|%d", netns, proto, src, dst, sport, dport)
}

// Close removes the trace tables.
func (a *Attributor) Close() error {
	err := a.closeTracers()
	a.closing.Do(func() { close(a.done) })
	return err
}

func (a *Attributor) closeTracers() error {
	a.trMu.Lock()
	defer a.trMu.Unlock()
	var errs []error
	for _, tr := range a.trs {
		errs = append(errs, tr.Close())
	}
	a.trs = nil
	clear(a.byIno)
	return errors.Join(errs...)
}
