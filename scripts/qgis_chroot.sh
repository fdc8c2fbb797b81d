#!/usr/bin/env bash
# Run the QGIS test layers (tests/qgis, tests/e2e) under the QGIS of one Debian suite, in a chroot,
# without Docker. Run as root:
#     scripts/qgis_chroot.sh SUITE [--expect X.Y] [PYTEST ARGS...]
# SUITE is a Debian suite; the QGIS each one must bring (checked, see below):
#     trixie  QGIS 3.40 (Debian 13)       forky, sid  QGIS 3.44 LTR (Debian testing, unstable)
# Another suite needs `--expect X.Y` (or QGIS_CHROOT_EXPECT=X.Y); either one also overrides the
# table, e.g. when sid moves on to a newer QGIS: `scripts/qgis_chroot.sh sid --expect 3.46`.
# - builds the chroot once at ${QGIS_CHROOT_ROOT:-/var/tmp/qgis-SUITE/root} (debootstrap minbase +
#   about 400 MB of packages, 2.2 GB on disk; a few minutes on a fast mirror), then reuses it; delete
#   that folder to rebuild from scratch (a reused chroot is never upgraded: sid's and forky's QGIS
#   stay as they were when it was built);
# - checks the QGIS version against the expected X.Y: apt's candidate before installing, then
#   Qgis.version() and `qgis_process --version` before every run; a mismatch stops with status 3;
# - mounts /proc, /sys (read-only), /dev and /dev/pts in a private mount namespace (nothing leaks to
#   the host) and copies the checkout's committed HEAD (not the work tree; tests/ included, which
#   `git archive` leaves out) and ../shared/data in, fresh each run. Missing shared data stop the run
#   (status 2) rather than let their tests skip; QGIS_CHROOT_ALLOW_NO_SHARED_DATA=1 lets it go on
#   with a warning (those tests then skip);
# - runs `python3 -m pytest -q -rs -p no:cacheprovider tests/qgis tests/e2e` with Debian's own Python
#   packages (no venv) and MINE_CLUSTERS_REQUIRE_QGIS=1 (tests needing QGIS fail, not skip). Arguments
#   are added to pytest's; if one of them names a test path (`tests/...`), it replaces the two default
#   layers: `scripts/qgis_chroot.sh forky tests/qgis -x`.
# Environment: QGIS_CHROOT_ROOT, QGIS_CHROOT_MIRROR (default http://deb.debian.org/debian),
# QGIS_CHROOT_SHARED_DATA (default ../shared/data beside the checkout), QGIS_CHROOT_EXPECT,
# QGIS_CHROOT_ALLOW_NO_SHARED_DATA. Passed through when set: OPENBLAS_CORETYPE, OPENBLAS_L2_SIZE,
# MINE_CLUSTERS_E2E_ALL, MINE_CLUSTERS_FUZZ, PYTHONWARNINGS. Exits with pytest's status (2 or 3 when
# it could not run); the output is also kept in ${QGIS_CHROOT_ROOT}.last-run.log.
set -euo pipefail

ME=qgis_chroot
die() { local code=$1; shift; echo "$ME: error: $*" >&2; exit "$code"; }
[ $# -ge 1 ] && [[ $1 != -* ]] || die 2 "usage: $0 SUITE [--expect X.Y] [PYTEST ARGS...]"
SUITE=$1
ARGS=("$@")  # all of them, for the re-execution in the private namespace
shift
EXPECT=${QGIS_CHROOT_EXPECT:-}
if [ "${1:-}" = --expect ]; then
    [ $# -ge 2 ] || die 2 "--expect needs a version, e.g. --expect 3.44"
    EXPECT=$2
    shift 2
fi
if [ -z "$EXPECT" ]; then
    case $SUITE in
        trixie) EXPECT=3.40 ;;
        forky | sid) EXPECT=3.44 ;;
        *) die 2 "no expected QGIS version known for suite '$SUITE': pass --expect X.Y" ;;
    esac
