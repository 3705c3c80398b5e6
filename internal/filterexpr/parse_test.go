package filterexpr

import (
	"errors"
	"strings"
	"testing"

	"github.com/pktdrop/pktdrop/gen"
	"github.com/pktdrop/pktdrop/internal/filter"
)

func TestParseErrors(t *testing.T) {
	for _, c := range []struct{ expr, want string }{
		{"icmp and hst 10.0.0.1", `at column 10: unknown primitive "hst"`},
		{"10.0.0.1", `at column 1: unknown primitive "10.0.0.1" (an address needs host or net before it)`},
		{"host 10.0.0.1 and", "at column 18: expected a primitive, found end of expression"},
		{"(udp or tcp", "at column 12: expected ')' or and/or, found end of expression"},
		{"udp or tcp)", `at column 11: expected and, or or the end, found ")"`},
		{"tcp[tcpflags] & tcp-syn", "at column 24: expected a comparison"},
		{"tcp[14] == 1", "at column 1: tcp[14]: pktdrop keeps only tcp[13]"},
		{"tcp[13:2] == 1", "at column 1: tcp[13:2]: pktdrop keeps only"},
		{"ether host 1", `at column 1: "ether" is not supported`},
		{"host 10.0.0.0/8", "at column 6: host 10.0.0.0/8: a prefix needs net, not host"},
		{"net 10.0.0.1/8", "non-network bits set (did you mean 10.0.0.0/8?)"},
		{"net 10.0.0.0 mask 255.0.255.0", "mask 255.0.255.0 is not contiguous"},
		{"port 70000", "at column 6: want a port number 0-65535"},
		{"portrange 10", "want a port range like 1000-2000"},
		{"ip port 80", `"ip" cannot qualify port`},
		{"tcp host 10.0.0.1", `"tcp" cannot qualify host`},
		{"ip6 host 10.0.0.1", "address family differs from ip6"},
		{"proto 256", "want a protocol number 0-255"},
		{"tcp 80", `expected and, or, host, net, port or portrange after "tcp"`},
		{"host a$b", "unexpected character '$'"},
		{"tcp[13] & 2 != tcp[13]", "comparing two header fields is not supported"},
		{"tcp[13] + 1 == 2", "only `field & constant` arithmetic"},
		{"icmp[0] / 0 == 1", "only `field & constant`"},
		{"1 / 0 == 1", "division by zero"},
	} {
		_, err := Parse(c.expr)
		var ue *filter.UsageError
		if err == nil || !errors.As(err, &ue) {
			t.Errorf("Parse(%q) = %v; want a *filter.UsageError", c.expr, err)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, c.want) || !strings.Contains(msg, "supported: host, net") || strings.Contains(msg, "\n") {
			t.Errorf("Parse(%q) error:\n got %s\nwant one line containing %q and the supported list", c.expr, msg, c.want)
		}
	}
}

// TestTooLong: the program holds 64 instructions; more is refused with a
// message, not truncated.
func TestTooLong(t *testing.T) {
	s := "host 10.0.0.1" + strings.Repeat(" or 10.0.0.1", 40)
	_, err := Parse(s)
	if err == nil || !strings.Contains(err.Error(), "the expression needs 82 tests; the kernel program holds 64") {
		t.Fatalf("err = %v", err)
	}
}

// TestPrecedence pins the parse of the rules tcpdump users rely on, on
// tuples chosen to tell the readings apart (the differential test
// checks the same against libpcap).
func TestPrecedence(t *testing.T) {
	udp := &gen.PktdropPdTuple{Family: 4, Proto: 17, Saddr: [16]uint8{10, 0, 0, 9}, Daddr: [16]uint8{10, 0, 0, 8}}
	for _, c := range []struct {
		expr string
		want bool
	}{
		{"udp or icmp and host 10.0.0.1", false}, // (udp or icmp) and host
		{"udp or (icmp and host 10.0.0.1)", true},
		{"not icmp and udp", true},          // (not icmp) and udp
		{"not udp or udp", true},            // (not udp) or udp
		{"host 10.0.0.1 or 10.0.0.9", true}, // inherits host
		{"src host 10.0.0.8 or 10.0.0.9", true},
		{"dst host 10.0.0.9 or 10.0.0.1", false},
		{"udp and not host 10.0.0.1 and 10.0.0.8", true},
		{"", true},
	} {
		e, err := Parse(c.expr)
		if err != nil {
			t.Fatal(err)
		}
		if got := e.Match(udp); got != c.want {
			t.Errorf("%q on udp 10.0.0.9 > 10.0.0.8: %v; want %v", c.expr, got, c.want)
		}
	}
}

// TestConstants: the program goes to the BPF variables with the sizes
// bpf/expr.h declares; without an expression the evaluator is off.
func TestConstants(t *testing.T) {
	off, _ := Parse("  ")
	if c := off.Constants(); c["cfg_expr_on"] != uint8(0) {
		t.Errorf("empty expression: cfg_expr_on = %v", c["cfg_expr_on"])
	}
	spec, err := gen.LoadPktdrop()
	if err != nil {
		t.Fatal(err)
	}
	e, _ := Parse("tcp and port 80")
	for name, v := range e.Constants() {
		vs, ok := spec.Variables[name]
		if !ok {
			t.Fatalf("bpf/expr.h declares no %s", name)
		}
		if err := vs.Set(v); err != nil {
			t.Errorf("set %s: %v", name, err)
		}
	}
	if e.Constants()["cfg_expr_on"] != uint8(1) || e.Len() != 3 {
		t.Errorf("tcp and port 80: on=%v len=%d", e.Constants()["cfg_expr_on"], e.Len())
	}
}
