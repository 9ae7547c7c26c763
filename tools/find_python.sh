#!/usr/bin/env bash
# Print the path of a Python >= 3.12 interpreter, or fail with one line saying what to install.
# Order: $PYTHON, python3.12/3.13/3.14 on PATH, plain python3, then the oldest pyenv-installed 3.12+
# (the oldest supported version is the one the project is tested on).
set -u
ok() { "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' 2>/dev/null; }
for c in "${PYTHON:-}" python3.12 python3.13 python3.14 python3 python; do
  [ -n "$c" ] || continue
  p=$(command -v "$c" 2>/dev/null) || continue
  if ok "$p"; then echo "$p"; exit 0; fi
done
root=${PYENV_ROOT:-$HOME/.pyenv}
for p in $(ls -d "$root"/versions/3.1[2-9]*/bin/python 2>/dev/null | sort -V); do
  if ok "$p"; then echo "$p"; exit 0; fi
done
echo "find_python: no Python >= 3.12 found (set PYTHON=/path/to/python3.12)" >&2
exit 1
