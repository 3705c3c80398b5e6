package testnet

import (
	"fmt"
	"strconv"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// CauseTC: a tc filter dropped the packet.
const CauseTC = "tc"

// tcProgName is the name of TCDrop's BPF program.
const tcProgName = "pd_tc_drop"

// TCDrop: a BPF classifier in direct-action mode on the server's sv0
// ingress (chain 0, pref 20, handle 0x5) returns TC_ACT_SHOT for every
// IPv4 packet, so the client's ping dies there. The program is loaded by
// the test itself: it is the one thing every kernel with clsact has (no
// gact, flower or matchall module needed).
func TCDrop(tb testing.TB) *Scenario {
	tb.Helper()
	n := New(tb)
	c, s := n.NS("client"), n.NS("server")
	const dst = "10.231.1.3"
	n.Link(c, "cl0", clientIP+"/24", s, "sv0", dst+"/24")
	control(tb, c, dst)
	s.MustRun("tc", "qdisc", "add", "dev", "sv0", "clsact")
	var id ebpf.ProgramID
	err := s.Do(func() error {
		prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Name: tcProgName, Type: ebpf.SchedCLS, License: "GPL",
			Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 2 /* TC_ACT_SHOT, UAPI */), asm.Return()}})
		if err != nil {
			return fmt.Errorf("load %s: %w", tcProgName, err)
		}
		defer prog.Close() // the filter keeps its own reference
		info, err := prog.Info()
		if err != nil {
			return err
		}
		id, _ = info.ID()
		l, err := netlink.LinkByName("sv0")
		if err != nil {
			return err
		}
		return netlink.FilterAdd(&netlink.BpfFilter{
			FilterAttrs: netlink.FilterAttrs{LinkIndex: l.Attrs().Index, Parent: netlink.HANDLE_MIN_INGRESS,
				Handle: 5, Priority: 20, Protocol: unix.ETH_P_IP},
			Fd: prog.FD(), Name: tcProgName, DirectAction: true})
	})
	if err != nil {
		tb.Fatalf("testnet: tc bpf filter: %v", err)
	}
	return &Scenario{
		Name: "TCDrop", Net: n, Client: c, Server: s,
		Trigger: pingOnce(c, dst),
		Expect: Expect{
			Drop: true, Reason: "TC_INGRESS", Cause: CauseTC,
			Netns: s.Name(), Iface: "sv0",
			Src: clientIP, Dst: dst, Proto: "icmp",
			Facts: map[string]string{"tc_dev": "sv0", "tc_direction": "ingress", "tc_chain": "0", "tc_pref": "20",
				"tc_handle": "0x5", "tc_kind": "bpf", "bpf_prog_name": tcProgName,
				"bpf_prog_id": strconv.FormatUint(uint64(id), 10)},
		},
	}
}
