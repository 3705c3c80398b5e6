package session

import (
	"net/netip"
	"testing"
	"time"

	"github.com/pktdrop/pktdrop/internal/event"
	"github.com/pktdrop/pktdrop/internal/report"
)

func memoEvent(mono, skb uint64, cpu uint32, sport uint16) []byte {
	tup := event.Tuple{Family: 4, Proto: 17, Src: netip.MustParseAddr("10.0.0.1"), Dst: netip.MustParseAddr("10.0.0.2"),
		Sport: sport, Dport: 53}
	return event.Encode(&event.Event{Kind: event.KindDrop, Mono: mono, Skb: skb, CPU: cpu, Reason: 6, Netns: 7,
		Tuple: tup, Path: []event.Step{{Mono: mono - 10, Point: event.PointNetifReceive, Tuple: tup},
			{Mono: mono - 5, Point: event.PointNFLink, Tuple: tup}}})
}

func TestMemoReusesReportsOfEqualEvents(t *testing.T) {
	boot := time.Unix(1000, 0)
	m := newMemo(boot)
	if _, _, ok := m.lookup(memoEvent(1e9, 1, 0, 5000)); ok {
		t.Fatal("hit in an empty memo")
	}
	m.store(&report.Report{Kind: "drop", Cause: "netfilter", Path: []report.Step{{Where: "receive"}}})

	// Only time, skb and CPU differ: the same report, with the new time.
	r, _, ok := m.lookup(memoEvent(1.5e9, 2, 1, 5000))
	if !ok {
		t.Fatal("no hit for an event that differs only in time, skb and CPU")
	}
	if r.Cause != "netfilter" || len(r.Path) != 1 || !r.Time.Equal(boot.Add(1500*time.Millisecond)) {
		t.Fatalf("hit = %+v", r)
	}
	// Anything a report shows is part of the key.
	if _, _, ok := m.lookup(memoEvent(1.5e9, 1, 0, 5001)); ok {
		t.Fatal("hit for another source port")
	}
	// Answers expire after memoTTL of event time.
	if _, _, ok := m.lookup(memoEvent(2e9+1, 1, 0, 5000)); ok {
		t.Fatal("hit after the TTL")
	}
	// Malformed records are left to the decoder.
	if _, _, ok := m.lookup([]byte{1, 2, 3}); ok || m.keyOK {
		t.Fatal("looked up a malformed record")
	}
}

func TestMemoSwitchesOffWhenEventsDoNotRepeat(t *testing.T) {
	m := newMemo(time.Unix(0, 0))
	for i := 0; i < memoWindow; i++ {
		if _, _, ok := m.lookup(memoEvent(1e9, 1, 0, uint16(i))); ok {
			t.Fatal("hit for distinct events")
		}
		m.store(&report.Report{})
	}
	if m.bypass != memoOff {
		t.Fatalf("bypass = %d after a window without hits, want %d", m.bypass, memoOff)
	}
	m.lookup(memoEvent(1e9, 1, 0, 1))
	if m.keyOK || m.bypass != memoOff-1 {
		t.Fatal("looked up while switched off")
	}
}
