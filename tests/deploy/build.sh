#!/usr/bin/env bash
# Build the tools that tests/deploy and tests/otel run, each from its published Go module,
# pinned here (kustomize) or by the go.mod and go.sum beside each tool's main.go:
#
#   kustomize      sigs.k8s.io/kustomize/kustomize/v5: renders deploy/kubernetes/* exactly as
#                  `kubectl apply -k` does, for machines without kubectl
#   composecheck   a few lines around github.com/compose-spec/compose-go/v2, the loader
#                  `docker compose config` uses: validates and normalizes deploy/compose/
#                  without a Docker engine
#   crdcheck       decodes ServiceMonitor and PrometheusRule objects strictly into the
#                  Prometheus Operator's Go types (pkg/apis/monitoring): the CRD schemas
#                  kubernetes-validate does not have
#
#   tests/deploy/build.sh [NAME...]        build the named tools (default: all)
#   tests/deploy/build.sh --path NAME      print the binary's path (builds nothing)
#   tests/deploy/build.sh --list           print the tool names
#
# Binaries land in ${KUBEVENTS_CACHE:-$HOME/.cache/kubevents}/tools/<name>-<version>/, with
# Go's module and build caches beside tests/servers/build.sh's, so a second run is a no-op.
# One line per tool: "<name> <version>: built|cached|FAILED ...". Exit status: 0 when every
# requested tool is there, 1 when one failed, 2 on a usage error, 3 when Go is missing.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${KUBEVENTS_CACHE:-$HOME/.cache/kubevents}
ALL=(kustomize composecheck crdcheck)
KUSTOMIZE_VERSION=v5.8.1
GO_MIN=1.26

pin() { # NAME -> version
    case $1 in
    kustomize) echo "$KUSTOMIZE_VERSION" ;;
    composecheck) awk '($1 == "require" && $2 == "github.com/compose-spec/compose-go/v2") { print $3; exit } $1 == "github.com/compose-spec/compose-go/v2" { print $2; exit }' "$HERE/composecheck/go.mod" ;;
    crdcheck) awk '($1 == "require" && $2 == "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring") { print $3; exit } $1 == "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring" { print $2; exit }' "$HERE/crdcheck/go.mod" ;;
    *) return 1 ;;
    esac
}
inputs_hash() { # NAME -> hash of what the build is made from
    case $1 in
    kustomize) echo "$KUSTOMIZE_VERSION" | sha256sum | cut -c1-16 ;;
    composecheck | crdcheck) cat "$HERE/$1/main.go" "$HERE/$1/go.mod" "$HERE/$1/go.sum" | sha256sum | cut -c1-16 ;;
    esac
}
bin_path() { echo "$CACHE/tools/$1-$(pin "$1")/$1"; }

build_kustomize() { # `go install` of the released module: its own go.mod pins every dependency
    GOBIN="$dir/gobin" go install "sigs.k8s.io/kustomize/kustomize/v5@$version" && mv -f "$dir/gobin/kustomize" "$out"
}
build_composecheck() { (cd "$HERE/composecheck" && go build -trimpath -ldflags='-s -w' -o "$out" .); }
build_crdcheck() { (cd "$HERE/crdcheck" && go build -trimpath -ldflags='-s -w' -o "$out" .); }

usage() { sed -n '2,21p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
known() { local n; for n in "${ALL[@]}"; do [ "$n" = "$1" ] && return 0; done; return 1; }

case ${1:-} in
-h | --help) usage; exit 0 ;;
--list) printf '%s\n' "${ALL[@]}"; exit 0 ;;
--path)
    [ $# -eq 2 ] && known "$2" || { echo "usage: $0 --path {${ALL[*]}}" >&2; exit 2; }
    bin_path "$2"; exit 0 ;;
esac

names=("$@")
[ ${#names[@]} -eq 0 ] && names=("${ALL[@]}")
for n in "${names[@]}"; do
    known "$n" || { echo "build.sh: unknown tool '$n' (known: ${ALL[*]})" >&2; exit 2; }
done

if ! command -v go >/dev/null 2>&1; then
    echo "build.sh: 'go' not found: install the Go toolchain >= $GO_MIN and put go on PATH"
    exit 3
fi
gover=$(go env GOVERSION 2>/dev/null); gover=${gover#go}
if [ "$(printf '%s\n%s\n' "$GO_MIN" "$gover" | sort -V | head -n1)" != "$GO_MIN" ]; then
    echo "build.sh: go $gover is too old: install the Go toolchain >= $GO_MIN and put go on PATH"
    exit 3
fi

mkdir -p "$CACHE/tools" || exit 1
export GOMODCACHE="$CACHE/go/mod" GOCACHE="$CACHE/go/build" CGO_ENABLED=0 GOTOOLCHAIN=local GOWORK=off
export GOFLAGS="-p=${KUBEVENTS_BUILD_JOBS:-2} -mod=readonly -buildvcs=false"
# Modules come from the module proxy only: no fallback to cloning repositories ("direct").
GOPROXY=$(go env GOPROXY | sed -e 's/[,|]direct$//' -e 's/^direct$/off/'); export GOPROXY

exec 9>"$CACHE/tools/.lock"
command -v flock >/dev/null 2>&1 && flock 9

rc=0
for name in "${names[@]}"; do
    version=$(pin "$name")
    if [ -z "$version" ]; then echo "$name: FAILED: no pinned version"; rc=1; continue; fi
    dir="$CACHE/tools/$name-$version"
    final="$dir/$name"
    want=$(inputs_hash "$name")
    if [ -x "$final" ] && [ "$(cat "$dir/inputs" 2>/dev/null)" = "$want" ]; then
        echo "$name $version: cached $final"
        continue
    fi
    mkdir -p "$dir" && rm -f "$final" "$dir/inputs"
    log="$dir/build.log"
    start=$(date +%s)
    (
        out="$final.tmp"
        renice -n 10 -p "$BASHPID" >/dev/null 2>&1 # other work shares the cores
        "build_$name"
    ) >"$log" 2>&1
    status=$?
    secs=$(($(date +%s) - start))
    if [ $status -eq 0 ] && [ -s "$final.tmp" ]; then
        mv -f "$final.tmp" "$final" && echo "$want" >"$dir/inputs"
        echo "$name $version: built in ${secs}s $final"
    else
        rm -f "$final.tmp"
        reason=$(grep -v '^go: downloading' "$log" | grep -E -m1 'error|cannot|not found|missing|invalid|denied|refused|no space' ||
            grep -v '^go: downloading' "$log" | tail -n1)
        echo "$name $version: FAILED after ${secs}s: ${reason:-exit $status} (log: $log)"
        rc=1
    fi
done
exit $rc
