package session

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"

	"github.com/pktdrop/pktdrop/internal/filter"
	"github.com/pktdrop/pktdrop/internal/netns"
	"github.com/pktdrop/pktdrop/internal/nftwatch"
	"github.com/pktdrop/pktdrop/internal/nswatch"
	"github.com/pktdrop/pktdrop/internal/pods"
	"github.com/pktdrop/pktdrop/internal/rules"
	"github.com/pktdrop/pktdrop/internal/tracer"
)

// Node says where the node's namespaces and runtimes are, and which pod to
// follow.
type Node struct {
	HostRoot     string // the node's / ("/", /host in a debug pod)
	CRISocket    string // "" probes the usual sockets
	EngineSocket string // Docker/podman API; "" probes the usual sockets
	Pod          string // NAME or NS/NAME
	PodNamespace string
}

// podSpec splits --pod and --pod-namespace.
func (n Node) podSpec() (ns, name string) {
	ns, name = n.PodNamespace, n.Pod
	if a, b, ok := strings.Cut(n.Pod, "/"); ok {
		ns, name = a, b
	}
	return ns, name
}

// startPods fills the pod index (at once when --pod needs it, otherwise in
// the background) and resolves --pod into the --netns filter.
func startPods(ctx context.Context, n Node, fo *filter.Options) (*pods.Index, error) {
	idx := pods.New(pods.Options{HostRoot: n.HostRoot, CRISocket: n.CRISocket, EngineSocket: n.EngineSocket})
	if n.Pod == "" {
		idx.RefreshAsync()
		return idx, nil
	}
	if fo.Netns != "" {
		return nil, &filter.UsageError{Flag: "pod", Value: n.Pod, Msg: "--pod and --netns cannot be combined"}
	}
	ns, name := n.podSpec()
	if name == "" {
		return nil, &filter.UsageError{Flag: "pod", Value: n.Pod, Msg: "want NAME or NAMESPACE/NAME"}
	}
	idx.Refresh(ctx)
	ino, err := findPod(idx, ns, name)
	if err != nil {
		return nil, &filter.UsageError{Flag: "pod", Value: n.Pod, Msg: err.Error()}
	}
	fo.Netns = strconv.FormatUint(uint64(ino), 10)
	return idx, nil
}

// findPod resolves a pod to its namespace inode; a name found in several
// namespaces needs --pod-namespace.
func findPod(idx *pods.Index, ns, name string) (uint32, error) {
	ino, o, ok := idx.Find(ns, name)
	if !ok {
		src := "no container runtime answered (give --cri-socket, or --host-root where the node is mounted)"
		if s := idx.Sources(); len(s) > 0 {
			src = "asked " + strings.Join(s, ", ")
		}
		want := name
		if ns != "" {
			want = ns + "/" + name
		}
		return 0, fmt.Errorf("no running pod %s (%s)", want, src)
	}
	if ns == "" {
		for _, other := range idx.All() {
			if other.Name == name && other.Namespace != o.Namespace {
				return 0, fmt.Errorf("pod %s is in namespaces %s and %s: give --pod-namespace", name, o.Namespace, other.Namespace)
			}
		}
	}
	return ino, nil
}

// follower keeps coverage in step with namespaces that come and go:
// netfilter links and --rules trace tables for new ones, released for gone
// ones, and the --pod filter on the pod's current sandbox.
type follower struct {
	e      *enricher
	tr     *tracer.Tracer
	attr   *rules.Attributor // nil without --rules
	f      *filter.Filter
	node   Node
	stderr io.Writer
	w      *nswatch.Watcher
	nft    *nftwatch.Watcher // nil where nf_hook_slow is probed

	mu sync.Mutex
}

func (e *enricher) follow(ctx context.Context, tr *tracer.Tracer, attr *rules.Attributor, f *filter.Filter, n Node, stderr io.Writer) error {
	fl := &follower{e: e, tr: tr, attr: attr, f: f, node: n, stderr: stderr}
	w, err := nswatch.Start(ctx, netns.RunDirs(n.HostRoot), fl.sync)
	if err != nil {
		return err
	}
	fl.w = w
	if tr.NetfilterLinks() {
		// Links bracket the chains a namespace has: a chain added later
		// is heard and its namespace replanned before a user can send a
		// packet through it. iptables-legacy sends no notification: there
		// the first drop lacking its hook asks for the replan.
		fl.nft = nftwatch.New(func(path string) {
			if ino, err := netns.Inode(path); err == nil {
				e.nf.Forget(ino)
			}
			_ = tr.AddNetns([]string{path})
		})
		go func() {
			<-ctx.Done()
			fl.nft.Close()
		}()
		fl.watchTables(e.namespaces(f))
		e.unplaced = func(ino uint32) { w.Unknown(ino) }
	}
	e.names.seen = func(ino uint32) {
		if !tr.Covers(uint64(ino)) && (e.want.Load() == 0 || e.want.Load() == ino) {
			w.Unknown(ino)
		}
	}
	return nil
}

func (fl *follower) sync() {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	e := fl.e
	e.res.Refresh()
	all := e.res.All()
	inodes := make([]uint32, len(all))
	for i, in := range all {
		inodes[i] = in.Inode
	}
	e.pods.Expect(inodes)
	if fl.node.Pod != "" {
		e.pods.Refresh(context.Background())
		ns, name := fl.node.podSpec()
		if ino, err := findPod(e.pods, ns, name); err == nil && ino != e.want.Load() {
			if err := fl.tr.SetNetns(ino); err != nil {
				fmt.Fprintf(fl.stderr, "pktdrop: follow pod %s: %v\n", fl.node.Pod, err)
			} else {
				e.want.Store(ino)
				fmt.Fprintf(fl.stderr, "pktdrop: pod %s is now in netns %d\n", fl.node.Pod, ino)
			}
		}
	} else {
		e.pods.RefreshAsync()
	}
	paths := e.namespaces(fl.f)
	_ = fl.tr.AddNetns(paths)
	if fl.attr != nil {
		if err := fl.attr.AddNetns(paths); err != nil {
			fmt.Fprintf(fl.stderr, "pktdrop: --rules: %v\n", err)
		}
	}
	keep := map[uint64]bool{}
	for _, p := range paths {
		if ino, err := netns.Inode(p); err == nil {
			keep[uint64(ino)] = true
		}
	}
	fl.tr.KeepNetns(keep)
	if fl.nft != nil {
		fl.watchTables(paths)
		fl.nft.Keep(keep)
	}
	if fl.attr != nil {
		_ = fl.attr.Keep(keep)
	}
}

// watchTables follows table changes in namespaces not followed yet.
func (fl *follower) watchTables(paths []string) {
	if err := fl.nft.Add(paths); err != nil {
		fmt.Fprintf(fl.stderr, "pktdrop: %v (a new chain there is bracketed after its first drop)\n", err)
	}
}
