package probe

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/pktdrop/pktdrop/internal/netns"
)

// The netfilter link programs bracket the standard tables: program i sits
// just before table Brackets[i], the last one after all of them. A packet
// that passed bracket i but not i+1 was dropped by that table (or by a
// chain registered between the two priorities).
var bracketTables = []string{"raw", "conntrack", "mangle", "nat", "filter", "security", "nat", ""}

var bracketEnum = []string{"NF_IP_PRI_RAW", "NF_IP_PRI_CONNTRACK", "NF_IP_PRI_MANGLE", "NF_IP_PRI_NAT_DST",
	"NF_IP_PRI_FILTER", "NF_IP_PRI_SECURITY", "NF_IP_PRI_NAT_SRC"}

// bracketPriorities reads the table priorities from the kernel's BTF
// (enum nf_ip_hook_priorities) rather than assuming them.
func bracketPriorities() ([8]int32, error) {
	prioOnce.Do(func() { prioVal, prioErr = readBracketPriorities() })
	return prioVal, prioErr
}

// The priorities are asked for at load, at each netns rescan and by the
// report builder: read them once.
var (
	prioOnce sync.Once
	prioVal  [8]int32
	prioErr  error
)

func readBracketPriorities() ([8]int32, error) {
	var out [8]int32
	moduleBTF.RLock()
	defer moduleBTF.RUnlock()
	spec, err := kernelBTF().Kernel()
	if err != nil {
		return out, fmt.Errorf("load kernel BTF: %w (pktdrop needs a kernel with CONFIG_DEBUG_INFO_BTF=y, /sys/kernel/btf/vmlinux)", err)
	}
	var e *btf.Enum
	if err := spec.TypeByName("nf_ip_hook_priorities", &e); err != nil {
		return out, fmt.Errorf("read netfilter priorities from kernel BTF: %w", err)
	}
	vals := map[string]int64{}
	for _, v := range e.Values {
		vals[v.Name] = int64(v.Value)
		if e.Signed {
			vals[v.Name] = int64(int32(v.Value))
		}
	}
	for i, name := range bracketEnum {
		v, ok := vals[name]
		if !ok {
			return out, fmt.Errorf("kernel BTF has no %s", name)
		}
		out[i] = int32(v) - 1
	}
	out[7] = out[6] + 2
	return out, nil
}

// BracketTable names the table that comes after the bracket with
// priority prio, "" when prio is after all tables.
func BracketTable(prios [8]int32, prio int32) string {
	for i, p := range prios {
		if p == prio {
			return bracketTables[i]
		}
	}
	return ""
}

// Priorities returns the bracket priorities in use.
func Priorities() ([8]int32, error) { return bracketPriorities() }

type nfState struct {
	mu       sync.Mutex
	progs    []*ebpf.Program
	links    map[uint64][]link.Link // by netns inode
	attached map[uint64]nsPlan      // netns inode: which brackets it has
	closed   bool
	used     bool // some namespace got links
}

func (n *nfState) close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.closed = true
	var errs []error
	for _, ls := range n.links {
		for _, l := range ls {
			errs = append(errs, l.Close())
		}
	}
	for _, p := range n.progs {
		errs = append(errs, p.Close())
	}
	return errors.Join(errs...)
}

// AttachNetfilter brackets the netfilter hooks with links in each network
// namespace (links belong to the namespace that creates them), where its
// tables make them tell something (planNamespace). Used where nf_hook_slow
// cannot be probed. Links return ACCEPT and change nothing. Called again
// for rescans: a namespace gets the brackets its new chains need; none
// are taken away.
func (s *Set) AttachNetfilter(nsPaths []string) error {
	first := s.nf == nil
	st := Status{Point: "netfilter hooks", Why: "which hook and table a packet reached (no nf_hook_slow)"}
	if first {
		defer func() { s.Status = append(s.Status, st) }()
		s.nf = &nfState{attached: map[uint64]nsPlan{}, links: map[uint64][]link.Link{}}
		for i := 0; i < 8; i++ {
			p, err := s.loadProgram(nfProgName(i))
			if err != nil {
				st.Failures = append(st.Failures, fmt.Sprintf("%s: %s", NFLink, classify(NFLink, err)))
				return fmt.Errorf("load netfilter program: %w", err)
			}
			s.nf.progs = append(s.nf.progs, p)
		}
	}
	n := s.nf
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed || len(n.progs) < 8 {
		return nil
	}
	prios, err := bracketPriorities()
	if err != nil {
		return err
	}
	type job struct {
		path    string
		ino     uint64
		have    nsPlan // attached before
		now     nsPlan // attached after
		existed bool
		links   []link.Link
		err     error
	}
	var jobs []*job
	seen := map[uint64]bool{}
	for _, path := range nsPaths {
		var sb unix.Stat_t
		if err := unix.Stat(path, &sb); err != nil || seen[sb.Ino] || n.attached[sb.Ino] == fullPlan {
			continue // gone already, or done
		}
		seen[sb.Ino] = true
		have, existed := n.attached[sb.Ino]
		jobs = append(jobs, &job{path: path, ino: sb.Ino, have: have, existed: existed})
	}
	// Namespaces are attached in parallel: each link costs the kernel a
	// hook registration, and there are up to 80 per namespace.
	work := make(chan *job, len(jobs))
	for _, j := range jobs {
		work <- j
	}
	close(work)
	var wg sync.WaitGroup
	for w := 0; w < min(runtime.NumCPU(), len(jobs)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range work {
				j.now = j.have
				j.err = netns.DoPath(j.path, func() error {
					want := planNamespace(j.path, prios)
					for f, fam := range nfFamilies {
						for hook := range want[f] {
							for i, p := range n.progs {
								bit := uint8(1) << i
								if want[f][hook]&bit == 0 || j.now[f][hook]&bit != 0 {
									continue
								}
								l, err := attachBracket(p, fam, link.NetfilterInetHook(hook), prios[i], i == len(prios)-1)
								if err != nil {
									return err
								}
								j.links = append(j.links, l)
								j.now[f][hook] |= bit
							}
						}
					}
					return nil
				})
			}
		}()
	}
	wg.Wait()
	var failed []string
	tried := 0
	for _, j := range jobs {
		n.links[j.ino] = append(n.links[j.ino], j.links...)
		if j.existed {
			n.attached[j.ino] = j.now // a rescan: keep what it added
			continue
		}
		tried++
		if j.err != nil {
			failed = append(failed, fmt.Sprintf("%s: %s", j.path, oneLine(j.err)))
			continue
		}
		n.attached[j.ino] = j.now
		n.used = true
	}
	if first && tried > 0 && len(failed) == tried {
		st.Failures = append(st.Failures, fmt.Sprintf("%s: %s", NFLink, strings.Join(failed, "; ")))
		return fmt.Errorf("attach netfilter links: %s", strings.Join(failed, "; "))
	}
	if first {
		st.Mechanism = NFLink
		st.Failures = failed
	}
	return nil
}

