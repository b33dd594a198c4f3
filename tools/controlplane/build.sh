#!/usr/bin/env bash
# Builds the local control plane binaries (etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler, kwok) and kwok's stage files into
# BIN_DIR, skipping every binary that is already there.
#
# Usage: tools/controlplane/build.sh [BIN_DIR]   (default: .cache/controlplane/bin)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=${1:-${WEIR_CONTROLPLANE_DIR:-$root/.cache/controlplane/bin}}
mkdir -p "$bin"
bin=$(cd "$bin" && pwd)

k8s_version=v1.37.2
ldflags="-s -w -X k8s.io/component-base/version.gitVersion=${k8s_version} -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=37 -X k8s.io/component-base/version.gitTreeState=clean"

# Builds are slow (minutes), so finished binaries are also kept in a cache
# shared by every checkout on this machine, keyed by the recipe.
recipe=$(cat "$0" "$here"/*/go.mod "$here"/*/go.sum 2>/dev/null | sha256sum | cut -c1-16)
shared=${XDG_CACHE_HOME:-$HOME/.cache}/weir/controlplane/$recipe
files="etcd kube-apiserver kube-controller-manager kube-scheduler kwok kwok-stages.yaml kwok-chaos-stages.yaml"
if [ -d "$shared" ]; then
	for f in $files; do
		if [ ! -e "$bin/$f" ] && [ -e "$shared/$f" ]; then
			cp "$shared/$f" "$bin/$f.tmp" && mv "$bin/$f.tmp" "$bin/$f"
		fi
	done
fi

build() { # build MODULE_DIR OUTPUT PACKAGE [LDFLAGS]
	local dir=$1 out=$2 pkg=$3 flags=${4:--s -w}
	if [ -x "$bin/$out" ]; then
		return
	fi
	echo "building $out (first time only, this takes a few minutes)" >&2
	(cd "$here/$dir" && CGO_ENABLED=0 go build -trimpath -ldflags "$flags" -o "$bin/$out.tmp" "$pkg")
	mv "$bin/$out.tmp" "$bin/$out"
}

build etcd etcd ./cmd/etcd
build kubernetes kube-apiserver ./cmd/kube-apiserver "$ldflags"
build kubernetes kube-controller-manager ./cmd/kube-controller-manager "$ldflags"
build kubernetes kube-scheduler ./cmd/kube-scheduler "$ldflags"
build kwok kwok sigs.k8s.io/kwok/cmd/kwok

# kwok needs stages to act as a kubelet: fast node and pod lifecycles, and
# the chaos stages that tests use to make containers fail.
if [ ! -s "$bin/kwok-stages.yaml" ] || [ ! -s "$bin/kwok-chaos-stages.yaml" ]; then
	kwok_dir=$(cd "$here/kwok" && go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)
	stage=$kwok_dir/kustomize/stage
	{
		for f in "$stage/node/fast/node-initialize.yaml" "$stage/node/heartbeat/node-heartbeat.yaml" "$stage"/pod/fast/*.yaml; do
			echo "---"
			cat "$f"
		done
	} >"$bin/kwok-stages.yaml.tmp"
	mv "$bin/kwok-stages.yaml.tmp" "$bin/kwok-stages.yaml"
	{
		for f in "$stage"/pod/chaos/*.yaml; do
			echo "---"
			cat "$f"
		done
	} >"$bin/kwok-chaos-stages.yaml.tmp"
	mv "$bin/kwok-chaos-stages.yaml.tmp" "$bin/kwok-chaos-stages.yaml"
fi
if mkdir -p "$shared" 2>/dev/null; then
	for f in $files; do
		if [ ! -e "$shared/$f" ]; then
			cp "$bin/$f" "$shared/$f.tmp" && mv "$shared/$f.tmp" "$shared/$f"
		fi
	done
fi
echo "$bin"
