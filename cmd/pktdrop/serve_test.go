package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pktdrop/pktdrop/internal/privtest"
	"github.com/pktdrop/pktdrop/internal/testnet"
)

// TestServePrometheus: a real Prometheus scrapes `pktdrop serve` and
// PromQL sees exactly the drops made in the scenario's router, none for a
// healthy flow, and an exposition promtool accepts.
func TestServePrometheus(t *testing.T) {
	requireRoot(t)
	privtest.RequireCmd(t, "prometheus")
	privtest.RequireCmd(t, "promtool")
	t.Parallel()
	s := buildScenario(t, func(tb testing.TB) (*testnet.Scenario, error) { return testnet.ForwardPolicyDrop(tb), nil })
	e := s.Expect
	addr := freeAddr(t)
	p := start(t, "serve", "--listen", addr, "--netns", e.Netns, "--proto", "icmp")
	if code, body := get(t, "http://"+addr+"/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz after ready: %d %s", code, body)
	}
	prom := startPrometheus(t, addr)
	prom.waitUp(t)

	// Healthy: the client pings the router (INPUT and OUTPUT there, no
	// FORWARD). Not the other way round: the raw socket's echo replies
	// are freed as NO_SOCKET by the ping socket lookup, a benign free
	// until reports say so (issue 11).
	routerAddr, _, _ := strings.Cut(strings.Fields(s.Router.MustRun("ip", "-4", "-o", "addr", "show", "dev", e.Iface))[3], "/")
	if ok, err := s.Client.Ping(routerAddr, 3, 2*time.Second); err != nil || !ok {
		t.Fatalf("healthy ping from the router: ok=%v err=%v", ok, err)
	}
	prom.waitScrapes(t, 2)
	if v := prom.value(t, `sum(pktdrop_drops_total)`); v != 0 {
		t.Errorf("a healthy flow added drops: sum(pktdrop_drops_total) = %v", v)
	}

	const n = 5
	if ok, err := s.Client.Ping(e.Dst, n, 2*time.Second); err != nil || ok {
		t.Fatalf("ping to be dropped: ok=%v err=%v", ok, err)
	}
	reason := ""
	if kernelHasReasons(t) {
		reason = e.Reason
	}
	q := fmt.Sprintf(`sum(pktdrop_drops_total{reason=%q, hook=%q, cause=%q, namespace="", pod=""})`, reason, e.Hook, e.Cause)
	got := prom.waitValue(t, q, n)
	t.Logf("PromQL %s = %v", q, got)
	if got != n {
		t.Errorf("%s = %v, want %d", q, got, n)
	}
	if v := prom.value(t, `sum(pktdrop_drops_total)`); v != n {
		t.Errorf("sum(pktdrop_drops_total) = %v, want %d", v, n)
	}
	if v := prom.value(t, `pktdrop_probe_attached{point="kfree_skb"}`); v != 1 {
		t.Errorf(`pktdrop_probe_attached{point="kfree_skb"} = %v, want 1`, v)
	}
	if v := prom.value(t, `sum(pktdrop_events_lost_total)`); v != 0 {
		t.Errorf("pktdrop_events_lost_total = %v, want 0", v)
	}

	_, body := get(t, "http://"+addr+"/metrics")
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, "pktdrop_drops_total{") {
			t.Logf("exposition: %s", l)
		}
	}
	check := exec.Command("promtool", "check", "metrics")
	check.Stdin = strings.NewReader(body)
	if out, err := check.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
	for _, bad := range []string{e.Src, e.Dst, e.Iface, strconv.FormatUint(uint64(s.Router.Inode()), 10)} {
		if strings.Contains(body, bad) {
			t.Errorf("the exposition holds %q (addresses, devices and netns inodes must never be labels)", bad)
		}
	}
	if res := p.stop(syscall.SIGTERM); res.Code != 0 || res.Stdout != "" {
		t.Errorf("serve: exit %d, stdout %q (want 0 and nothing without --log-drops); stderr:\n%s", res.Code, res.Stdout, res.Stderr)
	}
}

// TestServeBadInput: a busy or bad listen address and a cap of 0 are one
// line and exit 2, before any probe loads.
func TestServeBadInput(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for _, c := range []struct {
		args  []string
		names string
	}{
		{[]string{"--listen", ln.Addr().String()}, "address already in use"},
		{[]string{"--listen", "nope"}, "--listen"},
		{[]string{"--listen", "127.0.0.1:99999"}, "--listen"},
		{[]string{"--max-series", "0"}, "--max-series"},
		{[]string{"--series-ttl", "0s"}, "--series-ttl"},
		{[]string{"--label", "src"}, "--label"},
		{[]string{"-o", "text"}, "--output"},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			res := run(t, append([]string{"serve"}, c.args...)...)
			checkUsageError(t, res, c.names)
		})
	}
}

