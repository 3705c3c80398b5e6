// Package metrics exports what `pktdrop serve` sees as Prometheus metrics:
// drops by reason, cause, hook and pod in a bounded set of series, and the
// agent's own health (events lost, probes attached, namespaces covered).
package metrics

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pktdrop/pktdrop/internal/report"
)

// Other is the namespace and pod label of drops counted once the series
// cap is reached.
const Other = "_other"

// key is one drop series' label values. Labels that are not enabled stay
// empty and are not exported.
type key struct {
	reason, cause, hook, namespace, pod, iface, table string
}

type series struct {
	n     float64
	last  time.Time
	netns uint32 // the namespace that fed it last: expiry asks if it is gone
}

// PodFunc names the Kubernetes namespace and pod a report's packet was
// dropped in, "" for namespaces that are not a pod's.
type PodFunc func(r *report.Report) (namespace, pod string)

// drops counts drop reports in at most max series. It is a collector of
// its own (not a CounterVec) because series must be capped and expired,
// which client_golang's vectors do not do.
type drops struct {
	desc       *prometheus.Desc
	iface      bool
	table      bool
	max        int
	ttl        time.Duration
	pods       PodFunc
	alive      func(netns uint32) bool
	now        func() time.Time
	overflowed prometheus.Counter
	expired    prometheus.Counter

	mu     sync.Mutex
	series map[key]*series
}

func newDrops(o Options, now func() time.Time) *drops {
	labels := []string{"reason", "cause", "hook", "namespace", "pod"}
	d := &drops{max: o.MaxSeries, ttl: o.SeriesTTL, pods: o.Pods, now: now,
		series: map[key]*series{}}
	for _, l := range o.Labels {
		switch l {
		case "iface":
			d.iface = true
		case "table":
			d.table = true
		}
	}
	if d.iface {
		labels = append(labels, "iface")
	}
	if d.table {
		labels = append(labels, "table")
	}
	if d.pods == nil {
		d.pods = Pod
	}
	d.desc = prometheus.NewDesc("pktdrop_drops_total",
		"Packets the kernel dropped, by drop reason, pktdrop's cause, netfilter hook and pod (bounded: see pktdrop_drop_series_overflow_total).",
		labels, nil)
	d.overflowed = prometheus.NewCounter(prometheus.CounterOpts{Name: "pktdrop_drop_series_overflow_total",
		Help: "Drops counted under namespace and pod \"_other\" because the series cap (--max-series) was reached."})
	d.expired = prometheus.NewCounter(prometheus.CounterOpts{Name: "pktdrop_drop_series_expired_total",
		Help: "Drop series removed after their namespace was gone and they saw no drop for --series-ttl."})
	return d
}

// add counts one drop.
func (d *drops) add(r *report.Report) {
	k := key{reason: r.Reason, cause: r.Cause, hook: r.Hook}
	k.namespace, k.pod = d.pods(r)
	if d.iface {
		k.iface = r.Iface
	}
	if d.table {
		k.table = r.Table
	}
	now := d.now()
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.series[k]
	if s == nil {
		s = d.admit(k)
	}
	s.n++
	s.last = now
	s.netns = r.Netns
}

// admit finds room for a new series. A quarter of the cap is kept for the
// overflow series (pod "_other", by reason, cause and hook), and one slot
// for the series that takes everything once even those no longer fit, so
// the count never exceeds max.
func (d *drops) admit(k key) *series {
	if len(d.series) < d.max-d.max/4-1 {
		s := &series{}
		d.series[k] = s
		return s
	}
	d.overflowed.Inc()
	ok := key{reason: k.reason, cause: k.cause, hook: k.hook, namespace: Other, pod: Other}
	if d.iface {
		ok.iface = Other
	}
	if d.table {
		ok.table = Other
	}
	if s := d.series[ok]; s != nil {
		return s
	}
	if len(d.series) < d.max-1 {
		s := &series{}
		d.series[ok] = s
		return s
	}
	all := key{reason: Other, cause: Other, hook: Other, namespace: Other, pod: Other, iface: ok.iface, table: ok.table}
	s := d.series[all]
	if s == nil {
		s = &series{}
		d.series[all] = s
	}
	return s
}

// Expire removes the series of namespaces that are gone and that saw no
// drop for ttl. Series tied to no namespace (no pod, namespace or device
// label) are the node's own, bounded by the kernel's reasons: they stay.
// Whether a namespace is gone is asked without the lock (it may rescan
// /proc), so that the ring buffer reader never waits for it.
func (d *drops) Expire() int {
	d.mu.Lock()
	now, alive := d.now(), d.alive
	idle := map[key]uint32{}
	for k, s := range d.series {
		if k.pod == "" && k.namespace == "" && k.iface == "" {
			continue
		}
		if now.Sub(s.last) >= d.ttl {
			idle[k] = s.netns
		}
	}
	d.mu.Unlock()
	for k, ns := range idle {
		if k.pod != Other && alive != nil && alive(ns) {
			delete(idle, k)
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for k := range idle {
		if s := d.series[k]; s != nil && now.Sub(s.last) >= d.ttl {
			delete(d.series, k)
			n++
		}
	}
	d.expired.Add(float64(n))
	return n
}

// Len is how many drop series there are.
func (d *drops) Len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.series)
}

func (d *drops) Describe(ch chan<- *prometheus.Desc) { ch <- d.desc }

func (d *drops) Collect(ch chan<- prometheus.Metric) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for k, s := range d.series {
		vals := []string{k.reason, k.cause, k.hook, k.namespace, k.pod}
		if d.iface {
			vals = append(vals, k.iface)
		}
		if d.table {
			vals = append(vals, k.table)
		}
		ch <- prometheus.MustNewConstMetric(d.desc, prometheus.CounterValue, s.n, vals...)
	}
}

func (d *drops) setAlive(fn func(uint32) bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.alive = fn
}
