"""Every output schema of the core, as data, in one place: tuples of (name, kind), kind one of
"int", "double", "string". The wrappers build their fields from these and the tests assert them;
the naming rule below decides the name under which a field is written beside input fields.

Cluster: FEATURE_FIELDS (added to each polygon and point), TRACE_FIELDS (then to each polygon),
CLUSTER_FIELDS, SENSITIVITY_FIELDS, LINK_FIELDS; the concordance's fields depend on the
candidate thresholds (core.trace.concordance).
Harmonise: POLYGON_FIELDS, POINT_FIELDS, DROPPED_FIELDS. Footprint: COMMODITY_FIELDS,
REGION_FIELDS, TABLE2_FIELDS, TABLE3_FIELDS, GRID_BASE_FIELDS (+ one area per commodity:
core.footprint.grid_fields). Validate: PAIR_FIELDS, SUMMARY_FIELDS.
"""

#: Fields added to every output polygon and point.
FEATURE_FIELDS = (
    ("cluster_id", "int"),
    ("threshold_m", "double"),
    ("primary_commodities", "string"),
    ("commodities", "string"),
    ("status", "string"),
    ("area_m2", "double"),
)

#: Added to every output polygon after FEATURE_FIELDS: why it has its commodities
#: (core/trace.py). The point with a primary commodity of its cluster nearest along the links,
#: the geodesic distance to it, the links on that chain and the longest of them (below it the
#: polygon loses the point); the candidate thresholds between which its primary set stays the
#: same. NULL where the cluster has no primary commodity.
TRACE_FIELDS = (
    ("via_point_fid", "int"),
    ("via_distance_m", "double"),
    ("via_links", "int"),
    ("via_max_link_m", "double"),
    ("stable_from_m", "double"),
    ("stable_to_m", "double"),
)

#: One line per single-linkage link that holds a final cluster together (k - 1 for k features):
#: the shortest geodesic connection of its two features (layer "polygons" or "points", the input
#: feature id, the part of a multipoint), its length and the cluster's threshold.
LINK_FIELDS = (
    ("cluster_id", "int"),
    ("from_layer", "string"),
    ("from_fid", "int"),
    ("from_part", "int"),
    ("to_layer", "string"),
    ("to_fid", "int"),
    ("to_part", "int"),
    ("distance_m", "double"),
    ("threshold_m", "double"),
)

#: One row per cluster holding polygons (a MultiPolygon layer).
CLUSTER_FIELDS = (
    ("cluster_id", "int"),
    ("threshold_m", "double"),
    ("primary_commodities", "string"),
    ("commodities", "string"),
    ("n_polygons", "int"),
    ("n_points", "int"),
    ("area_m2", "double"),
    ("status", "string"),
)

#: The sensitivity table: the global curve over h and the local curve over H_max.
SENSITIVITY_FIELDS = (
    ("curve", "string"),
    ("threshold_m", "double"),
    ("area_unassigned_pct", "double"),
    ("area_multi_pct", "double"),
    ("distance", "double"),
    ("chosen", "int"),
)


# ---- harmonise

#: Output schema of the merged polygons (name, kind).
POLYGON_FIELDS = (
    ("polygon_id", "int"),
    ("sources", "string"),
    ("n_inputs", "int"),
    ("input_ids", "string"),
    ("area_m2", "double"),
)

#: Schema of the optional table of dropped features: one row per input feature left out.
DROPPED_FIELDS = (
    ("source", "string"),
    ("source_id", "string"),
    ("reason", "string"),
)

#: Output schema of the harmonised points: the names the cluster algorithm takes by default.
POINT_FIELDS = (
    ("point_id", "int"),
    ("source", "string"),
    ("source_id", "string"),
    ("primary_commodity", "string"),
    ("commodities", "string"),
)

# ---- footprint

#: Footprint: mine area per primary commodity (Unknown for unassigned polygons).
COMMODITY_FIELDS = (
    ("commodity", "string"), ("area_km2", "double"), ("area_pct", "double"),
    ("n_polygons", "int"), ("n_clusters", "int"),
)

