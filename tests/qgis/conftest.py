"""QGIS layer: QgsApplication offscreen, the provider registered, processing.run()."""
import os
import sys

import pytest

pytest.importorskip("qgis.core")

from qgis.core import QgsApplication  # noqa: E402
from qgis_helpers import LogFeedback  # noqa: E402


@pytest.fixture(scope="session")
def qgis_app():
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from qgis.testing import start_app  # throw-away profile directory

    app = start_app()
    sys.path.append(os.path.join(QgsApplication.pkgDataPath(), "python", "plugins"))
    from processing.core.Processing import Processing

    Processing.initialize()
    return app


@pytest.fixture(scope="session")
def provider(qgis_app):
    from mine_clusters.algorithms.provider import MineClustersProvider

    prov = MineClustersProvider()  # the fixture keeps the reference alive
    assert QgsApplication.processingRegistry().addProvider(prov)
    yield prov
    QgsApplication.processingRegistry().removeProvider(prov)


@pytest.fixture
def run(provider):
    """processing.run for our algorithm; returns (results, feedback with its log lines)."""
    import processing

    def _run(params, feedback=None):
        feedback = feedback or LogFeedback()
        res = processing.run("mineclusters:clusterlocaloptimum", params, feedback=feedback)
        return res, feedback

    return _run
