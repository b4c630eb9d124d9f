#!/usr/bin/env bash
# Build the real servers that kubevents' end-to-end tests run (see README.md beside this
# file): etcd, kube-apiserver, otelcol and victorialogs, each from its published Go module,
# pinned by the go.mod/go.sum (or the builder manifest) in tests/servers/<name>/.
#
#   tests/servers/build.sh [NAME...]        build the named servers (default: all)
#   tests/servers/build.sh --path NAME      print the binary's path (builds nothing)
#   tests/servers/build.sh --list           print the server names
#
# Binaries land in ${KUBEVENTS_CACHE:-$HOME/.cache/kubevents}/servers/<name>-<version>/bin/,
# with Go's module and build caches under the same directory, so a second run is a no-op
# and a re-run after a failure resumes from the downloaded modules. A binary is rebuilt
# when its pinned inputs (main.go, go.mod, go.sum, manifest) change.
#
# One line per server: "<name> <version>: built|cached|FAILED ...". Exit status: 0 when
# every requested server is there, 1 when one failed, 2 on a usage error, 3 when Go is missing.
#
# Environment: KUBEVENTS_CACHE (cache root), KUBEVENTS_BUILD_JOBS (go build -p, default 2).
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${KUBEVENTS_CACHE:-$HOME/.cache/kubevents}
ALL=(etcd kube-apiserver otelcol victorialogs)
GO_MIN=1.26 # the pinned modules declare go 1.26.0

# --- pins: the version each server is keyed by, read from its own files ------------------
pin() { # NAME -> version
    case $1 in
    etcd) modver "$HERE/etcd/go.mod" go.etcd.io/etcd/server/v3 ;;
    kube-apiserver) modver "$HERE/kube-apiserver/go.mod" k8s.io/kubernetes ;;
    victorialogs) modver "$HERE/victorialogs/go.mod" github.com/VictoriaMetrics/VictoriaLogs ;;
    otelcol) sed -n 's/^ *version: *"\{0,1\}\([^" ]*\)"\{0,1\} *$/v\1/p' "$HERE/otelcol/builder-config.yaml" | head -n1 ;;
    *) return 1 ;;
    esac
}
modver() { # go.mod module -> version in its require block
    awk -v m="$2" '$1 == "require" && $2 == m { print $3; exit } $1 == m && $2 ~ /^v/ { print $2; exit }' "$1"
}
binary() { # NAME -> file name of the binary
    case $1 in otelcol) echo otelcol-kubevents ;; *) echo "$1" ;; esac
}
inputs_hash() { # NAME -> hash of the files the build is made from
    (cd "$HERE/$1" && cat $(ls main.go go.mod go.sum builder-config.yaml 2>/dev/null) | sha256sum | cut -c1-16)
}
build_dir() { echo "$CACHE/servers/$1-$(pin "$1")"; }
bin_path() { echo "$(build_dir "$1")/bin/$(binary "$1")"; }

# --- per-server builds: run in the server's directory, write "$out" ---------------------
build_etcd() { go build -trimpath -ldflags='-s -w' -o "$out" . ; }

build_kube-apiserver() {
    local v=$version minor
    minor=${v#v1.}; minor=${minor%%.*}
    local x=""
    for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
        x+=" -X $p.gitVersion=$v -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
    done
    go build -trimpath -ldflags="-s -w$x" -o "$out" .
}

# victorialogs: the upstream main package itself, named by the tool directive of go.mod
# (a main package cannot be imported, and none of its code is copied here).
build_victorialogs() {
    go build -trimpath -ldflags="-s -w -X github.com/VictoriaMetrics/VictoriaMetrics/lib/buildinfo.Version=victoria-logs-$version" \
        -o "$out" github.com/VictoriaMetrics/VictoriaLogs/app/victoria-logs
}

# otelcol: the Collector's own builder (ocb) generates a main package from the manifest into
# the cache; it is compiled here with the same flags as the other servers.
build_otelcol() {
    local tools="$CACHE/tools/builder-$version" src="$dir/src"
    if [ ! -x "$tools/builder" ]; then
        GOBIN="$tools" go install "go.opentelemetry.io/collector/cmd/builder@$version" || return 1
    fi
    rm -rf "$src" && mkdir -p "$src" || return 1
    sed "s#^\( *output_path:\).*#\1 $src#" builder-config.yaml >"$dir/builder-config.yaml" || return 1
    grep -q "output_path: $src" "$dir/builder-config.yaml" || { echo "builder-config.yaml has no dist.output_path"; return 1; }
    # the builder runs go get / go mod tidy itself, which reject -mod=readonly.
    # The checksum database mirror reachable here answers 404 for the contrib modules'
    # go.mod lookups, so they are exempted from it (GONOSUMDB) for this build only. Modules
    # still come from the module proxy alone (GOPROXY has no "direct"), and the go.sum the
    # builder writes pins their hashes for every later build from the same cache.
    local -x GONOSUMDB=github.com/open-telemetry/opentelemetry-collector-contrib,go.opentelemetry.io/collector
    # The builder's own `go mod tidy` fails on modules that only the tests of dependencies
    # import (e.g. collector/extension/zpagesextension v0.152.0, which the proxy refuses):
    # it only generates the sources here, and `go mod tidy -e` completes go.mod and go.sum
    # (everything the binary imports must still resolve: go build checks that).
    local -x GOFLAGS="${GOFLAGS/-mod=readonly/}"
    "$tools/builder" --skip-compilation --skip-get-modules --config "$dir/builder-config.yaml" || return 1
    (cd "$src" && go mod tidy -e -compat=1.25 && go build -trimpath -ldflags='-s -w' -o "$out" .)
}

usage() { sed -n '2,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

# shellcheck source=tests/gobuild.sh
. "$HERE/../gobuild.sh"
gobuild_main servers "$@"
