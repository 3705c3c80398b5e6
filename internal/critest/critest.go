// Package critest runs a real container runtime for tests: Debian's
// containerd with its own root, state, socket and CNI configuration, and a
// pause image written here (no registry), so that pod sandboxes made over
// the CRI API get real network namespaces. It must never run next to a
// kubelet, which deletes sandboxes it does not know.
package critest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	cri "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/pktdrop/pktdrop/internal/pods"
)

// PauseImage is the sandbox image's name.
const PauseImage = "docker.io/pktdrop/pause:test"

// Runtime is one running containerd.
type Runtime struct {
	Dir     string
	Socket  string
	Bridge  string // the CNI bridge, in the host namespace
	Subnet  string // e.g. 10.79.12.0/24
	Client  cri.RuntimeServiceClient
	conn    *grpc.ClientConn
	cmd     *exec.Cmd
	exited  chan struct{}
	log     *os.File
	cniPrev map[string]bool // /var/lib/cni entries before
	tb      testing.TB
}

// ErrUnavailable says what is missing to run a runtime here.
var ErrUnavailable = errors.New("critest: cannot run containerd here")

// Start starts containerd and waits for its CRI service. Stop (registered
// with tb.Cleanup) removes every sandbox made, stops containerd by its
// PID and removes the bridge and files it left.
func Start(tb testing.TB) (*Runtime, error) {
	if os.Getenv("PKTDROP_VM") != "" {
		return nil, fmt.Errorf("%w: container runtimes are tested on the host, not in vmtest.sh's guests (read-only root)", ErrUnavailable)
	}
	for _, bin := range []string{"containerd", "ctr", "runc", "containerd-shim-runc-v2", "/usr/lib/cni/bridge", "/usr/lib/cni/host-local"} {
		if _, err := exec.LookPath(bin); err != nil {
			return nil, fmt.Errorf("%w: %s missing (.ci/deps installs containerd, runc, containernetworking-plugins)", ErrUnavailable, bin)
		}
	}
	if pid := kubelet(); pid != 0 {
		return nil, fmt.Errorf("%w: a kubelet runs (pid %d) and would delete these sandboxes", ErrUnavailable, pid)
	}
	dir, err := os.MkdirTemp("", "pktdrop-cri-")
	if err != nil {
		return nil, err
	}
	n := rand.IntN(200) + 20
	r := &Runtime{Dir: dir, Socket: filepath.Join(dir, "containerd.sock"), Bridge: "pdcri" + strconv.Itoa(n),
		Subnet: fmt.Sprintf("10.79.%d.0/24", n), exited: make(chan struct{}), tb: tb, cniPrev: cniState()}
	tb.Cleanup(r.Stop)
	if err := r.writeConfig(); err != nil {
		return nil, err
	}
	if r.log, err = os.Create(filepath.Join(dir, "containerd.log")); err != nil {
		return nil, err
	}
	r.cmd = exec.Command("containerd", "--config", filepath.Join(dir, "config.toml"))
	r.cmd.Stdout, r.cmd.Stderr = r.log, r.log
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := r.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start containerd: %w", err)
	}
	go func() {
		_ = r.cmd.Wait()
		close(r.exited)
	}()
	if r.conn, r.Client, err = pods.Dial(r.Socket); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err = r.Client.Version(ctx, &cri.VersionRequest{})
		cancel()
		if err == nil {
			break
		}
		select {
		case <-r.exited:
			return nil, fmt.Errorf("containerd exited: %s", r.Log())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("containerd's CRI not up after 30s: %v; log:\n%s", err, r.Log())
		}
	}
	if err := r.importPause(); err != nil {
		return nil, err
	}
	return r, nil
}

