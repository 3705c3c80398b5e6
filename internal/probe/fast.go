package probe

import (
	"errors"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
)

// Start-up time is mostly the kernel verifying programs and the decoding of
// its BTF; this file keeps both to what is needed: one BTF decode shared by
// every load, no load attempts for mechanisms the kernel refuses outright,
// and the programs that will be used loaded in parallel.

// btfCache is the kernel's BTF, decoded once for all loads and lookups.
var btfCache atomic.Pointer[btf.Cache]

func init() { btfCache.Store(btf.NewCache()) }

func kernelBTF() *btf.Cache { return btfCache.Load() }

// moduleBTF serialises every use of module BTF against all other BTF use.
// A module's types are split from vmlinux's, and cilium/ebpf (v0.22)
// decodes the vmlinux types a module refers to without taking vmlinux's
// lock: a module load beside any other load is a concurrent map write, a
// crash. Loads against vmlinux alone (programs that attach to vmlinux and
// relocate against it only, see loadNow) share the read side.
var moduleBTF sync.RWMutex

// inModule tells whether a program attaches to a function in a module.
var inModule = sync.OnceValue(func() map[string]bool {
	m := map[string]bool{}
	for _, p := range Points() {
		for _, o := range p.options {
			for _, pr := range o.progs {
				if pr.module {
					m[pr.name] = true
				}
			}
		}
	}
	return m
})

// lockBTF takes the side of moduleBTF that a load needs (exclusive for a
// program in a module) and returns its unlock.
func lockBTF(module bool) func() {
	if module {
		moduleBTF.Lock()
		return moduleBTF.Unlock
	}
	moduleBTF.RLock()
	return moduleBTF.RUnlock
}

// WarmBTF decodes the kernel's BTF ahead of the first load that needs it.
func WarmBTF() { _ = WithKernelSpec(func(*btf.Spec) error { return nil }) }

// WithKernelSpec calls fn with the running kernel's BTF from the shared
// cache, under the lock that keeps it from module loads (moduleBTF).
func WithKernelSpec(fn func(*btf.Spec) error) error {
	moduleBTF.RLock()
	defer moduleBTF.RUnlock()
	spec, err := kernelBTF().Kernel()
	if err != nil {
		return err
	}
	return fn(spec)
}

// gates remembers, for mechanisms that the kernel refuses as a whole, why:
// a point then records that reason without paying a failed load.
type gates struct {
	once    sync.Once
	fentry  string // "" when fentry/fexit may work
	kprobes string // "" when kprobes may work
}

// kprobeFiles: cilium/ebpf creates kprobes through the kprobe PMU, or
// through tracefs; without any of these there are no kprobes.
var kprobeFiles = []string{"/sys/bus/event_source/devices/kprobe/type", "/sys/kernel/tracing/kprobe_events",
	"/sys/kernel/debug/tracing/kprobe_events"}

func (g *gates) init() {
	g.once.Do(func() {
		found := false
		for _, f := range kprobeFiles {
			if _, err := os.Stat(f); err == nil {
				found = true
				break
			}
		}
		if !found {
			g.kprobes = classify(Kprobe, ebpf.ErrNotSupported)
		}
		g.fentry = fentryRefused()
	})
}

// check returns why o cannot work on this kernel, or "".
func (g *gates) check(o option) string {
	g.init()
	switch o.mech {
	case Fentry:
		return g.fentry
	case Kprobe:
		return g.kprobes
	}
	return ""
}

// fentryRefused loads the smallest fentry program there is. A kernel that
// refuses it (lockdown, no BPF trampoline) refuses every fentry/fexit
// program for the same reason; any other failure (a missing function, say)
// proves nothing, and the points are then tried one by one.
func fentryRefused() string {
	moduleBTF.RLock()
	defer moduleBTF.RUnlock()
	kernel, err := kernelBTF().Kernel()
	if err != nil {
		return ""
	}
	p, err := ebpf.NewProgramWithOptions(&ebpf.ProgramSpec{
		Name: "pd_fentry_probe", Type: ebpf.Tracing, AttachType: ebpf.AttachTraceFEntry, AttachTo: "ip_rcv",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()}, License: "GPL",
	}, ebpf.ProgramOptions{KernelTypes: kernel})
	if err == nil {
		p.Close()
		return ""
	}
	if errors.Is(err, os.ErrPermission) || errors.Is(err, ebpf.ErrNotSupported) {
		return classify(Fentry, err)
	}
	return ""
}

type loadResult struct {
	done chan struct{}
	prog *ebpf.Program
	err  error
}

// prefetch starts loading, on one worker per CPU, the programs the points
// will most likely use: each point's first option that is not gated off,
// and the netfilter link programs when nf_hook_slow has no way to be
// probed. loadProgram hands them out (or waits for them).
func (s *Set) prefetch(cfg Config) {
	s.gates.init()
	var names []string
	nfHook := false
	for _, p := range Points() {
		if p.Path && !cfg.Path {
			continue
		}
		for _, o := range p.options {
			if f, ok := cfg.Force[p.Name]; ok && f != o.mech {
				continue
			}
			if s.gates.check(o) != "" {
				continue
			}
			if o.fits == nil { // a signature check first would cost more than it saves
				for _, pr := range o.progs {
					names = append(names, pr.name)
				}
			}
			if p.Name == "nf_hook_slow" {
				nfHook = true
			}
			break
		}
	}
	if cfg.Path && !nfHook {
		for i := 0; i < 8; i++ {
			names = append(names, nfProgName(i))
		}
	}
	type job struct {
		name string
		r    *loadResult
	}
	work := make(chan job, len(names))
	for _, n := range names {
		if _, dup := s.loaded[n]; dup {
			continue
		}
		r := &loadResult{done: make(chan struct{})}
		s.loaded[n] = r
		work <- job{n, r}
	}
	close(work)
	for w := 0; w < runtime.NumCPU(); w++ {
		go func() {
			for j := range work {
				j.r.prog, j.r.err = s.loadNow(j.name)
				close(j.r.done)
			}
		}()
	}
}

func nfProgName(i int) string { return "on_nf_" + strconv.Itoa(i) }

// ReleaseBTF drops the decoded kernel BTF once everything is loaded: it is
// tens of megabytes that a long run has no use for. A later load decodes
// it again.
func ReleaseBTF() { btfCache.Store(btf.NewCache()) }
