// Package netns knows which network namespaces exist, what to call them, and
// how to run code or ask netlink/sysctl questions inside one of them.
//
// BPF reports a namespace only as its inode number (net->ns.inum); this
// package turns that into something a person recognises ("host", an
// `ip netns` name, or the process living there) and into a handle to act in.
package netns

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pktdrop/pktdrop/internal/pods"
)

// RunDir is where `ip netns add` bind-mounts named namespaces.
const RunDir = "/var/run/netns"

// refreshInterval limits how often a lookup miss rescans /proc: drops from a
// short-lived namespace can arrive at a high rate.
const refreshInterval = time.Second

// Info describes one network namespace.
type Info struct {
	Inode uint32
	Name  string // "host", an ip-netns name, "self" or "pid 1234 (nginx)"
	Path  string // nsfs path that can be opened to enter it
}

// Owners names who lives in a namespace (pods.Index): asked before
// anything else, from its cache only.
type Owners interface {
	Lookup(inode uint32) (pods.Owner, bool)
}

// Options says where the node's namespaces are.
type Options struct {
	HostRoot string // the node's / as seen here: "/" or, in a debug pod, /host
	Owners   Owners // nil: no pod or container names
}

// RunDirs are the directories `ip netns` and CNI plugins put namespaces
// in, under hostRoot: both, as an image built from scratch has no
// /var/run -> /run link (duplicates of one directory are dropped).
func RunDirs(hostRoot string) []string {
	var out []string
	seen := map[[2]uint64]bool{}
	for _, d := range []string{RunDir, "/run/netns"} {
		p := pods.HostPath(hostRoot, d)
		var st unix.Stat_t
		if unix.Stat(p, &st) == nil {
			k := [2]uint64{st.Dev, st.Ino}
			if seen[k] {
				continue
			}
			seen[k] = true
		}
		out = append(out, p)
	}
	return out
}

// Resolver caches inode -> Info. It is safe for concurrent use.
type Resolver struct {
	runDirs []string
	procDir string
	owners  Owners
	now     func() time.Time

	mu          sync.Mutex
	byInode     map[uint32]Info
	lastRefresh time.Time

	devMu sync.Mutex
	devs  map[devKey]devEntry
}

// NewResolver returns a resolver over the system's namespaces, populated by
// an initial scan.
func NewResolver() *Resolver { return NewResolverAt(Options{}) }

// NewResolverAt is NewResolver for the node under o.HostRoot.
func NewResolverAt(o Options) *Resolver {
	r := newResolver(RunDirs(o.HostRoot)[0], pods.HostPath(o.HostRoot, "/proc"))
	r.runDirs = RunDirs(o.HostRoot)
	r.owners = o.Owners
	r.Refresh()
	return r
}

func newResolver(runDir, procDir string) *Resolver {
	return &Resolver{
		runDirs: []string{runDir},
		procDir: procDir,
		now:     time.Now,
		byInode: map[uint32]Info{},
		devs:    map[devKey]devEntry{},
	}
}

// Refresh rescans named namespaces and processes. Unreadable entries are
// skipped: a partial map is more useful than none.
func (r *Resolver) Refresh() {
	m := map[uint32]Info{}
	put := func(i Info) {
		if _, ok := m[i.Inode]; !ok && i.Inode != 0 {
			m[i.Inode] = i
		}
	}
	// Order is priority: the first name given to an inode sticks.
	if ino, p := r.hostNetns(); ino != 0 {
		put(Info{ino, "host", p})
	}
	for _, dir := range r.runDirs {
		for _, n := range namedIn(dir) {
			p := filepath.Join(dir, n)
			if ino, err := Inode(p); err == nil {
				put(Info{ino, n, p})
			}
		}
	}
	// /proc/1 may be unreadable (e.g. inside a container); our own namespace
	// still deserves a name, but not a claim that it is the host's.
	// thread-self, not self: /proc/self follows the main thread, which may
	// itself be inside Do at the moment the path is opened.
	selfPath := filepath.Join(r.procDir, "thread-self/ns/net")
	if ino, err := Inode(selfPath); err == nil {
		put(Info{ino, "self", selfPath})
	}
	for _, pid := range pids(r.procDir) {
		p := filepath.Join(r.procDir, strconv.Itoa(pid), "ns/net")
		ino, err := linkInode(p)
		if err != nil {
			continue
		}
		if _, ok := m[ino]; ok {
			continue
		}
		name := "pid " + strconv.Itoa(pid)
		if comm, err := os.ReadFile(filepath.Join(r.procDir, strconv.Itoa(pid), "comm")); err == nil {
			name += " (" + strings.TrimSpace(string(comm)) + ")"
		}
		put(Info{ino, name, p})
	}

	r.mu.Lock()
	r.byInode = m
	r.lastRefresh = r.now()
	r.mu.Unlock()
}

