//go:build k8s

package k8stest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pktdrop/pktdrop/internal/privtest"
)

// cluster is what k8stest.sh tells the tests about the node it started;
// they run inside the node's network and mount namespaces.
type cluster struct {
	dir, node, nodeIP, pktdrop, appImage, pktdropImage, repo string
}

func env(t *testing.T) cluster {
	t.Helper()
	if os.Getenv("K8STEST") != "1" {
		privtest.Unavailable(t, "needs the single-node cluster of k8stest.sh (run ./k8stest.sh)")
	}
	return cluster{
		dir: os.Getenv("K8STEST_DIR"), node: os.Getenv("K8STEST_NODE"), nodeIP: os.Getenv("K8STEST_NODE_IP"),
		pktdrop: os.Getenv("K8STEST_PKTDROP"), appImage: os.Getenv("K8STEST_APP_IMAGE"),
		pktdropImage: os.Getenv("K8STEST_PKTDROP_IMAGE"), repo: os.Getenv("K8STEST_REPO"),
	}
}

func kubectl(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("kubectl", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

func apply(t *testing.T, manifest string) {
	t.Helper()
	cmd := exec.Command("kubectl", "apply", "-f", "-")
	cmd.Stdin = strings.NewReader(manifest)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kubectl apply: %v\n%s\n%s", err, out, manifest)
	}
}

// eventually polls f every 200 ms until it is true or timeout passes.
func eventually(timeout time.Duration, f func() bool) bool {
	for end := time.Now().Add(timeout); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		if f() {
			return true
		}
	}
	return f()
}

// namespace creates ns once and waits for its default service account, which
// the ServiceAccount admission plugin wants before any pod.
func namespace(t *testing.T, ns string) {
	t.Helper()
	if exec.Command("kubectl", "get", "ns", ns).Run() != nil {
		kubectl(t, "create", "namespace", ns)
	}
	if !eventually(30*time.Second, func() bool { return exec.Command("kubectl", "-n", ns, "get", "sa", "default").Run() == nil }) {
		t.Fatalf("no default service account in namespace %s", ns)
	}
}

type pod struct {
	ns, name, ip string
	pid          int // the app container's, in the pod's network namespace
}

func (p pod) String() string { return p.ns + "/" + p.name }

// netnsExec runs a command from the host's filesystem in the pod's netns.
func (p pod) netnsExec(args ...string) *exec.Cmd {
	return exec.Command("nsenter", append([]string{"--net=/proc/" + fmt.Sprint(p.pid) + "/ns/net", "--"}, args...)...)
}

// dropICMP makes the pod's own firewall drop ICMP it receives, and undoes it
// at the end of the test.
func (p pod) dropICMP(t *testing.T) {
	t.Helper()
	if out, err := p.netnsExec("iptables", "-I", "INPUT", "-p", "icmp", "-j", "DROP").CombinedOutput(); err != nil {
		t.Fatalf("iptables in %s: %v\n%s", p, err, out)
	}
	t.Cleanup(func() { _ = p.netnsExec("iptables", "-D", "INPUT", "-p", "icmp", "-j", "DROP").Run() })
}

var (
	podsMu sync.Mutex
	pods   = map[string]pod{}
)

