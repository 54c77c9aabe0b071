#!/usr/bin/env bash
# Runs the benchmark shapes of bench/RESULTS.md. Each broker figure is
# measured beside its baseline in the same run, alternating, REPEAT times;
# the medians and their ratio are printed.
# Usage: scripts/run-bench.sh [BUILD_DIR] [DURATION_SECONDS] [REPEAT]
set -euo pipefail
build=${1:-build}
duration=${2:-5}
repeat=${3:-3}
bench="$build/plantd-bench"
[ -x "$bench" ] || { echo "run-bench: $bench not built (make build)" >&2; exit 1; }

# median FIELD: the median of FIELD over the RESULT lines on stdin.
median() {
  sed -n "s/.* $1=\([^ ]*\).*/\1/p" | sort -g | awk '{ v[NR] = $1 } END {
    if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2];
    else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0 || b == "nan") print "n/a"; else printf "%.3f", a / b }'; }

# compare KIND "NAME" "BASE_ARGS" "BROKER_ARGS" FIELD...: runs both REPEAT
# times, prints every run, then medians and broker/baseline ratios.
compare() {
  local kind=$1 name=$2 base_args=$3 broker_args=$4
  shift 4
  local base_runs="" broker_runs=""
  for _ in $(seq "$repeat"); do
    base_runs+=$("$bench" "$kind" $base_args --duration "$duration" | grep RESULT)$'\n'
    broker_runs+=$("$bench" "$kind" $broker_args --duration "$duration" | grep RESULT)$'\n'
  done
  echo "== $name"
  printf '%s' "$base_runs" | sed 's/^/   baseline: /'
  printf '%s' "$broker_runs" | sed 's/^/   broker:   /'
  local line="   medians broker/baseline:"
  local pairs="   median of per-pair ratios (each pair ran back to back):"
  for f in "$@"; do
    local b r
    b=$(printf '%s' "$base_runs" | median "$f")
    r=$(printf '%s' "$broker_runs" | median "$f")
    line+=" $f $r/$b=$(ratio "$r" "$b");"
    local per_pair
    per_pair=$(paste -d' ' <(printf '%s' "$broker_runs" | sed -n "s/.* $f=\([^ ]*\).*/\1/p") \
                           <(printf '%s' "$base_runs" | sed -n "s/.* $f=\([^ ]*\).*/\1/p") |
               awk '{ if ($2 > 0) printf "x ratio=%f\n", $1 / $2 }' | median ratio)
    pairs+=" $f $per_pair;"
  done
  echo "$line"
  echo "$pairs"
}

echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "date: $(date -u +%FT%TZ)  duration: ${duration}s per run, $repeat runs each, alternating"
echo "placement: server on CPU 0; load on CPU 1 (split) or CPU 0 (same)"
echo

mdp_fields="req_per_s server_cpu_us_per_req p50_us p99_us"
compare mdp "MDP: 16 workers, 4 clients x 16 in flight, 64 B, split CPUs" \
  "--server relay --workers 16 --clients 4 --inflight 16 --size 64" \
  "--server broker --workers 16 --clients 4 --inflight 16 --size 64" $mdp_fields
compare mdp "MDP: 4 workers, 4 clients x 16 in flight, 64 B, split CPUs" \
  "--server relay --workers 4 --clients 4 --inflight 16 --size 64" \
  "--server broker --workers 4 --clients 4 --inflight 16 --size 64" $mdp_fields
compare mdp "MDP latency: 1 worker, 1 client x 1, 64 B, same CPU" \
  "--server relay --workers 1 --clients 1 --inflight 1 --load-cpu 0" \
  "--server broker --workers 1 --clients 1 --inflight 1 --load-cpu 0" $mdp_fields
compare mdp "MDP latency: 1 worker, 1 client x 1, 64 B, split CPUs" \
  "--server relay --workers 1 --clients 1 --inflight 1" \
  "--server broker --workers 1 --clients 1 --inflight 1" $mdp_fields
