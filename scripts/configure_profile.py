#!/usr/bin/env python3
"""Enable the plugin in a QGIS profile and let QGIS desktop find the venv's Python packages.

    /usr/bin/python3 scripts/configure_profile.py PROFILE_DIR SITE_PACKAGES

Writes to PROFILE_DIR/QGIS/QGIS3.ini (QSettings, so existing settings are kept):
- [PythonPlugins] mine_clusters=true
- QGIS's own "Settings > Options > System > Environment": PYTHONPATH=SITE_PACKAGES (prepended),
  so QGIS desktop imports shapely 2 from the venv. Remove it there to undo.
"""
import os
import sys


def main(profile_dir, site_packages):
    from qgis.PyQt.QtCore import QSettings

    ini = os.path.join(profile_dir, "QGIS", "QGIS3.ini")
    os.makedirs(os.path.dirname(ini), exist_ok=True)
    s = QSettings(ini, QSettings.Format.IniFormat)
    s.setValue("PythonPlugins/mine_clusters", True)
    entry = f"prepend|PYTHONPATH={site_packages}{os.pathsep}"
    current = s.value("qgis/customEnvVars", []) or []
    if isinstance(current, str):
        current = [current]
    # drop what an earlier run (maybe from another checkout) added: only one venv is used
    current = [v for v in current if not (v.startswith("prepend|PYTHONPATH=")
                                          and v.rstrip(os.pathsep).endswith("site-packages"))]
    s.setValue("qgis/customEnvVars", current + [entry])
    s.setValue("qgis/customEnvVarsUse", True)
    s.sync()
    print(f"enabled mine_clusters and PYTHONPATH={site_packages} in {ini}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
