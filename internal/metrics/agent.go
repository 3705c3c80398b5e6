package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sys/unix"

	"github.com/pktdrop/pktdrop/internal/filter"
	"github.com/pktdrop/pktdrop/internal/probe"
	"github.com/pktdrop/pktdrop/internal/report"
)

// Options configures the agent's exporter.
type Options struct {
	Listen    string        // host:port of the HTTP server
	MaxSeries int           // cap on pktdrop_drops_total series
	SeriesTTL time.Duration // a gone namespace's series lasts this long after its last drop
	Labels    []string      // extra drop labels: iface, table
	Pods      PodFunc       // nil: Pod
	Node      string        // NODE_NAME, on the info metrics
	Version   string
}

// ExtraLabels lists the valid Options.Labels.
var ExtraLabels = []string{"iface", "table"}

// Check says what is wrong with o, as a usage error (exit 2).
func (o Options) Check() error {
	if o.MaxSeries < 1 {
		return &filter.UsageError{Flag: "max-series", Value: strconv.Itoa(o.MaxSeries), Msg: "want at least 1"}
	}
	if o.SeriesTTL <= 0 {
		return &filter.UsageError{Flag: "series-ttl", Value: o.SeriesTTL.String(), Msg: "want a positive duration such as 10m"}
	}
	for _, l := range o.Labels {
		if l != "iface" && l != "table" {
			return &filter.UsageError{Flag: "label", Value: l, Msg: "want iface or table"}
		}
	}
	return nil
}

// Pod is the default PodFunc: the pod the report names (internal/pods),
// empty for namespaces that belong to no pod.
func Pod(r *report.Report) (namespace, pod string) { return r.PodNS, r.Pod }

// State is what a session tells the agent once every probe is attached.
type State struct {
	Probes []probe.Status
	Lost   func() (ringbuf, decode uint64)
	Netns  func() (seen, linked int)
	Alive  func(netns uint32) bool // whether a namespace still exists
}

// Agent serves the metrics, /healthz and /readyz.
type Agent struct {
	drops  *drops
	benign prometheus.Counter
	probes *prometheus.GaugeVec
	state  atomic.Pointer[State]
	ln     net.Listener
	srv    *http.Server
	done   chan struct{}
}

// Listen checks o and binds its address, so that a bad or busy address is
// said before any probe loads.
func Listen(o Options) (*Agent, error) {
	if err := o.Check(); err != nil {
		return nil, err
	}
	if _, _, err := net.SplitHostPort(o.Listen); err != nil {
		return nil, &filter.UsageError{Flag: "listen", Value: o.Listen, Msg: "want host:port, e.g. :9750 or 127.0.0.1:9750"}
	}
	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		msg := "cannot listen there: " + oneLine(err)
		if errors.Is(err, syscall.EADDRINUSE) {
			msg = "address already in use"
		}
		return nil, &filter.UsageError{Flag: "listen", Value: o.Listen, Msg: msg}
	}
	a := &Agent{drops: newDrops(o, time.Now), ln: ln, done: make(chan struct{})}
	a.benign = prometheus.NewCounter(prometheus.CounterOpts{Name: "pktdrop_benign_frees_total",
		Help: "Packets freed through kfree_skb that are not losses (not counted in pktdrop_drops_total)."})
	a.probes = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "pktdrop_probe_attached",
		Help: "1 for each probe point attached, with its mechanism; 0 with mechanism \"none\" for a point the kernel refused."},
		[]string{"point", "mechanism"})
	reg := prometheus.NewRegistry()
	reg.MustRegister(a.drops, a.drops.overflowed, a.drops.expired, a.benign, a.probes,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "pktdrop_drop_series",
			Help: "Current pktdrop_drops_total series (at most --max-series)."},
			func() float64 { return float64(a.drops.Len()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "pktdrop_drop_series_max",
			Help: "The cap on pktdrop_drops_total series (--max-series)."},
			func() float64 { return float64(o.MaxSeries) }),
		newStateCollector(a),
		info(o),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if a.state.Load() == nil {
			http.Error(w, "probes not attached yet", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	a.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = a.srv.Serve(ln) }()
	go a.janitor(o.SeriesTTL)
	return a, nil
}

