package main

// What the running kernel offers, derived from the kernel itself (BTF,
// tracefs, BPF feature probes), never from pktdrop's own output: the
// expectations of a test must not come from the program under test.

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/features"
	"golang.org/x/sys/unix"

	"github.com/pktdrop/pktdrop/internal/reasons"
)

// hasReasons reports whether kfree_skb carries drop reasons: their names
// exist iff the kernel's BTF has enum skb_drop_reason (5.17+).
var hasReasons = sync.OnceValues(func() (bool, error) {
	rt, err := reasons.Load()
	if err != nil {
		return false, err
	}
	return rt.Available(), nil
})

func kernelHasReasons(t *testing.T) bool {
	t.Helper()
	ok, err := hasReasons()
	if err != nil {
		t.Fatalf("read drop reasons from kernel BTF: %v", err)
	}
	return ok
}

// kernelHasKprobes: a kernel built with CONFIG_KPROBES has kprobe_events
// in tracefs (vm.sh mounts tracefs in the guests).
func kernelHasKprobes() bool {
	for _, p := range []string{"/sys/kernel/tracing/kprobe_events", "/sys/kernel/debug/tracing/kprobe_events"} {
		if _, err := os.Stat(p); err == nil {
			return true
		}
	}
	return false
}

// nfLinksGiveHook reports whether pktdrop learns netfilter hooks from
// netfilter BPF links (which also tell the table). It uses them only when
// nf_hook_slow cannot be probed. On the lab kernels fentry and kprobes
// come together (5.10, 6.1, 6.12 have both, 6.18 neither), so kprobe
// support stands for "nf_hook_slow can be probed".
func nfLinksGiveHook() bool {
	return !kernelHasKprobes() && features.HaveProgramType(ebpf.Netfilter) == nil
}

// kernelHasOwnerFlag: NFT_TABLE_F_OWNER, which --rules needs to guarantee
// its table's removal, arrived in Linux 5.12.
func kernelHasOwnerFlag(t *testing.T) bool {
	t.Helper()
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		t.Fatalf("uname: %v", err)
	}
	rel := unix.ByteSliceToString(u.Release[:])
	var major, minor int
	if _, err := fmt.Sscanf(rel, "%d.%d", &major, &minor); err != nil {
		t.Fatalf("kernel release %q: %v", rel, err)
	}
	return major > 5 || major == 5 && minor >= 12
}

// nftRulesUnavailable, on a kernel without the owner flag, runs pktdrop
// with args (which include --rules) and wants it to install nothing and
// say so: nf_tables rules cannot be named there (iptables-legacy ones
// still can). It returns whether the kernel is such a kernel (the caller,
// which needs an nftables table, then stops).
func nftRulesUnavailable(t *testing.T, args ...string) bool {
	t.Helper()
	if kernelHasOwnerFlag(t) {
		return false
	}
	res := run(t, append(args, "--duration", "2s")...)
	if res.Code != 0 || !strings.Contains(res.Stderr, "cannot be named") || !strings.Contains(res.Stderr, "5.12") {
		t.Errorf("pktdrop %s on a kernel before 5.12: exit %d, stderr %q; want exit 0 and a note that nf_tables rules cannot be named before 5.12",
			strings.Join(args, " "), res.Code, res.Stderr)
	}
	return true
}
