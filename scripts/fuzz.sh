#!/usr/bin/env bash
# Runs the cargo-fuzz targets of fuzz/ one after the other, each for a fixed time, and fails on
# any crash (a panic, a failed invariant, a sanitizer report, a timeout or an out-of-memory).
# Prints one line of figures per target (executions, exec/s, coverage, corpus), the table of
# docs/security.md, "Fuzzing the parsers".
#
#   scripts/fuzz.sh                      # every target, 600 s each
#   scripts/fuzz.sh 60                   # every target, 60 s each
#   scripts/fuzz.sh 600 acl_match jwt_verify
#
# Environment:
#   NICE        niceness of the runs (default 10: they share the machine)
#   LOG_DIR     where each target's libFuzzer log goes (default target/fuzz-logs)
#   FUZZ_ARGS   more libFuzzer flags, e.g. "-max_len=8192"
#
# cargo fuzz needs nightly-only compiler flags (-Zsanitizer=address, sanitizer coverage):
# RUSTC_BOOTSTRAP=1 lets the stable toolchain accept them. Each run is one libFuzzer process on
# one core (no -jobs/-workers). It reads the committed seeds (fuzz/seeds/<target>, written by
# scripts/fuzz-seeds.sh) and grows the local corpus fuzz/corpus/<target> (not committed); a
# crashing input lands in fuzz/artifacts/<target>/, to replay with
# `RUSTC_BOOTSTRAP=1 cargo fuzz run <target> <file>`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

SECONDS_EACH=${1:-600}
shift || true
TARGETS=("$@")
NICE=${NICE:-10}
LOG_DIR=${LOG_DIR:-target/fuzz-logs}
export RUSTC_BOOTSTRAP=1

command -v cargo-fuzz >/dev/null || {
    echo "fuzz: cargo-fuzz is not installed: cargo install cargo-fuzz" >&2
    exit 1
}
if [[ ${#TARGETS[@]} -eq 0 ]]; then
    mapfile -t TARGETS < <(cargo fuzz list)
fi
mkdir -p "$LOG_DIR"

echo "==> cargo fuzz build (release, debug assertions, AddressSanitizer)" >&2
nice -n "$NICE" cargo fuzz build
# The binaries built now are the ones run: a later edit of the sources does not rebuild (and
# so cannot break) a run halfway through the list.
bin_dir=fuzz/target/$(rustc -vV | sed -n 's/^host: //p')/release
# Deliberate, bounded leaks of dependencies (see the file).
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/fuzz/lsan.supp}

failed=()
printf '| target | seconds | executions | exec/s | cov | ft | corpus | peak RSS MB | crashes |\n'
printf '|---|---:|---:|---:|---:|---:|---:|---:|---:|\n'
for target in "${TARGETS[@]}"; do
    log=$LOG_DIR/$target.log
    mkdir -p "fuzz/corpus/$target" "fuzz/seeds/$target"
    status=0
    mkdir -p "fuzz/artifacts/$target"
    touch "$log.start"
    # shellcheck disable=SC2086
    nice -n "$NICE" "$bin_dir/$target" -artifact_prefix="fuzz/artifacts/$target/" \
        -max_total_time="$SECONDS_EACH" -timeout=60 -rss_limit_mb=4096 -print_final_stats=1 \
        ${FUZZ_ARGS:-} "fuzz/corpus/$target" "fuzz/seeds/$target" >"$log" 2>&1 || status=$?
    # The last status line: `#N DONE cov: C ft: F corp: U/S …`.
    last=$(grep -E '^#[0-9]+[[:space:]]+(DONE|pulse|NEW|REDUCE|INITED)' "$log" | tail -n 1 || true)
    cov=$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$last")
    ft=$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$last")
    corp=$(sed -nE 's/.* corp: ([0-9]+)\/.*/\1/p' <<<"$last")
    execs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+)/\1/p' "$log" | tail -n 1)
    rate=$(sed -nE 's/^stat::average_exec_per_sec: *([0-9]+)/\1/p' "$log" | tail -n 1)
    rss=$(sed -nE 's/^stat::peak_rss_mb: *([0-9]+)/\1/p' "$log" | tail -n 1)
    # Inputs libFuzzer saved as crashing, leaking, timing out or running out of memory.
    crashes=$(find "fuzz/artifacts/$target" -type f -newer "$log.start" | wc -l)
    rm -f "$log.start"
    if [[ $status -ne 0 || $crashes -ne 0 ]]; then
        failed+=("$target")
    fi
    printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$target" "$SECONDS_EACH" \
        "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "${rss:-?}" "$crashes"
done

if [[ ${#failed[@]} -gt 0 ]]; then
    echo "fuzz: crash in ${failed[*]}; see $LOG_DIR/<target>.log and fuzz/artifacts/" >&2
    exit 1
fi
