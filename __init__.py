"""Mine Clusters QGIS plugin: classFactory() only (no qgis import at module top)."""


def classFactory(iface):  # noqa: N802 (QGIS API name)
    from .plugin import MineClustersPlugin

    return MineClustersPlugin()  # iface unused: a Processing provider only