compare mdp "MDP: 16 workers, 4 clients x 16, 16 KiB bodies, split CPUs" \
  "--server relay --workers 16 --clients 4 --inflight 16 --size 16384" \
  "--server broker --workers 16 --clients 4 --inflight 16 --size 16384" $mdp_fields
compare mdp "MDP with worker credit 16 (docs/credit.md): 4 workers, 4 clients x 16, 64 B; baseline: relay letting workers hold many" \
  "--server relay-pipelined --workers 4 --clients 4 --inflight 16 --credit 16" \
  "--server broker --workers 4 --clients 4 --inflight 16 --credit 16" $mdp_fields

compare mdp "MDP with worker credit 16, load over plain ZMTP sockets (thread per connection, as natsbench); baseline: relay letting workers hold many" \
  "--server relay-pipelined --load zmtp --workers 4 --clients 4 --inflight 16 --credit 16" \
  "--server broker --load zmtp --workers 4 --clients 4 --inflight 16 --credit 16" $mdp_fields
compare mdp "The broker's two transports (docs/transport.md), credit shape, ZMTP load; baseline: transport zmq" \
  "--server broker --transport zmq --load zmtp --workers 4 --clients 4 --inflight 16 --credit 16" \
  "--server broker --transport native --load zmtp --workers 4 --clients 4 --inflight 16 --credit 16" $mdp_fields
compare mdp "CURVE (docs/security.md), credit shape, libzmq load; baseline: the same broker with NULL" \
  "--server broker --workers 4 --clients 4 --inflight 16 --credit 16" \
  "--server broker --curve 1 --workers 4 --clients 4 --inflight 16 --credit 16" $mdp_fields
compare mdp "CURVE, credit shape, libzmq load; baseline: libzmq's CURVE relay (pipelined)" \
  "--server relay-pipelined --curve 1 --workers 4 --clients 4 --inflight 16 --credit 16" \
  "--server broker --curve 1 --workers 4 --clients 4 --inflight 16 --credit 16" $mdp_fields
compare handshake "CURVE handshakes: 1,000 libzmq clients connecting at once, each asking mmi.service once; baseline: the same with NULL" \
  "--clients 1000" "--clients 1000 --curve 1" seconds server_cpu_us_per_client

# NATS on the same shape, alternating with the broker: both load generators
# are one thread and one plain socket per connection.
natsbench_src=$(dirname "$0")/../../shared/tools/natsbench/natsbench.cpp
if command -v nats-server >/dev/null && [ -f "$natsbench_src" ]; then
  [ -x "$build/natsbench" ] || g++ -O2 -std=c++17 -pthread "$natsbench_src" -o "$build/natsbench"
  echo "== Broker vs NATS (nats-server $(nats-server --version | cut -d' ' -f2), 4-member queue group): 4 workers/responders, 4 clients x 16, 64 B, server CPU 0, load CPU 1"
  nats_runs="" broker_runs=""
  for _ in $(seq "$repeat"); do
    broker_runs+=$("$bench" mdp --server broker --load zmtp --workers 4 --clients 4 --inflight 16 \
                     --credit 16 --duration "$duration" | grep RESULT)$'\n'
    port=$((14222 + RANDOM % 1000))
    taskset -c 0 nats-server -a 127.0.0.1 -p "$port" >/dev/null 2>&1 &
    nats_pid=$!
    sleep 0.5
    nats_runs+=$(taskset -c 1 "$build/natsbench" reqrep --port "$port" --workers 4 --clients 4 \
                   --inflight 16 --size 64 --duration "$duration" 2>&1 | grep TOTAL |
                 sed 's/.*TOTAL \([0-9.]*\) req\/s.*p50=\([0-9.]*\)us.*p99=\([0-9.]*\)us p99.9.*/RESULT nats req_per_s=\1 p50_us=\2 p99_us=\3 /')$'\n'
    kill "$nats_pid"
    wait "$nats_pid" 2>/dev/null || true
  done
  printf '%s' "$nats_runs" | sed 's/^/   nats:   /'
  printf '%s' "$broker_runs" | sed 's/^/   broker: /'
  b=$(printf '%s' "$broker_runs" | median req_per_s)
  n=$(printf '%s' "$nats_runs" | median req_per_s)
  per_pair=$(paste -d' ' <(printf '%s' "$broker_runs" | sed -n 's/.* req_per_s=\([^ ]*\).*/\1/p') \
                         <(printf '%s' "$nats_runs" | sed -n 's/.* req_per_s=\([^ ]*\).*/\1/p') |
             awk '{ if ($2 > 0) printf "x ratio=%f\n", $1 / $2 }' | median ratio)
  echo "   medians broker/nats: req_per_s $b/$n=$(ratio "$b" "$n"); median of per-pair ratios: $per_pair"
