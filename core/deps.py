"""Python packages the plugin needs at run time, and how to install them (no qgis import).

The README, the algorithms' ``canExecute()`` and ``processAlgorithm()`` all use :func:`missing`
and :func:`install_command`, so the advice is the same everywhere.
"""
import importlib
import os
import platform
import re
import sys

# (import name, pip name, minimum version). numpy/scipy/matplotlib come with QGIS on every
# platform; shapely 2 usually has to be added (Debian 12 ships 1.8).
REQUIREMENTS = (
    ("numpy", "numpy", "1.21"),
    ("scipy", "scipy", "1.7"),
    ("shapely", "shapely", "2.0"),
    ("matplotlib", "matplotlib", "3.3"),
)


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
            if found == "0":
                continue  # no metadata to judge by: the full check decides when it runs
        else:
            try:
                mod = importlib.import_module(module)
            except Exception:  # ImportError, or a broken binary build raising anything else
                problems.append(f"{pip_name}>={minimum} (not installed)")
                continue
            found = getattr(mod, "__version__", "0")
        if _version_tuple(found) < _version_tuple(minimum):
            problems.append(f"{pip_name}>={minimum} (found {found})")
    return problems


def install_command(system=None, python=None):
    """The exact command that installs the packages for QGIS's Python on this platform."""
    system = system or platform.system()
    python = python or sys.executable or "python3"
    pkgs = '"shapely>=2"'  # fastcluster is for the tests only
    if system == "Windows":
        # QGIS's Python is started through the OSGeo4W Shell that comes with QGIS.
        return f"in the OSGeo4W Shell: python -m pip install {pkgs}"
    if system == "Darwin":
        if not os.path.basename(python).startswith("python"):
            python = "/Applications/QGIS.app/Contents/MacOS/bin/python3"
        return f"{python} -m pip install --user {pkgs}"
    # Linux: Debian's QGIS uses the system Python (PEP 668) and numpy 1.x; keep that numpy. QGIS
    # loads the distribution's GEOS into the process (3.11 on Debian 12), which shapely 2.1+
    # wheels do not match ("WKB output dimension must be 2 or 3"): stay on shapely 2.0 there.
    pkgs = '"shapely>=2,<2.1"'
    try:
        import numpy

        pin = f' "numpy=={numpy.__version__}"'
    except Exception:
        pin = ' "numpy<2"'
    return ("/usr/bin/python3 -m pip install --user --break-system-packages "
            f"{pkgs}{pin}  (or `make setup` in a checkout)")


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
    return ("Mine Clusters needs the Python packages " + "; ".join(problems)
            + "; install them with: " + install_command() + " and restart QGIS.")