// hostNetns finds the node's namespace: init's, or, where init's cannot
// be read (a container without CAP_SYS_PTRACE over it), kthreadd's, as
// kernel threads always live in the initial namespace.
func (r *Resolver) hostNetns() (uint32, string) {
	p := filepath.Join(r.procDir, "1/ns/net")
	if ino, err := Inode(p); err == nil && ino != 0 {
		return ino, p
	}
	if ino, err := linkInode(p); err == nil && ino != 0 {
		return ino, p
	}
	comm, _ := os.ReadFile(filepath.Join(r.procDir, "2/comm"))
	if strings.TrimSpace(string(comm)) != "kthreadd" {
		return 0, ""
	}
	p = filepath.Join(r.procDir, "2/ns/net")
	if ino, err := Inode(p); err == nil && ino != 0 {
		return ino, p
	}
	if ino, err := linkInode(p); err == nil && ino != 0 {
		return ino, p
	}
	return 0, ""
}

// Owner is the pod or container living in inode, if any is known.
func (r *Resolver) Owner(inode uint32) (pods.Owner, bool) {
	if r.owners == nil || inode == 0 {
		return pods.Owner{}, false
	}
	return r.owners.Lookup(inode)
}

// Lookup returns what is known about inode, rescanning at most once per
// second when it is not cached.
func (r *Resolver) Lookup(inode uint32) (Info, bool) {
	r.mu.Lock()
	i, ok := r.byInode[inode]
	stale := r.now().Sub(r.lastRefresh) >= refreshInterval
	r.mu.Unlock()
	if ok || !stale || inode == 0 {
		return i, ok
	}
	r.Refresh()
	r.mu.Lock()
	defer r.mu.Unlock()
	i, ok = r.byInode[inode]
	return i, ok
}

// Name is Lookup for display: the namespace's name, or its inode number
// when nothing names it any more.
func (r *Resolver) Name(inode uint32) string {
	if inode == 0 {
		return "-"
	}
	if o, ok := r.Owner(inode); ok {
		return o.String()
	}
	if i, ok := r.Lookup(inode); ok {
		return i.Name
	}
	return "netns:" + strconv.FormatUint(uint64(inode), 10)
}

// All returns the cached namespaces sorted by name.
func (r *Resolver) All() []Info {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Info, 0, len(r.byInode))
	for _, i := range r.byInode {
		out = append(out, i)
	}
	slices.SortFunc(out, func(a, b Info) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Inode stats an nsfs file (following symlinks) for its inode.
func Inode(path string) (uint32, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, err
	}
	return uint32(st.Ino), nil
}

// linkInode reads "net:[4026531840]" from a /proc/PID/ns/net link: cheaper
// than stat across thousands of processes.
func linkInode(path string) (uint32, error) {
	target, err := os.Readlink(path)
	if err != nil {
		return 0, err
	}
	s, ok := strings.CutPrefix(target, "net:[")
	if !ok || !strings.HasSuffix(s, "]") {
		return 0, fmt.Errorf("%s: unexpected link %q", path, target)
	}
	n, err := strconv.ParseUint(strings.TrimSuffix(s, "]"), 10, 32)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return uint32(n), nil
}

func namedIn(dir string) []string {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var names []string
	for _, e := range ents {
		if !e.IsDir() {
			names = append(names, e.Name())
		}
	}
	return names
}

// pids lists processes in numeric order so the lowest pid names a namespace:
// usually the one that created it.
func pids(procDir string) []int {
	ents, err := os.ReadDir(procDir)
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range ents {
		if pid, err := strconv.Atoi(e.Name()); err == nil && pid > 0 {
			out = append(out, pid)
		}
	}
	slices.Sort(out)
	return out
}
