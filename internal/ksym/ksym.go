// Package ksym turns kernel text addresses (e.g. the location of a
// kfree_skb call) into function+offset using /proc/kallsyms.
package ksym

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
)

// DefaultPath is where the running kernel publishes its symbols.
const DefaultPath = "/proc/kallsyms"

// maxOffset bounds how far past a symbol an address may lie and still be
// attributed to it. kallsyms has no sizes and (without KALLSYMS_ALL) no data
// symbols, so an address in a data section or past the last module would
// otherwise be blamed on an unrelated function with a huge offset.
const maxOffset = 1 << 20

// ErrRestricted means the kernel hid the addresses from this process.
var ErrRestricted = errors.New("all symbol addresses are zero (hidden by kernel.kptr_restrict); run as root, and set kernel.kptr_restrict=0 if it is 2")

// Sym is an address resolved against the symbol table.
type Sym struct {
	Name   string
	Module string // "" for the core kernel
	Addr   uint64 // start of the symbol
	Offset uint64 // address - Addr
}

// String renders the form kernel stack traces use: nft_do_chain+0x2f4
// [nf_tables].
func (s Sym) String() string {
	str := s.Name + "+0x" + strconv.FormatUint(s.Offset, 16)
	if s.Module != "" {
		str += " [" + s.Module + "]"
	}
	return str
}

// Table is an immutable, address-sorted symbol table, safe for concurrent
// lookups.
type Table struct {
	// Addresses live in their own slice so the binary search touches only
	// densely packed keys.
	addrs []uint64
	syms  []entry
}

type entry struct {
	name, module string
	global       bool
}

// Load reads a kallsyms file, usually DefaultPath.
func Load(path string) (*Table, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open kernel symbols: %w", err)
	}
	defer f.Close()
	t, err := Parse(f)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return t, nil
}

// Parse reads kallsyms-formatted text, keeping only text (t/T) symbols.
func Parse(r io.Reader) (*Table, error) {
	type sym struct {
		addr uint64
		e    entry
	}
	var (
		all     []sym
		nonzero bool
		modules = map[string]string{} // interned: thousands share a few names
	)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for lineNo := 1; sc.Scan(); lineNo++ {
		addrStr, rest, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		kind, rest, ok := strings.Cut(rest, " ")
		if !ok || (kind != "t" && kind != "T") {
			continue
		}
		addr, err := strconv.ParseUint(addrStr, 16, 64)
		if err != nil {
			return nil, fmt.Errorf("line %d: bad address %q", lineNo, addrStr)
		}
		name, mod, _ := strings.Cut(rest, "\t")
		mod = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(mod), "["), "]")
		if mod != "" {
			if m, ok := modules[mod]; ok {
				mod = m
			} else {
				modules[mod] = mod
			}
		}
		nonzero = nonzero || addr != 0
		all = append(all, sym{addr, entry{strings.TrimSpace(name), mod, kind == "T"}})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(all) == 0 {
		return nil, errors.New("no text symbols")
	}
	if !nonzero {
		return nil, ErrRestricted
	}

	// Module symbols are not in address order in kallsyms.
	slices.SortStableFunc(all, func(a, b sym) int {
		switch {
		case a.addr < b.addr:
			return -1
		case a.addr > b.addr:
			return 1
		}
		return 0
	})
	t := &Table{addrs: make([]uint64, 0, len(all)), syms: make([]entry, 0, len(all))}
	for _, s := range all {
		if n := len(t.addrs); n > 0 && t.addrs[n-1] == s.addr {
			// Aliases share an address (_text, _stext, ...); keep one name.
			if preferred(s.e, t.syms[n-1]) {
				t.syms[n-1] = s.e
			}
			continue
		}
		t.addrs = append(t.addrs, s.addr)
		t.syms = append(t.syms, s.e)
	}
	return t, nil
}

// preferred picks the alias a reader most likely recognises: a global symbol
// over a local one, then the one with fewer leading underscores.
func preferred(a, b entry) bool {
	if a.global != b.global {
		return a.global
	}
	return underscores(a.name) < underscores(b.name)
}

func underscores(s string) int {
	return len(s) - len(strings.TrimLeft(s, "_"))
}

// Len returns the number of distinct symbol addresses.
func (t *Table) Len() int { return len(t.addrs) }

// Lookup finds the symbol containing addr.
func (t *Table) Lookup(addr uint64) (Sym, bool) {
	// Find the last symbol starting at or below addr.
	lo, hi := 0, len(t.addrs)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if t.addrs[mid] <= addr {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo == 0 {
		return Sym{}, false
	}
	i := lo - 1
	off := addr - t.addrs[i]
	if off >= maxOffset {
		return Sym{}, false
	}
	e := t.syms[i]
	return Sym{Name: e.name, Module: e.module, Addr: t.addrs[i], Offset: off}, true
}

// Format symbolizes addr, falling back to the raw hex address.
func (t *Table) Format(addr uint64) string {
	if s, ok := t.Lookup(addr); ok {
		return s.String()
	}
	return "0x" + strconv.FormatUint(addr, 16)
}
