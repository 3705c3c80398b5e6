package critest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Podman is podman with its own storage (vfs: no mounts to leave behind),
// runc (crun refuses these machines' hybrid cgroups) and, once
// Serve is called, its Engine API service on a socket of its own.
type Podman struct {
	Dir    string
	Socket string
	global []string
	svc    *exec.Cmd
	exited chan struct{}
	tb     testing.TB
}

// Ulimits are explicit: podman's defaults need CAP_SYS_RESOURCE here.
var Ulimits = []string{"--ulimit", "nofile=16384:16384", "--ulimit", "nproc=4096:4096"}

// StartPodman prepares podman's storage. Stop (registered
// with tb.Cleanup) removes every container, stops the service by its PID
// and removes the storage.
func StartPodman(tb testing.TB) (*Podman, error) {
	if os.Getenv("PKTDROP_VM") != "" {
		return nil, fmt.Errorf("%w: container runtimes are tested on the host, not in vmtest.sh's guests (read-only root)", ErrUnavailable)
	}
	for _, bin := range []string{"podman", "runc"} {
		if _, err := exec.LookPath(bin); err != nil {
			return nil, fmt.Errorf("%w: %s missing (.ci/deps installs podman, runc)", ErrUnavailable, bin)
		}
	}
	dir, err := os.MkdirTemp("", "pktdrop-podman-")
	if err != nil {
		return nil, err
	}
	p := &Podman{Dir: dir, Socket: filepath.Join(dir, "podman.sock"), tb: tb,
		global: []string{"--root", filepath.Join(dir, "root"), "--runroot", filepath.Join(dir, "runroot"),
			"--tmpdir", filepath.Join(dir, "tmp"), "--runtime", "runc", "--cgroup-manager", "cgroupfs",
			"--events-backend", "file", "--storage-driver", "vfs"}}
	tb.Cleanup(p.Stop)
	return p, nil
}

// Global is podman's global flags for this storage.
func (p *Podman) Global() []string { return p.global }

// LoadPause loads the pause image (PauseImage).
func (p *Podman) LoadPause() error {
	tarPath := filepath.Join(p.Dir, "pause.tar")
	if err := WritePauseImage(tarPath, p.Dir); err != nil {
		return fmt.Errorf("write pause image: %w", err)
	}
	_, err := p.Cmd("load", "-i", tarPath)
	return err
}

// Cmd runs podman with the test's storage.
func (p *Podman) Cmd(args ...string) (string, error) {
	out, err := exec.Command("podman", append(append([]string{}, p.global...), args...)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("podman %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// Serve starts podman's Engine API service on p.Socket.
func (p *Podman) Serve() error {
	p.svc = exec.Command("podman", append(append([]string{}, p.global...), "system", "service", "--time=0", "unix://"+p.Socket)...)
	p.svc.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p.exited = make(chan struct{})
	if err := p.svc.Start(); err != nil {
		return fmt.Errorf("start podman service: %w", err)
	}
	go func() {
		_ = p.svc.Wait()
		close(p.exited)
	}()
	for end := time.Now().Add(20 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if fi, err := os.Stat(p.Socket); err == nil && fi.Mode()&os.ModeSocket != 0 {
			return nil
		}
	}
	return fmt.Errorf("podman service: no socket %s after 20s", p.Socket)
}

// RunPause starts a pause container without a network (lo only: no CNI,
// nothing added to the host firewall) and returns its PID.
func (p *Podman) RunPause(name string) (int, error) {
	args := append([]string{"run", "-d", "--name", name, "--network", "none"}, Ulimits...)
	if _, err := p.Cmd(append(args, PauseImage)...); err != nil {
		return 0, err
	}
	out, err := p.Cmd("inspect", "-f", "{{.State.Pid}}", name)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(out))
}

// Stop removes the containers, stops the service by its PID and removes
// the storage.
func (p *Podman) Stop() {
	if _, err := p.Cmd("rm", "-a", "-f", "-t", "0"); err != nil {
		p.tb.Errorf("critest: %v", err)
	}
	_, _ = p.Cmd("rmi", "-a", "-f")
	if p.svc != nil && p.svc.Process != nil {
		_ = p.svc.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(15 * time.Second):
			_ = p.svc.Process.Kill()
			<-p.exited
		}
	}
	unmountUnder(p.Dir)
	_ = os.RemoveAll(p.Dir)
}
