package rules

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/pktdrop/pktdrop/internal/nftrace"
)

// AddNetns installs trace tables in namespaces that appeared since Start
// (pods come and go). A namespace gone before its table went in is
// skipped. Does nothing where nf_tables rules cannot be named.
func (a *Attributor) AddNetns(nsPaths []string) error {
	a.legacy.add(nsPaths)
	a.trMu.Lock()
	defer a.trMu.Unlock()
	if a.ctx.Err() != nil || (len(a.trs) == 0 && len(a.byIno) == 0 && a.unsupported()) {
		return nil
	}
	var failed []string
	for _, path := range nsPaths {
		ino := inodeOf(path)
		if ino == 0 || a.byIno[ino] != nil {
			continue
		}
		tr, err := nftrace.Start(a.ctx, nftrace.Options{Netns: []string{path}, Match: a.match})
		if err != nil {
			if _, serr := os.Stat(path); serr == nil {
				failed = append(failed, err.Error())
			}
			continue
		}
		a.trs = append(a.trs, tr)
		a.byIno[ino] = tr
		go a.collect(tr)
	}
	if len(failed) > 0 {
		return fmt.Errorf("start rule tracing in new namespaces: %s", strings.Join(failed, "; "))
	}
	return nil
}

// Keep removes the trace tables of namespaces not in keep (gone, or no
// longer filtered on): their tracers hold the namespace open otherwise.
func (a *Attributor) Keep(keep map[uint64]bool) error {
	a.legacy.keep(keep)
	a.trMu.Lock()
	defer a.trMu.Unlock()
	var errs []error
	for ino, tr := range a.byIno {
		if keep[ino] {
			continue
		}
		errs = append(errs, tr.Close())
		delete(a.byIno, ino)
		a.trs = slices.DeleteFunc(a.trs, func(t *nftrace.Tracer) bool { return t == tr })
	}
	return errors.Join(errs...)
}

// Tracing tells whether namespace ino has a trace table.
func (a *Attributor) Tracing(ino uint64) bool {
	a.trMu.Lock()
	defer a.trMu.Unlock()
	return a.byIno[ino] != nil
}

// unsupported tells whether Start gave up on nf_tables tracing.
func (a *Attributor) unsupported() bool {
	for _, n := range a.Notes {
		if strings.HasPrefix(n, "nf_tables rules") {
			return true
		}
	}
	return false
}

func inodeOf(path string) uint64 {
	var st unix.Stat_t
	if unix.Stat(path, &st) != nil {
		return 0
	}
	return st.Ino
}
