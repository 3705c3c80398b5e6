#!/usr/bin/env bash
# Builds the Kubernetes 1.32 node and control-plane binaries k8stest.sh runs,
# from the Go module proxy, into $K8S_CACHE/bin (reused when present).
#
# k8s.io/kubernetes cannot be `go install`ed: its go.mod replaces the staging
# modules with local paths. A wrapper module generated here requires it and
# replaces each staging module with its published k8s.io/<name> v0.32.x.
set -euo pipefail
K8S_VERSION=${K8S_VERSION:-1.32.13}
K8S_CACHE=${K8S_CACHE:?}
CMDS=(kube-apiserver kubelet kube-controller-manager kube-scheduler kube-proxy)
have() { command -v "$1" >/dev/null 2>&1; }
# The machine's kubectl is 1.32; a machine without one gets it built too.
have kubectl || CMDS+=(kubectl)

missing=()
for c in "${CMDS[@]}"; do [[ -x $K8S_CACHE/bin/$c ]] || missing+=("$c"); done
((${#missing[@]})) || exit 0

src=$K8S_CACHE/src
mkdir -p "$src" "$K8S_CACHE/bin"
cd "$src"
modfile=$(go mod download -json "k8s.io/kubernetes@v$K8S_VERSION" |
	sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
[[ -r $modfile ]] || { echo "k8s-build: no go.mod for k8s.io/kubernetes@v$K8S_VERSION" >&2; exit 1; }
minor=${K8S_VERSION#1.}
{
	echo "module pktdrop.local/k8sbuild"
	echo
	echo "go 1.23.0"
	echo
	echo "require k8s.io/kubernetes v$K8S_VERSION"
	echo
	echo "replace ("
	awk '$2 == "=>" && $3 ~ /^\.\/staging\// { print $1 }' "$modfile" | while read -r m; do
		v=v0.$minor
		# The proxy refuses endpointslice v0.32.13; v0.32.12 is API-identical.
		[[ $m == k8s.io/endpointslice ]] && v=v0.${minor%.*}.$((${minor##*.} - 1))
		printf '\t%s => %s %s\n' "$m" "$m" "$v"
	done
	echo ")"
} >go.mod
{
	echo "//go:build tools"
	echo
	echo "package tools"
	echo
	echo "import ("
	for c in "${CMDS[@]}"; do printf '\t_ "k8s.io/kubernetes/cmd/%s"\n' "$c"; done
	echo ")"
} >tools.go
start=$SECONDS
echo "k8s-build: building ${missing[*]} (v$K8S_VERSION) at nice 19, several minutes when cold" >&2
GOFLAGS=-mod=mod nice -n 19 go mod tidy -e >/dev/null 2>&1 || true
pkgs=()
for c in "${missing[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$c"); done
GOFLAGS=-mod=mod CGO_ENABLED=0 nice -n 19 go build -trimpath -ldflags "-s -w \
	-X k8s.io/component-base/version.gitVersion=v$K8S_VERSION \
	-X k8s.io/component-base/version.gitMajor=1 \
	-X k8s.io/component-base/version.gitMinor=${minor%%.*}" \
	-o "$K8S_CACHE/bin/" "${pkgs[@]}"
echo "k8s-build: built in $((SECONDS - start))s" >&2
