"""Helpers for the QGIS tests (imported by name: tests/ has no __init__.py)."""
import os

from qgis.core import QgsFeature, QgsGeometry, QgsProcessingFeedback, QgsVectorLayer


# the real public data beside the checkout (../shared/data), or where the variable points
DATA = os.environ.get("MINE_CLUSTERS_SHARED_DATA",
                      os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data"))
COUNTRIES = os.path.join(DATA, "natural-earth-countries", "world-atlas-2.0.2", "countries-10m.json")
BIOMES = os.path.join(DATA, "resolve-ecoregions2017-simplified", "biomes.shp")
GEM = os.path.join(DATA, "gem-coal-mine-boundaries-v1.0.2", "coal-mine-boundaries-methane.geojson")


class LogFeedback(QgsProcessingFeedback):
    def __init__(self):
        super().__init__()
        self.infos, self.warnings, self.errors = [], [], []

    def pushInfo(self, info):  # noqa: N802
        self.infos.append(info)

    def pushWarning(self, warning):  # noqa: N802
        self.warnings.append(warning)

    def reportError(self, error, fatalError=False):  # noqa: N802,N803
        self.errors.append(error)


def memory_layer(kind, crs, fields, rows, name="layer"):
    """Memory layer of `kind` ('Point', 'MultiPoint', 'Polygon', ...) from (wkt|None, attrs)."""
    spec = f"{kind}?crs={crs}" + "".join(f"&field={n}:{t}" for n, t in fields)
    layer = QgsVectorLayer(spec, name, "memory")
    assert layer.isValid()
    feats = []
    for wkt, attrs in rows:
        f = QgsFeature(layer.fields())
        if wkt is not None:
            f.setGeometry(QgsGeometry.fromWkt(wkt))
        f.setAttributes(list(attrs))
        feats.append(f)
    assert layer.dataProvider().addFeatures(feats)[0]
    return layer
