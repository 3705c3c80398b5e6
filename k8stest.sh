#!/usr/bin/env bash
# k8stest.sh: run pktdrop on a real single-node Kubernetes 1.32 and assert on
# what it prints (the Go tests in internal/k8stest, build tag k8s).
#
# Usage: ./k8stest.sh            (or: make k8stest; root)
#   K8STEST_RUN=<regexp>        passed to the test binary as -test.run
#   K8STEST_KEEP=1              keep the state directory (logs) after the run
#   PKTDROP_SRC=<dir>           build pktdrop (binary and image) from another
#                               checkout, e.g. a branch's worktree
#
# Kubernetes itself (kube-apiserver, kubelet, kube-controller-manager,
# kube-scheduler, kube-proxy) is built from the Go module proxy into
# .cache/k8s/bin once (.ci/k8s-build.sh); etcd, containerd, runc and the CNI
# plugins come from Debian (.ci/deps).
#
# The node lives in a network and mount namespace of its own (unshare), so
# that kube-proxy's KUBE-* chains, the CNI bridge, the pods' veths and every
# mount (a tmpfs on /run holding containerd's socket and the pods' netns
# files, the sysctl files kubelet checks) exist only there: the host's
# firewall, sysctls, links and mounts are compared before and after, and the
# run fails if they differ. Every process is started here and stopped by PID.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=$REPO/.cache/k8s
NODE=k8stest-node
NODE_IP=10.246.0.1
POD_CIDR=10.247.0.0/24
CLUSTER_CIDR=10.247.0.0/16
SVC_CIDR=10.96.0.0/16
APP_IMAGE=pktdrop.local/k8stest-app:1
PKTDROP_IMAGE=pktdrop.local/pktdrop:k8stest

