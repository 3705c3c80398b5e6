package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/pktdrop/pktdrop/internal/healthy"
	"github.com/pktdrop/pktdrop/internal/report"
)

// healthyPort is the first of the ports the false-drops traffic uses.
const healthyPort = 7100

// falseDrops runs healthy traffic (internal/healthy: pings of both
// families, short TCP connections, a keep-alive exchange, UDP
// request/response) between the namespaces twice, each time with one
// `pktdrop watch` per namespace filtered to nothing but it: by default
// every report is a false drop; with --all the benign frees are counted.
func (b *Bench) falseDrops(ctx context.Context, r *result) error {
	for _, all := range []bool{false, true} {
		drops, benign, out, st, err := b.healthyRun(ctx, all)
		if err != nil {
			return err
		}
		for _, f := range st.Failed {
			r.notes = append(r.notes, "healthy traffic failed itself: "+f)
		}
		if !all {
			r.falseDrops = drops
			b.printf("healthy traffic %.0fs (%s): %d reported as drops\n", b.cfg.Healthy.Seconds(), st, drops)
			for i, l := range strings.SplitAfter(out, "\n") {
				if i == 20 {
					b.printf("  ...\n")
					break
				}
				if l != "" {
					b.printf("  false drop: %s", l)
				}
			}
			continue
		}
		r.benign = benign
		b.printf("healthy traffic with --all %.0fs (%s): %d benign frees, %d drops; one of each kind:\n",
			b.cfg.Healthy.Seconds(), st, benign, drops)
		for _, l := range examples(out, 6) {
			b.printf("  %s\n", l)
		}
	}
	return nil
}

// examples renders up to n benign reports (JSON Lines), one per reason
// given, as one line each.
func examples(out string, n int) []string {
	var ex []string
	seen := map[string]bool{}
	for _, l := range strings.Split(out, "\n") {
		var r struct {
			Benign              bool
			BenignWhy           string `json:"benign_why"`
			Proto, Src, Dst     string
			Sport, Dport        uint16
			Location, NetnsName string
			TCPFlags            string `json:"tcp_flags"`
		}
		if json.Unmarshal([]byte(l), &r) != nil || !r.Benign {
			continue
		}
		key := strings.Join(strings.Fields(r.BenignWhy)[:min(5, len(strings.Fields(r.BenignWhy)))], " ")
		if seen[key] || len(ex) == n {
			continue
		}
		seen[key] = true
		ex = append(ex, fmt.Sprintf("BENIGN %s %s > %s [%s] at %s: %s", r.Proto, report.Tuple(r.Src, r.Sport),
			report.Tuple(r.Dst, r.Dport), r.TCPFlags, r.Location, r.BenignWhy))
	}
	return ex
}

// lockedBuf collects a pktdrop's stdout.
type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (b *Bench) healthyRun(ctx context.Context, all bool) (drops, benign uint64, out string, st *healthy.Stats, err error) {
	var procs []*Proc
	var bufs []*lockedBuf
	defer func() {
		for _, p := range procs {
			p.Kill()
		}
	}()
	for _, ns := range []string{b.topo.A, b.topo.B} {
		args := []string{"watch", "-o", "json", "--netns", ns}
		if all {
			args = append(args, "--all")
		}
		buf := &lockedBuf{}
		p, err := StartPktdropOut(b.cfg.Pktdrop, b.dir, buf, args...)
		if err != nil {
			return 0, 0, "", nil, err
		}
		procs, bufs = append(procs, p), append(bufs, buf)
	}
	st, err = healthy.Run(ctx, healthy.Config{Client: b.topo.A, Server: b.topo.B, Server4: addrB, Server6: addrB6,
		Port: healthyPort, Duration: b.cfg.Healthy})
	if err != nil {
		return 0, 0, "", nil, err
	}
	time.Sleep(time.Second) // the last frees (TIME_WAIT, closes) reach the output
	for i, p := range procs {
		s, _, err := p.Stop()
		if err != nil {
			return 0, 0, "", nil, fmt.Errorf("pktdrop in %s: %w", []string{b.topo.A, b.topo.B}[i], err)
		}
		drops += s.Drops
		benign += s.Benign
	}
	procs = nil
	for _, buf := range bufs {
		buf.mu.Lock()
		out += buf.b.String()
		buf.mu.Unlock()
	}
	return drops, benign, out, st, ctx.Err()
}
