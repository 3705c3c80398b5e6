package main

import (
	"errors"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pktdrop/pktdrop/internal/critest"
	"github.com/pktdrop/pktdrop/internal/privtest"
	"github.com/pktdrop/pktdrop/internal/report"
)

// TestCRIPods: pod sandboxes made by a real containerd (critest, no
// cluster) get drops into them named by pod, in text and JSON; --pod
// selects one and follows it when its sandbox is replaced. The host's
// firewall, links and mounts are as before at the end. Not parallel: it
// watches every namespace.
func TestCRIPods(t *testing.T) {
	requireRoot(t)
	before := critest.Host(t)
	var rt *critest.Runtime
	t.Cleanup(func() {
		if rt == nil {
			return
		}
		rt.Stop()
		for _, c := range rt.Changes(before, critest.Host(t)) {
			t.Error(c)
		}
	})
	rt, err := critest.Start(t)
	if errors.Is(err, critest.ErrUnavailable) {
		privtest.Unavailable(t, err.Error())
	}
	if err != nil {
		t.Fatal(err)
	}
	a := runPod(t, rt, "ns1", "pod-a")
	b := runPod(t, rt, "ns2", "pod-b")
	ping := func(p *critest.Pod) func() error {
		return func() error {
			out, err := exec.Command("nsenter", "--net="+p.NetnsPath, "ping", "-c", "2", "-i", "0.2", "-W", "1", p.IP).CombinedOutput()
			if err != nil && !strings.Contains(string(out), "100% packet loss") {
				return err
			}
			return nil
		}
	}
	both := func() error { return errors.Join(ping(a)(), ping(b)()) }
	base := []string{"--cri-socket", rt.Socket, "--proto", "icmp", "--dst", rt.Subnet}

	t.Run("json", func(t *testing.T) {
		res := watch(t, both, 4, base...)
		for _, p := range []*critest.Pod{a, b} {
			r := find(res.Reports, p.IP)
			if r == nil {
				t.Fatalf("no drop to %s (%s/%s); reports:\n%s\nstderr:\n%s", p.IP, p.Namespace, p.Name, brief(res.Reports), res.Stderr)
			}
			if r.Pod != p.Name || r.PodNS != p.Namespace || r.PodUID != p.UID || r.NetnsName != "pod "+p.Namespace+"/"+p.Name {
				t.Errorf("drop into %s/%s: pod %q namespace %q uid %q netns_name %q; want %s %s %s",
					p.Namespace, p.Name, r.Pod, r.PodNS, r.PodUID, r.NetnsName, p.Name, p.Namespace, p.UID)
			}
			for _, s := range r.Path {
				if s.Netns == r.Netns && (s.Pod != p.Name || s.PodNS != p.Namespace || s.PodUID != p.UID) {
					t.Errorf("path step %+v lacks the pod fields of %s/%s", s, p.Namespace, p.Name)
				}
			}
			t.Logf("%s", brief([]report.Report{*r}))
			if !strings.Contains(r.Explanation, "in pod "+p.Namespace+"/"+p.Name) {
				t.Errorf("explanation does not say where: %q", r.Explanation)
			}
		}
	})
	t.Run("text", func(t *testing.T) {
		p := start(t, append([]string{"watch"}, append(base, "--count", "1")...)...)
		if err := ping(a)(); err != nil {
			t.Error(err)
		}
		p.waitReports(1, reportTimeout)
		res := p.stop(syscall.SIGINT)
		if !strings.Contains(res.Stdout, "at     pod ns1/pod-a") {
			t.Errorf("text output does not name pod ns1/pod-a:\n%s\nstderr:\n%s", res.Stdout, res.Stderr)
		}
		t.Logf("text:\n%s", res.Stdout)
	})
	t.Run("pod_filter", func(t *testing.T) {
		for _, spec := range [][]string{{"--pod", "ns2/pod-b"}, {"--pod", "pod-b", "--pod-namespace", "ns2"}} {
			res := watch(t, both, -2, append([]string{"--cri-socket", rt.Socket, "--proto", "icmp"}, spec...)...)
			if len(res.Reports) == 0 {
				t.Errorf("%v: no drop reported; stderr:\n%s", spec, res.Stderr)
			}
			for _, r := range res.Reports {
				if r.Pod != "pod-b" || r.PodNS != "ns2" {
					t.Errorf("%v selected a drop in %q: %s", spec, r.NetnsName, brief([]report.Report{r}))
				}
			}
		}
		res := run(t, "watch", "--cri-socket", rt.Socket, "--pod", "ns3/nope", "--duration", "1s")
		if res.Code != 2 || !strings.Contains(res.Stderr, "no running pod ns3/nope") {
			t.Errorf("--pod of a missing pod: exit %d, stderr %q; want exit 2 naming it", res.Code, res.Stderr)
		}
	})
	t.Run("pod_replaced", func(t *testing.T) {
		p := start(t, "watch", "-o", "json", "--cri-socket", rt.Socket, "--proto", "icmp", "--pod", "ns2/pod-b")
		if err := rt.RemovePod(b.ID); err != nil {
			t.Fatal(err)
		}
		b2 := runPod(t, rt, "ns2", "pod-b")
		deadline := time.Now().Add(reportTimeout)
		for !strings.Contains(p.stderr.String(), "pod ns2/pod-b is now in netns") && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if err := ping(b2)(); err != nil {
			t.Error(err)
		}
		p.waitReports(1, reportTimeout)
		res := p.stop(syscall.SIGINT)
		if r := find(res.Reports, b2.IP); r == nil || r.Pod != "pod-b" {
			t.Errorf("no drop into the replaced pod-b sandbox (%s); reports:\n%s\nstderr:\n%s", b2.IP, brief(res.Reports), res.Stderr)
		}
	})
}

// runPod makes a sandbox with an nftables rule dropping pings to it.
func runPod(t *testing.T, rt *critest.Runtime, namespace, name string) *critest.Pod {
	t.Helper()
	p, err := rt.RunPod(namespace, name)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("nsenter", "--net="+p.NetnsPath, "nft",
		"add table ip pdpod; add chain ip pdpod in { type filter hook input priority 0; policy accept; }; "+
			"add rule ip pdpod in icmp type echo-request drop").CombinedOutput()
	if err != nil {
		t.Fatalf("nft in %s/%s: %v: %s", namespace, name, err, out)
	}
	return p
}

func find(rs []report.Report, dst string) *report.Report {
	for i := range rs {
		if rs[i].Dst == dst && rs[i].Kind == "drop" {
			return &rs[i]
		}
	}
	return nil
}
