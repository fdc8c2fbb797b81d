"""The missing-package sentence: each platform gets the command README.md's install section gives,
and a package that does not know its own version (Debian's shapely 2.2 says "0+unknown") is
judged by what it has."""
import os
import sys
import types

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "core"))
try:
    import deps  # the file alone: no package import, as QGIS's toolbox uses it
finally:
    sys.path.pop(0)

DEBIAN12 = {"ID": "debian", "VERSION_ID": "12", "VERSION_CODENAME": "bookworm"}
DEBIAN13 = {"ID": "debian", "VERSION_ID": "13", "VERSION_CODENAME": "trixie"}
FORKY = {"ID": "debian", "VERSION_CODENAME": "forky"}  # testing: no VERSION_ID
UBUNTU2204 = {"ID": "ubuntu", "ID_LIKE": "debian", "VERSION_ID": "22.04",
              "VERSION_CODENAME": "jammy", "UBUNTU_CODENAME": "jammy"}
UBUNTU2404 = {"ID": "ubuntu", "ID_LIKE": "debian", "VERSION_ID": "24.04",
              "VERSION_CODENAME": "noble", "UBUNTU_CODENAME": "noble"}
MINT21 = {"ID": "linuxmint", "ID_LIKE": "ubuntu debian", "VERSION_ID": "21.3",
          "VERSION_CODENAME": "virginia", "UBUNTU_CODENAME": "jammy"}
FEDORA = {"ID": "fedora", "VERSION_ID": "41"}


def cmd(names, system, python="/usr/bin/python3", prefix="/usr", environ=None, release=None):
    return deps.install_command(names, system=system, python=python, prefix=prefix,
                                environ=environ or {}, release=release or {})


def test_windows_uses_osgeo4w_packages_never_pip():
    # QGIS on Windows brings its own GEOS: a shapely wheel from pip would load a second one
    text = cmd(["shapely", "scipy"], "Windows", python=r"C:\Program Files\QGIS 3.44\bin\qgis-ltr-bin.exe",
               prefix=r"C:\Program Files\QGIS 3.44\apps\Python312")
    assert "OSGeo4W Setup" in text and "python3-shapely python3-scipy" in text
    assert "pip" not in text


def test_macos_uses_the_pip_of_the_app_bundle():
    inside = cmd(["scipy"], "Darwin", python="/Applications/QGIS-LTR.app/Contents/MacOS/QGIS",
                 prefix="/Applications/QGIS-LTR.app/Contents/Frameworks")
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    assert inside == (f'"/Applications/QGIS-LTR.app/Contents/MacOS/bin/python{version}" '
                      "-m pip install --user scipy")
    own = cmd(["shapely"], "Darwin", python="/Applications/QGIS.app/Contents/MacOS/bin/python3.12",
              prefix="/Applications/QGIS.app/Contents/Frameworks")
    assert own == '"/Applications/QGIS.app/Contents/MacOS/bin/python3.12" -m pip install --user "shapely>=2.0"'


@pytest.mark.parametrize("release", [DEBIAN13, FORKY, UBUNTU2404])
def test_debian_and_ubuntu_with_shapely2_in_apt_use_apt_only(release):
    text = cmd(["shapely", "scipy"], "Linux", release=release)
    assert text == "sudo apt-get install python3-shapely python3-scipy"


@pytest.mark.parametrize("release", [DEBIAN12, UBUNTU2204, MINT21])
def test_debian12_and_ubuntu2204_take_shapely_from_pip_beside_apts_numpy(release):
    text = cmd(["scipy", "shapely"], "Linux", release=release)
    apt, pip = text.split(" && ")
    assert apt == "sudo apt-get install python3-scipy"
    assert pip.startswith('/usr/bin/python3 -m pip install --user --break-system-packages "shapely>=2.0,<2.1" "numpy')
    # the numpy pin is the installed numpy's own version (read from its metadata), never a newer one
    from importlib.metadata import version

    assert f'"numpy=={version("numpy")}"' in pip
    only_shapely = cmd(["shapely"], "Linux", python="/usr/bin/qgis", release=release)
    assert only_shapely.startswith("/usr/bin/python3 -m pip install --user --break-system-packages")


def test_conda_flatpak_and_other_systems(tmp_path):
    os.makedirs(tmp_path / "conda-meta")
    assert cmd(["shapely", "scipy"], "Linux", python=str(tmp_path / "bin" / "python3"),
               prefix=str(tmp_path), release=DEBIAN12).startswith(
        'conda install -c conda-forge "shapely>=2.0" scipy')
    assert cmd(["shapely"], "Windows", prefix=str(tmp_path)).startswith("conda install")
    assert cmd(["matplotlib"], "Linux", prefix="/app", environ={"FLATPAK_ID": "org.qgis.qgis"}) == \
        "flatpak run --devel --command=pip3 org.qgis.qgis install --user matplotlib"
    assert cmd(["shapely"], "Linux", python="/usr/bin/python3", release=FEDORA) == \
        '/usr/bin/python3 -m pip install --user "shapely>=2.0"'


def test_the_sentence_names_what_is_missing_and_its_command(monkeypatch):
    monkeypatch.setattr(deps, "missing", lambda *a, **k: ["scipy>=1.7 (not installed)"])
    monkeypatch.setattr(deps, "install_command", lambda names: "INSTALL " + " ".join(names))
    text = deps.missing_message()
    assert text == ("Mine Clusters needs the Python packages scipy>=1.7 (not installed); install them "
                    "with: INSTALL scipy and restart QGIS.")


def test_a_package_without_a_version_is_judged_by_what_it_has(monkeypatch, tmp_path):
    # Debian forky's shapely 2.2: "0+unknown" in __version__ and in its metadata
    new = types.ModuleType("fake_shapely_new")
    new.__version__, new.from_wkb = "0+unknown", object()
    old = types.ModuleType("fake_shapely_old")
    old.__version__ = "0+unknown"
    monkeypatch.setitem(sys.modules, "fake_shapely_new", new)
    monkeypatch.setitem(sys.modules, "fake_shapely_old", old)
    monkeypatch.setitem(deps.MARKERS, "fake_shapely_new", "from_wkb")
    monkeypatch.setitem(deps.MARKERS, "fake_shapely_old", "from_wkb")
    assert deps.missing((("fake_shapely_new", "shapely", "2.0"),)) == []
    assert deps.missing((("fake_shapely_old", "shapely", "2.0"),)) == [
        "shapely>=2.0 (found an older build: it has no fake_shapely_old.from_wkb)"]
    # a real version is still compared, marker or not
    new.__version__ = "1.8.5"
    assert deps.missing((("fake_shapely_new", "shapely", "2.0"),)) == ["shapely>=2.0 (found 1.8.5)"]
    # the quick check (nothing imported) cannot judge "0+unknown" and leaves it to the full check
    pkg = tmp_path / "fake_unknown_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    dist = tmp_path / "fake_unknown_pkg-0+unknown.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-unknown-pkg\nVersion: 0+unknown\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert deps._installed_version("fake_unknown_pkg", "fake-unknown-pkg") == "0+unknown"
    assert deps.missing((("fake_unknown_pkg", "fake-unknown-pkg", "2.0"),), quick=True) == []
    assert deps.missing((("fake_unknown_pkg", "fake-unknown-pkg", "2.0"),)) == []  # no marker known
