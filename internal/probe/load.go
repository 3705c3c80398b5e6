package probe

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"

	"github.com/pktdrop/pktdrop/gen"
)

// Config says what to load.
type Config struct {
	// Constants are BPF `const volatile` settings by name (the filters).
	Constants map[string]any
	// Path enables the path probes; without it only drops are seen.
	Path bool
	// Trace reports followed packets that were not dropped.
	Trace bool
	// RingBufSize is the event ring buffer size in bytes (power of two).
	RingBufSize uint32
	// Force restricts a point to one mechanism (tests of fallbacks), as
	// "kfree_skb=tracepoint".
	Force map[string]Mechanism
}

// Status is what became of one probe point.
type Status struct {
	Point     string
	Why       string
	Mechanism Mechanism // empty when nothing could be attached
	Via       string    // the tracepoint or function used, when not the point itself
	Failures  []string  // one line per mechanism that was tried and failed
	Skipped   string    // why the point was not tried at all
}

// Set is everything pktdrop holds in the kernel: closing it detaches all.
type Set struct {
	Events   *ebpf.Map
	Counters *ebpf.Map
	Tracks   *ebpf.Map
	Status   []Status

	spec  *ebpf.CollectionSpec
	maps  map[string]*ebpf.Map
	vars  map[string]*ebpf.Variable
	progs []*ebpf.Program
	links []link.Link
	nf    *nfState

	gates  gates
	loadMu sync.Mutex
	loaded map[string]*loadResult // prefetched loads not yet handed out
}

// SetNetns changes the namespace the --netns filter passes (it must have
// been on at load): a followed pod moved to a new sandbox.
func (s *Set) SetNetns(inode uint32) error {
	v, ok := s.vars["netns_want"]
	if !ok {
		return errors.New("set netns filter: no netns_want variable")
	}
	if err := v.Set(inode); err != nil {
		return fmt.Errorf("set netns filter: %w", err)
	}
	return nil
}

// Load loads the maps and attaches every probe point it can.
func Load(cfg Config) (*Set, error) {
	if err := rlimit.RemoveMemlock(); err != nil {
		// Where the kernel accounts BPF memory to cgroups, the probe
		// behind this fails only when bpf() itself is refused.
		return nil, fmt.Errorf("raise memlock limit: %w: grant CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN; a container "+
			"runtime's default seccomp profile allows bpf() only with CAP_SYS_ADMIN), and on kernels before 5.11 "+
			"CAP_SYS_RESOURCE or a higher RLIMIT_MEMLOCK (ulimit -l unlimited)", err)
	}
	spec, err := gen.LoadPktdrop()
	if err != nil {
		return nil, fmt.Errorf("load embedded BPF object: %w", err)
	}
	consts := map[string]any{"cfg_path": boolByte(cfg.Path), "cfg_trace": boolByte(cfg.Trace)}
	prios, err := bracketPriorities()
	if err != nil {
		return nil, err
	}
	consts["cfg_nf_prio"] = prios
	consts["cfg_pf_ipv4"], consts["cfg_pf_ipv6"] = uint8(unix.NFPROTO_IPV4), uint8(unix.NFPROTO_IPV6)
	for k, v := range cfg.Constants {
		consts[k] = v
	}
	for name, v := range consts {
		vs, ok := spec.Variables[name]
		if !ok {
			return nil, fmt.Errorf("set %s: no such BPF variable", name)
		}
		if err := vs.Set(v); err != nil {
			return nil, fmt.Errorf("set %s: %w", name, err)
		}
	}
	if v, ok := consts["cfg_netns"].(uint32); ok {
		if err := spec.Variables["netns_want"].Set(v); err != nil {
			return nil, fmt.Errorf("set netns_want: %w", err)
		}
	}
	if cfg.RingBufSize != 0 {
		spec.Maps["events"].MaxEntries = cfg.RingBufSize
	}
	// The reader is woken once an eighth of the ring is used and polls on
	// a timer below that (tracer.pollInterval): a wakeup per event would
	// cost more than the event at high rates.
	if err := spec.Variables["cfg_wakeup_bytes"].Set(uint64(spec.Maps["events"].MaxEntries / 8)); err != nil {
		return nil, fmt.Errorf("set cfg_wakeup_bytes: %w", err)
	}

	mapsOnly := &ebpf.CollectionSpec{Maps: spec.Maps, Variables: spec.Variables, Types: spec.Types}
	coll, err := ebpf.NewCollectionWithOptions(mapsOnly, ebpf.CollectionOptions{Cache: kernelBTF()})
	if err != nil {
		return nil, fmt.Errorf("create BPF maps: %w", explain(err))
	}
	s := &Set{spec: spec, maps: coll.Maps, Events: coll.Maps["events"], Counters: coll.Maps["counters"],
		Tracks: coll.Maps["tracks"], vars: coll.Variables, loaded: map[string]*loadResult{}}
	s.prefetch(cfg)

	for _, p := range Points() {
		st := Status{Point: p.Name, Why: p.Why}
		if p.Path && !cfg.Path {
			st.Skipped = "path probes off"
			s.Status = append(s.Status, st)
			continue
		}
		for _, o := range p.options {
			if f, ok := cfg.Force[p.Name]; ok && f != o.mech {
				continue
			}
			if o.fits != nil {
				if ok, why := o.fits(); !ok {
					st.Failures = append(st.Failures, fmt.Sprintf("%s: %s", o.mech, why))
					continue
				}
			}
			// The reason a failed load would give, without the load.
			if why := s.gates.check(o); why != "" {
				st.Failures = append(st.Failures, fmt.Sprintf("%s: %s", o.mech, why))
				continue
			}
			if err := s.attach(o); err != nil {
				st.Failures = append(st.Failures, fmt.Sprintf("%s: %s", o.mech, classify(o.mech, err)))
				continue
			}
			st.Mechanism = o.mech
			if t := o.progs[0].target; t != p.Name && !strings.HasSuffix(t, "/"+p.Name) {
				st.Via = t
			}
			break
		}
		if st.Mechanism == "" && p.Required {
			s.Close()
			return nil, fmt.Errorf("attach %s: no mechanism works on this kernel (%s)", p.Name, strings.Join(st.Failures, "; "))
		}
		s.Status = append(s.Status, st)
	}
	return s, nil
}

