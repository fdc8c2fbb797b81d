"""Mine Clusters core: the science, free of QGIS (numpy, scipy, shapely). See core/API.md.

The public names are loaded on first use (PEP 562): importing a light module of the package
(``core.colours``, ``core.deps``) when QGIS loads the plugin does not pull in numpy, scipy and
shapely, so the plugin adds next to nothing to QGIS's start-up.
"""
import importlib

#: public name -> the module of the package that defines it
_EXPORTS = {
    # clustering (the paper's method)
    "prepare_features": "features",
    "Features": "features",
    "cluster_mines": "engine",
    "ClusterResult": "engine",
    "cluster_polygons": "geometry",
    "cluster_polygons_wkb": "geometry",
    # harmonising the inputs
    "PolygonSource": "harmonise",
    "merge_polygons": "harmonise",
    "PointSource": "harmonise",
    "harmonise_points": "harmonise",
    "read_harmonisation_table": "harmonise",
    # the footprint summary
    "mine_polygons": "footprint",
    "regions": "footprint",
    "summarise": "footprint",
    "FootprintSummary": "footprint",
    "commodity_raster": "footprint",
    "CommodityRaster": "footprint",
    "LonLatGrid": "footprint",
    # validation against reference polygons
    "validate_clusters": "validate",
    "reference_harmonisation": "validate",
    "ValidationResult": "validate",
    # errors, commodity lists
    "InputError": "errors",
    "Cancelled": "errors",
    "parse_commodities": "commodities",
    # every output schema, and the field naming rule
    "FEATURE_FIELDS": "schema",
    "CLUSTER_FIELDS": "schema",
    "SENSITIVITY_FIELDS": "schema",
    "TRACE_FIELDS": "schema",
    "LINK_FIELDS": "schema",
    "link_lines": "trace",
    "POLYGON_FIELDS": "schema",
    "POINT_FIELDS": "schema",
    "DROPPED_FIELDS": "schema",
    "COMMODITY_FIELDS": "schema",
    "REGION_FIELDS": "schema",
    "TABLE2_FIELDS": "schema",
    "TABLE3_FIELDS": "schema",
    "GRID_BASE_FIELDS": "schema",
    "PAIR_FIELDS": "schema",
    "SUMMARY_FIELDS": "schema",
    "output_name": "schema",
    "input_name": "schema",
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
