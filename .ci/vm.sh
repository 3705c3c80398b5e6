#!/usr/bin/env bash
# .ci/vm.sh <manifest>: the guest side of vmtest.sh. Runs inside a virtme-ng
# guest (host filesystem read-only, writes to an overlay), prepares what the
# privileged tests need, then runs each test binary listed in <manifest>
# ("<binary> <package source dir>" per line). Lines starting with VMTEST- are
# read by vmtest.sh; everything else is test output for the log.
# No -e: a failing modprobe or test binary must not stop the ones after it.
set -uo pipefail
manifest=$1

echo "VMTEST-BOOTED $(uname -r)"
echo "vmtest: clocksources: $(cat /sys/devices/system/clocksource/clocksource0/available_clocksource)"

# virtme mounts only the basics; BPF pinning, kprobe_events and tracepoints
# need these file systems.
mnt() { mountpoint -q "$2" || mount -t "$1" nodev "$2" || echo "vmtest: mount $1 $2 failed"; }
mnt bpf /sys/fs/bpf
mnt debugfs /sys/kernel/debug
mnt tracefs /sys/kernel/tracing
mkdir -p /run/netns /var/run/netns 2>/dev/null

if [[ ! -e /sys/kernel/btf/vmlinux ]]; then
	echo "VMTEST-ABORT no /sys/kernel/btf/vmlinux in guest kernel $(uname -r)"
	exit 1
fi

# Modules the tests may need; a missing one is logged, the tests decide.
for m in veth nf_tables nft_chain_nat iptable_filter ip_tables iptable_nat nf_conntrack br_netfilter; do
	modprobe "$m" 2>&1 || echo "vmtest: modprobe $m failed"
done

ulimit -l unlimited 2>/dev/null # kernels < 5.11 charge BPF maps to RLIMIT_MEMLOCK
# Debian's kernels hide /proc/kallsyms addresses by default here; the tests
# check drop locations by function name.
sysctl -qw kernel.kptr_restrict=0 2>/dev/null || echo "vmtest: cannot set kernel.kptr_restrict=0"
while read -r bin dir; do
	echo "VMTEST-RUN $bin"
	args=(-test.v)
	[[ -n ${VM_TEST_RUN:-} ]] && args+=(-test.run "$VM_TEST_RUN")
	[[ -n ${VM_TEST_SKIP:-} ]] && args+=(-test.skip "$VM_TEST_SKIP")
	start=$SECONDS
	(cd "$dir" && "$bin" "${args[@]}")
	echo "VMTEST-EXIT ${bin##*/} $? $((SECONDS - start))s"
done <"$manifest"
echo "VMTEST-DONE"
