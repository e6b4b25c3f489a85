#!/usr/bin/env bash
# clients/python/test.sh - install and test the Python client.
#
# Creates clients/python/.venv (with $PYTHON, default python3, >= 3.9),
# installs the pinned tools of requirements-dev.txt and the package
# (editable), checks that the committed protobuf code is what protoc makes
# from proto/slotgate.proto, runs mypy --strict (the package as Python 3.9,
# then package, tests and bench/python), and runs pytest once under
# tests/conformance/run.sh: unit and fault tests, golden vectors, the
# conformance scenarios (live, and the cluster-free ones on the in-memory
# fake) and the live tests. Exit status non-zero on any failure.
#
#   SG_PY_SKIP_LIVE=1   run pytest without run.sh (live tests are skipped)
#   PYTEST_ARGS="..."   extra pytest arguments (e.g. "-k vectors -x")
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
cd "$here"
py=${PYTHON:-python3}
venv=$here/.venv

die() { echo "clients/python/test.sh: $*" >&2; exit 1; }

command -v "$py" >/dev/null 2>&1 || die "$py not found"
"$py" -c 'import sys; sys.exit(sys.version_info < (3, 9))' || die "$py is older than 3.9"

# Debian's python3 needs python3-venv for `python3 -m venv` (ensurepip).
if ! "$py" -c 'import ensurepip, venv' >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "clients/python/test.sh: installing python3-venv" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null ||
      { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null; }
  else
    die "$py has no venv/ensurepip module (install python3-venv)"
  fi
fi

# (Re)install only when the requirements or the package metadata changed.
stamp=$venv/.slotgate-stamp
want=$(cat requirements-dev.txt pyproject.toml | sha256sum | cut -d' ' -f1)
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  rm -rf "$venv"
  "$py" -m venv "$venv"
  "$venv/bin/python" -m pip install -q --upgrade pip
  "$venv/bin/python" -m pip install -q -r requirements-dev.txt
  "$venv/bin/python" -m pip install -q --no-deps -e .
  echo "$want" > "$stamp"
fi
vpy=$venv/bin/python

echo "== generated protobuf code"
"$vpy" scripts/gen_proto.py --check

echo "== mypy --strict"
"$venv/bin/mypy" --python-version 3.9 src/slotgate
"$venv/bin/mypy"

echo "== pytest"
# shellcheck disable=SC2086
if [ "${SG_PY_SKIP_LIVE:-0}" = 1 ]; then
  "$venv/bin/pytest" -q -p no:cacheprovider ${PYTEST_ARGS:-} tests
else
  "$top/tests/conformance/run.sh" -- "$venv/bin/pytest" -q -p no:cacheprovider -rs ${PYTEST_ARGS:-} "$here/tests"
fi
echo "clients/python/test.sh: passed"
