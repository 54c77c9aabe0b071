#!/usr/bin/env bash
# Prints, one a line, the Debian packages that hold the shared libraries the
# given binaries load. The image's build stage runs it on the binaries it has
# just built, so the runtime stage installs exactly those libraries and no
# compiler, header or -dev package, whatever the libraries' sonames are in
# the base image's Debian release.
#   runtime-packages.sh BINARY...
set -euo pipefail

if [ $# -eq 0 ]; then
  echo "usage: runtime-packages.sh BINARY..." >&2
  exit 2
fi

# Merged /usr: ldd may say /lib/... where dpkg recorded /usr/lib/... (or the
# other way round), so each library is looked up under every name it has.
owner_of() {
  local lib=$1 real candidate
  real=$(readlink -f "$lib")
  for candidate in "$lib" "$real" "/usr$lib" "/usr$real" "${lib#/usr}" "${real#/usr}"; do
    if owner=$(dpkg-query -S "$candidate" 2>/dev/null); then
      # "libzmq5:amd64: /usr/lib/..." -> libzmq5
      owner=${owner%%: *}
      echo "${owner%%:*}"
      return 0
    fi
  done
  echo "runtime-packages: no Debian package holds $lib" >&2
  return 1
}

for binary in "$@"; do
  if ! ldd "$binary" >/dev/null 2>&1; then
    echo "runtime-packages: $binary is not a dynamic executable" >&2
    exit 1
  fi
  if ldd "$binary" | grep -q 'not found'; then
    echo "runtime-packages: $binary needs a library that is not installed:" >&2
    ldd "$binary" | grep 'not found' >&2
    exit 1
  fi
  # "libzmq.so.5 => /lib/x86_64-linux-gnu/libzmq.so.5 (0x...)"; the loader
  # and the vDSO have no "=>" path and come with libc6.
  ldd "$binary" | awk '$2 == "=>" && $3 ~ /^\// { print $3 }' | while read -r lib; do
    owner_of "$lib"
  done
done | sort -u
