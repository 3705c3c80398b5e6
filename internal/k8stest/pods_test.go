//go:build k8s

package k8stest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// A drop into a pod (its own firewall drops ICMP) is reported with the pod's
// name, in JSON and in text.
func TestDropIntoPodNamed(t *testing.T) {
	c := env(t)
	web := runPod(t, c, "shop", "web")
	runPod(t, c, "blog", "web") // the second namespace on the bridge
	web.dropICMP(t)

	r := startPktdrop(t, c, "watch", "-o", "json", "--proto", "icmp", "--host", web.ip)
	d := r.await(t, 60*time.Second, ping(web.ip), func(d drop) bool { return d.Kind == "drop" && d.Dst == web.ip })
	t.Logf("json: %+v", d)
	if d.Pod != "web" || d.PodNS != "shop" {
		t.Errorf("drop into %s names pod %q namespace %q (netns_name %q)", web, d.Pod, d.PodNS, d.NetnsName)
	}
	if d.Hook != "INPUT" || d.Table != "filter" {
		t.Errorf("drop into %s at hook %q table %q, want INPUT filter", web, d.Hook, d.Table)
	}

	r = startPktdrop(t, c, "watch", "--proto", "icmp", "--host", web.ip, "--count", "1")
	if !eventually(60*time.Second, func() bool { ping(web.ip)(); return r.exited() }) {
		t.Fatalf("pktdrop --count 1 did not end; stdout:\n%s", r.out.String())
	}
	t.Logf("text:\n%s", r.out.String())
	if !strings.Contains(r.out.String(), "at     pod shop/web, dev eth0, hook INPUT table filter") {
		t.Errorf("the text report does not say `at     pod shop/web, dev eth0, hook INPUT table filter`")
	}
}

// A pod created after pktdrop started is covered too: its drops carry the
// netfilter hook and table, which need per-netns links attached once the
// pod's netns appears. The target is coverage within 1 s, so the first ping
// goes 1 s after the pod's sandbox process started (its netns existed
// before that), and the first drop must carry hook and table.
func TestPodStartedAfterPktdrop(t *testing.T) {
	c := env(t)
	namespace(t, "late")
	r := startPktdrop(t, c, "watch", "-o", "json", "--proto", "icmp")
	started := time.Now()
	late := runPod(t, c, "late", "web")
	t.Logf("pod %s Ready %v after pktdrop was", late, time.Since(started).Round(time.Millisecond))
	late.dropICMP(t)
	sandbox := sandboxStart(t, late)
	time.Sleep(time.Until(sandbox.Add(time.Second)))
	pinger := func() {
		for i := 0; i < 20; i++ {
			_ = exec.Command("ping", "-c", "1", "-W", "0.1", late.ip).Run()
		}
	}
	r.await(t, 30*time.Second, pinger, func(d drop) bool { return d.Kind == "drop" && d.Dst == late.ip && d.Hook != "" })
	var first *drop
	for i, d := range r.reports() {
		t.Logf("report %s (sandbox + %v): pod %s/%s hook %q table %q", d.Time.Format("15:04:05.000"),
			d.Time.Sub(sandbox).Round(time.Millisecond), d.PodNS, d.Pod, d.Hook, d.Table)
		if first == nil && d.Dst == late.ip {
			first = &r.reports()[i]
		}
	}
	if first.Pod != "web" || first.PodNS != "late" || first.Hook != "INPUT" || first.Table != "filter" {
		t.Errorf("first drop into the late pod %s: pod %q namespace %q hook %q table %q, want web late INPUT filter",
			late, first.Pod, first.PodNS, first.Hook, first.Table)
	}
}

// sandboxStart is when the pod's sandbox (pause) process started, the other
// process in the pod's netns: just after its netns was made.
func sandboxStart(t *testing.T, p pod) time.Time {
	t.Helper()
	ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", p.pid))
	if err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if l, _ := os.Readlink("/proc/" + e.Name() + "/ns/net"); l != ns || e.Name() == fmt.Sprint(p.pid) {
			continue
		}
		if st, err := procStart(e.Name()); err == nil {
			return st
		}
	}
	t.Fatalf("no sandbox process in the netns of pod %s", p)
	return time.Time{}
}

// procStart reads a process's start time (clock ticks since boot, 100 Hz).
func procStart(pid string) (time.Time, error) {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return time.Time{}, err
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	ticks, err := strconv.ParseInt(f[19], 10, 64)
	if err != nil {
		return time.Time{}, err
	}
	up, err := os.ReadFile("/proc/uptime")
	if err != nil {
		return time.Time{}, err
	}
	var upSec float64
	fmt.Sscan(string(up), &upSec)
	boot := time.Now().Add(-time.Duration(upSec * float64(time.Second)))
	return boot.Add(time.Duration(ticks) * 10 * time.Millisecond), nil
}

