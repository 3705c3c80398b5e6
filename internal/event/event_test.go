package event_test

import (
	"bytes"
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"unsafe"

	"github.com/pktdrop/pktdrop/gen"
	"github.com/pktdrop/pktdrop/internal/event"
)

// Sizes come from the bpf2go types, the same source Decode uses, so a
// change to bpf/event.h moves the tests with it.
var (
	stepSize   = int(unsafe.Sizeof(gen.PktdropPdStep{}))
	headerSize = int(unsafe.Offsetof(gen.PktdropPdEvent{}.Path))
	maxSteps   = len(gen.PktdropPdEvent{}.Path)
	maxSize    = int(unsafe.Sizeof(gen.PktdropPdEvent{}))
	nstepsOff  = int(unsafe.Offsetof(gen.PktdropPdEvent{}.Nsteps))
)

func v4(tcpFlags uint8) event.Tuple {
	return event.Tuple{Family: 4, Proto: 6, Src: netip.MustParseAddr("10.244.1.23"),
		Dst: netip.MustParseAddr("10.96.0.10"), Sport: 43512, Dport: 443, TCPFlags: tcpFlags, TTL: 63}
}

func v6icmp() event.Tuple {
	return event.Tuple{Family: 6, Proto: 58, Src: netip.MustParseAddr("fd00:10:244:1::17"),
		Dst: netip.MustParseAddr("2001:db8:ffff::1"), ICMPType: 128, ICMPID: 4711, ICMPSeq: 3, TTL: 64}
}

// sample is a drop with n path steps whose values all differ, so a field
// decoded from the wrong offset shows up as a mismatch.
func sample(n int, t event.Tuple) event.Event {
	ev := event.Event{Kind: event.KindDrop, Mono: 81234567890123, Skb: 0xffff8f3a4c2e1a00,
		Location: 0xffffffffc0a1d637, Reason: 7, Netns: 4026532176, Ifindex: 3, Ifname: "flannel.1",
		NFTable: "filter", NFChain: "FORWARD",
		Mark: 0x4000, Len: 84, CPU: 5, CtInfo: 3, Tuple: t, StepsLost: 2}
	points := []event.Point{event.PointNetifReceive, event.PointIPRcv, event.PointNFHook, event.PointFIBLookup,
		event.PointIPForward, event.PointNFLink, event.PointFIBValidate, event.PointIPOutput, event.PointDevQueue,
		event.PointDevXmit}
	for i := 0; i < n; i++ {
		st := t
		st.TTL -= uint8(i)
		ev.Path = append(ev.Path, event.Step{Mono: ev.Mono - uint64(1000*(n-i)), Point: points[i%len(points)],
			Netns: 4026532176 + uint32(i%2), Ifindex: uint32(2 + i), Hook: uint8(i % 5), PF: 2, CtInfo: uint8(i % 6),
			Prio: int32(-301 + 50*i), Ret: int32(-i), Aux: uint32(100 + i), Mark: uint32(i), Tuple: st})
	}
	return ev
}

