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
build_dir() { echo "$CACHE/tools/$1-$(pin "$1")"; }
bin_path() { echo "$(build_dir "$1")/$1"; }

build_kustomize() { # `go install` of the released module: its own go.mod pins every dependency
    GOBIN="$dir/gobin" go install "sigs.k8s.io/kustomize/kustomize/v5@$version" && mv -f "$dir/gobin/kustomize" "$out"
}
build_composecheck() { (cd "$HERE/composecheck" && go build -trimpath -ldflags='-s -w' -o "$out" .); }
build_crdcheck() { (cd "$HERE/crdcheck" && go build -trimpath -ldflags='-s -w' -o "$out" .); }

usage() { sed -n '2,21p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

# shellcheck source=tests/gobuild.sh
. "$HERE/../gobuild.sh"
gobuild_main tools "$@"