// --pod NS/NAME reports the drops of that pod only.
func TestPodFilter(t *testing.T) {
	c := env(t)
	shop, blog := runPod(t, c, "shop", "web"), runPod(t, c, "blog", "web")
	shop.dropICMP(t)
	blog.dropICMP(t)
	r := startPktdrop(t, c, "watch", "-o", "json", "--proto", "icmp", "--pod", "shop/web")
	both := func() { ping(blog.ip)(); ping(shop.ip)() }
	r.await(t, 60*time.Second, both, func(d drop) bool { return d.Dst == shop.ip })
	for _, d := range r.reports() {
		if d.Kind == "drop" && (d.PodNS != "shop" || d.Pod != "web") {
			t.Errorf("--pod shop/web reported a drop of %s/%s (dst %s)", d.PodNS, d.Pod, d.Dst)
		}
	}
	t.Logf("stdout:\n%s", r.out.String())
}

// A Service without endpoints: the real kube-proxy's REJECT rule drops the
// connection, and pktdrop --rules names the rule, whose comment is the
// Service.
func TestServiceWithoutEndpoints(t *testing.T) {
	c := env(t)
	namespace(t, "shop")
	if exec.Command("kubectl", "-n", "shop", "get", "svc", "nothing").Run() != nil {
		kubectl(t, "-n", "shop", "create", "service", "clusterip", "nothing", "--tcp=80:8080")
	}
	ip := kubectl(t, "-n", "shop", "get", "svc", "nothing", "-o", "jsonpath={.spec.clusterIP}")
	waitRule(t, "filter", "shop/nothing")

	r := startPktdrop(t, c, "watch", "-o", "json", "--rules", "--proto", "tcp", "--host", ip)
	dial := func() { _ = exec.Command("nc", "-z", "-w", "2", ip, "80").Run() }
	d := r.await(t, 60*time.Second, dial, func(d drop) bool { return d.Kind == "drop" && d.Dst == ip })
	t.Logf("json: %+v", d)
	if !strings.Contains(d.Rule, "shop/nothing") || !strings.Contains(d.Rule, "has no endpoints") || !strings.Contains(d.Chain, "KUBE-") {
		t.Errorf("drop to the Service shop/nothing (%s) names chain %q rule %q, want kube-proxy's KUBE-* REJECT rule for shop/nothing", ip, d.Chain, d.Rule)
	}
}

// Field case 4 for real: a connection to a Service's ClusterIP is DNATed by
// kube-proxy's KUBE-SEP rule, and `pktdrop trace --rules` shows that rule.
func TestServiceDNATTrace(t *testing.T) {
	c := env(t)
	shop, blog := runPod(t, c, "shop", "web"), runPod(t, c, "blog", "web")
	if exec.Command("kubectl", "-n", "shop", "get", "svc", "web").Run() != nil {
		kubectl(t, "-n", "shop", "expose", "pod", "web", "--port=80", "--target-port=8080")
	}
	ip := kubectl(t, "-n", "shop", "get", "svc", "web", "-o", "jsonpath={.spec.clusterIP}")
	waitRule(t, "nat", "--to-destination "+shop.ip+":8080")

	r := startPktdrop(t, c, "trace", "-o", "json", "--rules", "--proto", "tcp", "--host", blog.ip)
	dial := func() { _ = blog.netnsExec("nc", "-z", "-w", "1", ip, "80").Run() }
	sep := regexp.MustCompile(`KUBE-SEP-`)
	d := r.await(t, 60*time.Second, dial, func(d drop) bool {
		for _, n := range d.NAT {
			if sep.MatchString(n.By+" "+n.Rule) && strings.Contains(n.Rule, "--to-destination "+shop.ip+":8080") {
				return true
			}
		}
		return false
	})
	for _, n := range d.NAT {
		t.Logf("nat %s: %s → %s by %s: %s", n.Hook, n.Before, n.After, n.By, n.Rule)
	}
}

// waitRule waits until kube-proxy has written a rule holding text into the
// node's iptables table.
func waitRule(t *testing.T, table, text string) {
	t.Helper()
	if !eventually(60*time.Second, func() bool {
		out, _ := exec.Command("iptables-save", "-t", table).Output()
		return strings.Contains(string(out), text)
	}) {
		out, _ := exec.Command("iptables-save", "-t", table).CombinedOutput()
		t.Fatalf("kube-proxy wrote no rule with %q in table %s:\n%s", text, table, out)
	}
}
