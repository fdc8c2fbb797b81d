"""Plugin entry: registers the "Mine clusters" Processing provider (also under qgis_process)."""
from qgis.core import QgsApplication


class MineClustersPlugin:
    def __init__(self, iface=None):
        self.iface = iface
        self.provider = None

    def initProcessing(self):  # noqa: N802 (QGIS API name); no GUI code: qgis_process calls it
        from .algorithms.provider import MineClustersProvider

        if self.provider is None:
            self.provider = MineClustersProvider()  # keep the reference: see STYLE.md §1
            QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self):  # noqa: N802
        self.initProcessing()

    def unload(self):
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
