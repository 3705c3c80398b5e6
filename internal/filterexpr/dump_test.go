package filterexpr

import (
	"fmt"
	"testing"
)

func TestDumpScratch(t *testing.T) {
	for _, s := range []string{"icmp and host 10.42.1.7", "host 1.2.3.4 or 5.6.7.8", "port 80 or 443", "tcp[tcpflags] & tcp-syn != 0", "(tcp[13] & 2) != 0", "not (udp or icmp) and net 10.0.0.0 mask 255.0.0.0", "src or dst host fd00::1", "tcp dst port 80 or 81", "ip proto \\tcp", "bogus", "host 1.2.3.4 and", "tcp[14] == 1", "ether host 1", "icmp[icmptype] == icmp-echo", "port 0", "net 10.1", "1 == 1", "(host 1.2.3.4)"} {
		e, err := Parse(s)
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Println(s)
		for i := 0; i < e.n; i++ {
			in := e.prog[i]
			fmt.Printf("  %d: op%d m%x [%d,%d] fam%d /%d %v jt%d jf%d\n", i, in.Op, in.Mask, in.Lo, in.Hi, in.Fam, in.Plen, in.Addr[:4], in.Jt, in.Jf)
		}
	}
}
