#!/usr/bin/env bash
# Release checks of the plugin zip, run from anywhere in the checkout:
#
#   scripts/check_plugin.sh          # zip of the work tree as it would be committed
#   scripts/check_plugin.sh --head   # zip of HEAD, exactly what `make zip` builds now
#
# 1. flake8 + flake8-qgis (config: .flake8) over the Python files of the zip;
# 2. scripts/check_qt6.py (QGIS 3.22 .. 4.x / Qt6 portability) over the Python files of the zip
#    and over every script that README.md or the Makefile runs (scripts/configure_profile.py ...);
# 3. scripts/check_zip.py: plugins.qgis.org's upload validator and security scan (bandit with the
#    site's rules, detect-secrets) on the zip.
# Exits 1 if any step reports something, 2 if it cannot run. Needs .venv (`make setup`) and the
# QGIS 3.22 Python (/usr/bin/python3, from `make setup`); installs the pinned tools into .venv.
#
# The default zip is `git archive` of a tree written from a throw-away index (GIT_INDEX_FILE in a
# temp folder: `git read-tree HEAD; git add -A; git write-tree`): every file of the work tree that
# .gitignore does not ignore, edits and new files included, and .gitattributes' export-ignore as
# in `make zip`. The real index, refs and files are not touched (only blob objects are added).
# `git stash create` was not used: it leaves out untracked files, so a new module that is not yet
# added would be missing from the checked zip. Untracked files that end up in the zip are listed.
set -uo pipefail
cd "$(dirname "$0")/.."

PY=${PY:-.venv/bin/python}
QGIS_PYTHON=${QGIS_PYTHON:-/usr/bin/python3}
PINS=(flake8==7.5.0 flake8-qgis==2.1.0 bandit==1.9.4 detect-secrets==1.5.0)
# PyQt6 (offscreen, from PyPI) lets check_qt6.py resolve Qt names against the real Qt6 bindings;
# --no-deps: the three wheels are all it needs, and nothing else in .venv moves.
QT6_PINS=(PyQt6==6.9.1 PyQt6-Qt6==6.9.2 PyQt6-sip==13.10.2)
SAMPLE_DATA='resources/sample/*.gpkg'  # the documented sample data (resources/sample/SOURCE.md)

head=0
for arg in "$@"; do
  case $arg in
    --head) head=1 ;;
    *) echo "usage: $0 [--head]" >&2; exit 2 ;;
  esac
done

[ -x "$PY" ] || { echo "check_plugin: $PY not found: run make setup" >&2; exit 2; }
"$QGIS_PYTHON" -c "import qgis.core" 2>/dev/null \
  || { echo "check_plugin: $QGIS_PYTHON cannot import qgis.core: run make setup" >&2; exit 2; }

missing() {  # the pins whose exact version is not installed
  "$PY" - "$@" <<'EOF'
import sys
from importlib.metadata import PackageNotFoundError, version
for pin in sys.argv[1:]:
    name, want = pin.split("==")
    try:
        ok = version(name) == want
    except PackageNotFoundError:
        ok = False
    if not ok:
        print(pin)
EOF
}
pip_quiet() { "$PY" -m pip install --disable-pip-version-check -q "$@" 2>&1 | grep -v '^WARNING: Location' || true; }
mapfile -t need < <(missing "${PINS[@]}")
if [ ${#need[@]} -gt 0 ]; then
  echo "check_plugin: installing ${need[*]}"
  pip_quiet "${need[@]}"
fi
mapfile -t need < <(missing "${QT6_PINS[@]}")
if [ ${#need[@]} -gt 0 ]; then
  echo "check_plugin: installing ${need[*]} (--no-deps)"
  pip_quiet --no-deps "${need[@]}"
fi
mapfile -t need < <(missing "${PINS[@]}" "${QT6_PINS[@]}")
[ ${#need[@]} -eq 0 ] || { echo "check_plugin: could not install ${need[*]}" >&2; exit 2; }
"$PY" -c "import numpy, sys; sys.exit(int(numpy.__version__.split('.')[0]) >= 2)" \
  || { echo "check_plugin: numpy >= 2 in $PY: Debian's numpy 1.x stack needs numpy<2" >&2; exit 2; }

work=$(mktemp -d /tmp/check_plugin.XXXXXX)
trap 'rm -rf "$work"' EXIT
if [ $head = 1 ]; then
  rev=HEAD
else
  rev=$(export GIT_INDEX_FILE="$work/index"; git read-tree HEAD && git add -A . && git write-tree) \
    || { echo "check_plugin: could not write a tree of the work tree" >&2; exit 2; }
fi
zip="$work/mine_clusters.zip"
git archive --format=zip --prefix=mine_clusters/ -o "$zip" "$rev" \
  || { echo "check_plugin: git archive failed" >&2; exit 2; }
git ls-files > "$work/tracked"
"$PY" - "$zip" "$work/x" "$work/tracked" <<'EOF'
import sys, zipfile
zf = zipfile.ZipFile(sys.argv[1])
zf.extractall(sys.argv[2])
tracked = set(open(sys.argv[3]).read().split("\n"))
for n in zf.namelist():
    rel = n.split("/", 1)[1]
    if rel and not n.endswith("/") and rel not in tracked:
        print(f"check_plugin: note: {rel} is in the zip but not tracked by git yet (git add it)")
EOF
pkg="$work/x/mine_clusters"
echo "check_plugin: zip of $( [ $head = 1 ] && echo HEAD || echo 'the work tree' ) ($(git rev-parse --short "$rev"))"

status=0
step() {  # step NAME CMD...: run, print its lines, remember a failure
  local name=$1; shift
  local out rc
  out=$("$@" 2>&1); rc=$?
  [ -n "$out" ] && printf '%s\n' "$out"
  if [ $rc -ne 0 ]; then
    echo "check_plugin: $name: FAILED"
    status=1
  else
    echo "check_plugin: $name: ok"
  fi
}

step flake8 bash -c '"$1" -m flake8 --config .flake8 "$2" | sed "s#^$2/##"; exit "${PIPESTATUS[0]}"' \
  _ "$PY" "$pkg"

mapfile -t readme_scripts < <(grep -ohE '\b(scripts|benchmarks)/[A-Za-z0-9_./-]+\.py\b' README.md Makefile \
                             | sort -u | while read -r f; do [ -f "$f" ] && echo "$f"; done)
step qt6 "$PY" scripts/check_qt6.py --qgis-python "$QGIS_PYTHON" --qt6-python "$PY" \
  --strip-prefix "$pkg/" "$pkg" "${readme_scripts[@]}"

step plugins.qgis.org "$PY" scripts/check_zip.py "$zip" --allow-binary "$SAMPLE_DATA"

if [ $status = 0 ]; then
  echo "check_plugin: all checks passed"
else
  echo "check_plugin: some checks FAILED"
fi
exit $status
