// Package pods names the owner of a network namespace: the Kubernetes pod
// (through the node's CRI runtime, or kubelet's traces on disk when no
// runtime socket is reachable) or the Docker/podman container living there.
//
// Runtimes answer slowly and may hang; the index is filled in the
// background and Lookup only reads the cache, so the event path never
// waits on a runtime.
package pods

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Owner is who lives in a network namespace.
type Owner struct {
	Kind       string // "pod" or "container"
	Namespace  string // pod namespace ("" for a container)
	Name       string
	UID        string // pod UID
	Containers []string
	NetnsPath  string // where the namespace can be opened, under the host root
}

// String is the owner as the text output names it: "pod shop/web",
// "container web".
func (o Owner) String() string {
	if o.Kind == "pod" {
		return "pod " + o.Namespace + "/" + o.Name
	}
	return o.Kind + " " + o.Name
}

// Options says where to look.
type Options struct {
	HostRoot     string // the node's root as pktdrop sees it ("/", or /host in a debug pod)
	CRISocket    string // "" probes the usual sockets
	EngineSocket string // "" probes EngineSockets
}

// CRISockets are the runtime sockets probed, relative to the host root.
var CRISockets = []string{
	"/run/containerd/containerd.sock",
	"/run/k3s/containerd/containerd.sock",
	"/var/run/crio/crio.sock",
	"/var/run/cri-dockerd.sock",
}

// EngineSockets speak Docker's Engine API (podman serves it too).
var EngineSockets = []string{"/var/run/docker.sock", "/run/podman/podman.sock"}

// minRefresh bounds how often a miss may rescan: a drop storm from a
// namespace nobody owns must not hammer the runtime.
const minRefresh = time.Second

// callTimeout bounds one runtime's answer.
const callTimeout = 3 * time.Second

// Index maps netns inodes to owners. Safe for concurrent use.
type Index struct {
	o Options

	mu      sync.RWMutex
	byInode map[uint32]Owner
	last    time.Time
	sources []string // what answered at the last refresh, for messages

	busy atomic.Bool

	// expected are namespaces seen appearing without an owner yet, with
	// when they were first seen (Expect).
	expMu    sync.Mutex
	expected map[uint32]time.Time
	awaiting atomic.Bool
}

// New returns an empty index; call Refresh (or Lookup) to fill it.
func New(o Options) *Index {
	if o.HostRoot == "" {
		o.HostRoot = "/"
	}
	return &Index{o: o, byInode: map[uint32]Owner{}}
}

// A runtime lists a sandbox only once CNI has set its netns up, a moment
// after the netns appeared: a namespace expected to gain an owner is
// rescanned for every expectEvery, for up to expectFor, so that the first
// drop in a new pod already carries its name.
const (
	expectEvery = 100 * time.Millisecond
	expectFor   = 5 * time.Second
)

// Expect says these namespaces exist now: those that appeared since the
// last call and have no owner yet are rescanned for until one answers for
// them or expectFor has passed (the host's own namespaces never gain one).
func (x *Index) Expect(inodes []uint32) {
	now := time.Now()
	x.expMu.Lock()
	seen := make(map[uint32]time.Time, len(inodes))
	for _, ino := range inodes {
		if t, ok := x.expected[ino]; ok || x.expected == nil {
			seen[ino] = t // the first call's namespaces were there before pktdrop
		} else if ino != 0 {
			seen[ino] = now
		}
	}
	x.expected = seen
	x.expMu.Unlock()
	if x.waiting() && x.awaiting.CompareAndSwap(false, true) {
		go x.awaitExpected()
	}
}

// waiting says whether a namespace that appeared lately has no owner yet.
func (x *Index) waiting() bool {
	x.mu.RLock()
	defer x.mu.RUnlock()
	x.expMu.Lock()
	defer x.expMu.Unlock()
	for ino, since := range x.expected {
		if _, owned := x.byInode[ino]; !owned && time.Since(since) < expectFor {
			return true
		}
	}
	return false
}

// awaitExpected rescans while a namespace is waiting for its owner.
func (x *Index) awaitExpected() {
	for {
		for x.waiting() {
			time.Sleep(expectEvery)
			x.Refresh(context.Background())
		}
		x.awaiting.Store(false)
		// An Expect between the last check and the store saw a loop
		// still running.
		if !x.waiting() || !x.awaiting.CompareAndSwap(false, true) {
			return
		}
	}
}

// Lookup answers from the cache. A miss asks for a background refresh,
// at most once per second.
func (x *Index) Lookup(inode uint32) (Owner, bool) {
	x.mu.RLock()
	o, ok := x.byInode[inode]
	stale := time.Since(x.last) >= minRefresh
	x.mu.RUnlock()
	if !ok && stale && inode != 0 {
		x.RefreshAsync()
	}
	return o, ok
}

