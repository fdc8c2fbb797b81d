"""Mine Clusters core: the science, free of QGIS (numpy, scipy, shapely). See core/API.md.

The public names are loaded on first use (PEP 562): importing a light module of the package
(``core.colours``, ``core.deps``) when QGIS loads the plugin does not pull in numpy, scipy and
shapely, so the plugin adds next to nothing to QGIS's start-up.
"""
import importlib

#: public name -> the module of the package that defines it
_EXPORTS = {
    "prepare_features": "features",
    "Features": "features",
    "cluster_mines": "engine",
    "ClusterResult": "engine",
    "InputError": "errors",
    "Cancelled": "errors",
    "parse_commodities": "commodities",
    "FEATURE_FIELDS": "schema",
    "CLUSTER_FIELDS": "schema",
    "SENSITIVITY_FIELDS": "schema",
}

__all__ = list(_EXPORTS)


def __getattr__(name):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later look-ups are plain attribute reads
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
