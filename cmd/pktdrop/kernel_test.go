package main

// What the running kernel offers, derived from the kernel itself (BTF,
// tracefs, BPF feature probes), never from pktdrop's own output: the
// expectations of a test must not come from the program under test.

import (
	"os"
	"sync"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/features"

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
