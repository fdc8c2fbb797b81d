"""Commodity raster (core.footprint_raster): km² of mine land per lon/lat cell and commodity.

The bands reconcile with the commodity table on real data; a polygon across cells is split by
the spherical areas of its pieces (checked with pyproj on densified pieces, not the plugin's area
code); the antimeridian, the poles, the lattice, the extent rule, the cell-size checks, an empty
input, the memory guard and cancel."""
import math
import os

import numpy as np
import pytest
import shapely

from harmonise_checks import dense_area
from realdata import read_geojson
from mine_clusters.core import footprint as fp
from mine_clusters.core.errors import Cancelled, InputError
from mine_clusters.core.footprint_raster import GLOBE_CELLS, MAX_RASTER_CELLS

DATA = os.environ.get("MINE_CLUSTERS_SHARED_DATA",
                      os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data"))
SAMPLE = os.path.join(os.path.dirname(__file__), "..", "..", "resources", "sample")
R = 6371008.8


def polys(geoms, primary, area=None, cluster_ids=None):
    n = len(geoms)
    return fp.mine_polygons(geoms, list(range(1, n + 1)),
                            cluster_ids if cluster_ids is not None else list(range(1, n + 1)),
                            primary, area_m2=area)


def sample_polys():
    from realdata import read_gpkg

    pg, pp = read_gpkg(os.path.join(SAMPLE, "mine_polygons.gpkg"), "mine_polygons")
    prim = [["Coal", "Iron,Coal", None, "Copper,Gold,Coal"][i % 4] for i in range(len(pg))]
    return fp.mine_polygons(pg, range(len(pg)), range(len(pg)), prim,
                            area_m2=[r["area_m2"] for r in pp])


def india_polys():
    path = os.path.join(DATA, "maus2020-v1-india-brazil", "indian_polygon_with_grId.geojson")
    if not os.path.exists(path):
        pytest.skip("shared data not found")
    geoms, props = read_geojson(path)
    # commodities by a stand-in rule (real clusters go through the QGIS tests): grId modulo 4
    prim = [[None, "Coal", "Iron,Coal", "Bauxite,Iron,Manganese"][p["grId"] % 4] for p in props]
    return fp.mine_polygons(geoms, [p["fid"] for p in props], [p["grId"] for p in props], prim,
                            area_m2=[p["AREA"] * 1e6 for p in props])


def assert_reconciles(raster, commodity_rows, rel=1e-9):
    """Band k is commodity row k; each band sums to its row's area_km2, all bands to the total."""
    assert raster.bands == [r["commodity"] for r in commodity_rows]
    sums = raster.band_sums_km2()
    for r in commodity_rows:
        assert sums[r["commodity"]] == pytest.approx(r["area_km2"], rel=rel, abs=1e-12)
    assert raster.total_km2 == pytest.approx(sum(r["area_km2"] for r in commodity_rows), rel=rel)


def lattice_aligned(raster):
    x0, d, _, y0, _, dy = raster.geotransform
    assert dy == -d == -raster.cell_deg
    for k in ((x0 + 180.0) / d, (90.0 - y0) / d):
        assert abs(k - round(k)) < 1e-9, raster.geotransform
    assert raster.origin == (round((90.0 - y0) / d), round((x0 + 180.0) / d))


# ------------------------------------------------------------------ reconciliation, real data

@pytest.mark.parametrize("cell", [0.5, 0.1, 0.01])
def test_bands_sum_to_the_commodity_table_on_the_sample(cell):
    p = sample_polys()
    raster = fp.commodity_raster(p, cell)
    assert_reconciles(raster, fp.commodity_table(p))
    assert raster.array.dtype == np.float64 and (raster.array >= 0).all()
    assert raster.bands[-1] == fp.UNKNOWN and raster.bands[0] == "Coal"
    assert raster.total_km2 == pytest.approx(p.total_area_m2 / 1e6, rel=1e-9)
    lattice_aligned(raster)


def test_bands_sum_to_the_commodity_table_on_the_india_polygons():
    p = india_polys()
    for cell in (0.5, 0.05, 1 / 120):
        s = fp.summarise(p, cell_size_m=None, raster_cell_deg=cell)
        assert_reconciles(s.raster, s.commodity_rows)
        assert s.raster.total_km2 == pytest.approx(1884.96, rel=1e-3)   # SOURCE.md's sum of AREA
        # one computation: summarise's raster is commodity_raster's
        alone = fp.commodity_raster(p, cell)
        assert alone.bands == s.raster.bands and np.array_equal(alone.array, s.raster.array)
        assert alone.geotransform == s.raster.geotransform


def test_a_finer_lattice_nests_in_a_coarser_one():
    """0.1° cells summed 5 x 5 give the 0.5° cells: one split, whatever the cell size."""
    p = india_polys()
    fine, coarse = fp.commodity_raster(p, 0.1), fp.commodity_raster(p, 0.5)
    fr, fc = fine.origin
    # the fine raster in the coarse lattice: pad it to whole 0.5° cells, then sum 5 x 5 blocks
    top, left = fr - fr % 5, fc - fc % 5
    b, rows, cols = fine.shape
    pad = np.zeros((b, -(-(rows + fr - top) // 5) * 5, -(-(cols + fc - left) // 5) * 5))
    pad[:, fr - top:fr - top + rows, fc - left:fc - left + cols] = fine.array
    summed = pad.reshape(b, pad.shape[1] // 5, 5, pad.shape[2] // 5, 5).sum(axis=(2, 4))
    r0, c0 = top // 5, left // 5                 # the coarse raster is the whole globe
    assert coarse.origin == (0, 0) and coarse.shape[1:] == (360, 720)
    part = coarse.array[:, r0:r0 + summed.shape[1], c0:c0 + summed.shape[2]]
    assert np.allclose(part, summed, rtol=1e-9, atol=1e-12)
    assert part.sum() == pytest.approx(coarse.total_km2, rel=1e-12)


# ------------------------------------------------------------------ the split between cells

def test_a_polygon_across_cells_is_split_by_the_spherical_areas_of_its_pieces():
    """An irregular quadrilateral over 3 x 3 cells of 0.5° at 60°N: each cell holds the area
    times (the piece's area on the sphere / the polygon's), the pieces measured by pyproj on
    densified edges. Plane areas in degrees would be off by ~1 % between the rows."""
    g = shapely.Polygon([(10.2, 59.7), (11.3, 59.9), (11.1, 60.8), (10.4, 60.6)])
    area = 5e9
    raster = fp.commodity_raster(polys([g], ["Nickel"], area=[area]), 0.25)
    x0, d, _, y0, _, _ = raster.geotransform
    want, plane = np.zeros(raster.shape[1:]), np.zeros(raster.shape[1:])
    for i in range(raster.shape[1]):
        for j in range(raster.shape[2]):
            cell = shapely.box(x0 + j * d, y0 - (i + 1) * d, x0 + (j + 1) * d, y0 - i * d)
            piece = shapely.intersection(g, cell)
            want[i, j] = dense_area(piece) if not piece.is_empty else 0.0
            plane[i, j] = piece.area
    want *= area / want.sum() / 1e6
    plane *= area / plane.sum() / 1e6
    got = raster.array[0]
    assert (want > 0).sum() == (got > 0).sum() >= 9
    assert np.allclose(got, want, rtol=1e-6, atol=1e-9)
    assert np.abs(got - plane).max() > 1e-3 * got.max()     # the plane split would fail above
    assert got.sum() == pytest.approx(area / 1e6, rel=1e-12)


def test_a_polygon_inside_one_cell_goes_whole_to_it():
    g = shapely.box(85.11, 23.61, 85.13, 23.62)
    raster = fp.commodity_raster(polys([g], ["Coal"], area=[1.5e6]), 0.1)
    assert raster.shape == (1, 1, 1) and raster.array[0, 0, 0] == pytest.approx(1.5)
    assert raster.extent == pytest.approx((85.1, 23.6, 85.2, 23.7), abs=1e-12)


def test_shares_are_split_among_the_primaries_as_in_the_tables():
    gs = [shapely.box(0.01, 0.01, 0.02, 0.02), shapely.box(0.31, 0.01, 0.32, 0.02),
          shapely.box(0.61, 0.01, 0.62, 0.02)]
    p = polys(gs, ["Gold,Copper", "Copper", None], area=[4e6, 1e6, 3e6])
    raster = fp.commodity_raster(p, 0.1)
    assert raster.bands == ["Copper", "Gold", "Unknown"]      # the commodity table's order
    a = raster.array[:, 0, :]                                  # one row of 0.1° cells
    assert a[:, 0].tolist() == pytest.approx([2.0, 2.0, 0.0])
    assert a[:, 3].tolist() == pytest.approx([1.0, 0.0, 0.0])
    assert a[:, 6].tolist() == pytest.approx([0.0, 0.0, 3.0])
    assert_reconciles(raster, fp.commodity_table(p))


# ------------------------------------------------------------------ antimeridian and poles

def test_a_polygon_across_the_antimeridian_lands_in_the_first_and_last_columns():
    """Given as 179.8..180.2°E (the geometry rule cuts it at 180° and moves the rest to
    -180..-179.8): half its area in the easternmost column, half in the westernmost."""
    g = shapely.box(179.8, -10.2, 180.2, -10.1)
    p = polys([g], ["Gold"], area=[2e6])
    assert p.geoms[0].geom_type == "MultiPolygon"
    raster = fp.commodity_raster(p, 0.25)
    n_cols = 360 * 4
    assert raster.shape[2] == n_cols and raster.geotransform[0] == -180.0
    a = raster.array[0]
    assert a[:, 0].sum() == pytest.approx(1.0, rel=1e-9)
    assert a[:, -1].sum() == pytest.approx(1.0, rel=1e-9)
    assert a[:, 1:-1].sum() == 0.0


def test_polar_cells_are_covered():
    """A cap from 89.9°N to the pole: every cell of the top row of the 0.1° lattice holds
    1/3600 of it (the cells of a row have equal areas); its area is the closed form
    2 pi R² (1 - sin 89.9°). A polygon touching the pole and one along the south pole too."""
    cap = 2 * math.pi * R * R * (1 - math.sin(math.radians(89.9)))
    # (a vertex at 0°: an edge of 360° along a parallel would be a crossing of ±180°)
    north = shapely.Polygon([(-180, 89.9), (0, 89.9), (180, 89.9), (180, 90), (-180, 90)])
    tip = shapely.Polygon([(10, 89.95), (20, 89.95), (15, 90), (10, 89.95)])
    south = shapely.box(30, -90, 30.3, -89.97)
    p = polys([north, tip, south], ["Ice", "Ice", "Penguin"], area=[cap, None, None])
    raster = fp.commodity_raster(p, 0.1)
    assert raster.geotransform[3] == 90.0 and raster.extent[1] == -90.0
    assert raster.shape[1:] == (1800, 3600)
    ice, penguin = raster.array[raster.bands.index("Ice")], raster.array[raster.bands.index("Penguin")]
    top = ice[0]
    tip_km2 = p.area_m2[1] / 1e6
    assert top.sum() == pytest.approx((cap + p.area_m2[1]) / 1e6, rel=1e-12)
    # the cap alone in the columns the tip does not reach (the tip lies in 10..20°E: 1900..1999)
    outside = np.r_[0:1900, 2000:3600]
    assert np.allclose(top[outside], cap / 3600 / 1e6, rtol=1e-9)
    assert ice[1:].sum() == 0.0 and tip_km2 > 0
    assert penguin[-1].sum() == pytest.approx(p.area_m2[2] / 1e6, rel=1e-12)
    assert penguin[-1, 2100:2103].sum() == pytest.approx(penguin.sum(), rel=1e-12)


# ------------------------------------------------------------------ lattice and extent

def test_extent_is_the_data_box_snapped_outward_to_the_lattice():
    p = sample_polys()
    b = shapely.bounds(p.geoms)
    box = (b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max())
    for cell in (0.25, 0.1, 0.01, 1 / 120):
        raster = fp.commodity_raster(p, cell)
        x0, y0, x1, y1 = raster.extent
        assert x0 <= box[0] < x0 + cell and y0 <= box[1] < y0 + cell
        assert x1 - cell < box[2] <= x1 and y1 - cell < box[3] <= y1
        lattice_aligned(raster)
        rows, cols = raster.shape[1:]
        assert (x1 - x0) / cell == pytest.approx(cols) and (y1 - y0) / cell == pytest.approx(rows)
    # two runs on different polygons: their rasters share the lattice
    a = fp.commodity_raster(polys([shapely.box(85.01, 23.01, 85.02, 23.02)], ["Coal"]), 0.1)
    c = fp.commodity_raster(polys([shapely.box(86.51, 22.01, 86.52, 22.02)], ["Coal"]), 0.1)
    ga, gc = a.geotransform, c.geotransform
    assert (gc[0] - ga[0]) / 0.1 == pytest.approx(15) and (ga[3] - gc[3]) / 0.1 == pytest.approx(10)


@pytest.mark.parametrize("cell", [0.5, 1.0, 90.0])
def test_a_small_lattice_is_written_whole(cell):
    raster = fp.commodity_raster(polys([shapely.box(85.01, 23.01, 85.02, 23.02)], ["Coal"]), cell)
    assert raster.geotransform == (-180.0, cell, 0.0, 90.0, 0.0, -cell)
    assert raster.extent == (-180.0, -90.0, 180.0, 90.0)
    assert raster.shape == (1, round(180 / cell), round(360 / cell))
    assert raster.shape[1] * raster.shape[2] <= GLOBE_CELLS
    i, j = int((90 - 23.015) // cell), int((85.015 + 180) // cell)
    assert raster.array[0, i, j] == raster.total_km2 > 0


def test_lonlat_grid_cells_cover_the_sphere():
    g = fp.LonLatGrid(0.25)
    assert g.n_rows == 720 and g.n_cols == 1440 and g.lat_edges[0] == -90 and g.lat_edges[-1] == 90
    areas = np.array([g.cell_area_m2(r) for r in range(g.n_rows)])
    assert (areas * g.n_cols).sum() == pytest.approx(4 * math.pi * R * R, rel=1e-12)
    assert g.lat_edges[int(g.row_of_lat(23.9))] == pytest.approx(23.75)
    assert fp.LonLatGrid(0.1).lat_edges[1139] == 23.9       # one rounding: the float nearest 23.9
    assert int(g.raster_row(g.row_of_lat(89.99))) == 0 and int(g.raster_row(0)) == 719


# ------------------------------------------------------------------ checks

@pytest.mark.parametrize("bad, words", [
    (0.7, "does not divide 180° into whole cells .* such as 0.5° or 1°"),
    (0.0833333, "does not divide 180°.* 0.0833333333333333°"),
    (0, "more than 0°"), (-0.5, "more than 0°"), (float("nan"), "more than 0°"),
    (90.5, "at most 90°"), (180, "at most 90°"), (1e-5, "at least one arc second"),
])
def test_a_cell_size_that_does_not_divide_180_degrees_is_refused(bad, words):
    with pytest.raises(InputError, match=words) as err:
        fp.LonLatGrid(bad)
    assert str(err.value).replace("e.g. ", "").count(". ") == 0              # one sentence
    assert str(err.value).endswith(".")
    p = polys([shapely.box(0, 0, .01, .01)], ["Coal"], area=[1e6])
    with pytest.raises(InputError, match=words):
        fp.summarise(p, raster_cell_deg=bad, progress=lambda r: pytest.fail("work began"))


@pytest.mark.parametrize("good, rows", [(0.5, 360), (0.25, 720), (1 / 12, 2160),
                                        (0.0833333333333, 2160), (90, 2), (1 / 3600, 648000),
                                        (0.1, 1800), (0.05, 3600), (2.5, 72)])
def test_cell_sizes_that_divide_180_degrees(good, rows):
    g = fp.LonLatGrid(good)
    assert g.n_rows == rows and g.cell_deg == 180.0 / rows


def test_empty_input_and_polygons_without_geometry():
    with pytest.raises(InputError, match="no polygon"):
        fp.commodity_raster(polys([], []), 0.5)
    with pytest.raises(InputError, match="no polygon"):
        fp.summarise(polys([], []), raster_cell_deg=0.5)
    with pytest.raises(InputError, match="None of the 2 clustered polygons has a geometry"):
        fp.commodity_raster(polys([None, None], ["Coal", None], area=[1e6, 2e6]), 0.5)
    # one without geometry among others: in the tables, in no cell, and said so
    p = polys([None, shapely.box(0.01, 0.01, 0.02, 0.02)], ["Coal", "Coal"], area=[1e6, 2e6])
    raster = fp.commodity_raster(p, 0.5)
    assert raster.unplaced_km2 == pytest.approx(1.0) and raster.total_km2 == pytest.approx(2.0)


def test_a_raster_too_large_is_refused_naming_a_size_that_fits(monkeypatch):
    from mine_clusters.core import footprint_raster

    # mine land from 179.5°W to 170.1°E, 60°S to 70.1°N: 349.6 x 130.1° of 1″ cells; 3 bands
    p = polys([shapely.box(-179.5, -60, -179.4, -59.9), shapely.box(170, 70, 170.1, 70.1),
               shapely.box(0, 0, 0.1, 0.1)], ["Coal", "Gold", None])
    with pytest.raises(InputError, match=r"^A raster of 1,258,560 x 468,360 cells of "
                                         r"0\.000277777777777778° with 3 commodity bands would "
                                         r"hold 1,768,377,484,800 values, more than the "
                                         r"34,359,738,368 it may have; choose cells of "
                                         r"0\.00833333333333333° or larger\.$"):
        fp.commodity_raster(p, 1 / 3600)
    assert MAX_RASTER_CELLS == 2 ** 35
    monkeypatch.setattr(footprint_raster, "MAX_RASTER_CELLS", 2 ** 18)
    with pytest.raises(InputError, match=r"choose cells of ([0-9.]+)° or larger") as err:
        fp.commodity_raster(sample_polys(), 0.01)
    size = float(str(err.value).rsplit("cells of ", 1)[1].split("°")[0])
    assert size == pytest.approx(1 / 60, rel=1e-14)         # 1′, printed as one can type it
    raster = fp.commodity_raster(sample_polys(), size)     # the size it names fits
    assert np.prod(raster.shape) <= 2 ** 18


def test_sparse_cells_dense_array_and_tiles_agree():
    """The record keeps the cells with mine land; its dense array and its 256 x 256 tiles (what
    the GeoTIFF writer takes) hold the same values."""
    raster = fp.commodity_raster(india_polys(), 0.02)
    dense = raster.array
    assert dense.shape == raster.shape and raster.shape[1] > 256 and raster.shape[2] > 256
    assert np.count_nonzero(dense) == len(raster.km2) and (raster.km2 > 0).all()
    again = np.zeros(raster.shape)
    n = 0
    for b, r0, c0, block in raster.blocks(256):
        assert block.shape[0] <= 256 and block.shape[1] <= 256 and block.any()
        assert r0 % 256 == 0 and c0 % 256 == 0
        again[b, r0:r0 + block.shape[0], c0:c0 + block.shape[1]] += block
        n += 1
    assert n == raster.n_blocks(256) < raster.shape[0] * 4 * 4
    assert np.array_equal(again, dense)


def test_cancel_and_progress():
    p = sample_polys()
    with pytest.raises(Cancelled):
        fp.commodity_raster(p, 0.1, should_stop=lambda: True)
    seen = []
    fp.commodity_raster(p, 0.01, progress=seen.append)
    assert seen[-1] == 1.0 and all(0.0 <= s <= 1.0 for s in seen) and seen == sorted(seen)
    seen = []
    fp.summarise(p, raster_cell_deg=0.1, progress=seen.append)
    assert seen[-1] == 1.0 and seen == sorted(seen)
