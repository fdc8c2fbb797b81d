#!/usr/bin/env bash
# Run the QGIS test layers (tests/qgis, tests/e2e) under QGIS 3.40 (Debian 13 "trixie") in a chroot,
# without Docker. Run as root: `scripts/qgis340_chroot.sh [PYTEST ARGS...]`.
# A thin wrapper: `scripts/qgis_chroot.sh trixie --expect 3.40 [PYTEST ARGS...]`, which says what it
# does (chroot built once then reused, private mount namespace, committed HEAD and ../shared/data
# copied in fresh each run, QGIS version checked, pytest's status and log); here the chroot stays
# where it always was. Its environment variables, mapped onto the generic script's:
#     QGIS340_ROOT         the chroot (default /var/tmp/qgis340/root)  -> QGIS_CHROOT_ROOT
#     QGIS340_MIRROR       the Debian mirror                            -> QGIS_CHROOT_MIRROR
#     QGIS340_SHARED_DATA  the shared data (default ../shared/data)     -> QGIS_CHROOT_SHARED_DATA
# Changed: missing shared data now stop the run (status 2) instead of a warning and skipped tests;
# QGIS_CHROOT_ALLOW_NO_SHARED_DATA=1 brings the warning back. The log is still
# ${QGIS340_ROOT}.last-run.log.
set -euo pipefail
export QGIS_CHROOT_ROOT=${QGIS340_ROOT:-/var/tmp/qgis340/root}
[ -z "${QGIS340_MIRROR:-}" ] || export QGIS_CHROOT_MIRROR=$QGIS340_MIRROR
[ -z "${QGIS340_SHARED_DATA:-}" ] || export QGIS_CHROOT_SHARED_DATA=$QGIS340_SHARED_DATA
exec "$(dirname "$(readlink -f "$0")")/qgis_chroot.sh" trixie --expect 3.40 "$@"
