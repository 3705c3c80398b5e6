package rules

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/pktdrop/pktdrop/internal/netns"
	"github.com/pktdrop/pktdrop/internal/report"
	"github.com/pktdrop/pktdrop/internal/xtables"
)

// rereadEvery bounds how often one namespace's counters are read: each
// read runs iptables-legacy-save, and in a storm the ledger already holds
// the counts of packets whose reports come next.
const rereadEvery = 50 * time.Millisecond

// legacy names iptables-legacy rules from their counters (see xtables).
type legacy struct {
	mu     sync.Mutex
	family uint8
	tables map[legacyKey]*legacyNS
	// paths are the namespaces without legacy tables when last looked at,
	// looked at again (at most every rereadEvery) when a drop there might
	// be theirs: tables made after the namespace (a pod's rules come after
	// CNI made its netns) send no notification.
	paths   map[uint32]string
	checked map[legacyKey]time.Time
}

type legacyKey struct {
	netns  uint32
	family int
}

type legacyNS struct {
	path   string
	ledger *xtables.Ledger
	read   time.Time
	err    error // the last read's failure, said in the report
}

// startLegacy reads the counters of every namespace's legacy tables: the
// base that later packets move them from. Namespaces without legacy
// tables cost one small file read.
func startLegacy(nsPaths []string, family uint8) (*legacy, []string) {
	l := &legacy{family: family, tables: map[legacyKey]*legacyNS{}, paths: map[uint32]string{}, checked: map[legacyKey]time.Time{}}
	return l, l.add(nsPaths)
}

// add reads the counters of namespaces not known yet.
func (l *legacy) add(nsPaths []string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var notes []string
	for _, path := range nsPaths {
		ino, err := netns.Inode(path)
		if err != nil {
			continue
		}
		if _, known := l.paths[ino]; known {
			continue
		}
		l.paths[ino] = path
		for _, fam := range []int{4, 6} {
			if l.family != 0 && int(l.family) != fam {
				continue
			}
			k := legacyKey{ino, fam}
			if l.tables[k] != nil {
				continue
			}
			rs, err := xtables.Read(path, fam)
			if errors.Is(err, xtables.ErrNoTool) {
				notes = append(notes, fmt.Sprintf("netns %s has iptables-legacy tables, but their rules cannot be named: %v", path, err))
			}
			if rs == nil || err != nil {
				l.checked[k] = time.Now()
				continue
			}
			l.tables[k] = &legacyNS{path: path, ledger: xtables.NewLedger(rs), read: time.Now()}
		}
	}
	return notes
}

// keep forgets the namespaces not in keep.
func (l *legacy) keep(keep map[uint64]bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for ino := range l.paths {
		if !keep[uint64(ino)] {
			delete(l.paths, ino)
		}
	}
	for k := range l.tables {
		if _, ok := l.paths[k.netns]; !ok {
			delete(l.tables, k)
		}
	}
	for k := range l.checked {
		if _, ok := l.paths[k.netns]; !ok {
			delete(l.checked, k)
		}
	}
}

// attach names the legacy rule or policy behind r's drop and the legacy
// nat rules behind its translations. It reports whether it settled r.
func (l *legacy) attach(r *report.Report) bool {
	if l == nil {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	fam := 4
	if r.Family == "ipv6" {
		fam = 6
	}
	settled := false
	// nf_tables frees what it drops in nft_do_chain (x_tables leaves it to
	// nf_hook_slow): such a drop is not the legacy tables', whatever their
	// counters did meanwhile.
	if r.Kind == "drop" && r.Cause == "netfilter" && r.Verdict == "" && !strings.HasPrefix(r.Location, "nft_do_chain") {
		if ns := l.fresh(legacyKey{r.Netns, fam}); ns != nil {
			settled = l.claimDrop(r, ns)
		}
	}
	for i := range r.NAT {
		n := &r.NAT[i]
		if n.By != "rule" || n.Rule != "" {
			continue
		}
		ns := l.fresh(legacyKey{natNetns(r, n), fam})
		if ns == nil {
			continue
		}
		if d, _ := ns.ledger.Claim(xtables.Translate, n.Hook, []string{"nat"}); d.Verdict != "" {
			n.Rule, n.By = d.Rule, "rule in "+d.Table+"/"+d.Chain+" (iptables-legacy)"
			settled = true
		}
	}
	return settled
}

func (l *legacy) claimDrop(r *report.Report, ns *legacyNS) bool {
	if ns.err != nil {
		addEvidence(r, "rule", "unknown: reading the iptables-legacy counters failed: "+ns.err.Error())
		return false
	}
	if r.Hook == "" {
		addEvidence(r, "rule", "unknown: the hook is not known, so neither is the chain to look in")
		return false
	}
	var tables []string
	if r.Table != "" {
		tables = []string{r.Table}
	}
	d, cands := ns.ledger.Claim(xtables.Drop, r.Hook, tables)
	if d.Verdict == "" {
		if len(cands) > 0 {
			var s []string
			for _, c := range cands {
				s = append(s, c.String())
			}
			addEvidence(r, "rule", "one of these iptables-legacy rules/policies, which all dropped packets meanwhile: "+strings.Join(s, "; "))
		}
		return false
	}
	r.Table, r.Chain, r.Verdict, r.RuleIndex = d.Table, d.Chain, d.Verdict, d.Index
	r.Rule = d.Rule
	addEvidence(r, "rule_source", "iptables-legacy counters (the only rule or policy of "+r.Hook+" whose counter this packet moved)")
	return true
}

// fresh re-reads the counters of a namespace unless they were just read.
func (l *legacy) fresh(k legacyKey) *legacyNS {
	ns := l.tables[k]
	if ns == nil {
		return l.late(k)
	}
	if time.Since(ns.read) < rereadEvery {
		return ns
	}
	ns.read = time.Now()
	rs, err := xtables.Read(ns.path, k.family)
	if err == nil && rs == nil {
		err = errors.New("the namespace no longer has legacy tables")
	}
	if ns.err = err; err == nil {
		ns.ledger.Update(rs)
	}
	return ns
}

// late looks again for legacy tables in a namespace that had none. Found
// now, they count from zero: they are newer than the last look, so every
// packet their counters hold came after it, and a claim names a rule only
// when it alone moved.
func (l *legacy) late(k legacyKey) *legacyNS {
	path, ok := l.paths[k.netns]
	if !ok || time.Since(l.checked[k]) < rereadEvery || (l.family != 0 && int(l.family) != k.family) {
		return nil
	}
	l.checked[k] = time.Now()
	rs, err := xtables.Read(path, k.family)
	if rs == nil || err != nil {
		return nil
	}
	ns := &legacyNS{path: path, ledger: xtables.NewLedger(&xtables.Ruleset{}), read: time.Now()}
	ns.ledger.Update(rs)
	l.tables[k] = ns
	return ns
}

// natNetns is the namespace a translation happened in: NAT names it, the
// path's steps carry the inode.
func natNetns(r *report.Report, n *report.NAT) uint32 {
	for _, s := range r.Path {
		if s.NetnsName == n.NetnsName {
			return s.Netns
		}
	}
	return r.Netns
}

func addEvidence(r *report.Report, k, v string) {
	if r.Evidence == nil {
		r.Evidence = map[string]string{}
	}
	r.Evidence[k] = v
}
