package session

import (
	"fmt"
	"strconv"
	"sync"

	"github.com/pktdrop/pktdrop/internal/kenum"
	"github.com/pktdrop/pktdrop/internal/ksym"
)

// background loads, while the probes load, what only reports need: the
// kernel symbol table (parsing /proc/kallsyms takes a few hundred
// milliseconds of CPU) and the kernel's enum names (a scan of its raw BTF).
type background struct {
	done  chan struct{} // both loads finished
	syms  symbols
	enums enumNames
}

type symbols struct {
	t   *ksym.Table
	err error
}

type enumNames struct {
	n   *kenum.Names
	err error
}

func newBackground() *background {
	return &background{done: make(chan struct{})}
}

// start starts the loads; finish waits for them.
func (bg *background) start() {
	go func() {
		var wg sync.WaitGroup
		wg.Add(2)
		go func() {
			defer wg.Done()
			t, err := ksym.Load(ksym.DefaultPath)
			bg.syms = symbols{t, err}
		}()
		go func() {
			defer wg.Done()
			n, err := kenum.Load()
			bg.enums = enumNames{n, err}
		}()
		wg.Wait()
		close(bg.done)
	}()
}

// finish waits, once, for the background loads; what failed is said once
// and leaves reports with raw addresses or numeric hooks.
func (e *enricher) finish() {
	e.once.Do(func() {
		<-e.bg.done
		s := e.bg.syms
		if s.err != nil {
			// Hidden symbols (kptr_restrict) cost names, not drops: go on.
			fmt.Fprintf(e.stderr, "pktdrop: read kernel symbols: %v (locations stay addresses, and causes on kernels without drop reasons are less precise)\n", s.err)
		}
		e.table = s.t
		en := e.bg.enums
		if en.err != nil {
			fmt.Fprintf(e.stderr, "pktdrop: read kernel enums: %v (hooks stay numbers)\n", en.err)
		}
		e.b.Names.Enums = en.n
	})
}

func (e *enricher) symbol(addr uint64) string {
	if e.table == nil {
		return "0x" + strconv.FormatUint(addr, 16)
	}
	return e.table.Format(addr)
}
