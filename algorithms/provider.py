"""The "Mine clusters" Processing provider."""
import os

from qgis.core import QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

from .cluster import ClusterLocalOptimumAlgorithm
from .footprint import FootprintSummaryAlgorithm
from .harmonise import HarmonisePointsAlgorithm, HarmonisePolygonsAlgorithm
from .validate import ValidateAlgorithm

PLUGIN_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class MineClustersProvider(QgsProcessingProvider):
    def id(self):
        return "mineclusters"

    def name(self):
        return "Mine clusters"

    def longName(self):  # noqa: N802
        return "Mine clusters (commodity-specific mining land use)"

    def icon(self):
        return QIcon(os.path.join(PLUGIN_DIR, "resources", "icon.svg"))

    def svgIconPath(self):  # noqa: N802
        return os.path.join(PLUGIN_DIR, "resources", "icon.svg")

    def loadAlgorithms(self):  # noqa: N802
        for alg in (HarmonisePolygonsAlgorithm(), HarmonisePointsAlgorithm(),
                    ClusterLocalOptimumAlgorithm(), FootprintSummaryAlgorithm(),
                    ValidateAlgorithm()):
            self.addAlgorithm(alg)
