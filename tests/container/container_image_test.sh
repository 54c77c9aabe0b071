#!/bin/bash
# The container image, built and run as far as this sandbox allows:
#  1. a Debian bookworm base image from Debian packages (mmdebstrap's
#     tarball given to podman import), as no image registry is reachable;
#  2. the Dockerfile built on it (podman build --isolation chroot
#     --build-arg BASE=...), the same Dockerfile `docker build` uses;
#  3. the image's configuration checked (non-root user, ports, health check,
#     volume, no compiler or headers in it);
#  4. the broker run from the image's file system (podman image mount and
#     chroot, as its user, with its environment, a directory at its volume),
#     since containers cannot be started here: /healthz and /readyz answer,
#     the image's own health check passes, a request goes through the broker
#     to plantd-mdp's echo worker and back (both plantd-mdp from the image),
#     the durable store is written into the volume, SIGTERM stops it with
#     status 0 and the health check then fails.
# Podman keeps its storage under WORK_DIR (not the system's), and everything
# made here is removed at the end, passed or failed.
#
#   container_image_test.sh SOURCE_DIR WORK_DIR
# Needs root (podman image mount, chroot), podman, mmdebstrap, curl, ss:
# scripts/install-deps.sh container installs them.
set -euo pipefail

if [ $# -ne 2 ]; then
  echo "usage: container_image_test.sh SOURCE_DIR WORK_DIR" >&2
  exit 2
fi
source_dir=$(cd "$1" && pwd)
work=$2
here=$(cd "$(dirname "$0")" && pwd)

say() { echo "container-test: $*"; }
fail() {
  echo "container-test: FAIL: $*" >&2
  exit 1
}

[ "$(id -u)" -eq 0 ] || fail "needs root (podman image mount, chroot)"
for tool in podman mmdebstrap unshare chroot curl ss; do
  command -v "$tool" >/dev/null || fail "$tool is missing: run scripts/install-deps.sh container"
done

# Whatever podman left mounted under a directory (its overlay mounts),
# deepest first, so that rm never descends into a mount.
unmount_under() {
  findmnt -rn -o TARGET | { grep "^$1/" || true; } | sort -r | while read -r target; do
    umount -l "$target"
  done
}

mkdir -p "$work"
work=$(cd "$work" && pwd)
unmount_under "$work"
rm -rf "$work"
mkdir -p "$work"
# Podman's images, run state and temporary files (the imported tarball, the
# build context) all under the work directory, none in the system's store.
# (The run root must be a short path: podman refuses one over 50 characters.)
mkdir -p "$work/tmp"
export TMPDIR="$work/tmp"
runroot=$(mktemp -d /tmp/plantd-podman.XXXXXX)
podman_cmd=(podman --root "$work/storage" --runroot "$runroot" --tmpdir "$work/tmp"
  --storage-driver overlay)
tag="t$$"
base_image="localhost/plantd-test-base:$tag"
image="localhost/plantd-broker-test:$tag"
pids=()
image_mounted=0
# Drops a PID from `pids` once it has been waited for: the kernel may give
# that number to another process, which the cleanup must not kill.
forget_pid() {
  local kept=() pid
  for pid in "${pids[@]}"; do
    [ "$pid" = "$1" ] || kept+=("$pid")
  done
  pids=("${kept[@]}")
}

cleanup() {
  local status=$?
  set +e
  for pid in "${pids[@]}"; do
    kill -KILL "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  done
  if [ "$image_mounted" -eq 1 ]; then
    "${podman_cmd[@]}" image unmount "$image" >/dev/null
  fi
  # Every image this test made, the build stage's included, then the store.
  "${podman_cmd[@]}" rmi --all --force >/dev/null 2>&1
  left=$("${podman_cmd[@]}" images --all --quiet 2>/dev/null | wc -l)
  [ "$left" -eq 0 ] || echo "container-test: $left images left in $work/storage" >&2
  unmount_under "$work"
  unmount_under "$runroot"
  rm -rf "$work" "$runroot"
  exit "$status"
}
trap cleanup EXIT

# 1. The base image: Debian's minimal bookworm without documentation, man
# pages and translations, as debian:bookworm-slim is (the dpkg exclusions
# stay in the image, so packages installed on it are slim too).
say "making the base image from Debian packages (mmdebstrap --variant=minbase bookworm)"
start=$SECONDS
slim=()
for excluded in doc man info locale groff lintian linda; do
  slim+=("--dpkgopt=path-exclude=/usr/share/$excluded/*")
done
slim+=("--dpkgopt=path-include=/usr/share/doc/*/copyright")
# In a session of its own: on an error mmdebstrap signals its whole process
# group, which would otherwise be this script, ctest and make.
setsid --wait mmdebstrap --quiet --variant=minbase "${slim[@]}" bookworm "$work/base.tar" \
  </dev/null >"$work/mmdebstrap.log" 2>&1 ||
  { cat "$work/mmdebstrap.log" >&2; fail "mmdebstrap could not make the base file system"; }
"${podman_cmd[@]}" import --quiet "$work/base.tar" "$base_image" >/dev/null ||
  fail "podman import of the base file system failed"
rm -f "$work/base.tar"
say "base image made in $((SECONDS - start)) s"

# 2. The image, from the repository's Dockerfile.
revision=$(git -C "$source_dir" describe --always --dirty 2>/dev/null || echo unknown)
say "building the image (podman build --isolation chroot), revision $revision"
start=$SECONDS
if ! "${podman_cmd[@]}" build --isolation chroot --pull=never --format docker \
  --build-arg BASE="$base_image" --build-arg REVISION="$revision" \
  --build-arg JOBS="${JOBS:-$(nproc)}" \
  -t "$image" -f "$source_dir/Dockerfile" "$source_dir" >"$work/build.log" 2>&1; then
  tail -n 60 "$work/build.log" >&2
  fail "podman build failed"
fi
size=$("${podman_cmd[@]}" image inspect --format '{{.Size}}' "$image")
say "image built in $((SECONDS - start)) s, $((size / 1000000)) MB"

# 3. The image's configuration.
inspect() { "${podman_cmd[@]}" image inspect --format "$1" "$image"; }
user=$(inspect '{{.Config.User}}')
workdir=$(inspect '{{.Config.WorkingDir}}')
# Go templates, not shell expansions:
# shellcheck disable=SC2016
ports=$(inspect '{{range $p, $_ := .Config.ExposedPorts}}{{$p}} {{end}}')
# shellcheck disable=SC2016
volumes=$(inspect '{{range $v, $_ := .Config.Volumes}}{{$v}} {{end}}')
healthcheck=$(inspect '{{json .HealthCheck}}')
entrypoint=$(inspect '{{json .Config.Entrypoint}}')
say "user $user, workdir $workdir, ports $ports, volumes $volumes"
say "entrypoint $entrypoint, healthcheck $healthcheck"
case "$user" in
  '' | 0 | 0:* | root | root:*) fail "the image runs as root (User '$user')" ;;