fi
[[ $EXPECT =~ ^[0-9]+\.[0-9]+$ ]] || die 2 "--expect takes MAJOR.MINOR (e.g. 3.44), not '$EXPECT'"
ME="qgis_chroot[$SUITE]"

ROOT=${QGIS_CHROOT_ROOT:-/var/tmp/qgis-$SUITE/root}
ROOT=${ROOT%/}
MIRROR=${QGIS_CHROOT_MIRROR:-http://deb.debian.org/debian}
SELF=$(readlink -f "$0")
CHECKOUT=$(git -C "$(dirname "$SELF")" rev-parse --show-toplevel)
SHARED_DATA=${QGIS_CHROOT_SHARED_DATA:-$(dirname "$CHECKOUT")/shared/data}
LOG="$ROOT.last-run.log"
# what the tests need; qgis's recommends are not needed (python3-qgis brings the Processing plugin)
PACKAGES="qgis python3-qgis python3-shapely python3-fastcluster python3-pytest python3-hypothesis
python3-scipy python3-matplotlib make git ca-certificates"
PACKAGES=$(echo $PACKAGES)  # one line: also written to the ready marker
MARKER="$ROOT/.mine-clusters-ready"

[ "$(id -u)" = 0 ] || die 2 "run as root"

if [ -z "${_QGIS_CHROOT_IN_NS:-}" ]; then
    mkdir -p "$(dirname "$ROOT")"
    exec 9>"$ROOT.lock"
    flock -n 9 || die 2 "another run holds $ROOT.lock"
    if ! command -v debootstrap >/dev/null; then
        apt-get update -q
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap
    fi
    # everything below runs in a private mount namespace: its mounts vanish with it
    _QGIS_CHROOT_IN_NS=1 exec unshare --mount --fork -- "$SELF" "${ARGS[@]}"
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
# QGIS, Python and the libraries the plugin uses, as the chroot has them; fails unless QGIS is $EXPECT.x
check_versions() {  # check_versions [processing]: also initialise the Processing framework
    in_root env QT_QPA_PLATFORM=offscreen XDG_RUNTIME_DIR=/tmp/runtime-root python3 - "$ME" "$EXPECT" "${1:-}" <<'EOF' || return 1
import sys
me, expect, processing = sys.argv[1:]
from qgis.core import Qgis
import numpy, scipy, shapely
try:
    from osgeo import gdal
    gdal_version = gdal.__version__
except ImportError:
    import ctypes, ctypes.util
    lib = ctypes.CDLL(ctypes.util.find_library("gdal"))
    lib.GDALVersionInfo.restype = ctypes.c_char_p
    gdal_version = lib.GDALVersionInfo(b"RELEASE_NAME").decode()
print(f"{me}: QGIS {Qgis.version()}, Python {sys.version.split()[0]}, numpy {numpy.__version__}, "
      f"scipy {scipy.__version__}, shapely {shapely.__version__} (GEOS {shapely.geos_version_string}), "
      f"GDAL {gdal_version}")
if not Qgis.version().startswith(expect + "."):
    sys.exit(f"{me}: error: QGIS {Qgis.version()} is not the expected {expect}.x")
if processing:
    # the Processing framework must import, as tests/qgis/conftest.py and qgis_process use it
    from qgis.core import QgsApplication
    app = QgsApplication([], False); app.initQgis()
    sys.path.append(QgsApplication.pkgDataPath() + "/python/plugins")
    from processing.core.Processing import Processing
    Processing.initialize()
    assert QgsApplication.processingRegistry().algorithmById("native:buffer"), "no native:buffer"
    print(f"{me}: Processing ok")
EOF
    local out
    out=$(in_root env QT_QPA_PLATFORM=offscreen XDG_RUNTIME_DIR=/tmp/runtime-root \
        qgis_process --version 2>/dev/null | grep -m1 '^QGIS ') || true
    echo "$ME: qgis_process: ${out:-?}"
    [[ $out == "QGIS $EXPECT".* ]] || { echo "$ME: error: qgis_process is not QGIS $EXPECT.x" >&2; return 1; }
}

# ---- 1. the chroot, built once -------------------------------------------------------------------
t0=$SECONDS
if [ ! -x "$ROOT/usr/bin/apt-get" ] || [ -d "$ROOT/debootstrap" ]; then
    # absent or left half-made by an interrupted debootstrap: start again
    echo "$ME: debootstrap $SUITE into $ROOT"
    rm -rf --one-file-system "$ROOT"
    # a debootstrap older than the suite has no script for it: sid's serves every current suite
    script=()
    [ -e "/usr/share/debootstrap/scripts/$SUITE" ] || script=(/usr/share/debootstrap/scripts/sid)
    debootstrap --variant=minbase "$SUITE" "$ROOT" "$MIRROR" "${script[@]}"
    echo "$ME: debootstrap took $((SECONDS - t0)) s"
fi
if [ ! -f "$MARKER" ] || [ "$(cat "$MARKER")" != "$SUITE: $PACKAGES" ]; then
    echo "$ME: installing QGIS and the test packages in $ROOT"
    printf '#!/bin/sh\nexit 101\n' > "$ROOT/usr/sbin/policy-rc.d"  # no daemons start
    chmod 755 "$ROOT/usr/sbin/policy-rc.d"
    case $SUITE in
        # unstable has no -updates and no security line
        sid | unstable) echo "deb $MIRROR $SUITE main" > "$ROOT/etc/apt/sources.list" ;;
        *) cat > "$ROOT/etc/apt/sources.list" <<EOF
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb ${MIRROR%/debian}/debian-security $SUITE-security main
EOF
        ;;
    esac
    # testing's and unstable's Release files are valid for a week only: a mirror or snapshot that
    # lags the machine's clock would be refused ("is expired"); signatures are still checked
    echo 'Acquire::Check-Valid-Until "false";' > "$ROOT/etc/apt/apt.conf.d/99mine-clusters-no-valid-until"
    cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf"
    mount_all
    in_root apt-get update -q
    # fail before a long install when the suite does not carry the QGIS asked for
    candidate=$(in_root apt-cache policy qgis | awk '/Candidate:/ {print $2}')
    [[ $candidate == "$EXPECT".* ]] || die 3 "$SUITE offers qgis '${candidate:-none}', not $EXPECT.x"
    echo "$ME: $SUITE offers qgis $candidate"
    # shellcheck disable=SC2086
    in_root apt-get install -y -q --no-install-recommends $PACKAGES
    in_root apt-get clean
    mkdir -p -m 700 "$ROOT/tmp/runtime-root"
    check_versions processing || die 3 "the chroot does not have QGIS $EXPECT.x with Processing"
    echo "$SUITE: $PACKAGES" > "$MARKER"
    echo "$ME: chroot built in $((SECONDS - t0)) s"