// freeAddr is a loopback address with a port nothing listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func get(t *testing.T, u string) (int, string) {
	t.Helper()
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	return resp.StatusCode, string(b)
}

// promTimeout bounds each wait for Prometheus (start, scrapes, counts):
// guests under software emulation (vmtest.sh) are much slower.
func promTimeout() time.Duration {
	if os.Getenv("PKTDROP_VM") != "" {
		return 90 * time.Second
	}
	return 20 * time.Second
}

// prometheus is a Prometheus server of the test's own, scraping one
// target every second.
type prometheus struct {
	addr string
	cmd  *exec.Cmd
}

func startPrometheus(t *testing.T, target string) *prometheus {
	t.Helper()
	dir := t.TempDir()
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 900ms
scrape_configs:
- job_name: pktdrop
  static_configs:
  - targets: [%q]
`, target)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	p := &prometheus{addr: freeAddr(t)}
	p.cmd = exec.Command("prometheus", "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+p.addr)
	log, err := os.Create(filepath.Join(dir, "prometheus.log"))
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stdout, p.cmd.Stderr = log, log
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start prometheus: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			b, _ := os.ReadFile(log.Name())
			t.Logf("prometheus log:\n%s", b)
		}
		log.Close()
	})
	return p
}

// query runs an instant PromQL query; ok is false for an empty result.
func (p *prometheus) query(t *testing.T, q string) (v float64, ok bool) {
	t.Helper()
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + p.addr + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		return 0, false // not up yet
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusServiceUnavailable {
		return 0, false // starting: its API answers once the TSDB is open
	}
	var r struct {
		Status string
		Error  string
		Data   struct {
			Result []struct {
				Value [2]any
			}
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatalf("prometheus answer to %s: %v", q, err)
	}
	if r.Status != "success" {
		t.Fatalf("prometheus: %s: %s", q, r.Error)
	}
	if len(r.Data.Result) == 0 {
		return 0, false
	}
	s, _ := r.Data.Result[0].Value[1].(string)
	v, err = strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatalf("prometheus value %q: %v", s, err)
	}
	return v, true
}

// value is query with an empty result read as 0 (no series: no drops).
func (p *prometheus) value(t *testing.T, q string) float64 {
	t.Helper()
	v, _ := p.query(t, q)
	return v
}

// waitValue polls q until it reaches want or promTimeout passes; it
// returns the last value.
func (p *prometheus) waitValue(t *testing.T, q string, want float64) float64 {
	t.Helper()
	deadline := time.Now().Add(promTimeout())
	for {
		v := p.value(t, q)
		if v >= want || time.Now().After(deadline) {
			return v
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func (p *prometheus) waitUp(t *testing.T) {
	t.Helper()
	if v := p.waitValue(t, `up{job="pktdrop"}`, 1); v != 1 {
		t.Fatalf("prometheus never scraped pktdrop (up = %v)", v)
	}
}

// waitScrapes waits until n more scrapes have happened.
func (p *prometheus) waitScrapes(t *testing.T, n int) {
	t.Helper()
	q := `count_over_time(up{job="pktdrop"}[1h])`
	base := p.value(t, q)
	if v := p.waitValue(t, q, base+float64(n)); v < base+float64(n) {
		t.Fatalf("prometheus scraped %v times in %v, want %d", v-base, promTimeout(), n)
	}
}

// TestServeChurn: namespaces are created, drop a datagram each on a
// device of their own (--label iface) and are deleted, faster than the
// TTL. Prometheus never sees more drop series than the cap, and once the
// namespaces are gone for the TTL their series expire.
func TestServeChurn(t *testing.T) {
	requireRoot(t)
	privtest.RequireCmd(t, "prometheus")
	t.Parallel()
	const maxSeries, rounds, port = 8, 24, 31777
	addr := freeAddr(t)
	// --no-path: no netfilter links, so this runs beside other tests.
	p := start(t, "serve", "--listen", addr, "--no-path", "--proto", "udp", "--dport", strconv.Itoa(port),
		"--label", "iface", "--max-series", strconv.Itoa(maxSeries), "--series-ttl", "3s", "--log-drops")
	prom := startPrometheus(t, addr)
	prom.waitUp(t)
	peak := 0.0
	for i := range rounds {
		n := testnet.New(t)
		a, b := n.NS("a"), n.NS("b")
		n.Link(a, "cha", "10.233.0.1/24", b, fmt.Sprintf("chb%d", i), "10.233.0.2/24")
		if err := a.UDP("10.233.0.2", port, []byte("churn")); err != nil {
			t.Fatal(err)
		}
		// The drop is reported (--log-drops) before its namespace goes,
		// while its device can still be named.
		p.waitReports(i+1, reportTimeout)
		if err := n.Close(); err != nil {
			t.Fatal(err)
		}
		peak = max(peak, metric(t, addr, "pktdrop_drop_series"))
	}
	rs := p.reports()
	if len(rs) != rounds {
		t.Errorf("serve --log-drops wrote %d reports, want %d", len(rs), rounds)
	}
	for i, r := range rs {
		if want := fmt.Sprintf("chb%d", i); r.Iface != want {
			t.Errorf("report %d: iface %q, want %q", i, r.Iface, want)
		}
	}
	prom.waitScrapes(t, 1)
	promPeak := prom.value(t, `max_over_time(pktdrop_drop_series[10m])`)
	t.Logf("drop series peak: %v scraped directly, %v in Prometheus (cap %d); overflow %v", peak, promPeak, maxSeries,
		metric(t, addr, "pktdrop_drop_series_overflow_total"))
	if peak > maxSeries || promPeak > maxSeries {
		t.Errorf("drop series peaked at %v (Prometheus: %v), over the cap of %d", peak, promPeak, maxSeries)
	}
	if promPeak < 2 {
		t.Errorf("Prometheus saw at most %v drop series: the churn made no per-device series", promPeak)
	}
	if v := prom.waitValue(t, `pktdrop_drop_series_expired_total`, 1); v < 1 {
		t.Errorf("no series expired")
	}
	deadline := time.Now().Add(20 * time.Second)
	for metric(t, addr, "pktdrop_drop_series") > 0 && time.Now().Before(deadline) {
		time.Sleep(250 * time.Millisecond)
	}
	if v := metric(t, addr, "pktdrop_drop_series"); v != 0 {
		t.Errorf("%v drop series left after every namespace was gone for the TTL", v)
	}
	prom.waitScrapes(t, 1)
	if v := prom.value(t, `pktdrop_drop_series`); v != 0 {
		t.Errorf("Prometheus's last scrape has %v drop series, want 0", v)
	}
}

// metric reads one unlabelled metric from the agent.
func metric(t *testing.T, addr, name string) float64 {
	t.Helper()
	_, body := get(t, "http://"+addr+"/metrics")
	for _, l := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", l, err)
			}
			return f
		}
	}
	t.Fatalf("no %s in the exposition", name)
	return 0
}

// TestServeForgetsGoneNetns: the netfilter links of a namespace that is
// deleted are closed at the next rescan, so an agent under pod churn does
// not pile up file descriptors (on kernels that probe nf_hook_slow there
// must be no link at all).
func TestServeForgetsGoneNetns(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	n := testnet.New(t)
	ns := n.NS("gone")
	ns.MustRun("nft", "add", "table", "inet", "t")
	ns.MustRun("nft", "add", "chain", "inet", "t", "c0", "{ type filter hook forward priority 0; }")
	addr := freeAddr(t)
	p := start(t, "serve", "--listen", addr, "--netns", ns.Path())
	if !nfLinksGiveHook() {
		// nf_hook_slow is probed here: there must be no link to close.
		if v := metric(t, addr, "pktdrop_netns_netfilter_links"); v != 0 {
			t.Errorf("pktdrop_netns_netfilter_links = %v on a kernel where nf_hook_slow is probed, want 0", v)
		}
		return
	}
	links := func() int {
		ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", p.cmd.Process.Pid))
		c := 0
		for _, e := range ents {
			if l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", p.cmd.Process.Pid, e.Name())); err == nil && l == "anon_inode:bpf_link" {
				c++
			}
		}
		return c
	}
	before := links()
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	after := links()
	for after >= before && time.Now().Before(deadline) {
		time.Sleep(250 * time.Millisecond)
		after = links()
	}
	t.Logf("bpf links: %d with the namespace, %d after it was deleted", before, after)
	if after >= before {
		t.Errorf("the deleted namespace's netfilter links stay open: %d links before, %d after", before, after)
	}
}
