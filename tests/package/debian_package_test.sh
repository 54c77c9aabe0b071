#!/usr/bin/env bash
# DebianPackagesInstallAndServeAConsumer: builds the .deb files of a
# packaging build (`make package`: prefix /usr, system files on), unpacks
# them into a scratch directory as dpkg would install them, and checks
#   - the packages: names, dependencies, conffiles, maintainer scripts, and
#     lintian's errors and warnings;
#   - the files: binaries, unit, conffile, sysusers.d entry (applied to the
#     scratch tree by systemd-sysusers --root), gzipped man pages, headers,
#     the library, plantd.pc and the CMake package;
#   - the installed broker, run from the tree on 127.0.0.1, with the
#     installed plantd-mdp as worker and client, and /healthz;
#   - a consumer built against the installed pkg-config and CMake files at
#     that non-default prefix, sending a request through that broker.
#
#   debian_package_test.sh BUILD_DIR
set -euo pipefail
build="$(cd "$1" && pwd)"
work="$(realpath "$(mktemp -d)")"
pids=()
# Waits up to $2 seconds for child $1 (already signalled) to end, then
# kills it, so that a hung child cannot hold the test until ctest's timeout;
# returns the child's exit status.
wait_bounded() {
  local pid=$1 seconds=$2
  for _ in $(seq 1 $((seconds * 10))); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "pid $pid did not stop within $seconds s of SIGTERM; killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null
}
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait_bounded "$pid" 10 || true; done
  rm -rf "$work"
}
trap cleanup EXIT
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
need() { [ -e "$root/$1" ] || fail "not installed: /$1"; }

# --- build the packages -------------------------------------------------
cpack -G DEB -B "$work/debs" --config "$build/CPackConfig.cmake" >"$work/cpack.log" 2>&1 ||
  { cat "$work/cpack.log" >&2; exit 1; }
broker_deb=$(ls "$work"/debs/plantd-broker_*.deb)
dev_deb=$(ls "$work"/debs/libplantd-dev_*.deb)
echo "built: $(basename "$broker_deb") $(basename "$dev_deb")"

# --- the packages themselves --------------------------------------------
[ "$(dpkg-deb -f "$broker_deb" Package)" = plantd-broker ] || fail "broker package name"
[ "$(dpkg-deb -f "$dev_deb" Package)" = libplantd-dev ] || fail "dev package name"
depends=$(dpkg-deb -f "$broker_deb" Depends)
for lib in libc6 libzmq5 libsqlite3-0 libsystemd0 libstdc++6; do
  grep -qw "$lib" <<<"$depends" || fail "plantd-broker does not depend on $lib: $depends"
done
grep -qw libzmq3-dev <<<"$(dpkg-deb -f "$dev_deb" Depends)" || fail "libplantd-dev does not depend on libzmq3-dev"
mkdir "$work/control"
dpkg-deb -e "$broker_deb" "$work/control"
grep -qx /etc/plantd/broker.yaml "$work/control/conffiles" || fail "/etc/plantd/broker.yaml is not a conffile"
for script in postinst prerm postrm; do
  [ -x "$work/control/$script" ] || { fail "no executable $script"; continue; }
  sh -n "$work/control/$script" || fail "$script is not valid sh"
done
# Debian's own checks, errors and warnings fatal. initial-upload-closes-no-bugs
# is about the Debian archive (an ITP bug to close), which these packages
# are not uploaded to.
if ! lintian --tag-display-limit 0 --fail-on error,warning \
     --suppress-tags initial-upload-closes-no-bugs "$broker_deb" "$dev_deb" >"$work/lintian.log" 2>&1; then
  fail "lintian:"; grep -v '^running with root privileges' "$work/lintian.log" >&2
fi
dpkg-deb -c "$broker_deb" >"$work/broker.list"
dpkg-deb -c "$dev_deb" >"$work/dev.list"
if grep -E '\./usr/local/|/_CPack_Packages/' "$work/broker.list" "$work/dev.list"; then
  fail "files outside the package layout"
fi
# Every file root-owned, none writable by others.
if awk '$2 != "root/root" || ($1 !~ /^l/ && $1 ~ /^........w/)' "$work/broker.list" "$work/dev.list" | grep .; then
  fail "files not owned by root or writable by all"
fi

