package testnet

import (
	"bytes"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pktdrop/pktdrop/internal/privtest"
)

// Docker is a dockerd of the test's own: its own data, exec root, pid
// file and socket, and its own network namespace (Host), so the iptables
// rules and bridges it makes are there and never in the machine's. It
// runs in a mount namespace of its own too (ip netns exec would remount
// /sys without the cgroup mounts dockerd needs).
type Docker struct {
	Host   *NS
	tb     testing.TB
	dir    string
	sock   string
	cmd    *exec.Cmd
	exited chan error // dockerd's exit, once
	image  string
}

// StartDocker starts dockerd in a new namespace of n and imports a
// busybox image (a static busybox, no registry). Stopped by PID in
// tb.Cleanup; the machine's own ruleset must be the same afterwards.
func StartDocker(tb testing.TB, n *Net) *Docker {
	tb.Helper()
	for _, c := range []string{"dockerd", "docker", "unshare", "nsenter", "nft"} {
		privtest.RequireCmd(tb, c)
	}
	busybox, err := staticBusybox()
	if err != nil {
		privtest.Unavailable(tb, err.Error())
	}
	before := hostRuleset(tb)
	existed := map[string]bool{}
	for _, p := range []string{"/etc/docker/key.json", "/run/docker"} {
		_, err := os.Stat(p)
		existed[p] = err == nil
	}
	// Short: containerd's socket path under the exec root must fit a
	// sockaddr_un.
	dir, err := os.MkdirTemp("/tmp", "pdk")
	if err != nil {
		tb.Fatalf("testnet: %v", err)
	}
	d := &Docker{Host: n.NS("dockerhost"), tb: tb, dir: dir, sock: filepath.Join(dir, "sock"), image: "pktdrop-busybox:test"}
	conf := fmt.Sprintf(`{"deprecated-key-path": %q}`, filepath.Join(dir, "key.json"))
	if err := os.WriteFile(filepath.Join(dir, "daemon.json"), []byte(conf), 0o600); err != nil {
		tb.Fatalf("testnet: %v", err)
	}
	log, err := os.Create(filepath.Join(dir, "dockerd.log"))
	if err != nil {
		tb.Fatalf("testnet: %v", err)
	}
	// dockerd 20.10 also writes /etc/docker/key.json and /run/docker: the
	// key goes to dir, and /run is a tmpfs of its mount namespace (after
	// nsenter has opened the netns file that lives there).
	d.cmd = exec.Command("unshare", "-m", "--propagation", "slave", "nsenter", "--net="+d.Host.Path(), "sh", "-c",
		// A bare guest kernel (vmtest) may have no cgroup mounted: mount
		// cgroup2, in this mount namespace only, where none is.
		`mount -t tmpfs pktdrop-run /run &&
		{ [ -e /sys/fs/cgroup/cgroup.controllers ] || [ -d /sys/fs/cgroup/devices ] || mount -t cgroup2 none /sys/fs/cgroup; } &&
		exec dockerd "$@"`, "sh",
		"--data-root", filepath.Join(dir, "data"), "--exec-root", filepath.Join(dir, "exec"),
		"--pidfile", filepath.Join(dir, "pid"), "-H", "unix://"+d.sock, "--storage-driver", "vfs",
		"--config-file", filepath.Join(dir, "daemon.json"))
	d.cmd.Stdout, d.cmd.Stderr = log, log
	if err := d.cmd.Start(); err != nil {
		tb.Fatalf("testnet: start dockerd: %v", err)
	}
	d.exited = make(chan error, 1)
	go func() { d.exited <- d.cmd.Wait() }()
	tb.Cleanup(func() {
		d.stop()
		log.Close()
		if tb.Failed() {
			if b, err := os.ReadFile(log.Name()); err == nil {
				tb.Logf("dockerd log (tail):\n%s", tail(string(b), 3000))
			}
		}
		_ = os.RemoveAll(dir)
		for _, p := range []string{"/etc/docker/key.json", "/run/docker"} {
			if _, err := os.Stat(p); err == nil && !existed[p] {
				tb.Errorf("testnet: dockerd left %s on the machine", p)
			}
		}
		if after := hostRuleset(tb); after != before {
			tb.Errorf("testnet: the machine's ruleset changed while dockerd ran:\nbefore:\n%s\nafter:\n%s", before, after)
		}
	})
	deadline := time.After(60 * time.Second)
	for {
		if _, err := d.Run("info"); err == nil {
			break
		}
		select {
		case err := <-d.exited:
			d.exited <- err
			tb.Fatalf("testnet: dockerd exited: %v", err)
		case <-deadline:
			tb.Fatalf("testnet: dockerd did not answer within 60s")
		case <-time.After(250 * time.Millisecond):
		}
	}
	img := filepath.Join(dir, "img")
	if err := os.MkdirAll(filepath.Join(img, "bin"), 0o755); err != nil {
		tb.Fatalf("testnet: %v", err)
	}
	if out, err := exec.Command("cp", busybox, filepath.Join(img, "bin", "busybox")).CombinedOutput(); err != nil {
		tb.Fatalf("testnet: copy busybox: %v: %s", err, out)
	}
	tar := filepath.Join(dir, "img.tar")
	if out, err := exec.Command("tar", "-C", img, "-cf", tar, ".").CombinedOutput(); err != nil {
		tb.Fatalf("testnet: tar: %v: %s", err, out)
	}
	d.MustRun("import", tar, d.image)
	return d
}

