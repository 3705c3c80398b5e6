package ksym

import (
	"errors"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
)

func TestLookup(t *testing.T) {
	tab, err := Load("testdata/kallsyms")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		addr uint64
		want string
	}{
		{0xffffffff81000000, "srso_alias_untrain_ret+0x0"},
		{0xffffffff81000010, "srso_alias_untrain_ret+0x10"},
		{0xffffffff81001234, "startup_64+0x234"}, // data symbol ignored
		{0xffffffff81100003, "kfree_skb_reason+0x3"},
		{0xffffffff81100400, "sk_skb_reason_drop+0x0"},
		{0xffffffff81200010, "sk_skb_reason_drop+0xffc10"}, // W is not text here
		{0xffffffffc0a102f4, "nft_do_chain+0x2f4 [nf_tables]"},
		{0xffffffffc0a00008, "nft_register_chain_type+0x8 [nf_tables]"},
		{0xffffffffc0b00001, "ipt_do_table+0x1 [ip_tables]"},
	}
	for _, tt := range tests {
		s, ok := tab.Lookup(tt.addr)
		if !ok || s.String() != tt.want {
			t.Errorf("Lookup(%#x) = %q, %v; want %q", tt.addr, s, ok, tt.want)
		}
		if got := tab.Format(tt.addr); got != tt.want {
			t.Errorf("Format(%#x) = %q; want %q", tt.addr, got, tt.want)
		}
	}
	for _, addr := range []uint64{0, 0xffffffff80ffffff, 0xffffffffc0c00000, ^uint64(0)} {
		if s, ok := tab.Lookup(addr); ok {
			t.Errorf("Lookup(%#x) = %q; want not found", addr, s)
		}
	}
	if got := tab.Format(0x10); got != "0x10" {
		t.Errorf("Format(0x10) = %q", got)
	}
}

func TestAliasPreference(t *testing.T) {
	tab, err := Parse(strings.NewReader("ffffffff81000000 t local_alias\nffffffff81000000 T __global\nffffffff81000000 T global\n"))
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := tab.Lookup(0xffffffff81000000); s.Name != "global" {
		t.Errorf("alias = %q; want global", s.Name)
	}
}

func TestRestricted(t *testing.T) {
	_, err := Load("testdata/kallsyms.restricted")
	if !errors.Is(err, ErrRestricted) {
		t.Fatalf("err = %v; want ErrRestricted", err)
	}
	if !strings.Contains(err.Error(), "kptr_restrict") {
		t.Errorf("error does not explain the fix: %v", err)
	}
}

func TestParseErrors(t *testing.T) {
	for _, in := range []string{"", "ffffffff81000000 D data_only\n", "zzzz T bad\n"} {
		if _, err := Parse(strings.NewReader(in)); err == nil {
			t.Errorf("Parse(%q) succeeded", in)
		}
	}
	if _, err := Load("testdata/does-not-exist"); err == nil {
		t.Error("Load of a missing file succeeded")
	}
}

func TestProcKallsyms(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("kallsyms addresses are hidden from non-root")
	}
	tab, err := Load(DefaultPath)
	if err != nil {
		t.Fatal(err)
	}
	if tab.Len() < 1000 {
		t.Fatalf("only %d symbols", tab.Len())
	}
}

func BenchmarkLookup(b *testing.B) {
	tab, err := Load(DefaultPath)
	if err != nil {
		b.Skipf("no usable %s: %v", DefaultPath, err)
	}
	lo, hi := tab.addrs[0], tab.addrs[len(tab.addrs)-1]
	addrs := make([]uint64, 4096)
	for i := range addrs {
		addrs[i] = lo + rand.Uint64N(hi-lo)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		tab.Lookup(addrs[i&(len(addrs)-1)])
	}
}