fi

# End to end through libplantd's public API (AsyncClient with callbacks,
# Worker with Receive/Reply), against NATS request-reply with natsbench in
# the same run, alternating (issue 13).
if command -v nats-server >/dev/null && [ -x "$build/plantd-lib-bench" ]; then
  echo "== libplantd end to end vs NATS request-reply: 4 workers (credit 16), 4 clients x 16, 64 B, server CPU 0, load CPU 1"
  "$build/plantd-lib-bench" --duration "$duration" --rounds "$repeat" --natsbench "$build/natsbench" |
    sed 's/^/   /' || echo "   (plantd-lib-bench reported a failure above)"
  # Several brokers (issue 17): the same load over two brokers on the one
  # server CPU, every worker on both, every client sending to both.
  echo "== libplantd over 2 brokers on one CPU (workers on both, credit split; clients to both in turn)"
  "$build/plantd-lib-bench" --duration "$duration" --rounds 1 --engines native --brokers 2 \
    --natsbench "$build/natsbench" | grep RESULT | sed 's/^/   /' ||
    echo "   (plantd-lib-bench reported a failure above)"
fi

# The store alone (issue 14): durable submits per second through the SQLite
# store with its sync threads, no network.
if [ -x "$build/plantd-store-bench" ]; then
  echo "== Store alone: acknowledged durable submits, 1/16/64 in flight, 64 B and 1 KiB"
  "$build/plantd-store-bench" --seconds "$duration" | sed 's/^/   /'
fi

# Durable requests against JetStream (issue 14): plantd-durable-bench runs
# both itself, alternating round by round, and checks what each stored; the
# sync audit (a short run of each under strace -c) shows which one synced
# before acknowledging.
if command -v nats-server >/dev/null && [ -x "$build/plantd-durable-bench" ]; then
  echo "== Durable requests (9/TSP titanic.request, SQLite group commit) vs NATS JetStream acknowledged publish (file stream): 4 clients x 16 in flight, 64 B, server CPU 0, load CPU 1"
  audit=""
  command -v strace >/dev/null && audit="--audit-syncs 2"
  "$build/plantd-durable-bench" --clients 4 --inflight 16 --size 64 --duration "$duration" \
    --rounds "$repeat" $audit | sed 's/^/   /' || echo "   (plantd-durable-bench reported a failure above)"
fi

compare bus "Bus: 1 publisher, 1 subscriber, 64 B, as fast as possible, split CPUs; baseline: bare zmq_proxy" \
  "--server proxy --pubs 1 --subs 1 --size 64" "--server broker --pubs 1 --subs 1 --size 64" \
  delivered_per_sub_per_s server_cpu_s
compare bus "Bus latency: 1 publisher at 10,000 msg/s, 1 subscriber, 64 B, split CPUs" \
  "--server proxy --pubs 1 --subs 1 --size 64 --rate 10000" \
  "--server broker --pubs 1 --subs 1 --size 64 --rate 10000" p50_us p99_us
repeat=1 compare memory "Memory: 10,000 idle clients and 1,000 idle workers; baseline: the bare relay" \
  "--server relay --clients 10000 --workers 1000" "--server broker --clients 10000 --workers 1000" rss_mb
echo "== Bus memory: 1,000 subscribers with 100 topic prefixes each (issue #13; reported, no baseline)"
"$bench" bus-memory --subs 1000 --prefixes 100 | grep RESULT
