#!/usr/bin/env bash
# vmtest.sh: run pktdrop's privileged Go tests on Debian distribution kernels
# (5.10, 6.1, 6.12) under virtme-ng/qemu, one guest per kernel.
#
# Usage: ./vmtest.sh            (or: make vmtest)
#   KERNELS="5.10 6.12"        subset of kernels (default: all three)
#   VM_TEST_PKGS="./internal/... ./cmd/..."   Go packages whose tests run in the guest
#   VM_TEST_DIR=<dir>          Go module dir the packages are resolved in (default: repo)
#   VM_TEST_RUN=<regexp>       passed to -test.run
#   VM_TIMEOUT=900             seconds per kernel (boot + tests)
#   VM_KVM=auto|yes|no         auto: use KVM only if a probe guest boots under it
#   VM_VERBOSE=1               stream guest output to the terminal too
#   VMTEST_REFRESH=1           re-resolve and re-download the newest kernel packages
# Everything downloaded or built lives in .cache/vmtest/ (git-ignored).
set -euo pipefail

VM_TEST_PKGS=${VM_TEST_PKGS:-"./internal/... ./cmd/..."}

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
VM_TEST_DIR=$(cd "${VM_TEST_DIR:-$REPO}" && pwd)
VM_TEST_RUN=${VM_TEST_RUN:-}
KERNELS=${KERNELS:-"5.10 6.1 6.12"}
VM_TIMEOUT=${VM_TIMEOUT:-900}
VM_KVM=${VM_KVM:-auto}
VM_KVM_PROBE_TIMEOUT=${VM_KVM_PROBE_TIMEOUT:-30}
VM_MEMORY=${VM_MEMORY:-2G}
VM_VERBOSE=${VM_VERBOSE:-0}
CACHE=$REPO/.cache/vmtest
GUEST_SCRIPT=$REPO/.ci/vm.sh

# Kernel version -> "<suite> <package-name regexp>". Package names carry the ABI
# number, which changes with every point release, so we resolve the newest one.
declare -A KSPEC=(
	[5.10]='bullseye ^linux-image-5\.10\.0-[0-9]+-amd64$'
	[6.1]='bookworm ^linux-image-6\.1\.0-[0-9]+-amd64-unsigned$'
	[6.12]='bookworm-backports ^linux-image-6\.12\.[0-9]+\+deb12-amd64$'
)
HOST_PKGS=(qemu-system-x86 udev kmod file busybox-static python3-argcomplete
	python3-requests python3-pkg-resources virtme-ng)

