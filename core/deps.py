"""Python packages the plugin needs at run time, and how to install them (no qgis import).

The README, the algorithms' ``canExecute()`` and ``processAlgorithm()`` all use :func:`missing`
and :func:`install_command`, so the advice is the same everywhere.
"""
import importlib
import os
import platform
import re
import sys

# (import name, pip name, minimum version). What ships with QGIS differs by platform (README.md,
# "Installing in QGIS desktop"); install_command() gives the way to add what is missing.
REQUIREMENTS = (
    ("numpy", "numpy", "1.21"),
    ("scipy", "scipy", "1.7"),
    ("shapely", "shapely", "2.0"),
    ("matplotlib", "matplotlib", "3.3"),
)
# A name that the minimum version introduced, checked when a package does not know its own
# version: Debian's shapely 2.2 (forky, QGIS 3.44) says "0+unknown" in __version__ and metadata.
MARKERS = {"shapely": "from_wkb"}  # shapely.from_wkb: new in 2.0 (1.8 had shapely.wkb.loads)


def _version_tuple(text):
    parts = []
    for piece in re.split(r"[.+-]", str(text)):
        m = re.match(r"\d+", piece)
        if not m:
            break
        parts.append(int(m.group()))
    return tuple(parts)


def _installed_version(module, pip_name):
    """The installed version of a package without importing it (None when it is not found; '0'
    when it is found but declares no version)."""
    import importlib.metadata
    import importlib.util

    try:
        if importlib.util.find_spec(module) is None:
            return None
    except (ImportError, ValueError):
        return None
    try:
        return importlib.metadata.version(pip_name)
    except Exception:  # no metadata (some bundled builds): the full check imports it
        return "0"


def _unknown(version):
    """A version that says nothing: absent, "0" or a build's placeholder such as "0+unknown"."""
    return _version_tuple(version) in ((), (0,))


def missing(requirements=REQUIREMENTS, quick=False):
    """One phrase per missing or too old package, e.g. ``'shapely>=2.0 (found 1.8.5)'``.

    With `quick`, nothing is imported: the packages are looked up on the path and their versions
    read from their metadata (for the toolbox and the dialog's help). Otherwise each package is
    imported, which also catches a broken build (before an algorithm runs)."""
    problems = []
    for module, pip_name, minimum in requirements:
        if quick:
            found = _installed_version(module, pip_name)
            if found is None:
                problems.append(f"{pip_name}>={minimum} (not installed)")
                continue
            if _unknown(found):
                continue  # no version to judge by: the full check decides when it runs
        else:
            try:
                mod = importlib.import_module(module)
            except Exception:  # ImportError, or a broken binary build raising anything else
                problems.append(f"{pip_name}>={minimum} (not installed)")
                continue
            found = str(getattr(mod, "__version__", "0"))
            if _unknown(found):
                marker = MARKERS.get(module)
                if marker is None or hasattr(mod, marker):
                    continue  # judged by what it has, not by what it says
                problems.append(f"{pip_name}>={minimum} (found an older build: it has no "
                                f"{module}.{marker})")
                continue
        if _version_tuple(found) < _version_tuple(minimum):
            problems.append(f"{pip_name}>={minimum} (found {found})")
    return problems


# OSGeo4W and Debian name a Python package "python3-<pip name>"
_SYSTEM_PACKAGE = "python3-{}"


def _os_release(path="/etc/os-release"):
    """ID, ID_LIKE and VERSION_ID of a Linux distribution ({} when unknown)."""
    info = {}
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                key, sep, value = line.strip().partition("=")
                if sep:
                    info[key] = value.strip().strip('"')
    except OSError:
        pass
    return info


# releases whose apt python3-shapely is 1.x (Debian 10-12; Ubuntu 18.04-22.04 and the
# distributions built on them, which name their Ubuntu base in UBUNTU_CODENAME)
_OLD_SHAPELY = {"buster", "bullseye", "bookworm", "bionic", "focal", "jammy"}


def _apt_has_shapely2(release):
    """Whether the distribution's python3-shapely is 2.x (Debian 13 and later, testing and
    unstable; Ubuntu 24.04 and later)."""
    codename = release.get("UBUNTU_CODENAME") or release.get("VERSION_CODENAME", "")
    return codename not in _OLD_SHAPELY


