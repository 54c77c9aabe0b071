#!/usr/bin/env bash
# Runs the benchmark shapes of bench/RESULTS.md: each broker figure next to
# its baseline measured in the same run, and the ratio between them.
# Usage: scripts/run-bench.sh [BUILD_DIR] [DURATION_SECONDS]
set -euo pipefail
build=${1:-build}
duration=${2:-5}
bench="$build/plantd-bench"
[ -x "$bench" ] || { echo "run-bench: $bench not built (make build)" >&2; exit 1; }

field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "n/a"; else printf "%.3f", a / b }'; }

echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "date: $(date -u +%FT%TZ)  duration: ${duration}s per run"
echo

# name | plantd-bench mdp arguments
mdp_shapes=(
  "16 workers, 4 clients x 16, 64 B, split CPUs|--workers 16 --clients 4 --inflight 16 --size 64 --server-cpu 0 --load-cpu 1"
  "4 workers, 4 clients x 16, 64 B, split CPUs|--workers 4 --clients 4 --inflight 16 --size 64 --server-cpu 0 --load-cpu 1"
  "1 worker, 1 client x 1, 64 B, same CPU|--workers 1 --clients 1 --inflight 1 --size 64 --server-cpu 0 --load-cpu 0"
  "1 worker, 1 client x 1, 64 B, split CPUs|--workers 1 --clients 1 --inflight 1 --size 64 --server-cpu 0 --load-cpu 1"
  "16 workers, 4 clients x 16, 16 KiB, split CPUs|--workers 16 --clients 4 --inflight 16 --size 16384 --server-cpu 0 --load-cpu 1"
)
for shape in "${mdp_shapes[@]}"; do
  name=${shape%%|*}
  args=${shape#*|}
  base=$("$bench" mdp --server relay $args --duration "$duration" | grep RESULT)
  broker=$("$bench" mdp --server broker $args --duration "$duration" | grep RESULT)
  echo "== MDP: $name"
  echo "   baseline: $base"
  echo "   broker:   $broker"
  echo "   ratio broker/baseline: throughput $(ratio "$(field req_per_s "$broker")" "$(field req_per_s "$base")")" \
       " cpu/req $(ratio "$(field server_cpu_us_per_req "$broker")" "$(field server_cpu_us_per_req "$base")")" \
       " p50 $(ratio "$(field p50_us "$broker")" "$(field p50_us "$base")")" \
       " p99 $(ratio "$(field p99_us "$broker")" "$(field p99_us "$base")")"
done

echo "== MDP with worker credit (docs/credit.md): 4 workers with credit 16, 4 clients x 16, 64 B, split CPUs"
piped=$("$bench" mdp --server relay-pipelined --workers 4 --clients 4 --inflight 16 --credit 16 --duration "$duration" | grep RESULT)
credit=$("$bench" mdp --server broker --workers 4 --clients 4 --inflight 16 --credit 16 --duration "$duration" | grep RESULT)
echo "   baseline (pipelined relay, workers hold many): $piped"
echo "   broker (credit 16):                            $credit"
echo "   ratio broker/baseline: throughput $(ratio "$(field req_per_s "$credit")" "$(field req_per_s "$piped")")" \
     " cpu/req $(ratio "$(field server_cpu_us_per_req "$credit")" "$(field server_cpu_us_per_req "$piped")")"

# NATS on the same shape, when nats-server and the natsbench tool are here.
natsbench_src=$(dirname "$0")/../../shared/tools/natsbench/natsbench.cpp
if command -v nats-server >/dev/null && [ -f "$natsbench_src" ]; then
  [ -x "$build/natsbench" ] || g++ -O2 -std=c++17 -pthread "$natsbench_src" -o "$build/natsbench"
  port=$((14222 + RANDOM % 1000))
  taskset -c 0 nats-server -a 127.0.0.1 -p "$port" >/dev/null 2>&1 &
  nats_pid=$!
  sleep 0.5
  nats=$(taskset -c 1 "$build/natsbench" reqrep --port "$port" --workers 4 --clients 4 --inflight 16 --size 64 --duration "$duration" 2>&1 | grep TOTAL || true)
  kill "$nats_pid"; wait "$nats_pid" 2>/dev/null || true
  echo "   NATS (nats-server $(nats-server --version | cut -d' ' -f2), 4-member queue group, same shape): $nats"
fi

echo "== Bus: 1 publisher, 1 subscriber, 64 B, as fast as possible, split CPUs"
base=$("$bench" bus --server proxy --pubs 1 --subs 1 --size 64 --duration "$duration" | grep RESULT)
broker=$("$bench" bus --server broker --pubs 1 --subs 1 --size 64 --duration "$duration" | grep RESULT)
echo "   baseline: $base"
echo "   broker:   $broker"
echo "   ratio broker/baseline: delivered $(ratio "$(field delivered_per_sub_per_s "$broker")" "$(field delivered_per_sub_per_s "$base")")"

echo "== Bus latency: 1 publisher at 10,000 msg/s, 1 subscriber, 64 B, split CPUs"
base=$("$bench" bus --server proxy --pubs 1 --subs 1 --size 64 --rate 10000 --duration "$duration" | grep RESULT)
broker=$("$bench" bus --server broker --pubs 1 --subs 1 --size 64 --rate 10000 --duration "$duration" | grep RESULT)
echo "   baseline: $base"
echo "   broker:   $broker"
echo "   ratio broker/baseline: p50 $(ratio "$(field p50_us "$broker")" "$(field p50_us "$base")") p99 $(ratio "$(field p99_us "$broker")" "$(field p99_us "$base")")"

echo "== Memory: 10,000 idle clients and 1,000 idle workers"
"$bench" memory --clients 10000 --workers 1000 | grep RESULT
