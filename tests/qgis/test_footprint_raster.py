"""The footprint summary's commodity raster inside QGIS: the real sample clustered by the cluster
algorithm, the GeoTIFF read back with GDAL (CRS, lattice, bands, nodata, compression, tiles,
sums against the commodity table), the cell-size and file-name checks, cancel."""
import os

import pytest

pytest.importorskip("qgis.core")

from qgis.core import (  # noqa: E402
    QgsApplication,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingOutputRasterLayer,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsVectorLayer,
)

from qgis_helpers import LogFeedback  # noqa: E402

gdal = pytest.importorskip("osgeo.gdal")


def prun(alg, params, feedback=None):
    from qgis import processing  # importable once the qgis_app fixture ran

    return processing.run(alg, params, feedback=feedback or LogFeedback())


def fp_alg():
    from mine_clusters.algorithms.footprint import FootprintSummaryAlgorithm
    return FootprintSummaryAlgorithm()


def rows(path):
    lyr = QgsVectorLayer(path, os.path.basename(path), "ogr")
    assert lyr.isValid(), path
    names = [f.name() for f in lyr.fields()]
    return [dict(zip(names, f.attributes())) for f in lyr.getFeatures()]


@pytest.fixture(scope="module")
def clustered(provider, sample_polygons, sample_points, tmp_path_factory):
    """The bundled sample (resources/sample) run through the cluster algorithm: its polygons."""
    d = tmp_path_factory.mktemp("raster_clustered")
    out = {"OUTPUT_POLYGONS": str(d / "polygons.gpkg"), "OUTPUT_POINTS": str(d / "points.gpkg"),
           "OUTPUT_CLUSTERS": "", "OUTPUT_SENSITIVITY": "", "OUTPUT_PLOT": "",
           "OUTPUT_HISTOGRAM": ""}
    prun("mineclusters:clusterlocaloptimum", dict(POLYGONS=sample_polygons, POINTS=sample_points,
                                                  **out))
    return out["OUTPUT_POLYGONS"]


def run_raster(clustered, tmp_path, cell=None, tag="r", feedback=None, **extra):
    params = dict(INPUT=clustered, CELL_SIZE=0, OUTPUT_COMMODITY=str(tmp_path / f"{tag}_com.gpkg"),
                  OUTPUT_RASTER=str(tmp_path / f"{tag}.tif"), **extra)
    if cell is not None:
        params["RASTER_CELL_DEG"] = cell
    fb = feedback or LogFeedback()
    return prun(fp_alg(), params, feedback=fb), params, fb


def test_raster_definitions(qgis_app):
    alg = fp_alg()
    alg.initAlgorithm()
    p = alg.parameterDefinition("OUTPUT_RASTER")
    assert isinstance(p, QgsProcessingParameterRasterDestination)
    assert p.flags() & p.FlagOptional and not p.createByDefault()
    cell = alg.parameterDefinition("RASTER_CELL_DEG")
    assert isinstance(cell, QgsProcessingParameterNumber) and cell.defaultValue() == 0.5
    assert cell.dataType() == QgsProcessingParameterNumber.Type.Double
    out = alg.outputDefinition("OUTPUT_RASTER")     # what qgis_process --json prints
    assert isinstance(out, QgsProcessingOutputRasterLayer)