func TestRoundTrip(t *testing.T) {
	maxName := "abcdefghijklmno" // IFNAMSIZ-1: the longest name the kernel has
	cases := map[string]event.Event{
		"ipv4 tcp, no path":   sample(0, v4(0x12)),
		"ipv4 tcp, one step":  sample(1, v4(0x02)),
		"ipv6 icmp, 32 steps": sample(32, v6icmp()),
		"trace kind":          func() event.Event { e := sample(3, v4(0x10)); e.Kind = event.KindTrace; return e }(),
		"non-IP packet":       {Kind: event.KindDrop, Mono: 1, Netns: 4026531840, Ifindex: 2, Ifname: "eth0", Len: 60},
		"longest ifname":      {Kind: event.KindDrop, Ifname: maxName, Tuple: v4(0)},
		// nf_tables names may fill the field: Decode then reads it whole.
		"table and chain names filling their fields": {Kind: event.KindDrop, NFTable: strings.Repeat("t", 31),
			NFChain: strings.Repeat("c", 32)},
		"zero event": {},
		"packet bytes after the path": func() event.Event {
			e := sample(2, v4(0x12))
			e.Packet = event.Packet{Data: []byte{0, 1, 2, 3, 0x45}, Len: 1500, MAC: true}
			return e
		}(),
		"packet bytes at the snaplen maximum": func() event.Event {
			e := sample(32, v6icmp())
			e.Packet = event.Packet{Data: bytes.Repeat([]byte{0x60}, event.SnapMax), Len: 9000}
			return e
		}(),
		"negative and max values": {Kind: event.KindDrop, Mono: ^uint64(0), Reason: ^uint32(0), StepsLost: 255,
			Path: []event.Step{{Prio: -2147483648, Ret: event.VerdictPending, Point: event.PointNFHook}}},
	}
	for name, want := range cases {
		t.Run(name, func(t *testing.T) {
			raw := event.Encode(&want)
			if wantLen := headerSize + len(want.Path)*stepSize + len(want.Packet.Data); len(raw) != wantLen {
				t.Fatalf("Encode gave %d bytes; want header %d + %d steps of %d = %d", len(raw), headerSize,
					len(want.Path), stepSize, wantLen)
			}
			var got event.Event
			if err := event.Decode(raw, &got); err != nil {
				t.Fatalf("Decode(Encode(ev)): %v", err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("round trip changed the event:\n got %+v\nwant %+v", got, want)
			}
		})
	}
}

// The reader decodes every record into the same Event; a short record
// must not keep steps of a longer one decoded before it.
func TestDecodeReusedEventKeepsNoOldSteps(t *testing.T) {
	var ev event.Event
	long, short := sample(16, v4(0)), sample(2, v6icmp())
	if err := event.Decode(event.Encode(&long), &ev); err != nil {
		t.Fatal(err)
	}
	if err := event.Decode(event.Encode(&short), &ev); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(ev, short) {
		t.Errorf("second decode into the same Event:\n got %+v\nwant %+v", ev, short)
	}
	none := sample(0, v4(0))
	if err := event.Decode(event.Encode(&none), &ev); err != nil {
		t.Fatal(err)
	}
	if len(ev.Path) != 0 {
		t.Errorf("0-step record decoded with %d steps left over", len(ev.Path))
	}
	snapped := sample(1, v4(0))
	snapped.Packet = event.Packet{Data: []byte{0x45, 0, 0, 20}, Len: 20}
	if err := event.Decode(event.Encode(&snapped), &ev); err != nil {
		t.Fatal(err)
	}
	if err := event.Decode(event.Encode(&none), &ev); err != nil {
		t.Fatal(err)
	}
	if len(ev.Packet.Data) != 0 || ev.Packet.Len != 0 {
		t.Errorf("record without packet bytes decoded with %+v left over", ev.Packet)
	}
}

// Encode keeps at most 32 steps, as the kernel does.
func TestEncodeCapsPathAtMaxSteps(t *testing.T) {
	ev := sample(maxSteps, v4(0))
	ev.Path = append(ev.Path, ev.Path[0])
	raw := event.Encode(&ev)
	if len(raw) != maxSize {
		t.Fatalf("Encode of %d steps gave %d bytes; want the full record, %d", len(ev.Path), len(raw), maxSize)
	}
	var got event.Event
	if err := event.Decode(raw, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Path) != maxSteps {
		t.Errorf("decoded %d steps; want %d", len(got.Path), maxSteps)
	}
}

func withNsteps(raw []byte, n byte) []byte {
	out := bytes.Clone(raw)
	out[nstepsOff] = n
	return out
}

func TestDecodeRejectsMalformedRecords(t *testing.T) {
	ev0, ev2, ev32 := sample(0, v4(0)), sample(2, v4(0)), sample(32, v4(0))
	raw0, raw2, raw32 := event.Encode(&ev0), event.Encode(&ev2), event.Encode(&ev32)
	evp := sample(2, v4(0))
	evp.Packet = event.Packet{Data: []byte{1, 2, 3, 4}, Len: 4}
	rawp := event.Encode(&evp)
	badMAC := bytes.Clone(rawp)
	badMAC[unsafe.Offsetof(gen.PktdropPdEvent{}.CapMac)] = 2
	cases := []struct {
		name string
		raw  []byte
	}{
		{"empty", nil},
		{"one byte", []byte{1}},
		{"header minus one byte", raw0[:headerSize-1]},
		{"trailing partial step", raw2[:headerSize+stepSize+stepSize/2]},
		{"header plus one byte", append(bytes.Clone(raw0), 0)},
		{"nsteps says 3, 2 steps sent", withNsteps(raw2, 3)},
		{"nsteps says 1, 2 steps sent", withNsteps(raw2, 1)},
		{"nsteps says 0, 2 steps sent", withNsteps(raw2, 0)},
		{"nsteps says 2, no steps sent", withNsteps(raw0, 2)},
		{"nsteps 33 beyond the path array", withNsteps(raw32, byte(maxSteps+1))},
		{"nsteps 255", withNsteps(raw32, 255)},
		{"one step more than the maximum size", append(bytes.Clone(raw32), raw32[headerSize:headerSize+stepSize]...)},
		{"64 KiB", make([]byte, 64<<10)},
		{"packet bytes missing one", rawp[:len(rawp)-1]},
		{"packet bytes one too many", append(bytes.Clone(rawp), 0)},
		{"packet start flag 2", badMAC},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var ev event.Event
			err := event.Decode(tc.raw, &ev)
			if err == nil {
				t.Fatalf("Decode(%d bytes) accepted a malformed record: %+v", len(tc.raw), ev)
			}
		})
	}
}