// Run runs the docker client against this dockerd.
// Socket is dockerd's Engine API socket.
func (d *Docker) Socket() string { return d.sock }

func (d *Docker) Run(args ...string) (string, error) {
	cmd := exec.Command("docker", append([]string{"-H", "unix://" + d.sock}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("docker %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return strings.TrimSpace(string(out)), nil
}

// MustRun is Run that fails the test.
func (d *Docker) MustRun(args ...string) string {
	d.tb.Helper()
	out, err := d.Run(args...)
	if err != nil {
		d.tb.Fatalf("testnet: %v", err)
	}
	return out
}

// Container starts a sleeping busybox container on network and returns
// its address there.
func (d *Docker) Container(name, network string) string {
	d.tb.Helper()
	// unconfined: a kernel with AppArmor (Debian's, in vmtest) would
	// have dockerd load its profile into the machine's kernel.
	d.MustRun("run", "-d", "--security-opt", "apparmor=unconfined", "--name", name, "--network", network, d.image,
		"/bin/busybox", "sleep", "3600")
	return d.MustRun("inspect", "-f", "{{(index .NetworkSettings.Networks \""+network+"\").IPAddress}}", name)
}

// Ping pings dst from container once; true when a reply came.
func (d *Docker) Ping(container, dst string) bool {
	_, err := d.Run("exec", container, "/bin/busybox", "ping", "-c", "1", "-W", "2", dst)
	return err == nil
}

// Bridge is the Linux bridge of a Docker network ("br-" and the first
// twelve digits of its id; docker0 for the default one).
func (d *Docker) Bridge(network string) string {
	d.tb.Helper()
	return "br-" + d.MustRun("network", "inspect", "-f", "{{.Id}}", network)[:12]
}

// stop removes the containers, then stops dockerd by its PID (which
// stops the containerd it started).
func (d *Docker) stop() {
	if ids, err := d.Run("ps", "-aq"); err == nil && ids != "" {
		_, _ = d.Run(append([]string{"rm", "-f"}, strings.Fields(ids)...)...)
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(20 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.exited
		d.tb.Errorf("testnet: dockerd (pid %d) did not stop on SIGTERM; killed", d.cmd.Process.Pid)
	}
}

// hostRuleset is the machine's own nf_tables and iptables-legacy state.
func hostRuleset(tb testing.TB) string {
	var b bytes.Buffer
	for _, args := range [][]string{{"nft", "list", "ruleset"}, {"iptables-legacy-save"}, {"ip6tables-legacy-save"}} {
		if _, err := exec.LookPath(args[0]); err != nil {
			continue
		}
		out, err := exec.Command(args[0], args[1:]...).Output()
		if err != nil {
			tb.Fatalf("testnet: %s: %v", args[0], err)
		}
		// iptables-save stamps the time in its comments.
		for _, l := range strings.Split(string(out), "\n") {
			if !strings.HasPrefix(l, "#") {
				b.WriteString(l + "\n")
			}
		}
	}
	return b.String()
}

// staticBusybox finds a statically linked busybox (busybox-static): the
// image holds nothing else.
func staticBusybox() (string, error) {
	for _, p := range []string{"/bin/busybox", "/usr/bin/busybox"} {
		f, err := elf.Open(p)
		if err != nil {
			continue
		}
		static := true
		for _, prog := range f.Progs {
			if prog.Type == elf.PT_INTERP {
				static = false
			}
		}
		f.Close()
		if static {
			return p, nil
		}
	}
	return "", fmt.Errorf("needs a static busybox (busybox-static) for the container image")
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