// Log is containerd's output so far (its tail).
func (r *Runtime) Log() string {
	b, _ := os.ReadFile(filepath.Join(r.Dir, "containerd.log"))
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

func (r *Runtime) writeConfig() error {
	cniDir := filepath.Join(r.Dir, "cni")
	if err := os.MkdirAll(cniDir, 0o755); err != nil {
		return err
	}
	conf := fmt.Sprintf(`{"cniVersion": "0.4.0", "name": "%s", "plugins": [{"type": "bridge", "bridge": "%s",
  "isGateway": false, "ipMasq": false, "hairpinMode": false,
  "ipam": {"type": "host-local", "dataDir": "%s", "ranges": [[{"subnet": "%s"}]]}}]}`,
		r.Bridge, r.Bridge, filepath.Join(r.Dir, "ipam"), r.Subnet)
	if err := os.WriteFile(filepath.Join(cniDir, "10-pktdrop.conflist"), []byte(conf), 0o644); err != nil {
		return err
	}
	toml := fmt.Sprintf(`version = 2
root = %[1]q
state = %[2]q
[grpc]
  address = %[3]q
[ttrpc]
  address = %[4]q
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %[5]q
  restrict_oom_score_adj = true
  disable_apparmor = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = %[6]q
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
`, filepath.Join(r.Dir, "root"), filepath.Join(r.Dir, "state"), r.Socket, r.Socket+".ttrpc", PauseImage, cniDir)
	return os.WriteFile(filepath.Join(r.Dir, "config.toml"), []byte(toml), 0o644)
}

func (r *Runtime) importPause() error {
	tarPath := filepath.Join(r.Dir, "pause.tar")
	if err := WritePauseImage(tarPath, r.Dir); err != nil {
		return fmt.Errorf("write pause image: %w", err)
	}
	out, err := exec.Command("ctr", "--address", r.Socket, "-n", "k8s.io", "images", "import", tarPath).CombinedOutput()
	if err != nil {
		return fmt.Errorf("import pause image: %v: %s", err, out)
	}
	return nil
}

// Pod is one sandbox made by RunPod.
type Pod struct {
	ID, Namespace, Name, UID string
	NetnsPath                string
	IP                       string
}

// RunPod makes a pod sandbox and returns where its namespace is.
func (r *Runtime) RunPod(namespace, name string) (*Pod, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	uid := fmt.Sprintf("%08x-0000-4000-8000-%012x", rand.Uint32(), rand.Uint64()&0xffffffffffff)
	cfg := &cri.PodSandboxConfig{
		Metadata:     &cri.PodSandboxMetadata{Name: name, Namespace: namespace, Uid: uid},
		Hostname:     name,
		LogDirectory: filepath.Join(r.Dir, "logs", namespace+"_"+name+"_"+uid),
		Linux:        &cri.LinuxPodSandboxConfig{},
	}
	resp, err := r.Client.RunPodSandbox(ctx, &cri.RunPodSandboxRequest{Config: cfg})
	if err != nil {
		return nil, fmt.Errorf("run pod sandbox %s/%s: %w; containerd log:\n%s", namespace, name, err, r.Log())
	}
	p := &Pod{ID: resp.PodSandboxId, Namespace: namespace, Name: name, UID: uid}
	st, err := r.Client.PodSandboxStatus(ctx, &cri.PodSandboxStatusRequest{PodSandboxId: p.ID, Verbose: true})
	if err != nil {
		return nil, fmt.Errorf("pod sandbox status: %w", err)
	}
	p.IP = st.GetStatus().GetNetwork().GetIp()
	for _, f := range strings.Split(st.Info["info"], `"path":"`)[1:] {
		if path, _, ok := strings.Cut(f, `"`); ok && strings.Contains(path, "netns") {
			p.NetnsPath = path
		}
	}
	if p.NetnsPath == "" || p.IP == "" {
		return nil, fmt.Errorf("pod %s/%s: no netns path or IP in its status: %v", namespace, name, st.Info)
	}
	return p, nil
}

// RemovePod stops and removes a sandbox (its namespace goes).
func (r *Runtime) RemovePod(id string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := r.Client.StopPodSandbox(ctx, &cri.StopPodSandboxRequest{PodSandboxId: id}); err != nil {
		return fmt.Errorf("stop pod sandbox: %w", err)
	}
	if _, err := r.Client.RemovePodSandbox(ctx, &cri.RemovePodSandboxRequest{PodSandboxId: id}); err != nil {
		return fmt.Errorf("remove pod sandbox: %w", err)
	}
	return nil
}

// Stop removes every sandbox, stops containerd by its PID and removes
// what it left on the host: the bridge, CNI's cache entries, its
// directory.
func (r *Runtime) Stop() {
	if r.Client != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if list, err := r.Client.ListPodSandbox(ctx, &cri.ListPodSandboxRequest{}); err == nil {
			for _, sb := range list.Items {
				if err := r.RemovePod(sb.Id); err != nil {
					r.tb.Errorf("critest: %v", err)
				}
			}
		}
		cancel()
	}
	if r.conn != nil {
		_ = r.conn.Close()
	}
	if r.cmd != nil && r.cmd.Process != nil {
		_ = r.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-r.exited:
		case <-time.After(15 * time.Second):
			_ = r.cmd.Process.Kill()
			<-r.exited
		}
	}
	if r.log != nil {
		_ = r.log.Close()
	}
	_ = exec.Command("ip", "link", "del", r.Bridge).Run()
	for p := range cniState() {
		if !r.cniPrev[p] {
			_ = os.RemoveAll(p)
		}
	}
	unmountUnder(r.Dir)
	_ = os.RemoveAll(r.Dir)
}

// cniState lists what libcni keeps under /var/lib/cni (its result cache).
func cniState() map[string]bool {
	out := map[string]bool{}
	_ = filepath.WalkDir("/var/lib/cni", func(p string, d os.DirEntry, err error) error {
		if err == nil {
			out[p] = true
		}
		return nil
	})
	return out
}

// unmountUnder unmounts what containerd left mounted below dir (it
// unmounts its snapshots itself when sandboxes are removed cleanly).
func unmountUnder(dir string) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	lines := strings.Split(string(b), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		f := strings.Fields(lines[i])
		if len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			_ = syscall.Unmount(f[4], syscall.MNT_DETACH)
		}
	}
}

// kubelet is the PID of a running kubelet, 0 if none.
func kubelet() int {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if comm, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "comm")); strings.TrimSpace(string(comm)) == "kubelet" {
			return pid
		}
	}
	return 0
}
