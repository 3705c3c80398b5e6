package main

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pktdrop/pktdrop/internal/critest"
	"github.com/pktdrop/pktdrop/internal/privtest"
	"github.com/pktdrop/pktdrop/internal/testnet"
)

// imageCaps is the documented capability set (README, Containerfile).
var imageCaps = []string{"BPF", "PERFMON", "NET_ADMIN", "SYS_ADMIN", "SYSLOG", "SYS_PTRACE"}

// TestImage builds the image with `make image` and runs it under podman as
// the README says a pod runs it: host network and PID namespace,
// /run/netns mounted (rslave), a read-only root and exactly imageCaps. A
// namespace created after it started gets its drop named, with hook and
// table and a symbolized location; then each capability taken away is
// named. Not parallel: it watches every namespace.
func TestImage(t *testing.T) {
	requireRoot(t)
	pm, err := critest.StartPodman(t)
	if errors.Is(err, critest.ErrUnavailable) {
		privtest.Unavailable(t, err.Error())
	}
	if err != nil {
		t.Fatal(err)
	}
	const image = "localhost/pktdrop:test"
	build := exec.Command("make", "image", "IMAGE="+image, "PODMAN_GLOBAL="+strings.Join(pm.Global(), " "))
	build.Dir = "../.."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("make image: %v\n%s", err, out)
	}
	size, _ := pm.Cmd("image", "inspect", "-f", "{{.Size}}", image)
	t.Logf("image %s: %s bytes", image, strings.TrimSpace(size))

	out := t.TempDir()
	run := func(capsAdd []string, args ...string) *exec.Cmd {
		a := append([]string{}, pm.Global()...)
		a = append(a, "run", "--rm", "--pid=host", "--network=host", "--read-only",
			"-v", "/run/netns:/run/netns:rslave", "-v", out+":/out", "--cap-drop", "ALL")
		if len(capsAdd) > 0 {
			a = append(a, "--cap-add", strings.Join(capsAdd, ","))
		}
		a = append(a, critest.Ulimits...)
		return exec.Command("podman", append(append(a, image), args...)...)
	}

	t.Run("documented_caps", func(t *testing.T) {
		addr := fmt.Sprintf("10.81.%d.%d", rand.IntN(250)+1, rand.IntN(250)+1)
		cmd := run(imageCaps, "watch", "-o", "json", "--proto", "icmp", "--dst", addr, "--ready-file", "/out/ready")
		var stdout, stderr lockedBuffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		t.Cleanup(func() {
			_ = cmd.Process.Signal(syscall.SIGINT)
			select {
			case <-done:
			case <-time.After(stopTimeout):
				_ = cmd.Process.Kill()
				<-done
			}
		})
		for end := time.Now().Add(readyTimeout); ; time.Sleep(50 * time.Millisecond) {
			if _, err := os.Stat(filepath.Join(out, "ready")); err == nil {
				break
			}
			select {
			case <-done:
				t.Fatalf("pktdrop in the image exited before ready:\n%s", stderr.String())
			default:
			}
			if time.Now().After(end) {
				t.Fatalf("pktdrop in the image not ready after %v:\n%s", readyTimeout, stderr.String())
			}
		}
		n := testnet.New(t)
		ns := n.NS("img")
		ns.MustRun("ip", "addr", "add", addr+"/32", "dev", "lo")
		ns.MustRun("nft", "add table ip pdimg; add chain ip pdimg in { type filter hook input priority 0; policy accept; }; "+
			"add rule ip pdimg in ip daddr "+addr+" drop")
		var got []string
		for end := time.Now().Add(reportTimeout); time.Now().Before(end); {
			_, _ = ns.Run("ping", "-c", "1", "-W", "0.2", addr)
			s := stdout.String()
			rs, _ := parseReports(s[:strings.LastIndexByte(s, '\n')+1])
			for _, r := range rs {
				got = append(got, brief(rs))
				if r.NetnsName == ns.Name() && r.Hook == "INPUT" && r.Table == "pdimg" && !strings.HasPrefix(r.Location, "0x") {
					if strings.Contains(stderr.String(), "missing CAP_") {
						t.Errorf("with the documented capabilities pktdrop still says one is missing:\n%s", stderr.String())
					}
					return
				}
			}
		}
		t.Errorf("no drop named %s with hook INPUT, table pdimg (the one that exists, not the priority bracket's name) and a symbolized location; reports:\n%s\nstderr:\n%s",
			ns.Name(), strings.Join(got, ""), stderr.String())
	})

	t.Run("missing_caps", func(t *testing.T) {
		for _, c := range imageCaps {
			var caps []string
			for _, k := range imageCaps {
				// SYS_ADMIN would stand in for BPF and PERFMON.
				if k != c && !(k == "SYS_ADMIN" && (c == "BPF" || c == "PERFMON")) {
					caps = append(caps, k)
				}
			}
			b, _ := run(caps, "watch", "--duration", "1s", "--proto", "icmp", "--dst", "10.81.0.1").CombinedOutput()
			if !strings.Contains(string(b), "CAP_"+c) || !strings.Contains(string(b), "grant") {
				t.Errorf("image without CAP_%s: output does not name it with what to grant:\n%s", c, b)
			}
			t.Logf("without CAP_%s: %s", c, strings.SplitN(strings.TrimSpace(string(b)), "\n", 2)[0])
		}
	})
}
