package pods

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// podUID finds a pod UID in a cgroup path: kubelet's cgroupfs driver
// writes pod<uid>, its systemd driver pod<uid with _ for ->.slice.
var podUID = regexp.MustCompile(`pod([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12})`)

// kubeletOwners names pods without a runtime to ask: the pod UID in each
// process's cgroup, and kubelet's log directories
// (/var/log/pods/<namespace>_<name>_<uid>/<container>/) for its name.
func kubeletOwners(hostRoot string) map[uint32]Owner {
	byUID := map[string]Owner{}
	ents, _ := os.ReadDir(HostPath(hostRoot, "/var/log/pods"))
	for _, e := range ents {
		parts := strings.Split(e.Name(), "_")
		if !e.IsDir() || len(parts) != 3 {
			continue
		}
		o := Owner{Kind: "pod", Namespace: parts[0], Name: parts[1], UID: parts[2]}
		cs, _ := os.ReadDir(HostPath(hostRoot, filepath.Join("/var/log/pods", e.Name())))
		for _, c := range cs {
			if c.IsDir() {
				o.Containers = append(o.Containers, c.Name())
			}
		}
		byUID[o.UID] = o
	}
	out := map[uint32]Owner{}
	if len(byUID) == 0 {
		return out
	}
	procs, _ := os.ReadDir(HostPath(hostRoot, "/proc"))
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		cg, err := os.ReadFile(HostPath(hostRoot, filepath.Join("/proc", p.Name(), "cgroup")))
		if err != nil {
			continue
		}
		m := podUID.FindSubmatch(cg)
		if m == nil {
			continue
		}
		o, ok := byUID[strings.ReplaceAll(string(m[1]), "_", "-")]
		if !ok {
			continue
		}
		ino, path := procNetns(hostRoot, pid)
		if _, seen := out[ino]; seen || ino == 0 {
			continue
		}
		o.NetnsPath = path
		out[ino] = o
	}
	return out
}

func itoa(n int) string { return strconv.Itoa(n) }

func atou32(s string) (uint32, bool) {
	n, err := strconv.ParseUint(s, 10, 32)
	return uint32(n), err == nil
}