// RefreshAsync starts a refresh unless one is under way.
func (x *Index) RefreshAsync() {
	if !x.busy.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer x.busy.Store(false)
		x.refresh(context.Background())
	}()
}

// Refresh rescans synchronously (used at start and by tests).
func (x *Index) Refresh(ctx context.Context) {
	for !x.busy.CompareAndSwap(false, true) {
		time.Sleep(10 * time.Millisecond)
	}
	defer x.busy.Store(false)
	x.refresh(ctx)
}

// Sources says which runtimes answered at the last refresh.
func (x *Index) Sources() []string {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.sources
}

func (x *Index) refresh(ctx context.Context) {
	m := map[uint32]Owner{}
	var srcs []string
	put := func(ino uint32, o Owner) {
		if _, ok := m[ino]; !ok && ino != 0 {
			m[ino] = o
		}
	}
	cri := false
	for _, sock := range x.criSockets() {
		owners, err := criOwners(ctx, sock, x.o.HostRoot)
		if err != nil {
			continue
		}
		cri = true
		srcs = append(srcs, "cri:"+sock)
		for ino, o := range owners {
			put(ino, o)
		}
	}
	if !cri {
		// No runtime to ask: kubelet's own traces still name pods.
		for ino, o := range kubeletOwners(x.o.HostRoot) {
			put(ino, o)
		}
	}
	engines := EngineSockets
	if x.o.EngineSocket != "" {
		engines = []string{x.o.EngineSocket}
	}
	for _, s := range engines {
		sock := x.host(s)
		if !isSocket(sock) {
			continue
		}
		owners, err := engineOwners(ctx, sock, x.o.HostRoot)
		if err != nil {
			continue
		}
		srcs = append(srcs, "engine:"+sock)
		for ino, o := range owners {
			put(ino, o)
		}
	}
	x.mu.Lock()
	x.byInode = m
	x.last = time.Now()
	x.sources = srcs
	x.mu.Unlock()
}

// Find returns the namespace inode of the pod namespace/name.
func (x *Index) Find(namespace, name string) (uint32, Owner, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	for ino, o := range x.byInode {
		if o.Kind == "pod" && o.Name == name && (namespace == "" || o.Namespace == namespace) {
			return ino, o, true
		}
	}
	return 0, Owner{}, false
}

// All lists the known owners.
func (x *Index) All() []Owner {
	x.mu.RLock()
	defer x.mu.RUnlock()
	out := make([]Owner, 0, len(x.byInode))
	for _, o := range x.byInode {
		out = append(out, o)
	}
	return out
}

// Paths lists the netns paths of all known owners.
func (x *Index) Paths() []string {
	x.mu.RLock()
	defer x.mu.RUnlock()
	var out []string
	for _, o := range x.byInode {
		if o.NetnsPath != "" {
			out = append(out, o.NetnsPath)
		}
	}
	return out
}

func (x *Index) criSockets() []string {
	if x.o.CRISocket != "" {
		return []string{x.host(x.o.CRISocket)}
	}
	var out []string
	seen := map[uint64]bool{}
	for _, s := range CRISockets {
		p := x.host(s)
		var st unix.Stat_t
		if unix.Stat(p, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFSOCK || seen[st.Ino] {
			continue
		}
		seen[st.Ino] = true
		out = append(out, p)
	}
	return out
}

func (x *Index) host(p string) string { return HostPath(x.o.HostRoot, p) }

// HostPath is p on the node, seen from a process whose view of the node's
// root is hostRoot.
func HostPath(hostRoot, p string) string {
	if hostRoot == "" || hostRoot == "/" {
		return p
	}
	return filepath.Join(hostRoot, p)
}

func isSocket(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode()&os.ModeSocket != 0
}

// inodeOf stats an nsfs path (following links) for its inode.
func inodeOf(p string) uint32 {
	var st unix.Stat_t
	if unix.Stat(p, &st) != nil {
		return 0
	}
	return uint32(st.Ino)
}

// procNetns is the inode of /proc/PID/ns/net under the host root.
func procNetns(hostRoot string, pid int) (uint32, string) {
	if pid <= 0 {
		return 0, ""
	}
	p := HostPath(hostRoot, filepath.Join("/proc", itoa(pid), "ns/net"))
	target, err := os.Readlink(p)
	if err == nil {
		if s, ok := strings.CutPrefix(target, "net:["); ok {
			if n, ok := atou32(strings.TrimSuffix(s, "]")); ok {
				return n, p
			}
		}
	}
	return inodeOf(p), p
}
