#!/usr/bin/env bash
# Runs the fuzzers of a fuzz build (make fuzz; fuzz/README.md). For each:
# its regression inputs (fuzz/regressions/<name>/) replayed once, then
# SECONDS of fuzzing from a fresh copy of its seeds (fuzz/corpus/<name>/)
# and the regression inputs. A crash, leak, timeout, out-of-memory or broken
# invariant fails the run; the input that did it is left in
# BUILD_DIR/fuzz-artifacts/<name>/.
#
#   fuzz/run.sh BUILD_DIR [SECONDS [NAME...]]
set -euo pipefail

build_dir=${1:?usage: run.sh BUILD_DIR [SECONDS [NAME...]]}
seconds=${2:-30}
shift $(($# < 2 ? $# : 2))
source_dir=$(cd "$(dirname "$0")" && pwd)

# Per fuzzer: the longest input tried. Enough for a whole handshake and a few
# messages, a config file with every key, a few dozen subscriptions.
declare -A max_len=(
  [zmtp_framing]=4096
  [zmtp_null]=4096
  [zmtp_curve]=4096
  [mdp_codec]=1024
  [bus_subscriptions]=2048
  [config_loader]=4096
)
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
  names=(zmtp_framing zmtp_null zmtp_curve mdp_codec bus_subscriptions config_loader)
fi

# Bounds on every run: memory, time per input, leaks reported.
common=(-rss_limit_mb=2048 -timeout=10 -detect_leaks=1)
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_stack_use_after_return=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

failed=()
summary=()
for name in "${names[@]}"; do
  binary=$build_dir/fuzz/fuzz_$name
  if [ ! -x "$binary" ]; then
    echo "run.sh: $binary is missing (cmake --build $build_dir --target fuzzers)" >&2
    exit 2
  fi
  corpus=$build_dir/fuzz-corpus/$name
  artifacts=$build_dir/fuzz-artifacts/$name
  log=$build_dir/fuzz-logs/$name.log
  rm -rf "$corpus"
  mkdir -p "$corpus" "$artifacts" "$(dirname "$log")"
  cp "$source_dir/corpus/$name"/* "$corpus"/
  : >"$log"

  regressions=()
  if [ -d "$source_dir/regressions/$name" ]; then
    mapfile -t regressions < <(find "$source_dir/regressions/$name" -type f ! -name '.*' | sort)
  fi
  if [ ${#regressions[@]} -gt 0 ]; then
    echo "== $name: replaying ${#regressions[@]} regression input(s)"
    if ! "$binary" "${common[@]}" "${regressions[@]}" >>"$log" 2>&1; then
      echo "FAILED: $name on a regression input (log: $log)" >&2
      tail -n 40 "$log" >&2
      failed+=("$name (regression)")
      continue
    fi
  fi

  echo "== $name: fuzzing for ${seconds}s"
  dirs=("$corpus")
  [ ${#regressions[@]} -gt 0 ] && dirs+=("$source_dir/regressions/$name")
  if ! "$binary" "${common[@]}" -max_len="${max_len[$name]}" -max_total_time="$seconds" \
    -artifact_prefix="$artifacts/" -print_final_stats=1 "${dirs[@]}" >>"$log" 2>&1; then
    echo "FAILED: $name (log: $log; input in $artifacts/)" >&2
    tail -n 60 "$log" >&2
    failed+=("$name")
    continue
  fi
  done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
  cov=$(sed -n 's/.* cov: \([0-9]*\) ft: \([0-9]*\) corp: \([^ ]*\).*/cov \1, features \2, corpus \3/p' \
    <<<"$done_line")
  summary+=("$(printf '%-18s %9s runs %7s exec/s  %s' "$name" "$execs" "$rate" "$cov")")
done

echo
echo "fuzz summary (${seconds}s each):"
printf '  %s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: FAILED: ${failed[*]} (fuzz/README.md: turning a finding into a regression input)" >&2
  exit 1
fi