log() { printf 'k8stest: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ---------------------------------------------------------------------------
# Inside the node's namespaces.
# ---------------------------------------------------------------------------
pids=()
start() { # start NAME CMD...: a daemon of the node, logged, stopped by PID
	local name=$1
	shift
	"$@" >"$T/logs/$name.log" 2>&1 &
	pids+=("$!")
	log "started $name (pid $!)"
}

stop_pid() { # stop_pid PID [SECONDS]: TERM, then KILL after SECONDS (10)
	local p=$1 i
	kill -TERM "$p" 2>/dev/null || return 0
	for ((i = 0; i < ${2:-10} * 10; i++)); do
		kill -0 "$p" 2>/dev/null || { wait "$p" 2>/dev/null || true; return 0; }
		sleep 0.1
	done
	log "pid $p ignored SIGTERM; SIGKILL"
	kill -KILL "$p" 2>/dev/null || true
	wait "$p" 2>/dev/null || true
}

kc() { kubectl --kubeconfig "$T/pki/admin.kubeconfig" "$@"; }

node_teardown() {
	local rc=$? i p
	set +e
	log "tearing the node down"
	# Pods go first, while kubelet still runs, so CNI DEL and runc clean up
	# as on a real node.
	if [[ -n ${kubelet_pid:-} ]] && kill -0 "$kubelet_pid" 2>/dev/null; then
		kc delete pods --all-namespaces --all --grace-period=1 --wait=false >/dev/null 2>&1
		for ((i = 0; i < 60; i++)); do
			[[ -z $(ctr -a /run/containerd/containerd.sock -n k8s.io tasks ls -q 2>/dev/null) ]] && break
			sleep 0.5
		done
	fi
	# The daemons, newest first.
	for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
		p=${pids[i]}
		[[ $p == "${containerd_pid:-}" ]] && continue
		stop_pid "$p"
	done
	# What kubelet did not remove: kill and delete the tasks and containers
	# (runc then removes their cgroups), then containerd itself.
	if [[ -n ${containerd_pid:-} ]]; then
		local c
		for c in $(ctr -a /run/containerd/containerd.sock -n k8s.io tasks ls -q 2>/dev/null); do
			ctr -a /run/containerd/containerd.sock -n k8s.io tasks kill -s SIGKILL "$c" >/dev/null 2>&1
		done
		sleep 1
		for c in $(ctr -a /run/containerd/containerd.sock -n k8s.io containers ls -q 2>/dev/null); do
			ctr -a /run/containerd/containerd.sock -n k8s.io tasks delete -f "$c" >/dev/null 2>&1
			ctr -a /run/containerd/containerd.sock -n k8s.io containers delete "$c" >/dev/null 2>&1
		done
		stop_pid "$containerd_pid"
	fi
	# Anything still in the node's network namespace was started by this run
	# (shims, hostNetwork containers): stop it by PID.
	local me
	me=$(stat -L -c %i /proc/self/ns/net)
	for ((i = 0; i < 2; i++)); do
		for p in /proc/[0-9]*; do
			p=${p#/proc/}
			[[ $p == "$$" || $p == "$BASHPID" ]] && continue
			[[ $(stat -L -c %i "/proc/$p/ns/net" 2>/dev/null) == "$me" ]] || continue
			log "left behind: pid $p ($(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | cut -c1-80)); stopping it"
			kill -KILL "$p" 2>/dev/null
		done
		sleep 0.5
	done
	exit "$rc"
}

node_main() {
	T=$1
	trap node_teardown EXIT
	trap 'exit 130' INT TERM
	export PATH=$CACHE/bin:$PATH KUBECONFIG=$T/pki/admin.kubeconfig

	# /run of the node: containerd's socket and state, the pods' netns
	# files, the iptables lock. Gone with the mount namespace.
	# The host's mounts under /run (its /run/netns bind mount and the
	# namespaces of other suites) leave this namespace only (private
	# propagation): hidden under the tmpfs they would still be the mount
	# containerd finds for /run/netns.
	local m
	for m in $(awk '$5 ~ "^/run(/|$)" {print $5}' /proc/self/mountinfo | sort -r); do
		umount -l "$m" 2>/dev/null || true
	done
	mount -t tmpfs -o mode=755 k8stest-run /run
	# kubelet's pod logs at their usual /var/log/pods (pktdrop's fallback
	# for naming pods reads them), on a tmpfs of this namespace.
	mount -t tmpfs -o mode=755 k8stest-log /var/log
	mkdir -p /run/netns /run/containerd
	# Shared, as on a node run by systemd and iproute2 (a new peer group
	# of this mount namespace only): HostToContainer mounts need it.
	mount --make-shared /run
	mount --bind /run/netns /run/netns
	mount --make-shared /run/netns
	touch /run/netns/k8snode
	mount --bind /proc/self/ns/net /run/netns/k8snode
	ip link set lo up
	# The node's "uplink" (no dummy module on every kernel): a veth pair
	# whose both ends stay in the node's netns.
	ip link add k8s0 type veth peer name k8s1
	ip link set k8s1 up
	ip addr add "$NODE_IP/24" dev k8s0
	ip link set k8s0 up
	ip route add default dev k8s0
	sysctl -qw net.ipv4.ip_forward=1
	# kubelet with protectKernelDefaults only checks these (instead of
	# writing the host's): it reads files holding the values it wants.
	local f v
	for f in vm/overcommit_memory:1 kernel/panic:10 kernel/panic_on_oops:1; do
		v=${f#*:} f=${f%:*}
		printf '%s\n' "$v" >"$T/sysctl-${f//\//-}"
		mount --bind "$T/sysctl-${f//\//-}" "/proc/sys/$f"
	done

	start etcd etcd --name k8stest --data-dir "$T/etcd" \
		--listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
		--listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
		--initial-cluster k8stest=http://127.0.0.1:2380
	local P=$T/pki
	start kube-apiserver kube-apiserver --etcd-servers=http://127.0.0.1:2379 \
		--advertise-address="$NODE_IP" --secure-port=6443 \
		--service-cluster-ip-range="$SVC_CIDR" \
		--client-ca-file="$P/ca.crt" --tls-cert-file="$P/apiserver.crt" --tls-private-key-file="$P/apiserver.key" \
		--service-account-issuer=https://kubernetes.default.svc.cluster.local \
		--service-account-key-file="$P/sa.pub" --service-account-signing-key-file="$P/sa.key" \
		--kubelet-client-certificate="$P/apiserver-kubelet.crt" --kubelet-client-key="$P/apiserver-kubelet.key" \
		--kubelet-preferred-address-types=InternalIP \
		--authorization-mode=Node,RBAC --allow-privileged=true --profiling=false
	local i
	for ((i = 0; i < 120; i++)); do
		kc get --raw /readyz >/dev/null 2>&1 && break
		sleep 0.5
	done
	kc get --raw /readyz >/dev/null || die "kube-apiserver not ready after 60 s (see $T/logs/kube-apiserver.log)"
	log "kube-apiserver ready"
	start kube-controller-manager kube-controller-manager --kubeconfig="$P/admin.kubeconfig" \
		--controllers=daemonset,serviceaccount,serviceaccount-token,namespace,root-ca-cert-publisher,endpointslice \
		--service-account-private-key-file="$P/sa.key" --root-ca-file="$P/ca.crt" \
		--leader-elect=false --bind-address=127.0.0.1
	start kube-scheduler kube-scheduler --kubeconfig="$P/admin.kubeconfig" --leader-elect=false --bind-address=127.0.0.1

	start containerd containerd --config "$T/containerd.toml"
	containerd_pid=${pids[-1]}
	for ((i = 0; i < 100; i++)); do
		[[ -S /run/containerd/containerd.sock ]] && break
		sleep 0.2
	done
	local img
	for img in "$T/img/app.tar" "$T/img/pktdrop.tar"; do
		ctr -a /run/containerd/containerd.sock -n k8s.io images import "$img" >/dev/null ||
			die "ctr images import $img failed"
	done
	log "images imported: $APP_IMAGE $PKTDROP_IMAGE"

	start kubelet kubelet --config="$T/kubelet.yaml" --kubeconfig="$P/node.kubeconfig" \
		--root-dir="$T/kubelet" --hostname-override="$NODE" --node-ip="$NODE_IP"
	kubelet_pid=${pids[-1]}
	start kube-proxy kube-proxy --config="$T/kube-proxy.yaml"

	for ((i = 0; i < 120; i++)); do
		kc get node "$NODE" >/dev/null 2>&1 && break
		sleep 0.5
	done
	kc wait --for=condition=Ready "node/$NODE" --timeout=90s >/dev/null ||
		die "node not Ready (see $T/logs/kubelet.log)"
	# No node-lifecycle controller runs to lift it.
	kc taint node "$NODE" node.kubernetes.io/not-ready:NoSchedule- >/dev/null 2>&1 || true
	log "node $NODE Ready after $((SECONDS - node_start))s"

	local run=()
	[[ -n ${K8STEST_RUN:-} ]] && run=(-test.run "$K8STEST_RUN")
	: >"$T/logs/test.log"
	K8STEST=1 K8STEST_DIR="$T" K8STEST_NODE="$NODE" K8STEST_NODE_IP="$NODE_IP" \
		K8STEST_PKTDROP="$T/img/pktdrop-root/usr/local/bin/pktdrop" \
		K8STEST_APP_IMAGE="$APP_IMAGE" K8STEST_PKTDROP_IMAGE="$PKTDROP_IMAGE" \
		K8STEST_REPO="$REPO" \
		"$T/k8stest.test" -test.v -test.count=1 -test.timeout=20m "${run[@]}" >"$T/logs/test.log" 2>&1 &
	pids+=("$!")
	# In the background so that SIGTERM reaches the trap at once.
	tail -n +1 -f "$T/logs/test.log" --pid "$!" &
	local rc=0
	wait "${pids[-1]}" || rc=$?
	wait $! 2>/dev/null || true
	return "$rc"
}

if [[ ${1:-} == __node ]]; then
	node_start=$SECONDS
	node_main "$2"
	exit
fi

# ---------------------------------------------------------------------------
# On the host: build, prepare, run the node, compare the host before/after.
# ---------------------------------------------------------------------------
[[ $(id -u) == 0 ]] || die "needs root (namespaces, mounts, BPF)"
total_start=$SECONDS
"$REPO/.ci/deps"
build_start=$SECONDS
K8S_CACHE=$CACHE "$REPO/.ci/k8s-build.sh"
log "kubernetes binaries ready in $((SECONDS - build_start))s ($CACHE/bin)"
export PATH=$CACHE/bin:$PATH

T=$(mktemp -d /tmp/pktdrop-k8stest.XXXXXX)
trap 'rm -rf "$T"' EXIT
test_start=$SECONDS
mkdir -p "$T/logs" "$T/pki" "$T/img" "$T/cni" "$T/kubelet"

# --- images: static binaries FROM scratch, as docker archives for ctr ------
mkimage() { # mkimage NAME REF ROOTFS ENTRYPOINT-JSON
	local name=$1 ref=$2 root=$3 entry=$4 d=$T/img/$1 diff
	mkdir -p "$d"
	tar -C "$root" --owner=0 --group=0 --numeric-owner --mtime=@0 --sort=name -cf "$d/layer.tar" .
	diff=$(sha256sum "$d/layer.tar" | cut -d' ' -f1)
	printf '{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/usr/local/bin:/bin"],"Entrypoint":%s},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
		"$entry" "$diff" >"$d/config.json"
	printf '[{"Config":"config.json","RepoTags":["%s"],"Layers":["layer.tar"]}]' "$ref" >"$d/manifest.json"
	tar -C "$d" -cf "$T/img/$name.tar" manifest.json config.json layer.tar
}
mkdir -p "$T/img/app-root/bin" "$T/img/pktdrop-root/usr/local/bin" "$T/img/pktdrop-root/tmp"
(cd "$REPO" && CGO_ENABLED=0 go build -trimpath -o "$T/img/app-root/bin/app" ./internal/k8stest/testapp)
(cd "${PKTDROP_SRC:-$REPO}" && CGO_ENABLED=0 go build -trimpath \
	-ldflags "-X github.com/pktdrop/pktdrop/internal/cli.Version=$(git describe --always --dirty 2>/dev/null || echo dev)" \
	-o "$T/img/pktdrop-root/usr/local/bin/pktdrop" ./cmd/pktdrop)
mkimage app "$APP_IMAGE" "$T/img/app-root" '["/bin/app"]'
mkimage pktdrop "$PKTDROP_IMAGE" "$T/img/pktdrop-root" '["/usr/local/bin/pktdrop"]'
(cd "$REPO" && go test -c -tags k8s -o "$T/k8stest.test" ./internal/k8stest)
log "images and test binary built"

# --- certificates ------------------------------------------------------------
(
	cd "$T/pki"
	exec 2>>"$T/logs/openssl.log" >&2
	openssl genrsa -out ca.key 2048
	openssl req -x509 -new -key ca.key -subj /CN=k8stest-ca -days 2 -out ca.crt
	openssl genrsa -out sa.key 2048
	openssl rsa -in sa.key -pubout -out sa.pub
	cert() { # cert NAME SUBJECT EXT [SAN]
		openssl genrsa -out "$1.key" 2048
		openssl req -new -key "$1.key" -subj "$2" -out "$1.csr"
		printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=%s\n%s' \
			"$3" "${4:+subjectAltName=$4}" >"$1.ext"
		openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -extfile "$1.ext" -out "$1.crt"
	}
	cert apiserver /CN=kube-apiserver serverAuth \
		"IP:127.0.0.1,IP:10.96.0.1,IP:$NODE_IP,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc"
	cert admin "/O=system:masters/CN=k8stest-admin" clientAuth
	cert node "/O=system:nodes/CN=system:node:$NODE" clientAuth
	cert apiserver-kubelet "/O=system:masters/CN=kube-apiserver-kubelet-client" clientAuth
) || die "openssl failed (see $T/logs/openssl.log)"
kubeconfig() { # kubeconfig NAME CERT
	cat >"$T/pki/$1.kubeconfig" <<-EOF
		apiVersion: v1
		kind: Config
		clusters:
		- name: k8stest
		  cluster: {server: "https://127.0.0.1:6443", certificate-authority: "$T/pki/ca.crt"}
		users:
		- name: $2
		  user: {client-certificate: "$T/pki/$2.crt", client-key: "$T/pki/$2.key"}
		contexts:
		- name: k8stest
		  context: {cluster: k8stest, user: $2}
		current-context: k8stest
	EOF
}
kubeconfig admin admin
kubeconfig node node

# --- configuration of the node's components ---------------------------------
cat >"$T/containerd.toml" <<EOF
version = 2
root = "$T/containerd/root"
state = "/run/containerd"
[grpc]
  address = "/run/containerd/containerd.sock"
[plugins."io.containerd.internal.v1.opt"]
  path = "$T/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$APP_IMAGE"
  # Without it every sandbox fails on these machines (runc: "can't get
  # final child's PID from pipe: EOF").
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$T/cni"
EOF
# isGateway: the bridge is the pods' router, which Services need (kube-proxy
# DNATs on the node); ipMasq false: no CNI rules in the node's firewall.
cat >"$T/cni/10-k8stest.conflist" <<EOF
{"cniVersion": "0.4.0", "name": "k8stest", "plugins": [
  {"type": "bridge", "bridge": "k8st0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
   "ipam": {"type": "host-local", "dataDir": "$T/cni-ipam",
            "ranges": [[{"subnet": "$POD_CIDR"}]], "routes": [{"dst": "0.0.0.0/0"}]}}
]}
EOF
cat >"$T/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: "$T/pki/ca.crt"}
authorization: {mode: AlwaysAllow}
containerRuntimeEndpoint: unix:///run/containerd/containerd.sock
cgroupDriver: cgroupfs
cgroupsPerQOS: false
enforceNodeAllocatable: []
makeIPTablesUtilChains: false
oomScoreAdj: 0
failSwapOn: false
protectKernelDefaults: true
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "100Mi"}
EOF
cat >"$T/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: "$T/pki/admin.kubeconfig"}
mode: iptables
clusterCIDR: "$CLUSTER_CIDR"
hostnameOverride: "$NODE"
bindAddress: 127.0.0.1
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
# Zero: leave the conntrack sysctls (global ones among them) alone.
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
EOF

# --- the host, before ----------------------------------------------------------
host_state() {
	set +o pipefail # a grep finding nothing is an empty section
	echo "## nftables"
	nft list ruleset 2>&1 | sed -E 's/counter packets [0-9]+ bytes [0-9]+/counter/'
	if command -v iptables-legacy-save >/dev/null; then
		echo "## iptables-legacy"
		iptables-legacy-save 2>&1 | grep -v '^#' | sed -E 's/\[[0-9]+:[0-9]+\]/[]/'
	fi
	echo "## sysctls"
	sysctl -a 2>/dev/null | grep -E '^(net\.ipv4\.(ip_forward|conf\.(all|default)\.)|net\.ipv6\.conf\.(all|default)\.(forwarding|disable_ipv6)|vm\.overcommit_memory|kernel\.panic|net\.netfilter\.nf_conntrack_(max|tcp_timeout_established|tcp_timeout_close_wait)|net\.bridge\.)' | sort
	echo "## links"
	ip -o link show | awk '{print $2}' | sed 's/@.*//' | sort
	echo "## mounts"
	# Other test suites on the machine come and go in /run/netns; the
	# node's netns files (k8snode, cni-*) would show there if they leaked.
	# Other suites' temporary mounts under /tmp likewise; this run's would be
	# under $T.
	awk '{print $5, $9}' /proc/self/mountinfo | grep -v -E '^/run/netns/[^ ]+ nsfs$' |
		grep -v -E "^/tmp/" | sort
	grep -F " $T" /proc/self/mountinfo || true
	ls /run/netns 2>/dev/null | grep -E '^(k8snode|cni-)' || true
	echo "## cgroups"
	find /sys/fs/cgroup -maxdepth 3 -type d \( -name 'k8s.io' -o -name 'kubepods*' -o -name 'pod*-*' -o -path '*/k8s.io/*' \) 2>/dev/null | sort
}
host_state >"$T/host-before"

# --- the node ----------------------------------------------------------------
node_pid=
host_teardown() {
	local rc=$?
	set +e
	[[ -n $node_pid ]] && stop_pid "$node_pid" 120
	# containerd puts containers under /k8s.io in each cgroup hierarchy and
	# leaves that parent behind, empty: remove it where this run made it.
	local d
	for d in /sys/fs/cgroup/*/k8s.io /sys/fs/cgroup/k8s.io; do
		[[ -d $d ]] && ! grep -qxF "$d" "$T/host-before" && rmdir "$d" 2>/dev/null
	done
	host_state >"$T/host-after"
	if ! diff -u "$T/host-before" "$T/host-after" >"$T/host-diff"; then
		log "the host differs after the run:"
		cat "$T/host-diff" >&2
		((rc)) || rc=1
	else
		log "host firewall, sysctls, links, mounts and cgroups as before"
	fi
	log "total ${SECONDS}s (kubernetes build $((test_start - build_start))s before the node)"
	if ((rc)) || [[ ${K8STEST_KEEP:-0} == 1 ]]; then
		log "state and logs kept in $T"
	else
		rm -rf "$T"
	fi
	exit "$rc"
}
trap host_teardown EXIT
trap 'exit 130' INT TERM
test_start=$SECONDS
# The node's own network and mount namespaces; unshare execs this script
# again there, which starts the daemons and stops them on exit or SIGTERM.
unshare --net --mount --propagation private -- "$0" __node "$T" &
node_pid=$!
wait "$node_pid"
rc=$?
node_pid=
exit "$rc"
