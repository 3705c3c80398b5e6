package probe

import (
	"testing"

	"github.com/google/nftables"
	"golang.org/x/sys/unix"
)

// The usual nf_ip_hook_priorities, as bracketPriorities derives them.
var testPrios = [8]int32{-301, -201, -151, -101, -1, 49, 99, 101}

func TestPlanChains(t *testing.T) {
	in, pre := unix.NF_INET_LOCAL_IN, unix.NF_INET_PRE_ROUTING
	cases := []struct {
		name   string
		chains []baseChain
		fam    int
		hook   int
		want   uint8
	}{
		{"no tables: input", nil, 0, in, 1 << 7},
		{"no tables: prerouting", nil, 0, pre, 0},
		{"no tables: output", nil, 1, unix.NF_INET_LOCAL_OUT, 0},
		{"filter input: table and the one after", []baseChain{{nftables.TableFamilyINet, uint32(in), 0}}, 0, in,
			1<<0 | 1<<1 | 1<<4 | 1<<5 | 1<<7},
		{"filter input, other hook: conntrack only", []baseChain{{nftables.TableFamilyINet, uint32(in), 0}}, 1, pre,
			1<<0 | 1<<1 | 1<<7},
		{"ip table leaves ip6 alone", []baseChain{{nftables.TableFamilyIPv4, uint32(in), 0}}, 1, in, 1 << 7},
		{"dstnat: nat and the bracket after it", []baseChain{{nftables.TableFamilyIPv4, uint32(pre), -100}}, 0, pre,
			1<<0 | 1<<1 | 1<<3 | 1<<4 | 1<<7},
		{"after all tables", []baseChain{{nftables.TableFamilyIPv4, uint32(in), 300}}, 0, in, 1<<0 | 1<<1 | 1<<7},
		{"before all tables", []baseChain{{nftables.TableFamilyIPv4, uint32(in), -400}}, 0, in, 1<<0 | 1<<1 | 1<<7},
		{"ingress ignored", []baseChain{{nftables.TableFamilyINet, unix.NF_INET_NUMHOOKS, 0}}, 0, in, 1 << 7},
	}
	for _, c := range cases {
		got := planChains(c.chains, testPrios)[c.fam][c.hook]
		if got != c.want {
			t.Errorf("%s: brackets %08b, want %08b", c.name, got, c.want)
		}
	}
}
