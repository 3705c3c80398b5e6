// Package ksym turns kernel text addresses (e.g. the location of a
// kfree_skb call) into function+offset using /proc/kallsyms.
package ksym

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unsafe"
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
// lookups. It is kept for the whole run, and built while the probes load
// (when pktdrop's memory peaks), so it is compact: every name lives in one
// string, an entry is 12 bytes, and parsing allocates nothing per line.
type Table struct {
	// Addresses live in their own slice so the binary search touches only
	// densely packed keys.
	addrs   []uint64
	syms    []entry
	names   []string // every name, back to back in chunks of chunkSize
	modules []string // modules[0] is "" (the core kernel)
}

type entry struct {
	off    uint32 // of the name: chunk<<chunkBits | offset in the chunk
	n      uint16 // name length
	mod    uint16 // index into Table.modules
	global bool
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
	var (
		t       = &Table{modules: []string{""}}
		chunk   []byte // names are appended here, never reallocated
		nonzero bool
		modIdx  = map[string]uint16{}
	)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for lineNo := 1; sc.Scan(); lineNo++ {
		line := sc.Bytes()
		addrB, rest, ok := bytes.Cut(line, []byte{' '})
		if !ok {
			continue
		}
		kind, rest, ok := bytes.Cut(rest, []byte{' '})
		if !ok || len(kind) != 1 || (kind[0] != 't' && kind[0] != 'T') {
			continue
		}
		addr, ok := parseHex(addrB)
		if !ok {
			return nil, fmt.Errorf("line %d: bad address %q", lineNo, addrB)
		}
		name, mod, _ := bytes.Cut(rest, []byte{'\t'})
		name = bytes.TrimSpace(name)
		mod = bytes.TrimSuffix(bytes.TrimPrefix(bytes.TrimSpace(mod), []byte{'['}), []byte{']'})
		var mi uint16
		if len(mod) > 0 {
			var known bool
			if mi, known = modIdx[string(mod)]; !known {
				if len(t.modules) > math.MaxUint16 {
					return nil, fmt.Errorf("line %d: more than %d modules", lineNo, math.MaxUint16)
				}
				mi = uint16(len(t.modules))
				t.modules = append(t.modules, string(mod))
				modIdx[string(mod)] = mi
			}
		}
		if len(name) > chunkSize/4 || len(t.names) >= 1<<(32-chunkBits)-1 {
			return nil, fmt.Errorf("line %d: symbol name too long or too many names", lineNo)
		}
		if len(chunk)+len(name) > cap(chunk) {
			t.seal(chunk)
			chunk = make([]byte, 0, chunkSize)
		}
		nonzero = nonzero || addr != 0
		t.addrs = append(t.addrs, addr)
		off := uint32(len(t.names))<<chunkBits | uint32(len(chunk))
		t.syms = append(t.syms, entry{off: off, n: uint16(len(name)), mod: mi, global: kind[0] == 'T'})
		chunk = append(chunk, name...)
	}
	t.seal(chunk)
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(t.addrs) == 0 {
		return nil, errors.New("no text symbols")
	}
	if !nonzero {
		return nil, ErrRestricted
	}

	// Module symbols are not in address order in kallsyms.
	sort.Stable(byAddr{t})
	n := 0
	for i := range t.addrs {
		if n > 0 && t.addrs[n-1] == t.addrs[i] {
			// Aliases share an address (_text, _stext, ...); keep one name.
			if t.preferred(t.syms[i], t.syms[n-1]) {
				t.syms[n-1] = t.syms[i]
			}
			continue
		}
		t.addrs[n], t.syms[n] = t.addrs[i], t.syms[i]
		n++
	}
	t.addrs, t.syms = slices.Clip(t.addrs[:n]), slices.Clip(t.syms[:n])
	return t, nil
}

type byAddr struct{ t *Table }

func (b byAddr) Len() int           { return len(b.t.addrs) }
func (b byAddr) Less(i, j int) bool { return b.t.addrs[i] < b.t.addrs[j] }
func (b byAddr) Swap(i, j int) {
	b.t.addrs[i], b.t.addrs[j] = b.t.addrs[j], b.t.addrs[i]
	b.t.syms[i], b.t.syms[j] = b.t.syms[j], b.t.syms[i]
}

func parseHex(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 16 {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		v = v<<4 | uint64(c)
	}
	return v, true
}

// chunkBits: names are kept in chunks of 1 MiB, so that the table grows
// without copying (and briefly doubling) megabytes of names.
const (
	chunkBits = 20
	chunkSize = 1 << chunkBits
)

// seal adds a full chunk as a string sharing its bytes: the chunk is never
// written again.
func (t *Table) seal(chunk []byte) {
	if len(chunk) > 0 {
		t.names = append(t.names, unsafe.String(&chunk[0], len(chunk)))
	}
}

func (t *Table) name(e entry) string {
	c, o := e.off>>chunkBits, e.off&(chunkSize-1)
	return t.names[c][o : o+uint32(e.n)]
}

// preferred picks the alias a reader most likely recognises: a global symbol
// over a local one, then the one with fewer leading underscores.
func (t *Table) preferred(a, b entry) bool {
	if a.global != b.global {
		return a.global
	}
	return underscores(t.name(a)) < underscores(t.name(b))
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
	return Sym{Name: t.name(e), Module: t.modules[e.mod], Addr: t.addrs[i], Offset: off}, true
}

// Format symbolizes addr, falling back to the raw hex address.
func (t *Table) Format(addr uint64) string {
	if s, ok := t.Lookup(addr); ok {
		return s.String()
	}
	return "0x" + strconv.FormatUint(addr, 16)
}
