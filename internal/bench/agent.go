package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// agentResult is the cost of `pktdrop serve` left running, as a node
// agent: its CPU per million packets the node handles and its memory,
// with a healthy flow and with a drop storm, and its RSS across pods
// (namespaces) coming and going.
type agentResult struct {
	flowMsPerMpkt, stormMsPerMpkt float64
	flowCPUPct                    float64
	flowRSS, stormRSS, peak       float64 // MiB
	churnRSS0, churnRSS1          float64 // MiB, before and after the churn
	churned                       int
	stormCounted, stormKernel     uint64
}

// agentArgs is the agent as a DaemonSet runs it: no filter, metrics only.
func agentArgs(addr string) []string { return []string{"serve", "--listen", addr} }

func (b *Bench) agent(ctx context.Context, r *result) error {
	addr, err := freeLoopback()
	if err != nil {
		return err
	}
	p, err := StartPktdrop(b.cfg.Pktdrop, b.dir, agentArgs(addr)...)
	if err != nil {
		return err
	}
	defer func() {
		if p != nil {
			p.Kill()
		}
	}()
	var a agentResult
	time.Sleep(time.Second)
	start, _ := p.HWM() // start-up, where the lifetime peak was before

	// A healthy TCP flow: every packet passes the probes, none is dropped.
	_ = p.ResetHWM()
	pk0, err := b.topo.packets()
	if err != nil {
		return err
	}
	c0, _ := p.CPU()
	t0 := time.Now()
	if _, err := TCPFlow(ctx, b.topo.A, b.sink, b.cfg.FlowWarm, 3*time.Second); err != nil {
		return err
	}
	el := time.Since(t0)
	c1, _ := p.CPU()
	pk1, err := b.topo.packets()
	if err != nil {
		return err
	}
	hwm, _ := p.HWM()
	a.flowRSS = mib(hwm)
	a.flowCPUPct = 100 * float64(c1-c0) / float64(el)
	a.flowMsPerMpkt = ms(c1-c0) / (float64(pk1-pk0) / 1e6)
	b.printf("agent, healthy TCP flow %.1fs: %d packets, agent CPU %.0f ms (%.2f%% of a CPU, %.1f ms per million packets), peak RSS %.1f MiB\n",
		el.Seconds(), pk1-pk0, ms(c1-c0), a.flowCPUPct, a.flowMsPerMpkt, a.flowRSS)

	// A drop storm at the paced rate: every packet is a drop to count.
	if !b.dropInstalled {
		if err := b.topo.InstallDrop(); err != nil {
			return err
		}
		b.dropInstalled = true
	}
	st, err := NewStorm(b.topo.A, b.cfg.Senders)
	if err != nil {
		return err
	}
	_ = p.ResetHWM()
	k0, _ := b.topo.Dropped()
	c0, _ = p.CPU()
	m0, _ := agentDrops(addr)
	res := st.Run(ctx, b.cfg.Rate, 5*time.Second)
	st.Close()
	p.WaitIdle(10 * time.Second)
	c1, _ = p.CPU()
	k1, _ := b.topo.Dropped()
	m1, _ := agentDrops(addr)
	hwm, _ = p.HWM()
	a.stormRSS = mib(hwm)
	a.stormKernel, a.stormCounted = k1-k0, uint64(m1-m0)
	a.stormMsPerMpkt = ms(c1-c0) / (float64(res.Sent) / 1e6)
	b.printf("agent, drop storm at %.0f/s %.1fs: %d sent, kernel dropped %d, agent counted %d, agent CPU %.0f ms (%.1f ms per million packets), peak RSS %.1f MiB\n",
		b.cfg.Rate, res.Elapsed.Seconds(), res.Sent, a.stormKernel, a.stormCounted, ms(c1-c0), a.stormMsPerMpkt, a.stormRSS)
	if a.stormCounted < a.stormKernel {
		r.notes = append(r.notes, fmt.Sprintf("agent storm: counted %d of %d drops (see pktdrop_events_lost_total)", a.stormCounted, a.stormKernel))
	}

	// Pods churning: namespaces made, each dropping a datagram, deleted.
	rss, _ := p.RSS()
	a.churnRSS0 = mib(rss)
	if a.churned, err = churn(ctx, 20*time.Second); err != nil {
		return err
	}
	time.Sleep(3 * time.Second) // the agent's rescans see them gone
	rss, _ = p.RSS()
	a.churnRSS1 = mib(rss)
	b.printf("agent, %d namespaces created, dropping and deleted in 20s: RSS %.1f -> %.1f MiB\n", a.churned, a.churnRSS0, a.churnRSS1)

	life, _ := p.HWM() // since the last reset
	b.printf("agent peak RSS: %.1f MiB at start-up, %.1f MiB over the runs\n", mib(start), max(a.flowRSS, a.stormRSS, mib(life)))
	_, _, err = p.Stop()
	p = nil
	if err != nil {
		return err
	}
	a.peak = max(mib(start), a.flowRSS, a.stormRSS, mib(life))
	r.agent = &a
	return nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func freeLoopback() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// agentDrops sums pktdrop_drops_total from the agent's /metrics.
func agentDrops(addr string) (float64, error) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	var sum float64
	for _, l := range strings.Split(string(body), "\n") {
		if !strings.HasPrefix(l, "pktdrop_drops_total{") {
			continue
		}
		v, err := strconv.ParseFloat(l[strings.LastIndexByte(l, ' ')+1:], 64)
		if err == nil {
			sum += v
		}
	}
	return sum, nil
}

// packets is how many packets B's end of the veth received and sent.
func (t *Topo) packets() (uint64, error) {
	out, err := run("ip", "-n", t.B, "-s", "-j", "link", "show", "dev", "pdb1")
	if err != nil {
		return 0, err
	}
	var links []struct {
		Stats64 struct {
			RX, TX struct{ Packets uint64 }
		} `json:"stats64"`
	}
	if err := json.Unmarshal([]byte(out), &links); err != nil || len(links) != 1 {
		return 0, fmt.Errorf("ip -s -j link: %v: %s", err, out)
	}
	return links[0].Stats64.RX.Packets + links[0].Stats64.TX.Packets, nil
}

// churn creates namespaces one after another for d; each sends itself a
// datagram nothing listens for (a drop) and is deleted.
func churn(ctx context.Context, d time.Duration) (int, error) {
	var rb [3]byte
	if _, err := rand.Read(rb[:]); err != nil {
		return 0, err
	}
	prefix := "pdbench-churn-" + hex.EncodeToString(rb[:])
	n := 0
	for end := time.Now().Add(d); time.Now().Before(end) && ctx.Err() == nil; n++ {
		ns := prefix + "-" + strconv.Itoa(n)
		if _, err := run("ip", "netns", "add", ns); err != nil {
			return n, err
		}
		err := func() error {
			if _, err := run("ip", "-n", ns, "link", "set", "lo", "up"); err != nil {
				return err
			}
			return In(ns, func() error {
				c, err := net.Dial("udp", "127.0.0.1:9")
				if err != nil {
					return err
				}
				defer c.Close()
				_, err = c.Write([]byte("churn"))
				return err
			})
		}()
		if _, derr := run("ip", "netns", "delete", ns); err == nil {
			err = derr
		}
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
