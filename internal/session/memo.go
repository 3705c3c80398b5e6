package session

import (
	"encoding/binary"
	"time"
	"unsafe"

	"github.com/pktdrop/pktdrop/gen"
	"github.com/pktdrop/pktdrop/internal/report"
)

// memo reuses the finished report (names, cause, path) of an earlier event
// whose record had the same bytes apart from the ones no report shows: the
// timestamps, the skb address and the CPU. Drop storms are mostly the same
// drop over and over; a hit skips decoding, building and cause inference,
// and only the report's time is new. Answers are kept for memoTTL of event
// time, the same staleness the name and cause caches allow. When few
// events repeat (varied traffic), the memo switches itself off for a
// while so that it costs nothing.
type memo struct {
	boot    time.Time
	entries map[string]*memoEntry
	key     []byte // the last key looked up, for store
	keyOK   bool
	mono    uint64 // its event time
	scratch report.Report

	lookups, hits int
	bypass        int // events left to pass without looking
}

type memoEntry struct {
	r       report.Report
	expires uint64
	out     []byte // the rendered report after its time (output.WriteRepeat)
}

const (
	memoTTL     = uint64(time.Second)
	memoMax     = 1024  // entries before the map is cleared
	memoWindow  = 1024  // lookups per hit-rate check
	memoMinHits = 256   // hits per window to stay on
	memoOff     = 65536 // events to skip once the hit rate is low
)

var (
	memoTsOff    = int(unsafe.Offsetof(gen.PktdropPdEvent{}.Ts))
	memoSkbOff   = int(unsafe.Offsetof(gen.PktdropPdEvent{}.Skb))
	memoCPUOff   = int(unsafe.Offsetof(gen.PktdropPdEvent{}.Cpu))
	memoPathOff  = int(unsafe.Offsetof(gen.PktdropPdEvent{}.Path))
	memoStepSize = int(unsafe.Sizeof(gen.PktdropPdStep{}))
	memoStepTs   = int(unsafe.Offsetof(gen.PktdropPdStep{}.Ts))
)

func newMemo(boot time.Time) *memo {
	return &memo{boot: boot, entries: map[string]*memoEntry{}}
}

// lookup returns the report for raw when an equal event was built less
// than memoTTL ago, valid until the next lookup, and the entry's rendered
// output to reuse.
func (m *memo) lookup(raw []byte) (*report.Report, *[]byte, bool) {
	m.keyOK = false
	if m.bypass > 0 {
		m.bypass--
		return nil, nil, false
	}
	if len(raw) < memoPathOff || (len(raw)-memoPathOff)%memoStepSize != 0 {
		return nil, nil, false // malformed: the decoder will say so
	}
	m.key = append(m.key[:0], raw...)
	m.mono = binary.LittleEndian.Uint64(raw[memoTsOff:])
	clear(m.key[memoTsOff : memoTsOff+8])
	clear(m.key[memoSkbOff : memoSkbOff+8])
	clear(m.key[memoCPUOff : memoCPUOff+4])
	for off := memoPathOff; off < len(m.key); off += memoStepSize {
		clear(m.key[off+memoStepTs : off+memoStepTs+8])
	}
	m.keyOK = true
	m.lookups++
	e := m.entries[string(m.key)]
	hit := e != nil && m.mono < e.expires
	if hit {
		m.hits++
	}
	if m.lookups == memoWindow {
		if m.hits < memoMinHits {
			m.bypass = memoOff
			clear(m.entries)
		}
		m.lookups, m.hits = 0, 0
	}
	if !hit {
		return nil, nil, false
	}
	m.scratch = e.r
	m.scratch.Time = m.boot.Add(time.Duration(m.mono))
	return &m.scratch, &e.out, true
}

// store remembers r as the report of the record last looked up.
func (m *memo) store(r *report.Report) {
	if !m.keyOK {
		return
	}
	m.keyOK = false
	if len(m.entries) >= memoMax {
		clear(m.entries)
	}
	m.entries[string(m.key)] = &memoEntry{r: *r, expires: m.mono + memoTTL}
}