// Addr is the bound address (the port, when Listen asked for port 0).
func (a *Agent) Addr() string { return a.ln.Addr().String() }

// Observe counts one report.
func (a *Agent) Observe(r *report.Report) {
	if r.Kind != "drop" {
		return
	}
	if r.Benign {
		a.benign.Inc()
		return
	}
	a.drops.add(r)
}

// Ready records what the session attached; /readyz answers 200 from now on.
func (a *Agent) Ready(st State) {
	for _, s := range st.Probes {
		if s.Skipped != "" {
			continue
		}
		if s.Mechanism == "" {
			a.probes.WithLabelValues(s.Point, "none").Set(0)
		} else {
			a.probes.WithLabelValues(s.Point, string(s.Mechanism)).Set(1)
		}
	}
	a.drops.setAlive(st.Alive)
	a.state.Store(&st)
}

// Close stops the HTTP server.
func (a *Agent) Close() error {
	close(a.done)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return a.srv.Shutdown(ctx)
}

// janitor expires gone namespaces' series a few times per TTL.
func (a *Agent) janitor(ttl time.Duration) {
	every := min(max(ttl/4, 100*time.Millisecond), time.Minute)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-a.done:
			return
		case <-t.C:
			a.drops.Expire()
		}
	}
}

// stateCollector reads the session's counters at scrape time.
type stateCollector struct {
	a                   *Agent
	lost, seen, covered *prometheus.Desc
}

func newStateCollector(a *Agent) *stateCollector {
	return &stateCollector{a: a,
		lost: prometheus.NewDesc("pktdrop_events_lost_total",
			"Events lost: where=\"ringbuf\" the kernel had no room in the ring buffer, where=\"decode\" userspace could not decode.",
			[]string{"where"}, nil),
		seen: prometheus.NewDesc("pktdrop_netns",
			"Network namespaces pktdrop knows of on this node (drops are seen in all of them).", nil, nil),
		covered: prometheus.NewDesc("pktdrop_netns_netfilter_links",
			"Network namespaces with netfilter links attached (kernels where nf_hook_slow cannot be probed).", nil, nil),
	}
}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.lost
	ch <- c.seen
	ch <- c.covered
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.a.state.Load()
	if st == nil {
		return
	}
	if st.Lost != nil {
		rb, dec := st.Lost()
		ch <- prometheus.MustNewConstMetric(c.lost, prometheus.CounterValue, float64(rb), "ringbuf")
		ch <- prometheus.MustNewConstMetric(c.lost, prometheus.CounterValue, float64(dec), "decode")
	}
	if st.Netns != nil {
		seen, linked := st.Netns()
		ch <- prometheus.MustNewConstMetric(c.seen, prometheus.GaugeValue, float64(seen))
		ch <- prometheus.MustNewConstMetric(c.covered, prometheus.GaugeValue, float64(linked))
	}
}

// info is pktdrop_build_info and pktdrop_kernel_info.
func info(o Options) prometheus.Collector {
	var u unix.Utsname
	_ = unix.Uname(&u)
	release := unix.ByteSliceToString(u.Release[:])
	c := &constCollector{}
	c.add(prometheus.NewDesc("pktdrop_build_info", "pktdrop's version and Go version; node is NODE_NAME.",
		[]string{"version", "goversion", "node"}, nil), o.Version, runtime.Version(), o.Node)
	c.add(prometheus.NewDesc("pktdrop_kernel_info", "The running kernel's release.",
		[]string{"release", "node"}, nil), release, o.Node)
	return c
}

type constCollector struct{ ms []prometheus.Metric }

func (c *constCollector) add(d *prometheus.Desc, vals ...string) {
	c.ms = append(c.ms, prometheus.MustNewConstMetric(d, prometheus.GaugeValue, 1, vals...))
}

func (c *constCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range c.ms {
		ch <- m.Desc()
	}
}

func (c *constCollector) Collect(ch chan<- prometheus.Metric) {
	for _, m := range c.ms {
		ch <- m
	}
}

func oneLine(err error) string {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err.Error()
	}
	return err.Error()
}
