"""What every `qgis_process` test needs: a fresh QGIS profile with the plugin enabled."""
import os
import site

import pytest


@pytest.fixture(scope="session")
def make_qgis_env(plugins_dir):
    """A function: folder -> environment for `qgis_process` with a throw-away profile in that
    folder, the plugin enabled and found on QGIS_PLUGINPATH, offscreen, and this Python's
    packages on PYTHONPATH (`qgis_process` runs the system Python)."""
    def make(directory):
        profile = directory / "config"
        ini = profile / "profiles" / "default" / "QGIS" / "QGIS3.ini"
        ini.parent.mkdir(parents=True, exist_ok=True)
        ini.write_text("[PythonPlugins]\nmine_clusters=true\n")
        runtime = directory / "runtime"
        runtime.mkdir(mode=0o700, exist_ok=True)
        return dict(os.environ, QGIS_CUSTOM_CONFIG_PATH=str(profile), QGIS_PLUGINPATH=plugins_dir,
                    QT_QPA_PLATFORM="offscreen", XDG_RUNTIME_DIR=str(runtime),
                    PYTHONPATH=os.pathsep.join(site.getsitepackages()))
    return make


@pytest.fixture
def qgis_env(tmp_path, make_qgis_env):
    """The environment for the qgis_process calls of one test."""
    return make_qgis_env(tmp_path)
