//go:build k8s

package k8stest

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The DaemonSet of deploy/ runs on the node (only its image is swapped for
// the one k8stest.sh built), and its metrics, scraped from the node, count a
// drop into a named pod.
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