log() { printf 'vmtest: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 2; }

[[ $(id -u) == 0 ]] || die "must run as root (apt, qemu, module loading)"
for k in $KERNELS; do
	[[ -n ${KSPEC[$k]:-} ]] || die "kernel '$k' is not available; choose from: ${!KSPEC[*]}"
done
mkdir -p "$CACHE"/{debs,kernels,bin,logs}

# --- host packages ---------------------------------------------------------
apt_updated=0
apt_setup() {
	((apt_updated)) && return
	# Reuse the mirror and key of the host's own Debian source so this works
	# behind whatever mirror/snapshot the machine is configured for.
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
	# Low pins: these suites exist only for virtme-ng and the guest kernels;
	# nothing already installed may be upgraded from them.
	printf 'Package: *\nPin: release n=trixie\nPin-Priority: 100\n\nPackage: *\nPin: release n=bullseye\nPin-Priority: 50\n' \
		>/etc/apt/preferences.d/pktdrop-vmtest
	log "apt-get update"
	apt-get update -qq >"$CACHE/logs/apt.log" 2>&1 || { tail "$CACHE/logs/apt.log"; die "apt-get update failed"; }
	apt_updated=1
}

install_host_pkgs() {
	local missing=() p
	for p in "${HOST_PKGS[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
	done
	((${#missing[@]})) || return 0
	log "installing ${missing[*]}"
	apt_setup
	export DEBIAN_FRONTEND=noninteractive
	# virtme-ng is only in trixie; everything else comes from bookworm.
	local base=() vng=0
	for p in "${missing[@]}"; do [[ $p == virtme-ng ]] && vng=1 || base+=("$p"); done
	if ((${#base[@]})); then
		apt-get install -y -qq --no-install-recommends "${base[@]}" >>"$CACHE/logs/apt.log" 2>&1 ||
			{ tail "$CACHE/logs/apt.log"; die "apt-get install failed"; }
	fi
	if ((vng)); then
		apt-get install -y -qq --no-install-recommends virtme-ng/trixie >>"$CACHE/logs/apt.log" 2>&1 ||
			{ tail "$CACHE/logs/apt.log"; die "installing virtme-ng/trixie failed"; }
	fi
}

# --- guest kernels ---------------------------------------------------------
# kernel_dir <version>: print the extracted kernel tree, downloading it first if
# it is not cached. The tree holds boot/vmlinuz-* and lib/modules/<uname -r>.
kernel_dir() {
	local ver=$1 dir=$CACHE/kernels/$1 suite re pkg deb kver
	if [[ -f $dir/.complete && $VMTEST_REFRESH != 1 ]]; then
		echo "$dir"; return
	fi
	read -r suite re <<<"${KSPEC[$ver]}"
	apt_setup
	# Newest package in exactly that suite (names sort by version).
	pkg=$(apt-cache search --names-only "$re" | awk '{print $1}' | while read -r p; do
		if apt-cache madison "$p" | grep -q " $suite/main "; then echo "$p"; fi
	done | sort -V | tail -n1)
	[[ -n $pkg ]] || die "kernel $ver: no package matching $re in $suite"
	log "kernel $ver: downloading $pkg/$suite"
	(cd "$CACHE/debs" && apt-get download -qq "$pkg/$suite" >>"$CACHE/logs/apt.log" 2>&1) ||
		die "kernel $ver: apt-get download $pkg/$suite failed"
	deb=$(ls -t "$CACHE/debs/${pkg}_"*.deb | head -n1)
	rm -rf "$dir" && mkdir -p "$dir"
	dpkg -x "$deb" "$dir"
	kver=$(basename "$(ls -d "$dir"/lib/modules/*/ 2>/dev/null | head -n1)")
	[[ -n $kver ]] || die "kernel $ver: $deb has no lib/modules"
	# dpkg -x skips the postinst, which is what normally runs depmod.
	depmod -b "$dir" "$kver"
	echo "$pkg" >"$dir/.complete"
	echo "$dir"
}

# --- test binaries ---------------------------------------------------------
# Build each test package's binary on the host; the guest only runs them.
build_tests() {
	local manifest=$CACHE/bin/manifest ip dir name
	rm -f "$CACHE"/bin/*.test "$manifest"
	touch "$manifest"
	# shellcheck disable=SC2086 # VM_TEST_PKGS is a list of patterns
	while read -r ip dir; do
		[[ -n $ip ]] || continue
		name=$(tr '/.' '__' <<<"${ip#*/*/*/}")
		log "building $ip"
		(cd "$VM_TEST_DIR" && go test -c -o "$CACHE/bin/$name.test" "$ip")
		echo "$CACHE/bin/$name.test $dir" >>"$manifest"
	done < <(cd "$VM_TEST_DIR" && go list -f '{{if or .TestGoFiles .XTestGoFiles}}{{.ImportPath}} {{.Dir}}{{end}}' $VM_TEST_PKGS)
	if [[ -d $REPO/cmd/pktdrop ]]; then
		log "building pktdrop"
		(cd "$REPO" && go build -o "$CACHE/bin/pktdrop" ./cmd/pktdrop)
	fi
	log "$(wc -l <"$manifest") test binaries"
}

# --- running a guest -------------------------------------------------------
# vng_run <logfile> <timeout> <kvm:yes|no> <vmlinuz> <command>
vng_run() {
	local out=$1 tmo=$2 kvm=$3 img=$4 cmd=$5 args=()
	[[ $kvm == yes ]] || args+=(--disable-kvm)
	timeout -k 10 "$tmo" vng --run "$img" "${args[@]}" --force-9p --no-virtme-ng-init \
		--cpus "$(nproc)" --memory "$VM_MEMORY" --exec "$cmd" </dev/null 2>&1 |
		while IFS= read -r line; do
			line=${line%$'\r'}
			# Host-side timestamp of the guest's first line = end of boot.
			[[ $line == VMTEST-BOOTED* ]] && echo "$EPOCHREALTIME" >"$out.booted"
			printf '%s\n' "$line" >>"$out"
			[[ $VM_VERBOSE == 1 ]] && printf '  | %s\n' "$line" >&2
		done
	return "${PIPESTATUS[0]}"
}

kvm_mode() {
	case $VM_KVM in
	no) echo no; return ;;
	yes) echo yes; return ;;
	esac
	[[ -r /dev/kvm && -w /dev/kvm ]] || { echo no; return; }
	# /dev/kvm can exist while nested guests hang, so only a real boot counts.
	local probe=$CACHE/logs/kvm-probe.log
	rm -f "$probe"
	if vng_run "$probe" "$VM_KVM_PROBE_TIMEOUT" yes "$1" 'echo VMTEST-KVM-OK' &&
		grep -q VMTEST-KVM-OK "$probe"; then echo yes; else echo no; fi
}

# run_kernel <version> <kvm>: boot, run the suite, print the summary line.
run_kernel() {
	local ver=$1 kvm=$2 dir img out t0 tb t1 rc=0 reason='' envs
	dir=$(kernel_dir "$ver")
	img=$(ls "$dir"/boot/vmlinuz-* | head -n1)
	out=$CACHE/logs/$ver.log
	rm -f "$out" "$out.booted"
	envs=$(printf '%q ' "CI=${CI:-}" PKTDROP_VM=1 "PKTDROP_BIN=$CACHE/bin/pktdrop" \
		"VM_TEST_RUN=$VM_TEST_RUN")
	t0=$EPOCHREALTIME
	vng_run "$out" "$VM_TIMEOUT" "$kvm" "$img" \
		"env $envs bash $(printf %q "$GUEST_SCRIPT") $(printf %q "$CACHE/bin/manifest")" || rc=$?
	t1=$EPOCHREALTIME
	tb=$(cat "$out.booted" 2>/dev/null || echo "$t1")
	printf 'vmtest: kernel %s: %s, boot %.0fs, tests %.0fs, log %s\n' "$ver" \
		"$([[ $kvm == yes ]] && echo kvm || echo 'tcg (software emulation)')" \
		"$(awk "BEGIN{print $tb - $t0}")" "$(awk "BEGIN{print $t1 - $tb}")" "$out" >&2
	# Summarise from the log: top-level tests are the unindented "--- " lines.
	local kname pass fail first
	kname=$(sed -n 's/^VMTEST-BOOTED //p' "$out" | head -n1)
	pass=$(grep -c '^--- PASS: ' "$out" || true)
	fail=$(grep -c '^--- FAIL: ' "$out" || true)
	first=$(sed -n 's/^--- FAIL: \([^ ]*\).*/\1/p' "$out" | head -n1)
	# A binary that dies without a FAIL line (panic, test timeout, TestMain).
	local binfail
	binfail=$(sed -n 's/^VMTEST-EXIT \([^ ]*\) [1-9][0-9]*$/\1/p' "$out")
	if ((rc == 124 || rc == 137)); then reason="timed out after ${VM_TIMEOUT}s"
	elif [[ -z $kname ]]; then reason="guest did not boot (vng exit $rc)"
	elif ! grep -q '^VMTEST-DONE' "$out"; then
		reason=$(sed -n 's/^VMTEST-ABORT //p' "$out" | head -n1)
		reason=${reason:-"guest stopped before the suite finished (vng exit $rc)"}
	elif ((fail == 0)) && [[ -n $binfail ]]; then
		fail=$(wc -w <<<"$binfail"); first="$(head -n1 <<<"$binfail") exited non-zero"
	fi
	kname=${kname:-$ver (from ${dir##*/})}
	if [[ -z $reason ]] && ((fail == 0)); then
		echo "kernel $kname: PASS $pass tests" >>"$CACHE/summary"
		return 0
	fi
	log "last lines of $out:"
	tail -n 25 "$out" | sed 's/^/  | /' >&2
	if [[ -n $reason ]]; then
		echo "kernel $kname: FAIL $fail/$((pass + fail)) ($reason)" >>"$CACHE/summary"
	else
		echo "kernel $kname: FAIL $fail/$((pass + fail)) ($first)" >>"$CACHE/summary"
	fi
	return 1
}

# --- main --------------------------------------------------------------------
VMTEST_REFRESH=${VMTEST_REFRESH:-0}
t_start=$SECONDS
install_host_pkgs
for k in $KERNELS; do kernel_dir "$k" >/dev/null; done
log "host setup (packages + kernels) took $((SECONDS - t_start))s"
build_tests
first_img=$(ls "$(kernel_dir "${KERNELS%% *}")"/boot/vmlinuz-* | head -n1)
kvm=$(kvm_mode "$first_img")
log "using $([[ $kvm == yes ]] && echo KVM || echo 'software emulation (tcg, --disable-kvm)')"
rm -f "$CACHE/summary"
status=0
for k in $KERNELS; do run_kernel "$k" "$kvm" || status=1; done
cat "$CACHE/summary"
exit "$status"
