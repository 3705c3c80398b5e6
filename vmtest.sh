#!/usr/bin/env bash
# vmtest.sh: run pktdrop's privileged Go tests on Debian distribution kernels
# (5.10, 6.1, 6.12) under virtme-ng/qemu, one guest per kernel.
#
# Usage: ./vmtest.sh            (or: make vmtest)
#   KERNELS="5.10 6.12"        subset of kernels (default: all three)
#   VM_TEST_PKGS="./internal/... ./cmd/..."   Go packages whose tests run in the guest
#   VM_TEST_DIR=<dir>          Go module the packages are resolved in (default: this repo)
#   VM_TEST_RUN=<regexp>       passed to the test binaries as -test.run
#   VM_TEST_SKIP=<regexp>      passed as -test.skip: tests that run on the host only
#                              (container runtimes need a writable root)
#   VM_TIMEOUT=900             seconds per kernel, boot and tests together
#   VM_KVM=auto|yes|no         auto: KVM only if a probe guest boots under it
#   VM_JOBS=1                  kernels booted at the same time
#   VM_VERBOSE=1               also stream guest output to the terminal
#   VMTEST_REFRESH=1           look for newer kernel packages than the cached ones
# Downloads, test binaries and guest logs live in .cache/vmtest/ (git-ignored).
# The guest side is .ci/vm.sh.
set -euo pipefail

VM_TEST_PKGS=${VM_TEST_PKGS:-"./internal/... ./cmd/..."}

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
VM_TEST_DIR=$(cd "${VM_TEST_DIR:-$REPO}" && pwd)
VM_TEST_RUN=${VM_TEST_RUN:-}
VM_TEST_SKIP=${VM_TEST_SKIP:-}
KERNELS=${KERNELS:-"5.10 6.1 6.12"}
VM_TIMEOUT=${VM_TIMEOUT:-900}
VM_KVM=${VM_KVM:-auto}
VM_KVM_PROBE_TIMEOUT=${VM_KVM_PROBE_TIMEOUT:-30}
VM_MEMORY=${VM_MEMORY:-2G}
VM_VERBOSE=${VM_VERBOSE:-0}
VM_JOBS=${VM_JOBS:-1}
VMTEST_REFRESH=${VMTEST_REFRESH:-0}
CACHE=$REPO/.cache/vmtest

# Kernel -> "<suite> <package-name regexp>". Names carry the ABI number, which
# changes with point releases, so the newest match is resolved, not hard-coded.
declare -A KSPEC=(
	[5.10]='bullseye ^linux-image-5\.10\.0-[0-9]+-amd64$'
	[6.1]='bookworm ^linux-image-6\.1\.0-[0-9]+-amd64-unsigned$'
	[6.12]='bookworm-backports ^linux-image-6\.12\.[0-9]+\+deb12-amd64$'
)
HOST_PKGS=(qemu-system-x86 udev kmod file busybox-static python3-argcomplete
	python3-requests python3-pkg-resources virtme-ng)