esac
for port in 7200/tcp 7201/tcp 8081/tcp; do
  [[ " $ports " == *" $port "* ]] || fail "port $port is not exposed"
done
read -r -a volume_list <<<"$volumes"
[ ${#volume_list[@]} -eq 1 ] || fail "expected one volume, got '$volumes'"
volume_target=${volume_list[0]}
[[ "$healthcheck" == *livez* || "$healthcheck" == */usr/lib/plantd-broker/healthcheck* ]] ||
  fail "no HEALTHCHECK on /livez"
[[ "$entrypoint" == '["/usr/bin/plantd-broker"]' ]] || fail "entrypoint is $entrypoint"

root=$("${podman_cmd[@]}" image mount "$image")
image_mounted=1
say "image mounted at $root"
grep -q livez "$root/usr/lib/plantd-broker/healthcheck" || fail "the health check does not ask /livez"
for absent in usr/bin/g++ usr/bin/cc usr/bin/cmake usr/include/zmq.h; do
  [ ! -e "$root/$absent" ] || fail "the runtime image has /$absent (build tools belong to the build stage)"
done

# The image's environment, exactly; the test's own variables after it.
inspect '{{range .Config.Env}}{{println .}}{{end}}' | grep -v '^$' >"$work/image.env"
volume_dir="$work/volume"
install -d -m 0750 -o "${user%%:*}" -g "${user##*:}" "$volume_dir"
# Not a function: a function run with & is a subshell whose PID is not the
# broker's, and this test signals and waits for the broker by its PID.
in_image=("$here/run_in_image.sh" "$root" "$volume_dir" "$volume_target" "$user" "$workdir")

# With only the image's environment, as `docker run` starts it: every
# endpoint on all interfaces (so -p publishing reaches it) and the store in
# the volume.
"${in_image[@]}" "$work/image.env" /usr/bin/plantd-broker --print-config >"$work/print-config.txt" 2>&1 ||
  { cat "$work/print-config.txt" >&2; fail "--print-config failed in the image"; }
grep -q '^endpoint: "tcp://\*:7200"' "$work/print-config.txt" || fail "clients' endpoint is not tcp://*:7200"
grep -q '^client_endpoint: "tcp://\*:7201"' "$work/print-config.txt" ||
  fail "workers' endpoint is not tcp://*:7201"
grep -q '^  bind: "0\.0\.0\.0"' "$work/print-config.txt" || fail "health server does not bind 0.0.0.0"
grep -q "^  path: \"$volume_target/" "$work/print-config.txt" || fail "the store is not in the volume $volume_target"
version=$("${in_image[@]}" "$work/image.env" /usr/bin/plantd-broker --version)
say "in the image: $version"
[[ "$version" == *"$revision"* ]] || fail "--version does not name revision $revision"

# 4. The broker from the image, on loopback ports this test picks.
# A port nobody listens on and not yet in `picked` (run as $(free_port), a
# subshell: the caller adds the port to `picked`, and fails if none came,
# since `fail` in the subshell would end only the subshell).
free_port() {
  local port
  for _ in $(seq 1 100); do
    port=$((20000 + RANDOM % 30000))
    if [ -z "$(ss -Htln "sport = :$port")" ] && [[ " ${picked[*]} " != *" $port "* ]]; then
      echo "$port"
      return 0
    fi
  done
  echo "container-test: no free port in 100 tries" >&2
  return 1
}

start_broker() {
  local port
  picked=()
  for _ in 1 2 3 4 5; do
    # start_broker runs as an `if` condition, where set -e does not act: the
    # failure must be checked here (fail exits the script from this shell).
    if ! port=$(free_port) || [ -z "$port" ]; then
      fail "no free port found"
    fi
    picked+=("$port")
  done
  client_port=${picked[0]}
  worker_port=${picked[1]}
  http_port=${picked[2]}
  bus_backend=${picked[3]}
  bus_frontend=${picked[4]}
  # The bus list is set in a file only; the rest through the variables.
  cat >"$volume_dir/test-buses.yaml" <<YAML
buses:
  - name: control
    backend: "tcp://127.0.0.1:$bus_backend"
    frontend: "tcp://127.0.0.1:$bus_frontend"
YAML
  chmod 0644 "$volume_dir/test-buses.yaml"
  {
    cat "$work/image.env"
    echo "PLANTD_BROKER_ENDPOINT=tcp://127.0.0.1:$client_port"
    echo "PLANTD_BROKER_CLIENT_ENDPOINT=tcp://127.0.0.1:$worker_port"
    echo "PLANTD_BROKER_HEALTH_BIND=127.0.0.1"
    echo "PLANTD_BROKER_HEALTH_PORT=$http_port"
    echo "PLANTD_BROKER_CONFIG=$volume_target/test-buses.yaml"
  } >"$work/test.env"
  "${in_image[@]}" "$work/test.env" /usr/bin/plantd-broker >"$work/broker.log" 2>&1 &
  broker_pid=$!
  pids+=("$broker_pid")
  say "broker started (pid $broker_pid): clients $client_port, workers $worker_port, http $http_port"
  for _ in $(seq 1 100); do
    if curl -sf -o /dev/null "http://127.0.0.1:$http_port/readyz"; then
      return 0
    fi
    kill -0 "$broker_pid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

started=0
for attempt in 1 2 3; do
  if start_broker; then
    started=1
    break
  fi
  # A port taken between the pick and the bind: exit status 1; try others.
  kill -KILL "$broker_pid" 2>/dev/null || true
  wait "$broker_pid" 2>/dev/null || true
  forget_pid "$broker_pid"
  say "attempt $attempt: the broker did not become ready:"
  tail -n 20 "$work/broker.log" >&2
done
[ "$started" -eq 1 ] || fail "the broker from the image never became ready"

health=$(curl -s -w ' %{http_code}' "http://127.0.0.1:$http_port/healthz")
say "/healthz: $health"
[[ "$health" == *'"status":"pass"'*' 200' ]] || fail "/healthz is not pass/200"
[[ "$health" == *'"bus:control"'* ]] || fail "/healthz has no bus:control check"
"${in_image[@]}" "$work/test.env" /usr/lib/plantd-broker/healthcheck ||
  fail "the image's health check fails against a running broker"
say "the image's health check passes"

service="org.plantd.ContainerTest"
"${in_image[@]}" "$work/test.env" /usr/bin/plantd-mdp echo-worker "$service" \
  -e "tcp://127.0.0.1:$worker_port" >"$work/worker.log" 2>&1 &
worker_pid=$!
pids+=("$worker_pid")
payload="round-trip-$$-$RANDOM"
# The request waits in the broker until the worker has registered.
reply=$("${in_image[@]}" "$work/test.env" /usr/bin/plantd-mdp call "$service" "$payload" \
  -e "tcp://127.0.0.1:$client_port" -t 10000 2>&1) ||
  { cat "$work/worker.log" >&2; fail "the request got no reply: $reply"; }
say "reply through the broker: $reply"
[[ "$reply" == *"$payload"* ]] || fail "the reply does not carry the request ($payload)"
# /metrics reads a snapshot the core publishes every 500 ms.
counted=0
for _ in $(seq 1 30); do
  metrics=$(curl -sf "http://127.0.0.1:$http_port/metrics")
  if grep -Eq "^plantd_broker_replies_total\{service=\"$service\"\} [1-9]" <<<"$metrics"; then
    counted=1
    break
  fi
  sleep 0.1
done
[ "$counted" -eq 1 ] ||
  fail "/metrics does not count the reply: $(grep "$service" <<<"$metrics" | head -5)"
say "/metrics counts the reply"

[ -s "$volume_dir/plantd-broker.db" ] || fail "no durable store in the volume"
owner=$(stat -c %u:%g "$volume_dir/plantd-broker.db")
[ "$owner" = "$user" ] || fail "the store belongs to $owner, not the image's user $user"
say "the store is in the volume, owned by $owner"

kill -TERM "$worker_pid"
kill -TERM "$broker_pid"
status=""
for _ in $(seq 1 150); do
  if ! kill -0 "$broker_pid" 2>/dev/null; then
    wait "$broker_pid" && status=0 || status=$?
    forget_pid "$broker_pid"
    break
  fi
  sleep 0.1
done
[ -n "$status" ] || fail "the broker did not stop within 15 s of SIGTERM"
[ "$status" -eq 0 ] || { tail -n 20 "$work/broker.log" >&2; fail "the broker exited $status on SIGTERM"; }
# The worker had SIGTERM with the broker; bounded too, so that a hung worker
# cannot hold the test until ctest's timeout.
for _ in $(seq 1 150); do
  kill -0 "$worker_pid" 2>/dev/null || break
  sleep 0.1
done
if kill -0 "$worker_pid" 2>/dev/null; then
  say "the echo worker did not stop within 15 s of SIGTERM; killing it"
  kill -KILL "$worker_pid" 2>/dev/null || true
fi
wait "$worker_pid" 2>/dev/null || true
forget_pid "$worker_pid"
say "SIGTERM: the broker stopped with status 0"
if "${in_image[@]}" "$work/test.env" /usr/lib/plantd-broker/healthcheck 2>/dev/null; then
  fail "the health check passes with no broker"
fi
say "the health check fails once the broker is gone"
say "passed"