// attach loads and attaches all programs of an option, or none of them.
func (s *Set) attach(o option) error {
	var progs []*ebpf.Program
	var links []link.Link
	undo := func() {
		for _, l := range links {
			l.Close()
		}
		for _, p := range progs {
			p.Close()
		}
	}
	for _, pr := range o.progs {
		p, err := s.loadProgram(pr.name)
		if err != nil {
			undo()
			return err
		}
		progs = append(progs, p)
		l, err := attachProgram(o.mech, pr, p)
		if err != nil {
			undo()
			return err
		}
		links = append(links, l)
	}
	s.progs = append(s.progs, progs...)
	s.links = append(s.links, links...)
	return nil
}

// loadProgram loads one program against the shared maps. Programs are
// loaded one by one so that one the kernel refuses does not sink the rest.
// A program prefetched (being loaded in the background) is waited for.
func (s *Set) loadProgram(name string) (*ebpf.Program, error) {
	s.loadMu.Lock()
	r := s.loaded[name]
	delete(s.loaded, name) // each load is handed out once
	s.loadMu.Unlock()
	if r != nil {
		<-r.done
		return r.prog, r.err
	}
	return s.loadNow(name)
}

func (s *Set) loadNow(name string) (*ebpf.Program, error) {
	if s.spec == nil {
		return nil, fmt.Errorf("load %s: the BPF object was released after start-up", name)
	}
	ps, ok := s.spec.Programs[name]
	if !ok {
		return nil, fmt.Errorf("no program %s in BPF object", name)
	}
	one := &ebpf.CollectionSpec{Maps: s.spec.Maps, Variables: s.spec.Variables, Types: s.spec.Types,
		Programs: map[string]*ebpf.ProgramSpec{name: ps}}
	// One BTF cache for every load: without it each program's CO-RE
	// relocations decode the kernel's BTF afresh.
	opts := ebpf.CollectionOptions{MapReplacements: s.maps, Cache: kernelBTF()}
	module := inModule()[name]
	defer lockBTF(module)()
	if !module {
		// CO-RE against vmlinux alone: by default cilium/ebpf also
		// searches every module's BTF, which is what must not run
		// beside another load (see moduleBTF).
		kernel, err := kernelBTF().Kernel()
		if err != nil {
			return nil, fmt.Errorf("load kernel BTF: %w", err)
		}
		opts.Programs.KernelTypes = kernel
	}
	coll, err := ebpf.NewCollectionWithOptions(one, opts)
	if err != nil {
		return nil, explain(err)
	}
	p := coll.DetachProgram(name)
	coll.Close()
	return p, nil
}