def install_command(names=("shapely",), system=None, python=None, prefix=None, environ=None,
                    release=None):
    """The exact command that adds the packages `names` (pip names, e.g. ``["shapely"]``) to
    QGIS's own Python on the platform in use, as README.md's install section says:

    - conda (QGIS from conda-forge): ``conda install -c conda-forge``;
    - Flatpak (org.qgis.qgis): pip inside the Flatpak, ``--user``;
    - Windows: the OSGeo4W Setup's own python3-* packages, never pip: QGIS on Windows brings its
      own GEOS, and a shapely wheel would load a second one into QGIS;
    - macOS: the pip of the QGIS.app's Python, ``--user`` (the signed app bundle stays as it is);
    - Debian and Ubuntu: apt's python3-* packages; where apt's shapely is 1.x (Debian 12, Ubuntu
      22.04) shapely comes from pip, kept below 2.1 (QGIS loads the system's GEOS 3.10/3.11 into
      the process; shapely 2.1+ expects 3.12+) and beside apt's numpy 1.x;
    - any other system: the pip of QGIS's Python, ``--user``.
    The arguments after `names` stand for the machine's facts (platform.system(), sys.executable,
    sys.prefix, os.environ, /etc/os-release) so that every branch can be tested anywhere."""
    system = system or platform.system()
    python = python or sys.executable or "python3"
    prefix = prefix if prefix is not None else sys.prefix
    environ = os.environ if environ is None else environ
    names = list(names) or ["shapely"]
    minimum = {pip: m for _module, pip, m in REQUIREMENTS}

    def spec(name, cap=""):
        return f'"{name}>={minimum[name]}{cap}"' if name == "shapely" else name

    pip_list = " ".join(spec(n) for n in names)
    if os.path.isdir(os.path.join(prefix, "conda-meta")):
        return f"conda install -c conda-forge {pip_list}  (in the environment QGIS runs in)"
    if environ.get("FLATPAK_ID") == "org.qgis.qgis" or (system == "Linux" and prefix.startswith("/app")):
        return f"flatpak run --devel --command=pip3 org.qgis.qgis install --user {pip_list}"
    if system == "Windows":
        packages = " ".join(_SYSTEM_PACKAGE.format(n) for n in names)
        return ("the OSGeo4W Setup (Start menu: OSGeo4W Setup, or the QGIS installer's setup; "
                f"Advanced Install), adding the packages {packages}")
    if system == "Darwin":
        if not os.path.basename(python).startswith("python"):
            # inside QGIS, sys.executable is the QGIS binary of the app bundle
            app = python.split(".app/")[0] + ".app" if ".app/" in python else "/Applications/QGIS.app"
            python = f"{app}/Contents/MacOS/bin/python{sys.version_info[0]}.{sys.version_info[1]}"
        return f'"{python}" -m pip install --user {pip_list}'
    if system == "Linux" and not os.path.basename(python).startswith("python"):
        python = "/usr/bin/python3"  # inside QGIS, sys.executable may be the qgis binary
    release = (_os_release() if system == "Linux" else {}) if release is None else release
    family = {release.get("ID", "")} | set(release.get("ID_LIKE", "").split())
    if system == "Linux" and python.startswith("/usr/bin/") and family & {"debian", "ubuntu"}:
        new_shapely = _apt_has_shapely2(release)
        apt = [_SYSTEM_PACKAGE.format(n) for n in names if n != "shapely" or new_shapely]
        parts = [f"sudo apt-get install {' '.join(apt)}"] if apt else []
        if "shapely" in names and not new_shapely:
            # pip must not replace apt's numpy (read from its metadata: nothing is imported)
            found = _installed_version("numpy", "numpy")
            numpy_pin = f' "numpy=={found}"' if found and not _unknown(found) else ' "numpy<2"'
            parts.append('/usr/bin/python3 -m pip install --user --break-system-packages '
                         f'{spec("shapely", ",<2.1")}{numpy_pin}')
        return " && ".join(parts)
    return f"{python} -m pip install --user {pip_list}"


_QUICK = {}  # requirements -> the quick answer, found once per session (the toolbox asks often)


def missing_message(quick=False):
    """One sentence for QGIS: what is missing and the install command, or '' if nothing is.

    The quick answer (nothing imported) is remembered for the session: a package installed
    meanwhile takes a restart of QGIS anyway, as the sentence says."""
    if quick:
        if REQUIREMENTS not in _QUICK:
            _QUICK[REQUIREMENTS] = _message(missing(REQUIREMENTS, quick=True))
        return _QUICK[REQUIREMENTS]
    return _message(missing(REQUIREMENTS))


def _message(problems):
    if not problems:
        return ""
    names = [p.split(">=")[0] for p in problems]
    return ("Mine Clusters needs the Python packages " + "; ".join(problems)
            + "; install them with: " + install_command(names) + " and restart QGIS.")
