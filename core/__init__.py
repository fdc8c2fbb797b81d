"""Mine Clusters core: the science, free of QGIS (numpy, scipy, shapely). See core/API.md."""
from .commodities import parse_commodities
from .engine import ClusterResult, cluster_mines
from .errors import Cancelled, InputError
from .features import Features, prepare_features
from .schema import CLUSTER_FIELDS, FEATURE_FIELDS, SENSITIVITY_FIELDS

__all__ = ["prepare_features", "cluster_mines", "ClusterResult", "Features", "InputError",
           "Cancelled", "parse_commodities", "FEATURE_FIELDS", "CLUSTER_FIELDS",
           "SENSITIVITY_FIELDS"]