# --- installed into a scratch tree ---------------------------------------
root="$work/root"
dpkg -x "$broker_deb" "$root"
dpkg -x "$dev_deb" "$root"
need usr/bin/plantd-broker
need usr/bin/plantd-mdp
need lib/systemd/system/plantd-broker.service
need etc/plantd/broker.yaml
need usr/lib/sysusers.d/plantd-broker.conf
need usr/share/doc/plantd-broker/copyright
need usr/share/doc/libplantd-dev/copyright
need usr/include/plantd/mdp/client.h
need usr/include/plantd/mdp/worker.h
for page in man8/plantd-broker.8 man5/plantd-broker.yaml.5 man1/plantd-mdp.1; do
  need "usr/share/man/$page.gz"
  gzip -t "$root/usr/share/man/$page.gz" 2>/dev/null || fail "$page.gz is not gzip"
  [ -n "$(LC_ALL=C MANWIDTH=80 man -l "$root/usr/share/man/$page.gz" 2>/dev/null | head -c 100)" ] ||
    fail "$page.gz does not render"
done
lib=$(find "$root/usr/lib" -name libplantd.a)
pc=$(find "$root/usr/lib" -name plantd.pc)
config=$(find "$root/usr/lib" -name plantdConfig.cmake)
[ -n "$lib" ] && [ -n "$pc" ] && [ -n "$config" ] || fail "library, plantd.pc or CMake package missing"
if grep -rlIF "$build" "$root/usr/lib" "$root/usr/include" "$root/usr/share" "$root/etc" "$root/lib"; then
  fail "installed files name the build directory"
fi
"$root/usr/bin/plantd-broker" --version | grep -q '^plantd-broker ' || fail "plantd-broker --version"
"$root/usr/bin/plantd-mdp" --version | grep -q '^plantd-mdp ' || fail "plantd-mdp --version"
"$root/usr/bin/plantd-broker" --check-config -c "$root/etc/plantd/broker.yaml" >/dev/null ||
  fail "the shipped /etc/plantd/broker.yaml does not check"
grep -q 'path: "/var/lib/plantd-broker/' "$root/etc/plantd/broker.yaml" ||
  fail "the shipped configuration keeps its store outside /var/lib/plantd-broker"
grep -qx 'ExecStart=/usr/bin/plantd-broker --config /etc/plantd/broker.yaml' \
  "$root/lib/systemd/system/plantd-broker.service" || fail "the unit does not run the installed broker"
grep -qx 'User=plantd-broker' "$root/lib/systemd/system/plantd-broker.service" ||
  fail "the unit does not run as plantd-broker"
systemd-analyze security --offline=true --threshold=20 \
  "$root/lib/systemd/system/plantd-broker.service" >/dev/null || fail "the installed unit rates above 2.0"
# The user the package creates, created in the scratch tree.
if [ "$(id -u)" -eq 0 ]; then
  mkdir -p "$root/etc"
  systemd-sysusers --root="$root" "$root/usr/lib/sysusers.d/plantd-broker.conf"
  uid=$(awk -F: '$1 == "plantd-broker" { print $3 }' "$root/etc/passwd")
  [ -n "$uid" ] && [ "$uid" -lt 1000 ] || fail "systemd-sysusers made no system user plantd-broker"
  grep -q '^plantd-broker:' "$root/etc/group" || fail "no group plantd-broker"
else
  echo "not root: the sysusers.d entry is not applied"
fi

