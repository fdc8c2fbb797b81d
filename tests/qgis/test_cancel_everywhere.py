"""A cancel at several points of every algorithm, on the real sample data: the run stops, says
so, and leaves no output file behind that could pass for a complete one.

Each algorithm first runs to the end with a feedback that counts its progress reports; then it
runs again and is cancelled at the first report, and at 25 %, 50 %, 75 % and 95 % of the reports
the full run made (so the cancel lands in reading, computing and writing alike).
"""
import os

import pytest

pytest.importorskip("qgis.core")

from qgis.core import (  # noqa: E402
    QgsApplication,
    QgsProcessingContext,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterVectorDestination,
)

from qgis_helpers import BIOMES, COUNTRIES, GEM, LogFeedback  # noqa: E402

FRACTIONS = (0.0, 0.25, 0.5, 0.75, 0.95)


class CountingFeedback(LogFeedback):
    """Counts progress reports; cancels itself at report number `cancel_at` (None: never)."""

    def __init__(self, cancel_at=None):
        super().__init__()
        self.errors = []
        self.reports, self.cancel_at = 0, cancel_at
        self.progressChanged.connect(self._on_progress)

    def reportError(self, error, fatalError=False):  # noqa: N802,N803
        self.errors.append(error)

    def _on_progress(self, _value):
        self.reports += 1
        if self.cancel_at is not None and self.reports >= self.cancel_at:
            self.cancel()


def destinations(alg, directory, tag):
    """A file path for every output of `alg` (GeoPackage for layers, the default extension of
    each file output)."""
    out = {}
    for p in alg.destinationParameterDefinitions():
        if isinstance(p, (QgsProcessingParameterFeatureSink,
                          QgsProcessingParameterVectorDestination)):
            out[p.name()] = str(directory / f"{tag}_{p.name().lower()}.gpkg")
        elif isinstance(p, QgsProcessingParameterFileDestination):
            out[p.name()] = str(directory / f"{tag}_{p.name().lower()}.{p.defaultFileExtension()}")
        elif isinstance(p, QgsProcessingParameterFolderDestination):
            out[p.name()] = str(directory / f"{tag}_{p.name().lower()}")
        elif isinstance(p, QgsProcessingParameterRasterDestination):
            out[p.name()] = str(directory / f"{tag}_{p.name().lower()}.tif")
    return out


def run(alg_id, inputs, directory, tag, cancel_at=None):
    alg = QgsApplication.processingRegistry().createAlgorithmById(alg_id)
    assert alg is not None, alg_id
    outputs = destinations(alg, directory, tag)
    feedback = CountingFeedback(cancel_at)
    context = QgsProcessingContext()
    try:
        results, ok = alg.run({**inputs, **outputs}, context, feedback)
    finally:
        context.temporaryLayerStore().removeAllMapLayers()
    return results, ok, feedback, outputs


def left_behind(outputs):
    return sorted(path for path in outputs.values() if os.path.exists(path))


@pytest.fixture(scope="module")
def clustered_polygons(provider, sample_polygons, sample_points, tmp_path_factory):
    d = tmp_path_factory.mktemp("cancel_clustered")
    results, ok, _fb, _out = run("mineclusters:clusterlocaloptimum",
                                 {"POLYGONS": sample_polygons, "POINTS": sample_points}, d, "c")
    assert ok
    return results["OUTPUT_POLYGONS"]


def cases(sample_polygons, sample_points, clustered):
    footprint = {"INPUT": clustered}
    if os.path.exists(COUNTRIES) and os.path.exists(BIOMES):
        footprint.update({"COUNTRIES": COUNTRIES + "|layername=countries", "BIOMES": BIOMES})
    validate = {"INPUT": clustered, "REFERENCE_COMMODITIES": "Coal",
                "REFERENCE": (GEM + "|geometrytype=Polygon") if os.path.exists(GEM)
                else sample_polygons}
    return {
        "mineclusters:clusterlocaloptimum": {"POLYGONS": sample_polygons, "POINTS": sample_points},
        "mineclusters:harmonisepolygons": {"LAYERS": [sample_polygons]},
        "mineclusters:harmonisepoints": {"LAYERS": [sample_points]},
        "mineclusters:footprintsummary": footprint,
        "mineclusters:validate": validate,
    }


@pytest.mark.parametrize("alg_id", [
    "mineclusters:clusterlocaloptimum",
    "mineclusters:harmonisepolygons",
    "mineclusters:harmonisepoints",
    "mineclusters:footprintsummary",
    "mineclusters:validate",
])
def test_cancel_at_several_points_leaves_no_complete_looking_output(
        alg_id, provider, sample_polygons, sample_points, clustered_polygons, tmp_path):
    inputs = cases(sample_polygons, sample_points, clustered_polygons)[alg_id]
    full, ok, feedback, outputs = run(alg_id, inputs, tmp_path, "full")
    assert ok and full, f"{alg_id} did not run to the end uncancelled: {feedback.errors}"
    assert left_behind(outputs), "the uncancelled run wrote nothing to compare with"
    total = feedback.reports
    assert total >= 5, f"{alg_id} reports progress only {total} times"

    stops = sorted({max(1, int(round(f * total))) for f in FRACTIONS})
    for stop in stops:
        results, _ok, fb, outputs = run(alg_id, inputs, tmp_path, f"stop{stop}", cancel_at=stop)
        where = f"{alg_id} cancelled at progress report {stop} of {total}"
        assert fb.isCanceled(), where
        assert not any(isinstance(v, str) and os.path.exists(v) for v in results.values()), \
            f"{where}: returned outputs {results}"
        assert left_behind(outputs) == [], f"{where}: files left behind"
        assert any("ancel" in m for m in fb.infos + fb.warnings), f"{where}: the log says nothing"