@pytest.mark.parametrize("cell", [0.1, None])        # None: the default 0.5°, the whole globe
def test_raster_of_the_clustered_sample(clustered, tmp_path, cell):
    from osgeo import osr

    res, params, fb = run_raster(clustered, tmp_path, cell)
    path = params["OUTPUT_RASTER"]
    assert res["OUTPUT_RASTER"] == path and os.path.isfile(path)
    com = rows(params["OUTPUT_COMMODITY"])
    ds = gdal.Open(path)
    assert ds.GetDriver().ShortName == "GTiff"
    srs = osr.SpatialReference(wkt=ds.GetProjection())
    srs.AutoIdentifyEPSG()
    assert srs.GetAuthorityName(None) == "EPSG" and srs.GetAuthorityCode(None) == "4326"

    d = 0.5 if cell is None else cell
    x0, dx, rx, y0, ry, dy = ds.GetGeoTransform()
    assert (dx, dy, rx, ry) == (d, -d, 0.0, 0.0)
    for k in ((x0 + 180) / d, (90 - y0) / d):      # on the lattice anchored at (-180, 90)
        assert abs(k - round(k)) < 1e-9
    x1, y1 = x0 + ds.RasterXSize * d, y0 - ds.RasterYSize * d
    polys = QgsVectorLayer(clustered, "p", "ogr")
    e = polys.extent()
    if cell is None:
        assert (x0, y0, ds.RasterXSize, ds.RasterYSize) == (-180.0, 90.0, 720, 360)
    else:                                           # the data's box, snapped outward
        assert x0 <= e.xMinimum() < x0 + d and x1 - d < e.xMaximum() <= x1 + 1e-9
        assert y1 <= e.yMinimum() < y1 + d and y0 - d < e.yMaximum() <= y0 + 1e-9

    names = [ds.GetRasterBand(b + 1).GetDescription() for b in range(ds.RasterCount)]
    assert names == [r["commodity"] for r in com]
    assert names[-1] == "Unknown" and names[0] == "Coal" and len(names) >= 2
    structure = ds.GetMetadata("IMAGE_STRUCTURE")
    assert structure.get("COMPRESSION") == "DEFLATE" and structure.get("INTERLEAVE") == "BAND"
    total = 0.0
    for b, row in enumerate(com):
        band = ds.GetRasterBand(b + 1)
        assert band.GetNoDataValue() == 0.0
        assert band.DataType == gdal.GDT_Float64
        assert band.GetBlockSize() == [256, 256]
        assert band.GetUnitType() == "km2"
        a = band.ReadAsArray()
        assert (a >= 0).all()
        assert a.sum() == pytest.approx(row["area_km2"], rel=1e-6)
        total += a.sum()
    assert total == pytest.approx(res["TOTAL_AREA_KM2"], rel=1e-9)
    assert "footprintsummary" in ds.GetMetadataItem("MINE_CLUSTERS_PROVENANCE")
    ds = None
    line = [m for m in fb.infos if m.startswith("Raster written to")]
    assert len(line) == 1 and f"{len(names)} bands" in line[0] and "km² of mine land" in line[0]
    assert any(m.startswith("Timings") and "raster" in m for m in fb.infos)


def test_no_raster_unless_asked(clustered, tmp_path):
    """Not asked: nothing written and no cell-size check (a 0.7° size is ignored)."""
    res = prun(fp_alg(), dict(INPUT=clustered, CELL_SIZE=0, RASTER_CELL_DEG=0.7,
                              OUTPUT_COMMODITY=str(tmp_path / "com.gpkg")))
    assert res["OUTPUT_RASTER"] is None and res["TOTAL_AREA_KM2"] > 0
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tif")]


@pytest.mark.parametrize("cell, words", [
    (0.7, r"^The raster cell size 0\.7° does not divide 180° into whole cells .*; choose one that "
          r"does, such as 0\.5° or 1°, or 180/n° for a whole number n\.$"),
    (0, r"^The raster cell size must be more than 0°, got 0.*; choose e\.g\. 0\.5°"),
    (120, r"^The raster cell size must be at most 90°, got 120°; choose"),
])
def test_a_bad_cell_size_is_refused_in_one_sentence(clustered, tmp_path, cell, words):
    with pytest.raises(QgsProcessingException, match=words):
        run_raster(clustered, tmp_path, cell, tag="bad")
    assert not os.path.exists(tmp_path / "bad.tif")


def test_a_raster_file_name_that_is_no_geotiff_is_refused(clustered, tmp_path):
    with pytest.raises(QgsProcessingException, match=r"written as a GeoTIFF.* ending in \.tif"):
        prun(fp_alg(), dict(INPUT=clustered, CELL_SIZE=0, OUTPUT_RASTER=str(tmp_path / "r.png")))


# ---- cancel ---------------------------------------------------------------------------------

class CancelAt(LogFeedback):
    """Records the progress values; cancels itself at the first value >= `at` (None: never)."""

    def __init__(self, at=None):
        super().__init__()
        self.values, self.at = [], at
        self.progressChanged.connect(self._seen)

    def _seen(self, value):
        self.values.append(value)
        if self.at is not None and value >= self.at:
            self.cancel()


