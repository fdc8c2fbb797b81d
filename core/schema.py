"""Output schemas as data: wrappers build their fields from these, tests assert them."""

#: Fields added to every output polygon and point.
FEATURE_FIELDS = (
    ("cluster_id", "int"),
    ("threshold_m", "double"),
    ("primary_commodities", "string"),
    ("commodities", "string"),
    ("status", "string"),
    ("area_m2", "double"),
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
