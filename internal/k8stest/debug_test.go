//go:build k8s

package k8stest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// readmeRecipe returns the command line under the README's
// "k8stest: debug recipe" marker.
func readmeRecipe(t *testing.T, repo string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repo, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "<!-- k8stest: debug recipe")
	if !ok {
		t.Fatal("README.md has no <!-- k8stest: debug recipe --> marker")
	}
	for _, l := range strings.Split(rest, "\n") {
		if strings.HasPrefix(l, "kubectl debug ") {
			return l
		}
	}
	t.Fatal("no `kubectl debug` line after the README's debug recipe marker")
	return ""
}

// The README's kubectl debug line, run as written (with this cluster's node
// and image for <node> and <image>), names a drop into a pod.
func TestDebugPodRecipe(t *testing.T) {
	c := env(t)
	web := runPod(t, c, "shop", "web")
	web.dropICMP(t)
	line := readmeRecipe(t, c.repo)
	line = strings.NewReplacer("<node>", c.node, "<image>", c.pktdropImage).Replace(line)
	t.Logf("running: %s", line)
	before := debugPods(t)
	// -it wants a terminal (containerd refuses to attach a tty container
	// without one): script(1) gives kubectl a pseudo-terminal.
	cmd := exec.Command("script", "-q", "-f", "-e", "-c", line, "/dev/null")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out syncBuf
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_, _ = stdin.Write([]byte{3}) // Ctrl-C, through the terminal to pktdrop
		time.Sleep(2 * time.Second)
		stdin.Close()
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		for p := range debugPods(t) {
			if !before[p] {
				_ = exec.Command("kubectl", "delete", "pod", p, "--grace-period=1", "--wait=false").Run()
			}
		}
	})
	ok := eventually(120*time.Second, func() bool {
		select {
		case <-done:
			return true
		default:
		}
		// Pinging from the start: what pktdrop prints before kubectl
		// attaches (its banner, when it starts fast) never reaches us.
		ping(web.ip)()
		return strings.Contains(out.String(), "pod shop/web")
	})
	t.Logf("kubectl debug output:\n%s", out.String())
	if !ok || !strings.Contains(out.String(), "pod shop/web") {
		t.Fatalf("the README's debug recipe did not name the drop into pod shop/web")
	}
	// The image has no nft, iptables-nft-save or nsenter: the rule's text
	// is rendered from netlink (#12 item 5).
	rule := "`-A INPUT -p icmp -j DROP`"
	if !eventually(5*time.Second, func() bool { return strings.Contains(out.String(), rule) }) {
		t.Errorf("the drop into pod shop/web does not name the rule %s (pktdrop runs from its scratch image)", rule)
	}
}

func debugPods(t *testing.T) map[string]bool {
	t.Helper()
	m := map[string]bool{}
	for _, p := range strings.Fields(kubectl(t, "get", "pods", "-o", "jsonpath={.items[*].metadata.name}")) {
		if strings.HasPrefix(p, "node-debugger-") {
			m[p] = true
		}
	}
	return m
}
