#!/usr/bin/env bash
# Installs every Debian package that plantd-broker's build, tests and
# benchmarks need. Idempotent: packages already present are not touched, and
# apt is not even consulted when nothing is missing. Works as root or via sudo.
#
#   install-deps.sh         everything (build, tests, benchmarks, lint, fuzzing)
#   install-deps.sh build   only what compiling the broker and plantd-mdp
#                           needs: the container image's build stage uses it
#   install-deps.sh container  everything, plus what the container image
#                           test (make container-test) needs
set -euo pipefail

set_name=${1:-all}
case "$set_name" in
  all | build | container) ;;
  *)
    echo "usage: install-deps.sh [build|container]" >&2
    exit 2
    ;;
esac

packages=(
  # toolchain
  build-essential cmake pkg-config
  # libraries (see DESIGN.md for why each)
  libzmq3-dev cppzmq-dev libyaml-cpp-dev libspdlog-dev libfmt-dev
  nlohmann-json3-dev libcli11-dev libcpp-httplib-dev libsqlite3-dev
  libsystemd-dev
  # CURVE security (RFC 26): the NaCl box and secretbox, key generation
  libsodium-dev
)
if [ "$set_name" != build ]; then
  packages+=(
    # the revision in --version, and cache for rebuilds in several work trees
    git ccache
    # tests and benchmarks
    libgtest-dev libgmock-dev googletest libbenchmark-dev curl procps iproute2
    # the systemd unit check (systemd-analyze security), and systemd-sysusers
    # for the package test
    systemd
    # Debian packages (make package: CPack's DEB generator runs dpkg-shlibdeps
    # and file; the package test runs lintian) and the man pages (rendered by
    # man and groff in the tests)
    dpkg-dev file gzip groff-base man-db bsdextrautils lintian
    # benchmarks: NATS (and JetStream), measured beside the broker in the same
    # run; strace for the durable bench's sync audit
    nats-server strace
    # lint
    clang-tidy clang-format
    # fuzzing (make fuzz): clang, and libFuzzer's and the sanitizers'
    # runtimes, which clang only recommends
    clang libclang-rt-dev
  )
fi
if [ "$set_name" = container ]; then
  packages+=(
    # podman builds the image, mmdebstrap makes a Debian base image without a
    # registry; rootless or nested podman wants uidmap, fuse-overlayfs and
    # slirp4netns; the test itself uses unshare and mount (util-linux)
    podman mmdebstrap uidmap fuse-overlayfs slirp4netns containernetworking-plugins
    util-linux
  )
fi

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