func attachProgram(m Mechanism, pr prog, p *ebpf.Program) (link.Link, error) {
	switch m {
	case TPBTF, Fentry:
		return link.AttachTracing(link.TracingOptions{Program: p})
	case Tracepoint:
		group, name, _ := strings.Cut(pr.target, "/")
		return link.Tracepoint(group, name, p, nil)
	case Kprobe:
		if pr.ret {
			return link.Kretprobe(pr.target, p, nil)
		}
		return link.Kprobe(pr.target, p, nil)
	}
	return nil, fmt.Errorf("unknown mechanism %q", m)
}

// ReleaseSpec drops the parsed BPF object once every program is loaded:
// its instructions and metadata are over ten megabytes of heap that a
// long run does not need (netfilter links for new namespaces reuse the
// loaded programs).
func (s *Set) ReleaseSpec() {
	s.loadMu.Lock()
	pending := make([]*loadResult, 0, len(s.loaded))
	for _, r := range s.loaded {
		pending = append(pending, r)
	}
	s.loadMu.Unlock()
	for _, r := range pending { // prefetches nobody used still read it
		<-r.done
	}
	s.spec = nil
}

// Has tells whether a point got a mechanism.
func (s *Set) Has(point string) bool {
	for _, st := range s.Status {
		if st.Point == point {
			return st.Mechanism != ""
		}
	}
	return false
}

// Close detaches and frees everything. Nothing is pinned, so the kernel
// also frees it all when the process dies, even by SIGKILL.
func (s *Set) Close() error {
	var errs []error
	if s.nf != nil {
		errs = append(errs, s.nf.close())
	}
	for _, l := range s.links {
		errs = append(errs, l.Close())
	}
	for _, p := range s.progs {
		errs = append(errs, p.Close())
	}
	for _, m := range s.maps {
		errs = append(errs, m.Close())
	}
	// Prefetched programs nobody asked for.
	s.loadMu.Lock()
	left := s.loaded
	s.loaded = nil
	s.loadMu.Unlock()
	for _, r := range left {
		<-r.done
		if r.prog != nil {
			errs = append(errs, r.prog.Close())
		}
	}
	return errors.Join(errs...)
}

func boolByte(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

// explain turns the kernel's bare errno into advice where it is usually
// a missing privilege.
func explain(err error) error {
	if errors.Is(err, os.ErrPermission) && os.Geteuid() != 0 {
		return fmt.Errorf("%w (pktdrop needs root or CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN)", err)
	}
	return err
}

// classify says in a few words why the kernel refused a mechanism; the
// raw errors (tracefs paths, verifier logs) mean little to a user.
func classify(m Mechanism, err error) string {
	msg := err.Error()
	switch {
	case m == Kprobe && (errors.Is(err, os.ErrNotExist) || errors.Is(err, ebpf.ErrNotSupported)):
		if strings.Contains(msg, "kprobe_events") || errors.Is(err, ebpf.ErrNotSupported) {
			return "kernel has no kprobes (built without CONFIG_KPROBES)"
		}
		return "function not found (inlined or renamed in this kernel)"
	case m == Fentry && errors.Is(err, os.ErrPermission):
		return "kernel refuses fentry/fexit programs (EPERM; lockdown or no BPF trampoline)"
	case errors.Is(err, ebpf.ErrNotSupported):
		return "not supported by this kernel"
	case strings.Contains(msg, "verifier") || strings.Contains(msg, "load program"):
		return "kernel rejected the program: " + oneLine(err)
	}
	return oneLine(err)
}

func oneLine(err error) string {
	s := err.Error()
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 160 {
		s = s[:157] + "..."
	}
	return s
}
