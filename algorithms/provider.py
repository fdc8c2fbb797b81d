"""The "Mine clusters" Processing provider."""
from qgis.core import QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

from .base import ICON
from .cluster import ClusterLocalOptimumAlgorithm
from .footprint import FootprintSummaryAlgorithm
from .harmonise import HarmonisePointsAlgorithm, HarmonisePolygonsAlgorithm
from .validate import ValidateAlgorithm


class MineClustersProvider(QgsProcessingProvider):
    def id(self):
        return "mineclusters"

    def name(self):
        return "Mine clusters"

    def longName(self):  # noqa: N802
        return "Mine clusters (commodity-specific mining land use)"

    def icon(self):
        return QIcon(ICON)

    def svgIconPath(self):  # noqa: N802
        return ICON

    def loadAlgorithms(self):  # noqa: N802
        for alg in (HarmonisePolygonsAlgorithm(), HarmonisePointsAlgorithm(),
                    ClusterLocalOptimumAlgorithm(), FootprintSummaryAlgorithm(),
                    ValidateAlgorithm()):
            self.addAlgorithm(alg)
