package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// The cost phase says where the time goes, so that a missed target comes
// with its reason: kernel run time of pktdrop's BPF programs (per program,
// from BPF_ENABLE_STATS) and pktdrop's own CPU time per event. Statistics
// add two clock reads per program run, so they are on only here, never
// while throughput or event rates are measured.

type progStat struct {
	runtime time.Duration
	runs    uint64
}

// ProgStats reads run time and count of every BPF program pktdrop holds,
// summed by program name.
func (p *Proc) ProgStats() (map[string]progStat, error) {
	dir := fmt.Sprintf("/proc/%d/fdinfo", p.Pid())
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	seen := map[uint64]bool{}
	out := map[string]progStat{}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		var id uint64
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "prog_id:"); ok {
				id, _ = strconv.ParseUint(strings.TrimSpace(v), 10, 32)
			}
		}
		if id == 0 || seen[id] {
			continue
		}
		seen[id] = true
		prog, err := ebpf.NewProgramFromID(ebpf.ProgramID(id))
		if err != nil {
			continue
		}
		info, ierr := prog.Info()
		st, serr := prog.Stats()
		prog.Close()
		if ierr != nil || serr != nil {
			continue
		}
		s := out[info.Name]
		s.runtime += st.Runtime
		s.runs += st.RunCount
		out[info.Name] = s
	}
	return out, nil
}

// costLine renders the difference of two ProgStats: total ns per unit
// and the programs that take most of it.
func costLine(a, b map[string]progStat, units uint64) (string, time.Duration) {
	type row struct {
		name string
		d    progStat
	}
	var rows []row
	var total time.Duration
	nf := progStat{}
	for name, s := range b {
		d := progStat{s.runtime - a[name].runtime, s.runs - a[name].runs}
		if d.runs == 0 {
			continue
		}
		total += d.runtime
		if strings.HasPrefix(name, "on_nf_") {
			nf.runtime += d.runtime
			nf.runs += d.runs
			continue
		}
		rows = append(rows, row{name, d})
	}
	if nf.runs > 0 {
		rows = append(rows, row{"netfilter links", nf})
	}
	slices.SortFunc(rows, func(x, y row) int { return int(y.d.runtime - x.d.runtime) })
	if units == 0 {
		units = 1
	}
	var parts []string
	for _, r := range rows {
		parts = append(parts, fmt.Sprintf("%s %.0f ns (%.1f runs × %.0f ns)", r.name,
			float64(r.d.runtime.Nanoseconds())/float64(units), float64(r.d.runs)/float64(units),
			float64(r.d.runtime.Nanoseconds())/float64(r.d.runs)))
	}
	return strings.Join(parts, ", "), total
}

func (b *Bench) cost(ctx context.Context) error {
	stats, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
	if err != nil {
		b.printf("cost: BPF run time statistics unavailable: %v\n", err)
		return nil
	}
	defer stats.Close()

	// A followed drop, at a rate pktdrop keeps up with.
	st, err := NewStorm(b.topo.A, 1)
	if err != nil {
		return err
	}
	defer st.Close()
	p, err := StartPktdrop(b.cfg.Pktdrop, b.dir, stormArgs()...)
	if err != nil {
		return err
	}
	s0, _ := p.ProgStats()
	c0, _ := p.CPU()
	k0, _ := b.topo.Dropped()
	st.Run(ctx, 50000, 2*time.Second)
	p.WaitIdle(5 * time.Second)
	s1, _ := p.ProgStats()
	c1, _ := p.CPU()
	k1, _ := b.topo.Dropped()
	sum, _, err := p.Stop()
	if err != nil {
		return err
	}
	drops := k1 - k0
	line, total := costLine(s0, s1, drops)
	b.printf("cost per followed drop (%d drops at 50000/s): BPF %.0f ns: %s\n", drops,
		float64(total.Nanoseconds())/float64(max(drops, 1)), line)
	b.printf("cost per event in pktdrop (decode, enrich, JSON to /dev/null, %d events): %.0f ns CPU\n", sum.Drops,
		float64((c1-c0).Nanoseconds())/float64(max(sum.Drops, 1)))

	// Packets pktdrop does not follow: the TCP flow under the no-match
	// filter, as flags and as an expression. Per packet is per
	// netif_receive_skb run (each segment and each ACK is received once).
	for _, nm := range []struct {
		what string
		args []string
	}{{"flags", nomatchArgs()}, {"expression", exprNomatchArgs()}} {
		p, err = StartPktdrop(b.cfg.Pktdrop, b.dir, nm.args...)
		if err != nil {
			return err
		}
		s0, _ = p.ProgStats()
		t0 := time.Now()
		rate, err := TCPFlow(ctx, b.topo.A, b.sink, 0, time.Second)
		el := time.Since(t0)
		s1, _ = p.ProgStats()
		if _, _, serr := p.Stop(); err == nil {
			err = serr
		}
		if err != nil {
			return err
		}
		pkts := s1["tpb_netif_receive_skb"].runs - s0["tpb_netif_receive_skb"].runs
		line, total = costLine(s0, s1, pkts)
		b.printf("cost per unfollowed packet, filter as %s (TCP at %.2f Gbit/s with stats on, %d packets): BPF %.0f ns, %.1f%% of one CPU: %s\n",
			nm.what, gbit(rate), pkts, float64(total.Nanoseconds())/float64(max(pkts, 1)), 100*total.Seconds()/el.Seconds(), line)
	}

	// The same flow followed by `trace`.
	p, err = StartPktdrop(b.cfg.Pktdrop, b.dir, matchArgs()...)
	if err != nil {
		return err
	}
	s0, _ = p.ProgStats()
	c0, _ = p.CPU()
	t0 := time.Now()
	rate, err := TCPFlow(ctx, b.topo.A, b.sink, 0, time.Second)
	el := time.Since(t0)
	s1, _ = p.ProgStats()
	p.WaitIdle(3 * time.Second)
	c1, _ = p.CPU()
	sum, _, serr := p.Stop()
	if err == nil {
		err = serr
	}
	if err != nil {
		return err
	}
	pkts := s1["tpb_netif_receive_skb"].runs - s0["tpb_netif_receive_skb"].runs
	line, total = costLine(s0, s1, pkts)
	b.printf("cost per followed packet (trace, TCP at %.2f Gbit/s with stats on, %d packets, %d traced): BPF %.0f ns, %.1f%% of one CPU, pktdrop %.1f%% of one CPU: %s\n",
		gbit(rate), pkts, sum.Traced, float64(total.Nanoseconds())/float64(max(pkts, 1)), 100*total.Seconds()/el.Seconds(),
		100*(c1-c0).Seconds()/el.Seconds(), line)
	return nil
}
