"""Checks of the benchmark input generator on the real shared data (no QGIS).

Run: .venv/bin/python -m pytest benchmarks/test_generate.py
"""
import numpy as np
import pytest
import shapely
from scipy.spatial import cKDTree

import generate as g

pytestmark = pytest.mark.skipif(not g.DEFAULT_DATA_DIR.exists(),
                                reason="the shared real data folder is not available")


@pytest.fixture(scope="module")
def real():
    return g.read_real_data()


@pytest.fixture(scope="module")
def small(real):
    return g.generate_planet(seed=7, n_polygons=6000, n_points=1500, real=real)


def _haversine(a, b):
    a = np.radians(a)
    b = np.radians(b)
    s = (np.sin((b[:, 1] - a[:, 1]) / 2) ** 2
         + np.cos(a[:, 1]) * np.cos(b[:, 1]) * np.sin((b[:, 0] - a[:, 0]) / 2) ** 2)
    return 2 * g.EARTH_RADIUS_M * np.arcsin(np.sqrt(s))


def test_reads_every_real_source(real):
    counts = np.bincount(real["polygon_source"], minlength=len(g.POLYGON_SOURCES))
    # Sizes stated in each folder's SOURCE.md.
    assert counts.tolist() == [781, 459, 1000, 100, 333]
    pts = np.bincount(real["point_source"], minlength=len(g.POINT_SOURCES))
    assert pts[0] == 8508                      # ICMM points
    assert pts[1] == 1880                      # Jasansky: 2398 minus 518 empty geometries
    assert pts[2] == 3670                      # GEM tracker rows with coordinates
    assert (shapely.get_type_id(real["points"]) == 4).any()     # Jasansky MultiPoints kept


def test_copies_are_rigid_rotations_of_the_real_shapes(real, small):
    # Every copied polygon keeps its template's vertex-to-vertex great-circle distances.
    rng = np.random.default_rng(0)
    simple = np.flatnonzero(shapely.get_type_id(small["polygons"]) == 3)
    for k in rng.choice(simple, 200, replace=False):
        tmpl = shapely.get_coordinates(real["polygons"][small["polygon_template"][k]])
        copy = shapely.get_coordinates(small["polygons"][k])
        assert copy.shape == tmpl.shape
        i = rng.integers(0, len(tmpl), 20)
        j = rng.integers(0, len(tmpl), 20)
        np.testing.assert_allclose(_haversine(copy[i], copy[j]), _haversine(tmpl[i], tmpl[j]),
                                   rtol=1e-6, atol=1e-3)
    # ... and not a mere shift: the copy moved somewhere else.
    moved = shapely.distance(shapely.centroid(small["polygons"][simple[:50]]),
                             shapely.centroid(real["polygons"][small["polygon_template"][simple[:50]]]))
    assert (moved > 0.1).mean() > 0.9


def test_counts_high_latitudes_and_antimeridian(small):
    assert 6000 <= len(small["polygons"]) < 6500
    assert 1500 <= len(small["points"]) < 1700
    bounds = shapely.bounds(small["polygons"])
    assert np.abs(bounds[:, [1, 3]]).max() <= 82.0
    assert (np.abs(bounds[:, 1]) > 60.0).sum() > 100
    assert np.all(bounds[:, 0] >= -180.0) and np.all(bounds[:, 2] <= 180.0)
    # Features on both sides of +/-180 within one copy: a group straddling the antimeridian.
    lon = shapely.get_coordinates(shapely.centroid(small["polygons"]))[:, 0]
    copies = small["polygon_copy"]
    straddle = [c for c in np.unique(copies[np.abs(lon) > 179.0])
                if lon[copies == c].min() < -170 and lon[copies == c].max() > 170]
    assert straddle


def test_copies_are_farther_apart_than_h_limit(small):
    geoms = np.concatenate([small["polygons"], small["points"]])
    copy = np.concatenate([small["polygon_copy"], small["point_copy"]])
    coords, owner = shapely.get_coordinates(geoms, return_index=True)
    xyz = g.lonlat_to_xyz(coords[:, 0], coords[:, 1])
    pairs = cKDTree(xyz).query_pairs(float(g.chord(20_000.0)), output_type="ndarray")
    assert len(pairs) > 0
    assert np.all(copy[owner[pairs[:, 0]]] == copy[owner[pairs[:, 1]]])


def test_deterministic_for_a_seed(real, small):
    again = g.generate_planet(seed=7, n_polygons=6000, n_points=1500, real=real)
    assert np.array_equal(shapely.to_wkb(again["polygons"]), shapely.to_wkb(small["polygons"]))
    assert np.array_equal(again["primary"], small["primary"])
    other = g.generate_planet(seed=8, n_polygons=6000, n_points=1500, real=real)
    assert not np.array_equal(shapely.to_wkb(other["polygons"][:100]),
                              shapely.to_wkb(small["polygons"][:100]))


def test_cache_round_trip(tmp_path, small):
    path = tmp_path / "x.npz"
    g.save(path, small)
    back = g.read(path)
    assert np.array_equal(shapely.to_wkb(back["polygons"]), shapely.to_wkb(small["polygons"]))
    assert np.array_equal(shapely.to_wkb(back["points"]), shapely.to_wkb(small["points"]))
    assert back["commodities"].tolist() == small["commodities"].tolist()
    assert back["meta"] == small["meta"]


def test_dense_quarry_field_is_one_20km_group(real):
    d = g.generate_dense_extra(seed=1, real=real)
    assert len(d["polygons"]) >= 70_000
    area = g.approx_area_km2(d["polygons"])
    assert area.max() <= g.QUARRY_AREA_KM2[1] * 1.01
    centres = g.feature_centres(d["polygons"])
    # Centres within 20 km imply features within 20 km: one component is one pre-group.
    labels = g.components(centres, 20_000.0)
    assert labels.max() == 0
    lon, lat = g.xyz_to_lonlat(centres).T
    lon0, lat0, lon1, lat1 = g.DENSE_BOX
    assert lon.min() > lon0 - 1 and lon.max() < lon1 + 1 and lat.min() > lat0 - 1 and lat.max() < lat1 + 1
    assert len(d["points"]) > 50                       # real inventory points of the box