log() { printf 'vmtest: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 2; }
first() { printf '%s\n' "$1"; } # first match of a glob

# --- host packages -----------------------------------------------------------
apt_updated=0
apt_setup() {
	((apt_updated)) && return
	# Copy the mirror and key of the host's own Debian source, so this works
	# with whatever mirror the machine is configured for.
	local src=/etc/apt/sources.list.d/debian.sources uri sb
	[[ -r $src ]] || die "$src not found; cannot derive the Debian mirror"
	{ read -r uri; read -r sb; } < <(awk -v RS= '
		{ uri = ""; sb = ""; ok = 0; n = split($0, L, "\n")
		  for (i = 1; i <= n; i++) {
			if (L[i] ~ /^URIs:/) { uri = L[i]; sub(/^URIs:[ \t]*/, "", uri) }
			if (L[i] ~ /^Signed-By:/) { sb = L[i]; sub(/^Signed-By:[ \t]*/, "", sb) }
			if (L[i] ~ /^Suites:.*[ \t]bookworm([ \t]|$)/) ok = 1
		  }
		  if (ok && uri != "") { print uri; print sb; exit } }' "$src")
	[[ -n ${uri:-} ]] || die "no bookworm stanza with URIs in $src"
	printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports trixie bullseye\nComponents: main\nSigned-By: %s\n' \
		"$uri" "$sb" >/etc/apt/sources.list.d/pktdrop-vmtest.sources
	# These suites are here only for virtme-ng and the guest kernels: low pins
	# so that nothing installed is ever upgraded from them.
	printf 'Package: *\nPin: release n=trixie\nPin-Priority: 100\n\nPackage: *\nPin: release n=bullseye\nPin-Priority: 50\n' \
		>/etc/apt/preferences.d/pktdrop-vmtest
	log "apt-get update"
	apt-get update -qq >>"$CACHE/logs/apt.log" 2>&1 || { tail "$CACHE/logs/apt.log"; die "apt-get update failed"; }
	apt_updated=1
}

apt_install() {
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" \
		>>"$CACHE/logs/apt.log" 2>&1 || { tail "$CACHE/logs/apt.log"; die "apt-get install $* failed"; }
}

install_host_pkgs() {
	local missing=() base=() p
	for p in "${HOST_PKGS[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
	done
	((${#missing[@]})) || return 0
	log "installing ${missing[*]}"
	apt_setup
	for p in "${missing[@]}"; do [[ $p == virtme-ng ]] || base+=("$p"); done
	((${#base[@]} == 0)) || apt_install "${base[@]}"
	# virtme-ng exists only in trixie; thanks to the pin only it comes from there.
	((${#base[@]} == ${#missing[@]})) || apt_install virtme-ng/trixie
}

# --- guest kernels -------------------------------------------------------------
# fetch_kernel <version>: make sure $CACHE/kernels/<version> holds the extracted
# package (boot/vmlinuz-*, lib/modules/<uname -r>). Cached trees are used as
# they are, without apt, unless VMTEST_REFRESH=1.
fetch_kernel() {
	local ver=$1 dir=$CACHE/kernels/$1 suite re pkg deb kver
	[[ -f $dir/.complete && $VMTEST_REFRESH != 1 ]] && return
	read -r suite re <<<"${KSPEC[$ver]}"
	apt_setup
	# Newest package that is in exactly that suite (the names sort by version).
	pkg=$(apt-cache search --names-only "$re" | awk '{print $1}' | while read -r p; do
		if apt-cache madison "$p" | grep -q " $suite/main "; then echo "$p"; fi
	done | sort -V | tail -n1)
	[[ -n $pkg ]] || die "kernel $ver: no package matching '$re' in $suite"
	[[ $(cat "$dir/.complete" 2>/dev/null) == "$pkg" ]] && return
	log "kernel $ver: downloading $pkg from $suite"
	rm -f "$CACHE"/debs/*.deb
	(cd "$CACHE/debs" && apt-get download -qq "$pkg/$suite" >>"$CACHE/logs/apt.log" 2>&1) ||
		die "kernel $ver: apt-get download $pkg/$suite failed (see $CACHE/logs/apt.log)"
	deb=$(first "$CACHE"/debs/*.deb)
	rm -rf "$dir" && mkdir -p "$dir"
	dpkg -x "$deb" "$dir"
	rm -f "$deb" # the extracted tree is what is cached
	kver=$(first "$dir"/lib/modules/*)
	kver=${kver##*/}
	[[ -d $dir/lib/modules/$kver ]] || die "kernel $ver: $pkg has no lib/modules"
	# dpkg -x skips the postinst, which is what normally runs depmod.
	depmod -b "$dir" "$kver"
	echo "$pkg" >"$dir/.complete"
}

# --- test binaries -------------------------------------------------------------
# Tests are compiled on the host; the guest only runs them. The manifest lists
# "<binary> <package dir>" so the guest can run each one where its testdata is.
build_tests() {
	local manifest=$CACHE/bin/manifest ip dir name t_build=$SECONDS
	rm -f "$CACHE"/bin/*.test "$CACHE/bin/pktdrop" "$manifest"
	touch "$manifest"
	# A copy, so that editing .ci/vm.sh during a run cannot change it under
	# the bash that is reading it in a guest.
	cp "$REPO/.ci/vm.sh" "$CACHE/bin/vm.sh"
	# shellcheck disable=SC2086 # VM_TEST_PKGS is a list of patterns
	while read -r ip dir; do
		[[ -n $ip ]] || continue
		name=$(tr '/.' '__' <<<"${ip#"$(cd "$VM_TEST_DIR" && go list -m)"/}")
		log "building tests of $ip"
		(cd "$VM_TEST_DIR" && go test -c -o "$CACHE/bin/$name.test" "$ip") || die "building tests of $ip failed"
		echo "$CACHE/bin/$name.test $dir" >>"$manifest"
	done < <(cd "$VM_TEST_DIR" && go list -f '{{if or .TestGoFiles .XTestGoFiles}}{{.ImportPath}} {{.Dir}}{{end}}' $VM_TEST_PKGS)
	if [[ -d $REPO/cmd/pktdrop ]]; then
		log "building pktdrop"
		(cd "$REPO" && go build -o "$CACHE/bin/pktdrop" ./cmd/pktdrop) || die "building ./cmd/pktdrop failed"
	fi
	log "$(wc -l <"$manifest") test binaries from: $VM_TEST_PKGS (built in $((SECONDS - t_build))s)"
}

# --- guests --------------------------------------------------------------------
# vng_run <log> <timeout> <kvm: yes|no> <vmlinuz> <command>: boot, run <command>
# as root in the guest, append its output to <log>. Returns vng's exit status
# (the command's), or 124/137 on timeout: timeout(1) signals its whole process
# group, so qemu (a grandchild of vng) goes too.
vng_run() {
	local out=$1 tmo=$2 kvm=$3 img=$4 cmd=$5 args=()
	[[ $kvm == yes ]] || args+=(--disable-kvm)
	timeout -k 10 "$tmo" vng --run "$img" "${args[@]}" --force-9p --no-virtme-ng-init \
		--cpus "$(nproc)" --memory "$VM_MEMORY" --exec "$cmd" </dev/null 2>&1 |
		while IFS= read -r line; do
			line=${line%$'\r'}
			# The host's clock at the guest's first line marks the end of boot.
			[[ $line == VMTEST-BOOTED* ]] && echo "$EPOCHREALTIME" >"$out.booted"
			printf '%s\n' "$line" >>"$out"
			[[ $VM_VERBOSE != 1 ]] || printf '  | %s\n' "$line" >&2
		done
	return "${PIPESTATUS[0]}"
}

# kvm_mode <vmlinuz>: yes if KVM is to be used. /dev/kvm can exist while
# nested guests hang under it, and qemu silently falls back to tcg when KVM
# does not initialise, so only a guest that boots and sees kvm-clock (offered
# by KVM alone) counts.
kvm_mode() {
	[[ $VM_KVM != no ]] || { echo no; return; }
	if [[ -r /dev/kvm && -w /dev/kvm ]]; then
		local probe=$CACHE/logs/kvm-probe.log
		rm -f "$probe"
		if vng_run "$probe" "$VM_KVM_PROBE_TIMEOUT" yes "$1" \
			'grep -q kvm-clock /sys/devices/system/clocksource/clocksource0/available_clocksource && echo VMTEST-KVM-OK' &&
			grep -q '^VMTEST-KVM-OK' "$probe"; then
			echo yes; return
		fi
		log "KVM probe: no guest under KVM within ${VM_KVM_PROBE_TIMEOUT}s (log: $probe)"
	fi
	[[ $VM_KVM != yes ]] || die "VM_KVM=yes but KVM is not usable here"
	echo no
}

# run_kernel <version> <kvm>: boot one kernel and run the suite in it. Writes
# the kernel's summary line to summary.<version> and, on failure, the end of
# its log to <version>.tail, so that parallel runs print in order at the end.
run_kernel() {
	local ver=$1 kvm=$2 img out envs t0 tb t1 rc=0 reason='' kname pass fail skip first running
	img=$(first "$CACHE/kernels/$ver"/boot/vmlinuz-*)
	out=$CACHE/logs/$ver.log
	rm -f "$out" "$out.booted" "$CACHE/logs/$ver.tail" "$CACHE/summary.$ver"
	# The guest starts with a clean environment; pass on what the tests read
	# (PATH too, so they find go, nft, perf... where they would on the host).
	envs=$(printf '%q ' "CI=${CI:-}" PKTDROP_VM=1 "VM_TEST_RUN=$VM_TEST_RUN" "VM_TEST_SKIP=$VM_TEST_SKIP" "PATH=$PATH")
	[[ ! -x $CACHE/bin/pktdrop ]] || envs+=$(printf '%q ' "PKTDROP_BIN=$CACHE/bin/pktdrop")
	t0=$EPOCHREALTIME
	vng_run "$out" "$VM_TIMEOUT" "$kvm" "$img" \
		"env $envs bash $(printf %q "$CACHE/bin/vm.sh") $(printf %q "$CACHE/bin/manifest")" || rc=$?
	t1=$EPOCHREALTIME
	tb=$(cat "$out.booted" 2>/dev/null || echo 0)

	kname=$(sed -n 's/^VMTEST-BOOTED //p' "$out" | head -n1)
	# Top-level tests are the unindented "--- " lines. A binary that exits
	# non-zero without a FAIL line of its own (TestMain, -test.timeout, a
	# crash outside a test) counts as one failure.
	read -r pass fail skip running first < <(awk '
		/^VMTEST-RUN / { nf = 0; running = $2; sub(/.*\//, "", running) }
		/^--- PASS: / { pass++ }
		/^--- SKIP: / { skip++ }
		/^--- FAIL: / { fail++; nf++; if (first == "") first = $3 }
		/^VMTEST-EXIT / { running = "-"; if ($3 != 0 && nf == 0) { fail++; if (first == "") first = $2 " exited " $3 } }
		END { print pass + 0, fail + 0, skip + 0, (running == "" ? "-" : running), first }' "$out")
	log "$(awk -v v="$ver" -v m="$([[ $kvm == yes ]] && echo kvm || echo tcg)" -v a="$t0" -v b="$tb" -v c="$t1" \
		'BEGIN { if (b == 0) printf "kernel %s: %s, no boot after %.0fs", v, m, c - a
		         else printf "kernel %s: %s, boot %.0fs, tests %.0fs", v, m, b - a, c - b }'), $pass passed, $fail failed, $skip skipped; log $out"
	if ((rc == 124 || rc == 137)); then
		reason="timed out after ${VM_TIMEOUT}s"
		[[ $running == - ]] || reason+=" in $running"
	elif [[ -z $kname ]]; then
		reason="guest did not boot (vng exit $rc)"
	elif ! grep -q '^VMTEST-DONE' "$out"; then
		reason=$(sed -n 's/^VMTEST-ABORT //p' "$out" | head -n1)
		reason=${reason:-"guest stopped before the suite finished (vng exit $rc)"}
	fi
	# A guest that vanished mid-suite with no failed test and no message
	# (seen once on 6.12 under TCG: vng exit 255, nothing on the console)
	# is booted once more; the first log is kept and the retry is said.
	if [[ $reason == "guest stopped before the suite finished"* ]] && ((fail == 0)) && [[ -z ${VMTEST_RETRIED:-} ]]; then
		mv "$out" "$out.1"
		log "kernel $ver: $reason after $pass passed tests, no failure; booting it once more (first log: $out.1)"
		VMTEST_RETRIED=1 run_kernel "$ver" "$kvm"
		return
	fi
	kname=${kname:-"$ver ($(cat "$CACHE/kernels/$ver/.complete"))"}
	if [[ -z $reason ]] && ((fail == 0)); then
		echo "kernel $kname: PASS $pass tests" >"$CACHE/summary.$ver"
	else
		tail -n 30 "$out" >"$CACHE/logs/$ver.tail"
		echo "kernel $kname: FAIL $fail/$((pass + fail)) (${reason:-$first})" >"$CACHE/summary.$ver"
	fi
}

# --- main --------------------------------------------------------------------
# Everything runs from main, called on the last line, so bash has read the
# whole file before it starts: editing or pulling vmtest.sh during a run
# cannot change the run.
main() {
	local k kvm running=0 status=0 t_start=$SECONDS
	[[ $(id -u) == 0 ]] || die "must run as root (apt, qemu, module loading)"
	read -ra KLIST <<<"$KERNELS"
	((${#KLIST[@]})) || die "KERNELS is empty; choose from: 5.10 6.1 6.12"
	for k in "${KLIST[@]}"; do
		[[ -n ${KSPEC[$k]:-} ]] || die "kernel '$k' is not available; choose from: 5.10 6.1 6.12"
	done
	mkdir -p "$CACHE"/{debs,kernels,bin,logs}
	# Runs share the cache, the test binaries and the logs: one at a time.
	exec 9>"$CACHE/lock"
	flock -n 9 || { log "waiting for another vmtest.sh run to finish"; flock 9; }

	install_host_pkgs
	for k in "${KLIST[@]}"; do fetch_kernel "$k"; done
	log "host packages and kernels ready in $((SECONDS - t_start))s"
	build_tests
	kvm=$(kvm_mode "$(first "$CACHE/kernels/${KLIST[0]}"/boot/vmlinuz-*)")
	if [[ $kvm == yes ]]; then log "boot mode: kvm"; else log "boot mode: tcg (software emulation, --disable-kvm)"; fi
	# VM_JOBS > 1 overlaps guests; on 2 cores that only pays while guests
	# wait rather than compute.
	for k in "${KLIST[@]}"; do
		if ((running >= VM_JOBS)); then wait -n || true; ((running--)); fi
		run_kernel "$k" "$kvm" &
		((++running))
	done
	wait
	for k in "${KLIST[@]}"; do
		[[ -f $CACHE/logs/$k.tail ]] || continue
		log "kernel $k failed; last lines of $CACHE/logs/$k.log:"
		sed 's/^/  | /' "$CACHE/logs/$k.tail" >&2
	done
	for k in "${KLIST[@]}"; do
		cat "$CACHE/summary.$k" 2>/dev/null || echo "kernel $k: FAIL 0/0 (no result; see $CACHE/logs/$k.log)"
		grep -q ': PASS ' "$CACHE/summary.$k" 2>/dev/null || status=1
	done
	return "$status"
}

main "$@"
