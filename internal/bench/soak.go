package bench

import (
	"context"
	"fmt"
	"time"
)

// Soak limits. RSS may breathe with the Go heap; it must not climb. The
// first minute is warm-up (heap and ring buffer pages settling).
const (
	soakWarmup     = time.Minute
	soakRSSGrowth  = 8 << 20 // bytes the late peak may exceed the early peak by
	soakTracksMax  = 2048    // half the LRU: more means entries are not freed
	soakTracksIdle = 64      // entries left once the storm is over
)

// soak runs the paced storm for cfg.Soak with one pktdrop, sampling its
// RSS and the number of followed packets every cfg.SoakSample.
func (b *Bench) soak(ctx context.Context) error {
	if err := b.topo.InstallDrop(); err != nil {
		return err
	}
	st, err := NewStorm(b.topo.A, b.cfg.Senders)
	if err != nil {
		return err
	}
	defer st.Close()
	p, err := StartPktdrop(b.cfg.Pktdrop, b.dir, stormArgs()...)
	if err != nil {
		return err
	}
	stopped := false
	defer func() {
		if !stopped {
			p.Kill()
		}
	}()
	k0, err := b.topo.Dropped()
	if err != nil {
		return err
	}
	b.printf("soak: %v storm at %.0f drops/s, sampling every %v\n", b.cfg.Soak, b.cfg.Rate, b.cfg.SoakSample)

	stormCtx, stopStorm := context.WithCancel(ctx)
	defer stopStorm()
	done := make(chan StormResult, 1)
	go func() { done <- st.Run(stormCtx, b.cfg.Rate, b.cfg.Soak) }()

	type sample struct {
		at     time.Duration
		rss    uint64
		tracks int
	}
	var samples []sample
	start := time.Now()
	tick := time.NewTicker(b.cfg.SoakSample)
	defer tick.Stop()
	var res StormResult
loop:
	for {
		select {
		case <-ctx.Done():
			stopStorm()
			<-done
			return ctx.Err()
		case res = <-done:
			break loop
		case <-tick.C:
			rss, err := p.RSS()
			if err != nil {
				return fmt.Errorf("pktdrop gone during the soak: %w\n%s", err, p.Stderr())
			}
			n, err := p.TrackedPackets()
			if err != nil {
				return err
			}
			k, _ := b.topo.Dropped()
			s := sample{time.Since(start), rss, n}
			samples = append(samples, s)
			b.printf("soak %4.0fs: rss %.1f MiB, followed packets %d, kernel drops %d\n", s.at.Seconds(), mib(rss), n, k-k0)
		}
	}
	p.WaitIdle(10 * time.Second)
	time.Sleep(time.Second)
	idleTracks, err := p.TrackedPackets()
	if err != nil {
		return err
	}
	hwm, _ := p.HWM()
	k1, err := b.topo.Dropped()
	if err != nil {
		return err
	}
	sum, _, err := p.Stop()
	stopped = true
	if err != nil {
		return err
	}

	var early, late uint64
	maxTracks := 0
	for _, s := range samples {
		maxTracks = max(maxTracks, s.tracks)
		switch {
		case s.at < soakWarmup:
		case s.at < soakWarmup+(b.cfg.Soak-soakWarmup)/3:
			early = max(early, s.rss)
		case s.at >= b.cfg.Soak-(b.cfg.Soak-soakWarmup)/3:
			late = max(late, s.rss)
		}
	}
	kernel := k1 - k0
	lost := int64(kernel) - int64(sum.Drops)
	var fails []string
	if early > 0 && late > early+soakRSSGrowth {
		fails = append(fails, fmt.Sprintf("RSS grew: peak %.1f MiB in the last third vs %.1f MiB in the first", mib(late), mib(early)))
	}
	if maxTracks > soakTracksMax {
		fails = append(fails, fmt.Sprintf("%d packets followed at once (limit %d): entries are not being freed", maxTracks, soakTracksMax))
	}
	if idleTracks > soakTracksIdle {
		fails = append(fails, fmt.Sprintf("%d followed-packet entries left after the storm (limit %d): leaked", idleTracks, soakTracksIdle))
	}
	secs := res.Elapsed.Seconds()
	b.printf("soak: sent %.0f/s, kernel dropped %d, delivered %d, lost %d (pktdrop says %d), peak RSS %.1f MiB, RSS first third %.1f MiB, last third %.1f MiB, followed packets max %d, after %d\n",
		float64(res.Sent)/secs, kernel, sum.Drops, lost, sum.Lost, mib(hwm), mib(early), mib(late), maxTracks, idleTracks)
	for _, f := range fails {
		b.printf("soak failed: %s\n", f)
	}
	verdict := "ok"
	if len(fails) > 0 {
		verdict = "FAIL"
	}
	b.printf("soak: duration=%v rss_first_mib=%.1f rss_last_mib=%.1f rss_peak_mib=%.1f tracks_max=%d tracks_after=%d lost=%d result=%s\n",
		res.Elapsed.Round(time.Second), mib(early), mib(late), mib(hwm), maxTracks, idleTracks, lost, verdict)
	if len(fails) > 0 {
		return fmt.Errorf("soak failed")
	}
	return nil
}
