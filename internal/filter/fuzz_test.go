package filter

import (
	"errors"
	"strings"
	"testing"
)

func FuzzParse(f *testing.F) {
	f.Add("icmp", "10.0.0.0/8", "", "", 0, 0, 0, "NETFILTER_DROP", "", "eth0", "blue")
	f.Add("tcp", "", "2001:db8::/32", "::ffff:1.2.3.4", 80, -1, 70000, "a,,b", "no_socket", "", "4026531840")
	f.Add("255", "fe80::1%lo", "1.2.3.4/33", "", 1, 2, 3, " , ", "CONSUMED", "a/b", "")
	f.Fuzz(func(t *testing.T, proto, host, src, dst string, port, sport, dport int, incl, excl, iface, ns string) {
		opts := Options{Proto: proto, Host: host, Src: src, Dst: dst, Port: port, Sport: sport, Dport: dport,
			Iface: iface, Netns: ns}
		if incl != "" {
			opts.Reasons = []string{incl}
		}
		if excl != "" {
			opts.ExcludeReasons = []string{excl}
		}
		flt, err := Parse(opts, testReasons(), testNetns)
		if err != nil {
			var ue *UsageError
			if !errors.As(err, &ue) {
				t.Fatalf("error %T is not a *UsageError: %v", err, err)
			}
			if strings.ContainsAny(err.Error(), "\n\r") {
				t.Fatalf("error is not one line: %q", err)
			}
			return
		}
		c := flt.Constants()
		if len(c) != len(constantSizes) {
			t.Fatalf("Constants() has %d entries; want %d", len(c), len(constantSizes))
		}
		if flt.String() == "" {
			t.Fatal("empty String()")
		}
	})
}
