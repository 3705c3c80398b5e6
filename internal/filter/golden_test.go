package filter

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

var update = flag.Bool("update", false, "update golden files")

// renderConstants prints one constant per line with its Go type, so a
// changed width shows up in review as clearly as a changed value.
func renderConstants(t *testing.T, c map[string]any) []byte {
	t.Helper()
	names := make([]string, 0, len(c))
	for n := range c {
		names = append(names, n)
	}
	slices.Sort(names)
	var b bytes.Buffer
	b.WriteString("{\n")
	for i, n := range names {
		v, err := json.Marshal(map[string]any{"type": fmt.Sprintf("%T", c[n]), "value": c[n]})
		if err != nil {
			t.Fatal(err)
		}
		sep := ","
		if i == len(names)-1 {
			sep = ""
		}
		fmt.Fprintf(&b, "  %q: %s%s\n", n, v, sep)
	}
	b.WriteString("}\n")
	return b.Bytes()
}

func TestConstantsGolden(t *testing.T) {
	cases := map[string]Options{
		"empty":       {},
		"icmp_host":   {Proto: "icmp", Host: "10.0.0.0/8", Iface: "eth0"},
		"tcp_v6":      {Proto: "tcp", Src: "2001:db8::/32", Dst: "2001:db8::1", Sport: 1024, Dport: 443, Port: 8080},
		"reasons":     {Reasons: []string{"NETFILTER_DROP,NO_SOCKET"}, ExcludeReasons: []string{"NOT_SPECIFIED"}},
		"netns_iface": {Netns: "blue", Iface: "veth1234abcd", Proto: "132"},
	}
	for name, opts := range cases {
		t.Run(name, func(t *testing.T) {
			f, err := Parse(opts, testReasons(), testNetns)
			if err != nil {
				t.Fatal(err)
			}
			got := renderConstants(t, f.Constants())
			path := filepath.Join("testdata", name+".golden")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("constants differ from %s (run with -update if intended):\n%s", path, got)
			}
		})
	}
}
