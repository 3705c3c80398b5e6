package metrics

import (
	"bufio"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pktdrop/pktdrop/internal/report"
)

// pods is a fake pod table standing in for the CRI (issue 12): netns
// inode -> namespace/pod, and which of them still exist.
type pods struct {
	mu    sync.Mutex
	names map[uint32][2]string
	gone  map[uint32]bool
}

func (p *pods) of(r *report.Report) (string, string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := p.names[r.Netns]
	return n[0], n[1]
}

func (p *pods) alive(ino uint32) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return !p.gone[ino]
}

// TestChurn: pods come and go faster than their series expire. The
// exported series never exceed the cap, what does not fit is counted
// under pod="_other", and once the pods are gone for the TTL their series
// are removed, while the node's own series (no pod) stay.
func TestChurn(t *testing.T) {
	const maxSeries, ttl = 20, 300 * time.Millisecond
	p := &pods{names: map[uint32][2]string{}, gone: map[uint32]bool{}}
	a, err := Listen(Options{Listen: "127.0.0.1:0", MaxSeries: maxSeries, SeriesTTL: ttl, Pods: p.of})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	a.Ready(State{Alive: p.alive})
	node := &report.Report{Kind: "drop", Reason: "NO_SOCKET", Cause: "no_socket", Netns: 1}
	a.Observe(node)
	peak, overflow := 0, 0.0
	for i := range 200 {
		ino := uint32(1000 + i)
		p.mu.Lock()
		p.names[ino] = [2]string{"ns" + strconv.Itoa(i%7), "pod-" + strconv.Itoa(i)}
		p.mu.Unlock()
		for range 3 {
			a.Observe(&report.Report{Kind: "drop", Reason: "NETFILTER_DROP", Cause: "netfilter", Hook: "FORWARD", Netns: ino})
		}
		p.mu.Lock()
		p.gone[ino] = true
		p.mu.Unlock()
		if i%20 == 0 {
			m := scrape(t, a)
			peak = max(peak, int(m["pktdrop_drop_series"]))
			if n := countSeries(m); n != int(m["pktdrop_drop_series"]) {
				t.Errorf("exposition has %d drop series, pktdrop_drop_series says %v", n, m["pktdrop_drop_series"])
			}
			overflow = m["pktdrop_drop_series_overflow_total"]
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("series peak %d (cap %d), overflow %v", peak, maxSeries, overflow)
	if peak > maxSeries {
		t.Errorf("%d series, over the cap of %d", peak, maxSeries)
	}
	if overflow == 0 {
		t.Error("200 pods in ~1.5 s with a TTL of 300 ms and a cap of 20 never overflowed")
	}
	m := scrape(t, a)
	// Wait out the TTL: only the node's series stays.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && a.drops.Len() > 1 {
		time.Sleep(50 * time.Millisecond)
	}
	m = scrape(t, a)
	if n := countSeries(m); n != 1 || m[`pktdrop_drops_total{cause="no_socket",hook="",namespace="",pod="",reason="NO_SOCKET"}`] != 1 {
		t.Errorf("after the TTL: %d series, want only the node's NO_SOCKET one: %v", n, m)
	}
	if m["pktdrop_drop_series_expired_total"] == 0 {
		t.Error("nothing expired")
	}
}

// TestLiveSeriesStay: an idle series of a namespace that still exists is
// kept (a pod that stopped dropping keeps its count).
func TestLiveSeriesStay(t *testing.T) {
	p := &pods{names: map[uint32][2]string{7: {"default", "web"}}, gone: map[uint32]bool{}}
	d := newDrops(Options{MaxSeries: 10, SeriesTTL: time.Millisecond, Pods: p.of}, time.Now)
	d.setAlive(p.alive)
	d.add(&report.Report{Kind: "drop", Reason: "NETFILTER_DROP", Netns: 7})
	time.Sleep(5 * time.Millisecond)
	if n := d.Expire(); n != 0 || d.Len() != 1 {
		t.Fatalf("expired %d of a live pod's series", n)
	}
	p.gone[7] = true
	if n := d.Expire(); n != 1 || d.Len() != 0 {
		t.Fatalf("expired %d of a gone pod's series, want 1", n)
	}
}

// TestCapKeepsCounts: past the cap drops are counted under "_other",
// never lost.
func TestCapKeepsCounts(t *testing.T) {
	p := &pods{names: map[uint32][2]string{}, gone: map[uint32]bool{}}
	d := newDrops(Options{MaxSeries: 20, SeriesTTL: time.Hour, Pods: p.of}, time.Now)
	for i := range 200 {
		p.names[uint32(i)] = [2]string{"default", "pod-" + strconv.Itoa(i)}
		for range 3 {
			d.add(&report.Report{Kind: "drop", Reason: "NETFILTER_DROP", Hook: "FORWARD", Netns: uint32(i)})
		}
	}
	var total float64
	for _, s := range d.series {
		total += s.n
	}
	if d.Len() != 15 || total != 600 {
		t.Errorf("%d series holding %v drops, want 15 (14 pods and _other) holding 600", d.Len(), total)
	}
	other := d.series[key{reason: "NETFILTER_DROP", hook: "FORWARD", namespace: Other, pod: Other}]
	if other == nil || other.n != 600-14*3 {
		t.Errorf("_other series %+v, want %d drops", other, 600-14*3)
	}
}

// TestCapOfOne: with one series everything is counted in the catch-all.
func TestCapOfOne(t *testing.T) {
	d := newDrops(Options{MaxSeries: 1, SeriesTTL: time.Minute, Labels: []string{"iface"}}, time.Now)
	for i := range 5 {
		d.add(&report.Report{Kind: "drop", Reason: fmt.Sprint("R", i), Iface: "eth0"})
	}
	if d.Len() != 1 {
		t.Fatalf("%d series with a cap of 1", d.Len())
	}
	all := key{reason: Other, cause: Other, hook: Other, namespace: Other, pod: Other, iface: Other}
	if s := d.series[all]; s == nil || s.n != 5 {
		t.Fatalf("catch-all series %+v, want 5 drops", s)
	}
}

// scrape reads the agent's /metrics over HTTP into name{labels} -> value.
func scrape(t *testing.T, a *Agent) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + a.Addr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	m := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		l := sc.Text()
		if strings.HasPrefix(l, "#") || l == "" {
			continue
		}
		i := strings.LastIndexByte(l, ' ')
		v, err := strconv.ParseFloat(l[i+1:], 64)
		if err != nil {
			t.Fatalf("bad line %q", l)
		}
		m[l[:i]] = v
	}
	return m
}

func countSeries(m map[string]float64) int {
	n := 0
	for k := range m {
		if strings.HasPrefix(k, "pktdrop_drops_total{") {
			n++
		}
	}
	return n
}