// ignored marks the bytes of a record that Decode does not read: struct
// padding, names after their terminator, and address bytes the family
// does not use. Everything else must survive Decode then Encode.
func ignored(raw []byte) []bool {
	var e gen.PktdropPdEvent
	var s gen.PktdropPdStep
	var tp gen.PktdropPdTuple
	m := make([]bool, len(raw))
	set := func(from, n int) {
		for i := from; i < from+n && i < len(m); i++ {
			m[i] = true
		}
	}
	tuple := func(off int) {
		set(off+int(unsafe.Offsetof(tp.Pad)), int(unsafe.Sizeof(tp.Pad)))
		fam := raw[off+int(unsafe.Offsetof(tp.Family))]
		used := map[byte]int{4: 4, 6: 16}[fam]
		set(off+int(unsafe.Offsetof(tp.Saddr))+used, len(tp.Saddr)-used)
		set(off+int(unsafe.Offsetof(tp.Daddr))+used, len(tp.Daddr)-used)
	}
	// C strings: nothing after the terminator is read.
	for _, f := range []struct{ off, n uintptr }{{unsafe.Offsetof(e.Ifname), unsafe.Sizeof(e.Ifname)},
		{unsafe.Offsetof(e.NfTable), unsafe.Sizeof(e.NfTable)}, {unsafe.Offsetof(e.NfChain), unsafe.Sizeof(e.NfChain)}} {
		off, n := int(f.off), int(f.n)
		if i := bytes.IndexByte(raw[off:off+n], 0); i >= 0 {
			set(off+i, n-i)
		}
	}
	set(int(unsafe.Offsetof(e.Pad)), int(unsafe.Sizeof(e.Pad)))
	tOff := int(unsafe.Offsetof(e.T))
	tuple(tOff)
	tEnd := tOff + int(unsafe.Sizeof(e.T))
	capOff := int(unsafe.Offsetof(e.CapLen))
	set(tEnd, capOff-tEnd) // implicit padding
	set(int(unsafe.Offsetof(e.CapPad)), 1)
	capEnd := int(unsafe.Offsetof(e.CapPad)) + 1
	set(capEnd, headerSize-capEnd) // implicit padding before the path
	for off, i := headerSize, 0; off+stepSize <= len(raw) && i < int(raw[unsafe.Offsetof(e.Nsteps)]); off, i = off+stepSize, i+1 {
		set(off+int(unsafe.Offsetof(s.Pad)), int(unsafe.Sizeof(s.Pad)))
		tuple(off + int(unsafe.Offsetof(s.T)))
	}
	return m
}

func FuzzDecode(f *testing.F) {
	named := sample(1, v4(0))
	named.Ifname = "abcdefghijklmno"
	snapped := sample(3, v4(0x12))
	snapped.Packet = event.Packet{Data: bytes.Repeat([]byte{0x45, 7}, 30), Len: 98, MAC: true}
	for _, ev := range []event.Event{sample(0, v4(0x12)), sample(1, v6icmp()), sample(10, v4(0x10)),
		sample(16, v6icmp()), named, snapped, {}, {Kind: event.KindTrace, Ifname: "eth0", Len: 60}} {
		raw := event.Encode(&ev)
		f.Add(raw)
		f.Add(raw[:len(raw)-1])
		f.Add(withNsteps(raw, byte(len(ev.Path)+1)))
	}
	f.Add(make([]byte, maxSize+1))
	f.Fuzz(func(t *testing.T, raw []byte) {
		var ev event.Event
		if err := event.Decode(raw, &ev); err != nil {
			return
		}
		again := event.Encode(&ev)
		if len(again) != len(raw) {
			t.Fatalf("Encode(Decode(%d bytes)) gave %d bytes", len(raw), len(again))
		}
		skip := ignored(raw)
		for i := range raw {
			if raw[i] != again[i] && !skip[i] {
				t.Fatalf("byte %d: decoded %#x re-encodes as %#x (event %+v)", i, raw[i], again[i], ev)
			}
		}
		var ev2 event.Event
		if err := event.Decode(again, &ev2); err != nil || !reflect.DeepEqual(ev, ev2) {
			t.Fatalf("re-encoded record decodes differently (err %v):\n got %+v\nwant %+v", err, ev2, ev)
		}
	})
}

func BenchmarkDecode(b *testing.B) {
	for _, n := range []int{0, 10} {
		b.Run(fmt.Sprintf("steps=%d", n), func(b *testing.B) {
			src := sample(n, v4(0x12))
			raw := event.Encode(&src)
			var ev event.Event // reused, as the ring buffer reader does
			b.SetBytes(int64(len(raw)))
			b.ReportAllocs()
			for b.Loop() {
				if err := event.Decode(raw, &ev); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
