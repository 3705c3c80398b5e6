package pcapng_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pktdrop/pktdrop/internal/event"
	"github.com/pktdrop/pktdrop/internal/pcapng"
	"github.com/pktdrop/pktdrop/internal/privtest"
	"github.com/pktdrop/pktdrop/internal/report"
)

// ipv4UDP is an IPv4/UDP packet 10.0.0.1:1000 > 10.0.0.2:53 with n bytes
// of payload.
func ipv4UDP(n int) []byte {
	p := make([]byte, 28+n)
	p[0], p[8], p[9] = 0x45, 64, 17
	binary.BigEndian.PutUint16(p[2:], uint16(len(p)))
	copy(p[12:], []byte{10, 0, 0, 1, 10, 0, 0, 2})
	binary.BigEndian.PutUint16(p[20:], 1000)
	binary.BigEndian.PutUint16(p[22:], 53)
	binary.BigEndian.PutUint16(p[24:], uint16(8+n))
	return p
}

func drop(netns uint32, nsName, dev string) *report.Report {
	return &report.Report{Time: time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC), Kind: "drop", Reason: "NETFILTER_DROP",
		Netns: netns, NetnsName: nsName, Iface: dev, Ifindex: 3, Family: "ipv4", Proto: "udp",
		Src: "10.0.0.1", Dst: "10.0.0.2", Sport: 1000, Dport: 53, Len: 128, Cause: "netfilter",
		Explanation: "dropped by netfilter", Hint: "allow it", Hook: "FORWARD", Table: "filter"}
}

// tshark reads file and returns one line per frame with the fields.
func tshark(t *testing.T, file string, fields ...string) []string {
	t.Helper()
	privtest.RequireCmd(t, "tshark")
	args := []string{"-r", file, "-T", "fields", "-E", "separator=|", "-E", "occurrence=a"}
	for _, f := range fields {
		args = append(args, "-e", f)
	}
	var stderr bytes.Buffer
	cmd := exec.Command("tshark", args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark: %v\n%s", err, stderr.String())
	}
	s := strings.TrimSpace(string(out))
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// A packet without an Ethernet header of its own (tunnel, local output)
// gets one with its ethertype; truncation and lost events are said in the
// frame; the JSON comment is the report.
func TestSynthesizedHeaderTruncationAndLoss(t *testing.T) {
	file := filepath.Join(t.TempDir(), "f.pcapng")
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	w := pcapng.New(f, pcapng.Options{Command: "pktdrop watch -w f.pcapng", Snaplen: 64, Version: "test"})
	pkt := ipv4UDP(100) // 128 bytes
	if err := w.Write(drop(1, "host", "tunl0"), event.Packet{Data: pkt[:64], Len: 128}); err != nil {
		t.Fatal(err)
	}
	w.SetLost(7)
	eth := append(append(bytes.Repeat([]byte{0xaa}, 12), 0x08, 0x00), pkt...)
	if err := w.Write(drop(2, "ns-router", "eth0"), event.Packet{Data: eth, Len: uint32(len(eth)), MAC: true}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	rows := tshark(t, file, "frame.interface_name", "eth.type", "eth.src", "ip.src", "udp.dstport",
		"frame.cap_len", "frame.len", "frame.drop_count", "frame.comment")
	if len(rows) != 2 {
		t.Fatalf("tshark read %d frames, want 2:\n%s", len(rows), strings.Join(rows, "\n"))
	}
	first := strings.SplitN(rows[0], "|", 9)
	want := []string{"tunl0@host", "0x0800", "00:00:00:00:00:00", "10.0.0.1", "53", "78", "142", ""}
	for i, w := range want {
		if first[i] != w {
			t.Errorf("frame 1 field %d = %q, want %q (row %s)", i, first[i], w, rows[0])
		}
	}
	for _, w := range []string{"DROP udp 10.0.0.1:1000 > 10.0.0.2:53", "cause  netfilter: dropped by netfilter",
		"truncated: captured 64 of 128 bytes (--snaplen 64)"} {
		if !strings.Contains(first[8], w) {
			t.Errorf("frame 1 comment lacks %q: %s", w, first[8])
		}
	}
	second := strings.SplitN(rows[1], "|", 9)
	if second[0] != "eth0@ns-router" || second[2] != "aa:aa:aa:aa:aa:aa" || second[5] != "142" || second[7] != "7" {
		t.Errorf("frame 2 = %s; want eth0@ns-router, its own MAC header, 142 bytes, drop count 7", rows[1])
	}
	if !strings.Contains(second[8], "7 events lost before this packet") || strings.Contains(second[8], "truncated") {
		t.Errorf("frame 2 comment: %s", second[8])
	}
	// The JSON comment (comments are comma-separated by tshark, so find
	// the object by its braces) parses back into the report.
	i, j := strings.Index(second[8], "{"), strings.LastIndex(second[8], "}")
	var r report.Report
	if i < 0 || j < i || json.Unmarshal([]byte(second[8][i:j+1]), &r) != nil || r.NetnsName != "ns-router" || r.Hook != "FORWARD" {
		t.Errorf("frame 2 has no JSON report comment: %s", second[8])
	}
}

// A run that reported nothing still leaves a file the readers accept,
// with the command line.
func TestEmptyRunIsAValidFile(t *testing.T) {
	var b bytes.Buffer
	w := pcapng.New(&b, pcapng.Options{Command: "pktdrop watch -w -", Snaplen: 256})
	w.SetLost(3)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "empty.pcapng")
	if err := os.WriteFile(file, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if rows := tshark(t, file, "frame.number"); len(rows) != 0 {
		t.Errorf("frames in an empty run: %q", rows)
	}
	privtest.RequireCmd(t, "capinfos")
	out, err := exec.Command("capinfos", file).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Capture comment:     pktdrop watch -w -") {
		t.Errorf("capinfos: %v\n%s", err, out)
	}
}
