#!/usr/bin/env bash
# Manual interop check: majortomo's own system tests (its Client and Worker,
# unmodified) against plantd-broker instead of majortomo's broker.
#
#   tests/interop/majortomo.sh /path/to/majortomo [build-dir]
#
# /path/to/majortomo is a checkout of the Python library (it is not shipped
# here). Needs python3 with pyzmq, six and pytest (Debian: python3-zmq
# python3-six python3-pytest). Skips with a clear message, exit 0, when no
# copy is given, so it can sit in a checklist.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
src="${1:-${MAJORTOMO_DIR:-}}"
build="${2:-$root/build}"

if [ -z "$src" ] || [ ! -f "$src/majortomo/client.py" ] || [ ! -f "$src/tests/system/test_system.py" ]; then
  echo "majortomo interop: SKIPPED: no majortomo checkout given (argument 1 or MAJORTOMO_DIR)"
  exit 0
fi
# The first Python that has what majortomo needs (a pyenv or venv python3
# on PATH may lack Debian's modules).
python=""
for candidate in ${PYTHON:-} python3 /usr/bin/python3; do
  if "$candidate" -c 'import zmq, six, pytest' 2>/dev/null; then python="$candidate"; break; fi
done
if [ -z "$python" ]; then
  echo "majortomo interop: SKIPPED: no python3 with pyzmq, six and pytest" \
       "(apt-get install python3-zmq python3-six python3-pytest)"
  exit 0
fi
broker="$build/plantd-broker"
[ -x "$broker" ] || { echo "majortomo interop: no $broker; run 'make build' first" >&2; exit 1; }

# majortomo's test module, beside our fixtures, as a package of its own.
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/system"
touch "$work/system/__init__.py"
cp "$src/tests/system/test_system.py" "$work/system/"
cp "$here/majortomo/conftest.py" "$work/system/"

echo "majortomo interop: $(cd "$src" && git describe --always 2>/dev/null || echo "copy at $src")" \
     "against $broker"
cd "$work"
PLANTD_BROKER="$broker" PYTHONPATH="$src:$work" "$python" -m pytest -q -p no:cacheprovider system