// runPod starts (once per test binary) a pod serving TCP 8080 and waits until
// it is Ready. Its container carries K8STEST_POD=ns/name in its environment,
// which is how its process, and so its netns, is found.
func runPod(t *testing.T, c cluster, ns, name string) pod {
	t.Helper()
	podsMu.Lock()
	defer podsMu.Unlock()
	if p, ok := pods[ns+"/"+name]; ok {
		return p
	}
	namespace(t, ns)
	apply(t, fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: %[2]s, namespace: %[1]s, labels: {app: %[2]s}}
spec:
  terminationGracePeriodSeconds: 1
  automountServiceAccountToken: false
  containers:
  - name: app
    image: %[3]s
    imagePullPolicy: Never
    args: [serve, "8080"]
    env: [{name: K8STEST_POD, value: %[1]s/%[2]s}]
`, ns, name, c.appImage))
	kubectl(t, "-n", ns, "wait", "--for=condition=Ready", "pod/"+name, "--timeout=90s")
	p := pod{ns: ns, name: name, ip: kubectl(t, "-n", ns, "get", "pod", name, "-o", "jsonpath={.status.podIP}")}
	p.pid = findEnv("K8STEST_POD=" + p.String())
	if p.pid == 0 {
		t.Fatalf("no process of pod %s found", p)
	}
	pods[p.String()] = p
	if cg, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", p.pid)); err == nil {
		t.Logf("pod %s: ip %s, pid %d, cgroup %s", p, p.ip, p.pid, strings.SplitN(string(cg), "\n", 2)[0])
	}
	return p
}

func findEnv(marker string) int {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		var pid int
		if _, err := fmt.Sscan(e.Name(), &pid); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err == nil && bytes.Contains(append([]byte{0}, b...), []byte("\x00"+marker+"\x00")) {
			return pid
		}
	}
	return 0
}

// --- pktdrop runs ---------------------------------------------------------

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type run struct {
	cmd      *exec.Cmd
	out, err syncBuf
	done     chan struct{}
}

// startPktdrop runs pktdrop with args and returns once every probe is
// attached (--ready-file). It is stopped with SIGINT by stop or at cleanup.
func startPktdrop(t *testing.T, c cluster, args ...string) *run {
	t.Helper()
	ready := filepath.Join(t.TempDir(), "ready")
	r := &run{done: make(chan struct{})}
	r.cmd = exec.Command(c.pktdrop, append(args, "--ready-file", ready)...)
	r.cmd.Stdout, r.cmd.Stderr = &r.out, &r.err
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Logf("started pktdrop %s (pid %d)", strings.Join(args, " "), r.cmd.Process.Pid)
	go func() { _ = r.cmd.Wait(); close(r.done) }()
	t.Cleanup(func() { r.stop() })
	ok := eventually(90*time.Second, func() bool {
		select {
		case <-r.done:
			return true
		default:
		}
		_, err := os.Stat(ready)
		return err == nil
	})
	select {
	case <-r.done:
		t.Fatalf("pktdrop exited before ready: %v\nstdout:\n%s\nstderr:\n%s", r.cmd.ProcessState, r.out.String(), r.err.String())
	default:
	}
	if !ok {
		t.Fatalf("pktdrop not ready after 90 s; stderr:\n%s", r.err.String())
	}
	return r
}

func (r *run) exited() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

func (r *run) stop() {
	select {
	case <-r.done:
		return
	default:
	}
	_ = r.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-r.done:
	case <-time.After(15 * time.Second):
		_ = r.cmd.Process.Kill()
		<-r.done
	}
}

// drop is the part of pktdrop's JSON report these tests look at.
type drop struct {
	Time      time.Time `json:"time"`
	Kind      string    `json:"kind"`
	Reason    string    `json:"reason"`
	NetnsName string    `json:"netns_name"`
	Iface     string    `json:"iface"`
	Src       string    `json:"src"`
	Dst       string    `json:"dst"`
	Hook      string    `json:"hook"`
	Table     string    `json:"table"`
	Chain     string    `json:"chain"`
	Rule      string    `json:"rule"`
	Pod       string    `json:"pod"`
	PodNS     string    `json:"pod_namespace"`
	NAT       []struct {
		Hook   string `json:"hook"`
		Before string `json:"before"`
		After  string `json:"after"`
		By     string `json:"by"`
		Rule   string `json:"rule"`
	} `json:"nat"`
}

func (r *run) reports() []drop {
	var ds []drop
	sc := bufio.NewScanner(strings.NewReader(r.out.String()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var d drop
		if json.Unmarshal(sc.Bytes(), &d) == nil && d.Kind != "" {
			ds = append(ds, d)
		}
	}
	return ds
}

// await polls the reports until match holds for one, while poke (sending the
// packets) runs every 2 s; it stops pktdrop and returns that report.
func (r *run) await(t *testing.T, timeout time.Duration, poke func(), match func(drop) bool) drop {
	t.Helper()
	var got drop
	last := time.Time{}
	ok := eventually(timeout, func() bool {
		for _, d := range r.reports() {
			if match(d) {
				got = d
				return true
			}
		}
		if time.Since(last) > 2*time.Second {
			poke()
			last = time.Now()
		}
		return false
	})
	r.stop()
	if !ok {
		t.Fatalf("no matching report in %v; stdout:\n%s\nstderr:\n%s", timeout, r.out.String(), r.err.String())
	}
	return got
}

func ping(ip string) func() {
	return func() { _ = exec.Command("ping", "-c", "1", "-W", "1", ip).Run() }
}
