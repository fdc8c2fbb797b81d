#!/usr/bin/env bash
# Run the QGIS test layers (tests/qgis, tests/e2e) under current QGIS (Debian 13 "trixie": QGIS 3.40)
# in a chroot, without Docker. Run as root: `scripts/qgis340_chroot.sh [PYTEST ARGS...]`.
# - builds the chroot once at ${QGIS340_ROOT:-/var/tmp/qgis340/root} (debootstrap minbase + about
#   400 MB of packages, 2.2 GB on disk; 2 min on a fast mirror), then reuses it; delete that folder
#   to rebuild from scratch;
# - mounts /proc, /sys (read-only), /dev and /dev/pts in a private mount namespace (nothing leaks to
#   the host) and copies the checkout's committed HEAD (not the work tree; tests/ included, which
#   `git archive` leaves out) and ../shared/data in, fresh each run;
# - runs `python3 -m pytest -q -p no:cacheprovider tests/qgis tests/e2e` with Debian's own Python
#   packages (no venv). Arguments are added to pytest's; if one of them names a test path
#   (`tests/...`), it replaces the two default layers: `scripts/qgis340_chroot.sh tests/qgis -x`.
# Passed through when set: OPENBLAS_CORETYPE, OPENBLAS_L2_SIZE, MINE_CLUSTERS_E2E_ALL,
# MINE_CLUSTERS_FUZZ, PYTHONWARNINGS. Exits with pytest's status; the output is also kept in
# ${QGIS340_ROOT}.last-run.log.
set -euo pipefail