else
    mount_all
    mkdir -p -m 700 "$ROOT/tmp/runtime-root"
    check_versions || die 3 "the chroot at $ROOT does not have QGIS $EXPECT.x (delete it to rebuild)"
fi

# ---- 2. the committed HEAD and the shared data, fresh each run -----------------------------------
rm -rf --one-file-system "$ROOT/home/mc"
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
elif [ -n "${QGIS_CHROOT_ALLOW_NO_SHARED_DATA:-}" ]; then
    echo "$ME: warning: no shared data at $SHARED_DATA (those tests will skip)" >&2
else
    die 2 "no shared data at $SHARED_DATA (set QGIS_CHROOT_SHARED_DATA, or QGIS_CHROOT_ALLOW_NO_SHARED_DATA=1 to let those tests skip)"
fi
echo "$ME: testing $(git -C "$CHECKOUT" rev-parse --short HEAD) ($(git -C "$CHECKOUT" log -1 --format=%s HEAD | cut -c1-70))"

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
    bash -c 'cd /home/mc/mine_clusters && python3 -m pytest -q -rs -p no:cacheprovider "$@"' \
    "$ME" "${paths[@]}" "$@" 2>&1 | tee "$LOG"
status=${PIPESTATUS[0]}
set -e
echo "$ME: tests took $((SECONDS - t1)) s, pytest exit status $status (log: $LOG)"
exit "$status"
