//go:build k8s

package k8stest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The DaemonSet of deploy/ runs on the node (only its image is swapped for
// the one k8stest.sh built), and its metrics, scraped from the node and by a
// real Prometheus, count a drop into a named pod.
func TestDaemonSetMetrics(t *testing.T) {
	c := env(t)
	path := filepath.Join(c.repo, "deploy", "daemonset.yaml")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("the DaemonSet manifest: %v", err)
	}
	manifest := regexp.MustCompile(`(?m)^(\s*)image: \S+`).ReplaceAllString(string(b), "${1}image: "+c.pktdropImage)
	apply(t, manifest)
	t.Cleanup(func() {
		cmd := exec.Command("kubectl", "delete", "--wait=false", "-f", "-")
		cmd.Stdin = strings.NewReader(manifest)
		_ = cmd.Run()
	})
	ds := regexp.MustCompile(`(?s)kind: DaemonSet\s.*?name: (\S+)\s.*?namespace: (\S+)`).FindStringSubmatch(manifest)
	if ds == nil {
		t.Fatalf("no DaemonSet with name and namespace in %s", path)
	}
	name, ns := ds[1], ds[2]
	if out, err := exec.Command("kubectl", "-n", ns, "rollout", "status", "ds/"+name, "--timeout=120s").CombinedOutput(); err != nil {
		logs, _ := exec.Command("kubectl", "-n", ns, "logs", "ds/"+name, "--tail=50").CombinedOutput()
		desc, _ := exec.Command("kubectl", "-n", ns, "describe", "pods").CombinedOutput()
		t.Fatalf("DaemonSet %s/%s not rolled out: %v\n%s\nlogs:\n%s\n%s", ns, name, err, out, logs, desc)
	}
	port := "9750"
	if m := regexp.MustCompile(`containerPort: (\d+)`).FindStringSubmatch(manifest); m != nil {
		port = m[1]
	}
	base := "http://127.0.0.1:" + port
	if !eventually(120*time.Second, func() bool { _, err := get(base + "/readyz"); return err == nil }) {
		logs, _ := exec.Command("kubectl", "-n", ns, "logs", "ds/"+name, "--tail=50").CombinedOutput()
		t.Fatalf("the agent never became ready at %s/readyz; logs:\n%s", base, logs)
	}

	prom := startPrometheus(t, "127.0.0.1:"+port)

	web := runPod(t, c, "shop", "web")
	web.dropICMP(t)
	series := regexp.MustCompile(`(?m)^pktdrop_drops_total\{[^}]*namespace="shop"[^}]*\} ([0-9.e+]+)$`)
	var body string
	last := time.Time{}
	ok := eventually(90*time.Second, func() bool {
		if time.Since(last) > 2*time.Second {
			ping(web.ip)()
			last = time.Now()
		}
		body, _ = get(base + "/metrics")
		for _, l := range series.FindAllString(body, -1) {
			if strings.Contains(l, `pod="web"`) && strings.Contains(l, `hook="INPUT"`) {
				t.Logf("scraped: %s", l)
				return true
			}
		}
		return false
	})
	if !ok {
		t.Fatalf("no pktdrop_drops_total series for pod shop/web at hook INPUT; scraped:\n%s", grepLines(body, "pktdrop_drops_total"))
	}
	// The same count as Prometheus scraped it from the DaemonSet's pod.
	q := `sum by (namespace, pod, hook, reason) (pktdrop_drops_total{namespace="shop", pod="web", hook="INPUT"})`
	var ans string
	if !eventually(60*time.Second, func() bool { ans = prom.query(t, q); return strings.Contains(ans, `"pod":"web"`) }) {
		t.Fatalf("Prometheus has no answer to %s: %s", q, ans)
	}
	t.Logf("PromQL %s\n  → %s", q, ans)
}

type prometheus struct{ addr string }

// startPrometheus runs Debian's prometheus in the node's network namespace,
// scraping target every second, and stops it by PID at cleanup.
func startPrometheus(t *testing.T, target string) prometheus {
	t.Helper()
	dir := t.TempDir()
	cfg := fmt.Sprintf("global: {scrape_interval: 1s, scrape_timeout: 900ms}\n"+
		"scrape_configs:\n- job_name: pktdrop\n  static_configs:\n  - targets: [%q]\n", target)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	p := prometheus{addr: "127.0.0.1:9090"}
	cmd := exec.Command("prometheus", "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+p.addr)
	var log syncBuf
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start prometheus: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("prometheus log:\n%s", log.String())
		}
	})
	return p
}

// query runs an instant PromQL query and returns its result as JSON ("" if
// Prometheus does not answer yet).
func (p prometheus) query(t *testing.T, q string) string {
	t.Helper()
	b, err := get("http://" + p.addr + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		return ""
	}
	var r struct {
		Status string          `json:"status"`
		Data   json.RawMessage `json:"data"`
	}
	if json.Unmarshal([]byte(b), &r) != nil || r.Status != "success" {
		return ""
	}
	return string(r.Data)
}

func get(url string) (string, error) {
	cl := http.Client{Timeout: 5 * time.Second}
	resp, err := cl.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return string(b), fmt.Errorf("%s: %s", url, resp.Status)
	}
	return string(b), err
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