def test_cancel_while_writing_the_raster_or_after_it_deletes_the_file(provider, clustered,
                                                                      tmp_path):
    """The raster is written at 60..68 % of the last of four steps (90..92 % overall): a cancel
    there (between two strips of a 0.01° raster) and a cancel afterwards (in the report) both
    leave no GeoTIFF behind, and the log says so."""
    def run(tag, at):
        alg = QgsApplication.processingRegistry().createAlgorithmById("mineclusters:footprintsummary")
        params = dict(INPUT=clustered, CELL_SIZE=0, RASTER_CELL_DEG=0.01,
                      OUTPUT_RASTER=str(tmp_path / f"{tag}.tif"),
                      REPORT=str(tmp_path / f"{tag}.html"))
        fb = CancelAt(at)
        results, ok = alg.run(params, QgsProcessingContext(), fb)
        return results, fb, params["OUTPUT_RASTER"]

    results, fb, path = run("full", None)
    assert os.path.isfile(path)
    writing = [v for v in fb.values if 90.0 < v < 92.0]
    later = [v for v in fb.values if v > 92.0]
    assert len(writing) >= 2 and later, fb.values
    for tag, at in (("during", writing[0]), ("after", later[0])):
        results, fb, path = run(tag, at)
        assert fb.isCanceled()
        assert not os.path.exists(path), f"cancelled {tag} writing: {path} left behind"
        assert not any(isinstance(v, str) and os.path.exists(v) for v in results.values())
        assert any("ancel" in m for m in fb.infos + fb.warnings)


def test_write_geotiff_deletes_its_partial_file_on_cancel(qgis_app, tmp_path):
    import numpy as np

    from mine_clusters.algorithms import layer_io
    from mine_clusters.core.errors import Cancelled

    fb = CancelAt()
    seen = []

    def progress(p):
        seen.append(p)
        fb.cancel()                 # after the first strip

    path = str(tmp_path / "partial.tif")
    with pytest.raises(Cancelled):
        layer_io.write_geotiff(path, np.ones((2, 600, 300)), (-180, 0.1, 0, 90, 0, -0.1),
                               ["A", "B"], feedback=fb, progress=progress)
    assert seen and not os.path.exists(path)
    layer_io.write_geotiff(path, np.ones((2, 600, 300)), (-180, 0.1, 0, 90, 0, -0.1), ["A", "B"])
    ds = gdal.Open(path)
    assert ds.ReadAsArray().sum() == 2 * 600 * 300


def test_write_geotiff_of_a_sparse_raster_reads_back_whole(qgis_app, tmp_path):
    """The core's CommodityRaster goes to the writer tile by tile (only the tiles holding mine
    land); GDAL fills the others with nodata: read back, the file equals the dense array, edge
    tiles included."""
    import numpy as np
    import shapely

    from mine_clusters.algorithms import layer_io
    from mine_clusters.core import footprint as fp

    # mine land in three far-apart 256 x 256 tiles of a 0.01° raster, one at its bottom-right edge
    geoms = [shapely.box(80.001, 30.001, 80.03, 30.02), shapely.box(86.5, 22.5, 86.52, 22.53),
             shapely.box(92.97, 19.99, 92.999, 20.009)]
    p = fp.mine_polygons(geoms, [1, 2, 3], [1, 2, 3], ["Coal", "Gold,Coal", None])
    raster = fp.commodity_raster(p, 0.01)
    assert raster.shape[1] > 1000 and raster.shape[2] > 1000
    assert raster.n_blocks(256) < raster.shape[0] * 4   # of 3 x 5 x 6 tiles
    seen = []
    path = layer_io.write_geotiff(str(tmp_path / "sparse.tif"), raster, raster.geotransform,
                                  raster.bands, progress=seen.append)
    assert len(seen) == raster.n_blocks(256) and seen[-1] == 100.0
    ds = gdal.Open(path)
    assert [ds.GetRasterBand(b + 1).GetDescription() for b in range(ds.RasterCount)] == \
        raster.bands == ["Coal", "Gold", "Unknown"]
    back = ds.ReadAsArray()
    assert back.shape == raster.shape and np.array_equal(back, raster.array)
    assert tuple(ds.GetGeoTransform()) == raster.geotransform
