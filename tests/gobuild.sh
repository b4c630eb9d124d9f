# The driver tests/servers/build.sh and tests/deploy/build.sh share (sourced, not run):
# argument handling, the Go checks, the cache lock and the build-or-reuse loop.
#
# The sourcing script sets HERE (its directory) and CACHE (the cache root), defines the
# following, then calls `gobuild_main KIND "$@"` (KIND: the cache
# subdirectory, "servers" or "tools"):
#   ALL=(...)           the names it builds; GO_MIN, the oldest Go the pins accept
#   pin NAME            the version NAME is keyed by
#   inputs_hash NAME    a hash of the files the build is made from (a change rebuilds)
#   build_dir NAME      the directory of one build: its binary, log and inputs stamp
#   bin_path NAME       the binary's path (inside build_dir)
#   build_NAME          builds into "$out", with "$version" and "$dir" set; runs in
#                       "$HERE/NAME" when that directory exists
#   usage               prints the script's help
#
# One line per name: "<name> <version>: built|cached|FAILED ...". Exit status: 0 when every
# requested name is there, 1 when one failed, 2 on a usage error, 3 when a build is needed
# and Go is missing or too old (cached binaries need no Go).
# Environment: KUBEVENTS_CACHE (cache root), KUBEVENTS_BUILD_JOBS (go build -p, default 2).

known() { local n; for n in "${ALL[@]}"; do [ "$n" = "$1" ] && return 0; done; return 1; }

# Go's environment, set up on the first build only.
go_ready=
setup_go() {
    [ -n "$go_ready" ] && return 0
    if ! command -v go >/dev/null 2>&1; then
        echo "build.sh: 'go' not found: install the Go toolchain >= $GO_MIN (Debian: golang-go from bookworm-backports is too old; use the official Go $GO_MIN tarball) and put go on PATH"
        exit 3
    fi
    local gover
    gover=$(go env GOVERSION 2>/dev/null); gover=${gover#go}
    if [ "$(printf '%s\n%s\n' "$GO_MIN" "$gover" | sort -V | head -n1)" != "$GO_MIN" ]; then
        echo "build.sh: go $gover is too old: install the Go toolchain >= $GO_MIN and put go on PATH"
        exit 3
    fi
    export GOMODCACHE="$CACHE/go/mod" GOCACHE="$CACHE/go/build" CGO_ENABLED=0 GOTOOLCHAIN=local GOWORK=off
    export GOFLAGS="-p=${KUBEVENTS_BUILD_JOBS:-2} -mod=readonly -buildvcs=false"
    # Modules come from the module proxy only: no fallback to cloning repositories ("direct").
    GOPROXY=$(go env GOPROXY | sed -e 's/[,|]direct$//' -e 's/^direct$/off/'); export GOPROXY
    go_ready=1
}

# NAME's binary is there, built from the same inputs.
is_cached() {
    local final dir
    final=$(bin_path "$1") dir=$(build_dir "$1")
    [ -x "$final" ] && [ "$(cat "$dir/inputs" 2>/dev/null)" = "$(inputs_hash "$1")" ]
}

# Build NAME unless its binary is cached for the same inputs; print one line.
build_one() {
    local name=$1 version dir out want log start status secs size reason
    version=$(pin "$name")
    if [ -z "$version" ]; then echo "$name: FAILED: no pinned version found"; return 1; fi
    dir=$(build_dir "$name")
    local final
    final=$(bin_path "$name")
    want=$(inputs_hash "$name")
    if [ -x "$final" ] && [ "$(cat "$dir/inputs" 2>/dev/null)" = "$want" ]; then
        echo "$name $version: cached $final"
        return 0
    fi
    setup_go
    mkdir -p "$(dirname "$final")" && rm -f "$final" "$dir/inputs"
    log="$dir/build.log"
    start=$(date +%s)
    (
        [ -d "$HERE/$name" ] && { cd "$HERE/$name" || exit 1; }
        out="$final.tmp"
        renice -n 10 -p "$BASHPID" >/dev/null 2>&1 # other work shares the cores
        "build_$name"
    ) >"$log" 2>&1
    status=$?
    secs=$(($(date +%s) - start))
    if [ $status -eq 0 ] && [ -s "$final.tmp" ]; then
        mv -f "$final.tmp" "$final" && echo "$want" >"$dir/inputs"
        size=$(($(stat -c %s "$final") / 1048576))
        echo "$name $version: built in ${secs}s (${size} MiB) $final"
        return 0
    fi
    rm -f "$final.tmp"
    reason=$(grep -v '^go: downloading' "$log" | grep -E -m1 'error|cannot|not found|missing|undefined|invalid|denied|refused|Forbidden|no space' ||
        grep -v '^go: downloading' "$log" | tail -n1)
    echo "$name $version: FAILED after ${secs}s: ${reason:-exit $status} (log: $log)"
    return 1
}

gobuild_main() {
    local kind=$1
    shift
    case ${1:-} in
    -h | --help) usage; exit 0 ;;
    --list) printf '%s\n' "${ALL[@]}"; exit 0 ;;
    --path)
        [ $# -eq 2 ] && known "$2" || { echo "usage: $0 --path {${ALL[*]}}" >&2; exit 2; }
        bin_path "$2"; exit 0 ;;
    esac
    local names=("$@") n rc=0
    [ ${#names[@]} -eq 0 ] && names=("${ALL[@]}")
    for n in "${names[@]}"; do
        known "$n" || { echo "build.sh: unknown name '$n' (known: ${ALL[*]})" >&2; exit 2; }
    done
    mkdir -p "$CACHE/$kind" || exit 1
    # What is cached is answered at once, without the lock: a lookup does not wait for
    # another caller's build of something else.
    local pending=()
    for n in "${names[@]}"; do
        if is_cached "$n"; then
            echo "$n $(pin "$n"): cached $(bin_path "$n")"
        else
            pending+=("$n")
        fi
    done
    [ ${#pending[@]} -eq 0 ] && exit 0
    # One build at a time, across concurrent callers (parallel test workers, make -j).
    exec 9>"$CACHE/$kind/.lock"
    command -v flock >/dev/null 2>&1 && flock 9
    for n in "${pending[@]}"; do
        build_one "$n" || rc=1
    done
    exit $rc
}