#: Footprint: mine area per region (country or biome) and commodity.
REGION_FIELDS = (
    ("region", "string"), ("commodity", "string"), ("area_km2", "double"),
    ("area_pct", "double"), ("region_pct", "double"),
)

#: Footprint: the paper's Table 2, assigned and unassigned clusters and their total.
TABLE2_FIELDS = (
    ("status", "string"), ("area_km2", "double"), ("area_pct", "double"),
    ("n_clusters", "int"), ("clusters_pct", "double"),
    ("n_polygons", "int"), ("polygons_pct", "double"),
    ("n_points", "int"), ("points_pct", "double"),
    ("cluster_area_km2", "double"), ("polygons_per_cluster", "double"),
    ("points_per_cluster", "double"), ("polygon_area_km2", "double"),
)

#: Footprint: the paper's Table 3, polygons by status and data source.
TABLE3_FIELDS = (
    ("status", "string"), ("sources", "string"), ("area_km2", "double"),
    ("area_pct", "double"), ("n_polygons", "int"), ("polygons_pct", "double"),
    ("polygon_area_km2", "double"),
)

#: Footprint: the grid cells' first fields (then one km2_<commodity> per commodity).
GRID_BASE_FIELDS = (
    ("cell_id", "int"), ("row", "int"), ("col", "int"), ("cell_area_km2", "double"),
    ("mine_area_km2", "double"), ("dominant", "string"), ("dominant_km2", "double"),
    ("dominant_pct", "double"), ("n_polygons", "int"),
)

# ---- validate

#: Validate: one pair of a clustered and an intersecting reference polygon (reference_name: the
#: reference's own id or name, from a field the user chooses).
PAIR_FIELDS = (
    ("feature_id", "int"), ("cluster_id", "int"), ("reference_id", "int"),
    ("primary_commodities", "string"), ("reference_commodities", "string"),
    ("jaccard", "double"), ("dice", "double"), ("overlap", "double"),
    ("id_overlap", "int"), ("match", "string"), ("reference_name", "string"),
)

#: Validate: the paper's Table 4 (Mean, SD, Median of each metric, Count and Proportion of each
#: match, Undefined).
SUMMARY_FIELDS = (
    ("statistic", "string"), ("jaccard", "double"), ("dice", "double"), ("overlap", "double"),
    ("id_overlap", "double"), ("full_match", "double"), ("partial_match", "double"),
    ("no_match", "double"),
)


# ---- naming: the plugin's fields never overwrite an input field -------------------------------
#: The prefix of a field the plugin adds when the input already has a field of that name:
#: ``mc_`` first, then ``mc2_``, ``mc3_``, ... (a run on the output of an earlier run).
PREFIX = "mc"


def _prefixed(name: str, n: int) -> str:
    return f"{PREFIX}{'' if n == 1 else n}_{name}"


def output_name(name: str, taken) -> str:
    """The name under which the plugin writes its field `name` beside the input fields `taken`:
    `name` itself, or, when an input field already has it (compared case-insensitively, as
    GeoPackage and shapefiles do), the first free of ``mc_name``, ``mc2_name``, ..."""
    used = {t.casefold() for t in taken}
    if name.casefold() not in used:
        return name
    n = 1
    while _prefixed(name, n).casefold() in used:
        n += 1
    return _prefixed(name, n)


def input_name(name: str, available):
    """The field of a plugin output that holds the plugin's `name` (the inverse of
    :func:`output_name`): of the fields named `name`, ``mc_name``, ``mc2_name``, ... (compared
    case-insensitively) the last in the layer's field order, as each run appends its fields after
    the input's; None when the layer has none of them."""
    found = None
    for a in available:
        if a.casefold() == name.casefold() or _is_prefixed(a, name):
            found = a
    return found


def _is_prefixed(field: str, name: str) -> bool:
    """Whether `field` is ``mc_name`` or ``mcN_name`` (N = 2, 3, ...), case-insensitively."""
    k, tail = field.casefold(), "_" + name.casefold()
    if not (k.startswith(PREFIX) and k.endswith(tail)):
        return False
    n = k[len(PREFIX):len(k) - len(tail)]
    return n == "" or (n.isdigit() and not n.startswith("0") and int(n) >= 2)