// KeepNetns closes the links of namespaces not in keep: gone ones (a link
// does not keep its namespace alive, but its kernel memory stays until
// closed) and ones no longer wanted. It returns how many were released.
func (s *Set) KeepNetns(keep map[uint64]bool) int {
	if s.nf == nil {
		return 0
	}
	n := s.nf
	n.mu.Lock()
	defer n.mu.Unlock()
	released := 0
	for ino, ls := range n.links {
		if keep[ino] {
			continue
		}
		for _, l := range ls {
			_ = l.Close()
		}
		delete(n.links, ino)
		delete(n.attached, ino)
		released++
	}
	return released
}

// NetfilterNetns tells whether namespace ino has its brackets. It is asked
// from the event path, so while an attach holds the lock it answers yes
// rather than wait: that attach is the rescan an answer of no would ask for.
func (s *Set) NetfilterNetns(ino uint64) bool {
	if s.nf == nil {
		return false
	}
	if !s.nf.mu.TryLock() {
		return true
	}
	defer s.nf.mu.Unlock()
	_, ok := s.nf.attached[ino]
	return ok
}

// NetfilterLinks tells whether netfilter links are in use.
// (once any namespace got them, even if all have gone since).
func (s *Set) NetfilterLinks() bool { return s.nf != nil && s.nf.used }

// bracketSlack is how many priorities next to a bracket pktdrop may use.
const bracketSlack = 8

// attachBracket attaches at prio, or at a neighbouring free priority on the
// same side of the table: the kernel allows one BPF netfilter program per
// priority, and another pktdrop (or tool) may hold it. The step keeps the
// bracket's canonical priority (cfg_nf_prio), so naming the table does not
// depend on which slot was free.
func attachBracket(p *ebpf.Program, fam link.NetfilterProtocolFamily, hook link.NetfilterInetHook, prio int32, after bool) (link.Link, error) {
	var err error
	for k := int32(0); k < bracketSlack; k++ {
		at := prio - k
		if after {
			at = prio + k
		}
		var l link.Link
		l, err = link.AttachNetfilter(link.NetfilterOptions{Program: p, ProtocolFamily: fam, Hook: hook, Priority: at})
		if err == nil {
			return l, nil
		}
		if !errors.Is(err, unix.EBUSY) {
			return nil, err
		}
	}
	return nil, fmt.Errorf("all %d priorities next to %d are taken (other pktdrop instances?): %w", bracketSlack, prio, err)
}

// CoveredNetns is how many namespaces have netfilter links.
func (s *Set) CoveredNetns() int {
	if s.nf == nil {
		return 0
	}
	s.nf.mu.Lock()
	defer s.nf.mu.Unlock()
	return len(s.nf.attached)
}

// BracketPriority is the priority of the bracket before table at hook, the
// inverse of BracketTable: nat has a bracket before each of its two
// priorities, destination NAT (PREROUTING, OUTPUT) and source NAT.
func BracketPriority(prios [8]int32, hook, table string) (int32, bool) {
	for i, t := range bracketTables {
		if t == "" || t != table {
			continue
		}
		if t == "nat" && (i == 3) != (hook == "PREROUTING" || hook == "OUTPUT") {
			continue
		}
		return prios[i], true
	}
	return 0, false
}