ROOT=${QGIS340_ROOT:-/var/tmp/qgis340/root}
ROOT=${ROOT%/}
MIRROR=${QGIS340_MIRROR:-http://deb.debian.org/debian}
SELF=$(readlink -f "$0")
CHECKOUT=$(git -C "$(dirname "$SELF")" rev-parse --show-toplevel)
SHARED_DATA=${QGIS340_SHARED_DATA:-$(dirname "$CHECKOUT")/shared/data}
LOG="$ROOT.last-run.log"
# what the tests need; qgis's recommends are not needed (python3-qgis brings the Processing plugin)
PACKAGES="qgis python3-qgis python3-shapely python3-fastcluster python3-pytest python3-hypothesis
python3-scipy python3-matplotlib make git ca-certificates"
PACKAGES=$(echo $PACKAGES)  # one line: also written to the ready marker
MARKER="$ROOT/.mine-clusters-ready"

[ "$(id -u)" = 0 ] || { echo "qgis340_chroot: run as root" >&2; exit 2; }

if [ -z "${_QGIS340_IN_NS:-}" ]; then
    mkdir -p "$(dirname "$ROOT")"
    exec 9>"$ROOT.lock"
    flock -n 9 || { echo "qgis340_chroot: another run holds $ROOT.lock" >&2; exit 2; }
    if ! command -v debootstrap >/dev/null; then
        apt-get update -q
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap
    fi
    # everything below runs in a private mount namespace: its mounts vanish with it
    _QGIS340_IN_NS=1 exec unshare --mount --fork -- "$SELF" "$@"
fi

mount --make-rprivate /
MOUNTED=()
cleanup() {
    local i
    for ((i = ${#MOUNTED[@]} - 1; i >= 0; i--)); do umount -l "${MOUNTED[i]}" 2>/dev/null || true; done
}
trap cleanup EXIT
mount_in() {  # mount_in TARGET MOUNT-ARGS...
    local target=$1; shift
    mkdir -p "$target"
    mount "$@" "$target"
    MOUNTED+=("$target")
}
mount_all() {
    mount_in "$ROOT/proc" -t proc proc
    mount_in "$ROOT/sys" -t sysfs -o ro,nosuid,nodev,noexec sysfs
    mount_in "$ROOT/dev" --bind /dev
    mount_in "$ROOT/dev/pts" --bind /dev/pts
}
in_root() { chroot "$ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
    LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"; }

# ---- 1. the chroot, built once -------------------------------------------------------------------
t0=$SECONDS
if [ ! -x "$ROOT/usr/bin/apt-get" ] || [ -d "$ROOT/debootstrap" ]; then
    # absent or left half-made by an interrupted debootstrap: start again
    echo "qgis340_chroot: debootstrap trixie into $ROOT"
    rm -rf --one-file-system "$ROOT" "$MARKER"
    debootstrap --variant=minbase trixie "$ROOT" "$MIRROR"
fi
if [ ! -f "$MARKER" ] || [ "$(cat "$MARKER")" != "$PACKAGES" ]; then
    echo "qgis340_chroot: installing QGIS and the test packages in $ROOT"
    printf '#!/bin/sh\nexit 101\n' > "$ROOT/usr/sbin/policy-rc.d"  # no daemons start
    chmod 755 "$ROOT/usr/sbin/policy-rc.d"
    cat > "$ROOT/etc/apt/sources.list" <<EOF
deb $MIRROR trixie main
deb $MIRROR trixie-updates main
deb ${MIRROR%/debian}/debian-security trixie-security main
EOF
    cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf"
    mount_all
    in_root apt-get update -q
    # shellcheck disable=SC2086
    in_root apt-get install -y -q --no-install-recommends $PACKAGES
    in_root apt-get clean
    # the Processing framework must import, as tests/qgis/conftest.py and qgis_process use it
    mkdir -p -m 700 "$ROOT/tmp/runtime-root"
    in_root env QT_QPA_PLATFORM=offscreen XDG_RUNTIME_DIR=/tmp/runtime-root python3 -c "
import sys
from qgis.core import QgsApplication, Qgis
app = QgsApplication([], False); app.initQgis()
sys.path.append(QgsApplication.pkgDataPath() + '/python/plugins')
from processing.core.Processing import Processing
Processing.initialize()
assert QgsApplication.processingRegistry().algorithmById('native:buffer')
print('qgis340_chroot: QGIS', Qgis.version(), 'with Processing ok')
"
    echo "$PACKAGES" > "$MARKER"
    echo "qgis340_chroot: chroot built in $((SECONDS - t0)) s"
else
    mount_all
fi

# ---- 2. the committed HEAD and the shared data, fresh each run -----------------------------------
rm -rf "$ROOT/home/mc"
mkdir -p "$ROOT/home/mc/mine_clusters"
# not `git archive`: .gitattributes export-ignores tests/ and scripts/ (for the plugin zip). A
# throw-away index checks HEAD out without touching the checkout's index or work tree.
idx=$(mktemp -d)
GIT_INDEX_FILE=$idx/index git -C "$CHECKOUT" read-tree HEAD
GIT_INDEX_FILE=$idx/index git -C "$CHECKOUT" checkout-index -a -f --prefix="$ROOT/home/mc/mine_clusters/"
rm -rf "$idx"
# the tests look for ../shared/data beside the checkout (or $MINE_CLUSTERS_SHARED_DATA)
if [ -d "$SHARED_DATA" ]; then
    mkdir -p "$ROOT/home/mc/shared"
    cp -a "$SHARED_DATA" "$ROOT/home/mc/shared/data"
else
    echo "qgis340_chroot: warning: no shared data at $SHARED_DATA (those tests will skip)" >&2
fi
echo "qgis340_chroot: testing $(git -C "$CHECKOUT" rev-parse --short HEAD) ($(git -C "$CHECKOUT" log -1 --format=%s HEAD | cut -c1-70))"

# ---- 3. the tests --------------------------------------------------------------------------------
paths=(tests/qgis tests/e2e)
for a in "$@"; do
    if [[ $a == tests* ]]; then paths=(); break; fi
done
extra_env=()
for v in OPENBLAS_CORETYPE OPENBLAS_L2_SIZE MINE_CLUSTERS_E2E_ALL MINE_CLUSTERS_FUZZ PYTHONWARNINGS; do
    if [ -n "${!v:-}" ]; then extra_env+=("$v=${!v}"); fi
done
t1=$SECONDS
set +e
in_root QT_QPA_PLATFORM=offscreen XDG_RUNTIME_DIR=/tmp/runtime-root \
    MINE_CLUSTERS_REQUIRE_QGIS=1 MINE_CLUSTERS_SHARED_DATA=/home/mc/shared/data \
    PYTHONDONTWRITEBYTECODE=1 "${extra_env[@]}" \
    bash -c 'cd /home/mc/mine_clusters && mkdir -p -m 700 "$XDG_RUNTIME_DIR" &&
             qgis_process --version 2>/dev/null | sed "s/^/qgis340_chroot: /" &&
             python3 -c "from qgis.core import Qgis; print(\"qgis340_chroot: Qgis.version() =\", Qgis.version())" &&
             python3 -m pytest -q -p no:cacheprovider "$@"' \
    qgis340 "${paths[@]}" "$@" 2>&1 | tee "$LOG"
status=${PIPESTATUS[0]}
set -e
echo "qgis340_chroot: tests took $((SECONDS - t1)) s, pytest exit status $status (log: $LOG)"
exit "$status"