# --- the installed broker serves a request --------------------------------
start_broker() {
  local base=$1
  cat >"$work/test.yaml" <<YAML
endpoint: "tcp://127.0.0.1:$base"
client_endpoint: "tcp://127.0.0.1:$((base + 1))"
health:
  bind: "127.0.0.1"
  port: $((base + 2))
store:
  path: "$work/store.db"
buses:
  - name: "control"
    backend: "tcp://127.0.0.1:$((base + 3))"
    frontend: "tcp://127.0.0.1:$((base + 4))"
log:
  level: "warn"
YAML
  "$root/usr/bin/plantd-broker" -c "$work/test.yaml" >"$work/broker.log" 2>&1 &
  broker_pid=$!
  for _ in $(seq 1 100); do
    if curl -fsS "http://127.0.0.1:$((base + 2))/readyz" >/dev/null 2>&1; then return 0; fi
    kill -0 "$broker_pid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}
base=0
for _ in 1 2 3 4 5; do
  candidate=$((20000 + RANDOM % 30000))
  if start_broker "$candidate"; then base=$candidate; break; fi
  kill "$broker_pid" 2>/dev/null || true
  wait_bounded "$broker_pid" 10 || true
done
[ "$base" -ne 0 ] || { cat "$work/broker.log" >&2; echo "FAIL: the installed broker did not start" >&2; exit 1; }
pids+=("$broker_pid")
"$root/usr/bin/plantd-mdp" echo-worker org.plantd.PackageEcho -e "tcp://127.0.0.1:$((base + 1))" \
  >/dev/null 2>&1 &
pids+=("$!")
reply=""
for _ in $(seq 1 50); do
  reply=$("$root/usr/bin/plantd-mdp" call org.plantd.PackageEcho from-the-package \
    -e "tcp://127.0.0.1:$base" -t 500 2>/dev/null) && break
  sleep 0.1
done
[ "$reply" = from-the-package ] || fail "round trip through the installed broker: got '$reply'"
curl -fsS "http://127.0.0.1:$((base + 2))/healthz" | grep -q '"status":"pass"' ||
  fail "/healthz of the installed broker does not pass"

# --- a consumer built against the installed development files ------------
mkdir -p "$work/consumer"
cat >"$work/consumer/consumer.cc" <<'CC'
// Sends argv[2] to org.plantd.PackageEcho at argv[1]; exit 0 when it comes back.
#include <plantd/mdp/client.h>
#include <cstdio>
#include <string>
int main(int argc, char** argv) {
  if (argc != 3) return 2;
  plantd::mdp::ClientOptions options;
  options.endpoints = {argv[1]};
  options.attempts = 3;
  plantd::mdp::Client client(options);
  auto reply = client.Request("org.plantd.PackageEcho", {argv[2]});
  if (!reply.ok()) {
    std::fprintf(stderr, "consumer: %s\n", reply.status().message().c_str());
    return 1;
  }
  std::printf("%s\n", reply.value().empty() ? "" : reply.value()[0].c_str());
  return reply.value() == plantd::mdp::Frames{argv[2]} ? 0 : 1;
}
CC
flags=$(PKG_CONFIG_PATH="$(dirname "$pc")" pkg-config --cflags --libs plantd)
# plantd.pc's directories (${pcfiledir}/../../..) must resolve into the tree.
include_ok=no
lib_ok=no
for flag in $flags; do
  case "$flag" in
    -I*) [ "$(realpath -m "${flag#-I}")" = "$root/usr/include" ] && include_ok=yes ;;
    -L*) [ "$(realpath -m "${flag#-L}")" = "$(dirname "$lib")" ] && lib_ok=yes ;;
  esac
done
[ "$include_ok$lib_ok" = yesyes ] || fail "pkg-config does not point into the unpacked tree: $flags"
# shellcheck disable=SC2086
c++ "$work/consumer/consumer.cc" -o "$work/consumer/by-pkg-config" $flags ||
  fail "the pkg-config consumer does not build"
"$work/consumer/by-pkg-config" "tcp://127.0.0.1:$base" via-pkg-config >/dev/null ||
  fail "the pkg-config consumer got no reply"

cat >"$work/consumer/CMakeLists.txt" <<'CMAKE'
cmake_minimum_required(VERSION 3.22)
project(consumer LANGUAGES CXX)
find_package(plantd 0.1 REQUIRED)
message(STATUS "plantd_DIR=${plantd_DIR}")
add_executable(consumer consumer.cc)
target_compile_features(consumer PRIVATE cxx_std_20)
target_link_libraries(consumer PRIVATE plantd::plantd)
CMAKE
if cmake -S "$work/consumer" -B "$work/consumer/build" -DCMAKE_PREFIX_PATH="$root/usr" \
     -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF >"$work/consumer.log" 2>&1 &&
   cmake --build "$work/consumer/build" >>"$work/consumer.log" 2>&1; then
  grep -q "plantd_DIR=$root/usr/lib" "$work/consumer.log" ||
    fail "find_package(plantd) did not use the unpacked tree: $(grep plantd_DIR "$work/consumer.log")"
  "$work/consumer/build/consumer" "tcp://127.0.0.1:$base" via-cmake >/dev/null ||
    fail "the CMake consumer got no reply"
else
  cat "$work/consumer.log" >&2
  fail "the CMake consumer does not build"
fi

# --- the installed broker stops cleanly -----------------------------------
kill -TERM "$broker_pid"
status=0
wait_bounded "$broker_pid" 15 || status=$?
# Waited for: its PID may be reused, so the cleanup must not signal it.
running=()
for pid in "${pids[@]}"; do [ "$pid" = "$broker_pid" ] || running+=("$pid"); done
pids=("${running[@]}")
[ "$status" -eq 0 ] || { cat "$work/broker.log" >&2; fail "the installed broker exited $status on SIGTERM"; }

if [ "$failures" -gt 0 ]; then
  echo "debian packages: $failures problem(s)" >&2
  exit 1
fi
echo "debian packages: ok ($(basename "$broker_deb"), $(basename "$dev_deb"); round trip on 127.0.0.1:$base)"
