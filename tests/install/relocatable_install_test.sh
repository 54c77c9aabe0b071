#!/usr/bin/env bash
# Installs libplantd to one prefix, moves the tree to another, and builds and
# runs a consumer through pkg-config there: plantd.pc must not name the
# prefix it was built for.
#
#   relocatable_install_test.sh BUILD_DIR
set -euo pipefail
build="$1"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cmake --install "$build" --prefix "$work/first" >/dev/null
mv "$work/first" "$work/moved"
pc="$(find "$work/moved" -name plantd.pc)"
[ -n "$pc" ] || { echo "no plantd.pc installed" >&2; exit 1; }
if grep -q "$work/first" "$pc"; then
  echo "plantd.pc names the install prefix:" >&2; cat "$pc" >&2; exit 1
fi

cat > "$work/consumer.cc" <<'CC'
#include <plantd/status.h>
#include <cstdio>
int main() {
  plantd::Status s = plantd::Status::NotFound("checked");
  std::printf("%s\n", s.ok() ? "ok" : "not ok");
  return s.ok() ? 1 : 0;
}
CC
export PKG_CONFIG_PATH="$(dirname "$pc")"
flags="$(pkg-config --cflags --libs plantd)"
case "$flags" in *"$work/moved"*) ;; *) echo "pkg-config flags miss the moved prefix: $flags" >&2; exit 1 ;; esac
# shellcheck disable=SC2086
c++ "$work/consumer.cc" -o "$work/consumer" $flags
"$work/consumer"
echo "relocatable install: ok ($flags)"
