#!/usr/bin/env bash
# Installs every Debian package that plantd-broker's build, tests and
# benchmarks need. Idempotent: packages already present are not touched, and
# apt is not even consulted when nothing is missing. Works as root or via sudo.
set -euo pipefail

packages=(
  # toolchain
  build-essential cmake pkg-config git
  # libraries (see DESIGN.md for why each)
  libzmq3-dev cppzmq-dev libyaml-cpp-dev libspdlog-dev libfmt-dev
  nlohmann-json3-dev libcli11-dev libcpp-httplib-dev libsqlite3-dev
  # tests and benchmarks
  libgtest-dev libgmock-dev googletest libbenchmark-dev curl procps iproute2
  # benchmarks: NATS, measured beside the broker in the same run
  nats-server
  # lint
  clang-tidy clang-format
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
  sudo=()
elif command -v sudo >/dev/null 2>&1; then
  sudo=(sudo)
else
  echo "install-deps: need root or sudo to install: ${missing[*]}" >&2
  exit 1
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
