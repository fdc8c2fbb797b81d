"""Planet-scale benchmark input built from real mining shapes and locations.

The real data in ``../shared/data`` (relative to the repository root) cover a few regions only. To
benchmark the core at the scale of the paper (about 217,000 land-use polygons and 43,000 inventory
points) this module copies *real* mining districts to many places on the Earth:

* Districts are groups of real polygons (Maus v1 India and Brazil, Sepin et al. demo subsets, GEM coal
  mine boundaries) chained at 30 km, together with the real inventory points (ICMM, Jasansky, GEM
  Global Coal Mine Tracker) lying within 20 km of one of their polygons; the remaining real points
  form point-only districts the same way. A district wider than ``MAX_DISTRICT_RADIUS_DEG`` is split
  into 1.5-degree cells.
* Each copy is a rigid 3-D rotation of the unit sphere (not a shift in lon/lat): it moves the
  district's centre to a random target and spins it about that target, so shapes, areas and all
  distances within the district are kept exactly. About 10 % of the copies go to high latitudes
  (60-80 degrees N/S), about 5 % straddle the antimeridian (polygons cut there become MultiPolygons
  split at +/-180 degrees, as RFC 7946 asks), the rest anywhere between 60 S and 60 N (oceans
  included: the benchmark measures the engine, not geography).
* Copies keep at least ``COPY_MARGIN_KM`` (more than the 20 km pre-grouping limit) between each
  other, so every pre-group of the planet input is a real district's own structure.
* Inventory points attached to polygons are thinned at random so that the polygon:point ratio of the
  paper is kept; point-only districts make up the rest of the points.
* The ``--dense`` variant adds at least 70,000 small quarry-like polygons (real small polygons,
  rotated to their positions) over central Europe, laid out as quarry fields around a backbone whose
  gaps are well below 20 km, so that they form ONE pre-group at the default 20 km limit; the real
  inventory points of that box, at their real positions, come with them.

Everything is deterministic for a given seed. Outputs are cached under ``benchmarks/data/`` as
compressed numpy archives holding the geometries as WKB: loading takes about a second.

Usage::

    .venv/bin/python benchmarks/generate.py            # planet input, seed 1
    .venv/bin/python benchmarks/generate.py --dense    # planet + the central-European quarry field
"""

import argparse
import csv
import json
import os
import sqlite3
import struct
import sys
import time
from pathlib import Path

import numpy as np
import shapely
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

GENERATOR_VERSION = 2
EARTH_RADIUS_M = 6371008.8

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
CACHE_DIR = BENCH_DIR / "data"
DEFAULT_DATA_DIR = Path(os.environ.get("MINE_CLUSTERS_DATA",
                                       REPO_DIR.parent / "shared" / "data"))

PLANET_POLYGONS = 217_000
PLANET_POINTS = 43_000
DENSE_POLYGONS = 72_000
ATTACHED_POINT_SHARE = 0.6         # share of the points that lie within 20 km of a polygon
DISTRICT_CHAIN_KM = 30.0
ATTACH_KM = 20.0
MAX_DISTRICT_RADIUS_DEG = 1.5
MAX_MULTIPOINT_SPAN_DEG = 1.0
COPY_MARGIN_KM = 25.0
POLAR_SHARE = 0.10
ANTIMERIDIAN_SHARE = 0.05
MAX_LAT_DEG = 80.0

#: Central-European box of the dense variant: lon min, lat min, lon max, lat max.
DENSE_BOX = (4.0, 45.0, 22.0, 55.0)
DENSE_BACKBONE_KM = 10.0            # backbone spacing; with the jitter, gaps stay < 16 km
DENSE_JITTER_KM = 2.0
DENSE_FIELD_SIGMA_KM = 1.5
DENSE_FIELD_MEAN_SIZE = 40
QUARRY_AREA_KM2 = (0.01, 0.5)

POLYGON_SOURCES = ("maus2020-india", "maus2020-brazil", "sepin2025-1000", "sepin2025-100",
                   "gem-coal-boundaries")
POINT_SOURCES = ("icmm2025", "jasansky2022", "gem-gcmt2022")


# --------------------------------------------------------------------------- geometry helpers

def lonlat_to_xyz(lon, lat):
    """Unit vectors for lon/lat in degrees, shape (n, 3)."""
    lon = np.radians(np.asarray(lon, dtype=float))
    lat = np.radians(np.asarray(lat, dtype=float))
    cos_lat = np.cos(lat)
    return np.column_stack((cos_lat * np.cos(lon), cos_lat * np.sin(lon), np.sin(lat)))


def xyz_to_lonlat(xyz):
    """Lon/lat in degrees, shape (n, 2), lon in [-180, 180]."""
    lon = np.degrees(np.arctan2(xyz[:, 1], xyz[:, 0]))
    lat = np.degrees(np.arcsin(np.clip(xyz[:, 2], -1.0, 1.0)))
    return np.column_stack((lon, lat))


def chord(distance_m):
    """Chord length on the unit sphere for a great-circle distance in metres."""
    return 2.0 * np.sin(np.asarray(distance_m) / (2.0 * EARTH_RADIUS_M))


def rotation_between(a, b):
    """Rotation matrix taking unit vector a to unit vector b (Rodrigues)."""
    v = np.cross(a, b)
    s = np.linalg.norm(v)
    c = float(np.dot(a, b))
    if s < 1e-15:
        if c > 0:
            return np.eye(3)
        axis = np.cross(a, [1.0, 0.0, 0.0] if abs(a[0]) < 0.9 else [0.0, 1.0, 0.0])
        return axis_rotation(axis / np.linalg.norm(axis), np.pi)
    return axis_rotation(v / s, np.arctan2(s, c))


def axis_rotation(axis, angle):
    """Rotation matrix about a unit axis by angle (radians)."""
    x, y, z = axis
    k = np.array([[0.0, -z, y], [z, 0.0, -x], [-y, x, 0.0]])
    return np.eye(3) + np.sin(angle) * k + (1.0 - np.cos(angle)) * (k @ k)


def feature_centres(geoms):
    """Normalised mean vertex vector of each geometry, shape (n, 3)."""
    coords, index = shapely.get_coordinates(geoms, return_index=True)
    xyz = lonlat_to_xyz(coords[:, 0], coords[:, 1])
    sums = np.zeros((len(geoms), 3))
    np.add.at(sums, index, xyz)
    return sums / np.linalg.norm(sums, axis=1, keepdims=True)


def components(centres, radius_m):
    """Connected components of the graph joining centres within radius_m (chord metric)."""
    n = len(centres)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    pairs = cKDTree(centres).query_pairs(float(chord(radius_m)), output_type="ndarray")
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def approx_area_km2(geoms):
    """Area of small lon/lat polygons on a local equirectangular grid (selection only)."""
    lat = np.radians(shapely.get_coordinates(shapely.centroid(geoms))[:, 1])
    deg_km = np.radians(1.0) * EARTH_RADIUS_M / 1000.0
    return shapely.area(geoms) * np.cos(lat) * deg_km ** 2


# --------------------------------------------------------------------------- readers

def _gpkg_geometries(path, table, where=""):
    """Yield (rowid, shapely geometry or None, row) from a GeoPackage table without GDAL."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    con.row_factory = sqlite3.Row
    try:
        column = con.execute("SELECT column_name FROM gpkg_geometry_columns WHERE table_name = ?",
                             (table,)).fetchone()[0]
        for row in con.execute(f'SELECT * FROM "{table}" {where}'):
            blob = row[column]
            geom = None
            if blob is not None:
                flags = blob[3]
                envelope = (0, 32, 48, 48, 64)[(flags >> 1) & 7]
                geom = shapely.from_wkb(bytes(blob[8 + envelope:]))
                if geom.is_empty:
                    geom = None
            yield geom, row
    finally:
        con.close()


def _geojson_features(path):
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)["features"]


def _join(*values):
    out = []
    for value in values:
        if value is None:
            continue
        for part in str(value).replace(";", ",").split(","):
            part = part.strip()
            if part and part not in out:
                out.append(part)
    return ",".join(out)


def read_real_data(data_dir=DEFAULT_DATA_DIR):
    """All real polygons and points used as templates, as a dict of numpy arrays."""
    data_dir = Path(data_dir)
    polys, poly_source = [], []

    def add_polygon(geom, source):
        geom = shapely.force_2d(geom)
        if geom is not None and not geom.is_empty and geom.geom_type in ("Polygon", "MultiPolygon"):
            polys.append(geom)
            poly_source.append(POLYGON_SOURCES.index(source))

    maus = data_dir / "maus2020-v1-india-brazil"
    for name, source in (("indian_polygon_with_grId.geojson", "maus2020-india"),
                         ("brazil_polygon_with_grId.geojson", "maus2020-brazil")):
        for feat in _geojson_features(maus / name):
            add_polygon(shapely.geometry.shape(feat["geometry"]), source)
    sepin = data_dir / "sepin2025-combined-polygons-demo"
    for folder, source in (("commit-633645897-1000polygons", "sepin2025-1000"),
                           ("commit-96ad6dfe-100polygons", "sepin2025-100")):
        for geom, _row in _gpkg_geometries(sepin / folder / "mining_polygons_combined_demo.gpkg",
                                           "mining_polygons_combined_demo"):
            if geom is not None:
                add_polygon(geom, source)
    gem_b = data_dir / "gem-coal-mine-boundaries-v1.0.2" / "coal-mine-boundaries-methane.geojson"
    for feat in _geojson_features(gem_b):
        if feat["properties"].get("mine feature category") == "mine boundary" and feat["geometry"]:
            add_polygon(shapely.geometry.shape(feat["geometry"]), "gem-coal-boundaries")

    pts, pt_source, primary, commodities = [], [], [], []

    def add_point(geom, source, prim, comm):
        if geom is None or geom.is_empty:
            return
        geom = shapely.force_2d(geom)
        lon, lat = shapely.get_coordinates(geom).T
        if not (np.all(np.isfinite(lon)) and np.all(np.abs(lat) <= 90)):
            return
        pts.append(geom)
        pt_source.append(POINT_SOURCES.index(source))
        primary.append(prim or "")
        commodities.append(comm or "")

    icmm = data_dir / "icmm-global-mining-dataset-2025" / "mines.geojson"
    for feat in _geojson_features(icmm):
        p = feat["properties"]
        prim = (p.get("primaryCommodity") or "").strip()
        add_point(shapely.geometry.shape(feat["geometry"]), "icmm2025", prim,
                  _join(prim, p.get("secondaryCommodity"), p.get("otherCommodities")))
    jas = data_dir / "jasansky2022-facilities-prerelease" / "facilities.gpkg"
    for geom, row in _gpkg_geometries(jas, "facilities"):
        prim = (row["primary_commodity"] or "").strip()
        add_point(geom, "jasansky2022", prim, _join(prim, row["commodities_products"]))
    gcmt = data_dir / "gem-global-coal-mine-tracker-2022-07" / "Global-Coal-Mine-Tracker-July-2022.csv"
    with open(gcmt, encoding="latin-1", newline="") as fh:
        for row in csv.DictReader(fh):
            try:
                lat, lon = float(row["Latitude"]), float(row["Longitude"])
            except ValueError:
                continue
            add_point(shapely.Point(lon, lat), "gem-gcmt2022", "Coal", "Coal")

    return {
        "polygons": np.array(polys, dtype=object),
        "polygon_source": np.array(poly_source, dtype=np.int8),
        "points": np.array(pts, dtype=object),
        "point_source": np.array(pt_source, dtype=np.int8),
        "primary": np.array(primary, dtype=str),
        "commodities": np.array(commodities, dtype=str),
    }


# --------------------------------------------------------------------------- districts

def _split_wide(labels, centres, lonlat):
    """Split components wider than MAX_DISTRICT_RADIUS_DEG into 1.5-degree cells."""
    out = labels.copy()
    next_label = labels.max() + 1 if len(labels) else 0
    for lab in np.unique(labels):
        members = np.flatnonzero(labels == lab)
        c = centres[members].sum(axis=0)
        c /= np.linalg.norm(c)
        radius = np.degrees(np.arccos(np.clip(centres[members] @ c, -1, 1))).max()
        if radius <= MAX_DISTRICT_RADIUS_DEG:
            continue
        cells = np.floor(lonlat[members] / 1.5).astype(np.int64)
        _, cell_ids = np.unique(cells, axis=0, return_inverse=True)
        out[members] = next_label + cell_ids.ravel()
        next_label += cell_ids.max() + 1
    return np.unique(out, return_inverse=True)[1].ravel()


def build_districts(real):
    """Group the real features into districts that are copied as rigid units."""
    polys, pts = real["polygons"], real["points"]
    p_centres = feature_centres(polys)
    q_centres = feature_centres(pts)

    # MultiPoints spread over more than a degree are not local features: leave them out.
    coords, index = shapely.get_coordinates(pts, return_index=True)
    span = np.zeros(len(pts))
    if len(coords):
        ang = np.degrees(np.arccos(np.clip(np.einsum(
            "ij,ij->i", lonlat_to_xyz(coords[:, 0], coords[:, 1]), q_centres[index]), -1, 1)))
        np.maximum.at(span, index, ang)
    usable = span <= MAX_MULTIPOINT_SPAN_DEG

    p_lonlat = xyz_to_lonlat(p_centres)
    p_labels = _split_wide(components(p_centres, DISTRICT_CHAIN_KM * 1000), p_centres, p_lonlat)

    dist, nearest = cKDTree(p_centres).query(q_centres)
    attached = usable & (dist <= chord(ATTACH_KM * 1000))
    loose = np.flatnonzero(usable & ~attached)
    q_lonlat = xyz_to_lonlat(q_centres[loose])
    q_labels = _split_wide(components(q_centres[loose], DISTRICT_CHAIN_KM * 1000),
                           q_centres[loose], q_lonlat)

    districts = []
    n_poly_d = p_labels.max() + 1
    point_members = [[] for _ in range(n_poly_d)]
    for i in np.flatnonzero(attached):
        point_members[p_labels[nearest[i]]].append(i)
    poly_order = np.argsort(p_labels, kind="stable")
    poly_splits = np.split(poly_order, np.cumsum(np.bincount(p_labels))[:-1])
    for d in range(n_poly_d):
        districts.append((poly_splits[d], np.array(point_members[d], dtype=np.int64)))
    q_order = np.argsort(q_labels, kind="stable")
    for members in np.split(q_order, np.cumsum(np.bincount(q_labels))[:-1]):
        districts.append((np.zeros(0, dtype=np.int64), loose[members]))

    # Centre and angular radius of each district from all its vertices.
    p_coords, p_index = shapely.get_coordinates(polys, return_index=True)
    p_xyz = lonlat_to_xyz(p_coords[:, 0], p_coords[:, 1])
    q_xyz = lonlat_to_xyz(coords[:, 0], coords[:, 1])
    p_starts = np.searchsorted(p_index, np.arange(len(polys) + 1))
    q_starts = np.searchsorted(index, np.arange(len(pts) + 1))
    out = []
    for poly_idx, pt_idx in districts:
        vertices = np.concatenate(
            [p_xyz[p_starts[i]:p_starts[i + 1]] for i in poly_idx]
            + [q_xyz[q_starts[i]:q_starts[i + 1]] for i in pt_idx])
        centre = vertices.sum(axis=0)
        centre /= np.linalg.norm(centre)
        radius = float(np.arccos(np.clip(vertices @ centre, -1, 1)).max())
        out.append({"polygons": poly_idx, "points": pt_idx, "centre": centre, "radius": radius})
    return out, int((~usable).sum())


# --------------------------------------------------------------------------- placement

class _CapIndex:
    """Placed spherical caps, hashed on a 3-D grid so that overlap tests stay local."""

    def __init__(self, max_reach, capacity=1 << 16):
        self.cell = float(max_reach)
        self.buckets = {}
        self.centres = np.zeros((capacity, 3))
        self.radii = np.zeros(capacity)
        self.n = 0

    def _key(self, xyz):
        return tuple(np.floor(xyz / self.cell).astype(int).tolist())

    def overlaps(self, centre, radius, margin):
        kx, ky, kz = self._key(centre)
        near = [i for dx in (-1, 0, 1) for dy in (-1, 0, 1) for dz in (-1, 0, 1)
                for i in self.buckets.get((kx + dx, ky + dy, kz + dz), ())]
        if not near:
            return False
        near = np.array(near)
        dots = self.centres[near] @ centre
        return bool(np.any(dots > np.cos(radius + self.radii[near] + margin)))

    def add(self, centre, radius):
        if self.n == len(self.radii):
            self.centres = np.concatenate([self.centres, np.zeros_like(self.centres)])
            self.radii = np.concatenate([self.radii, np.zeros_like(self.radii)])
        self.centres[self.n] = centre
        self.radii[self.n] = radius
        self.buckets.setdefault(self._key(centre), []).append(self.n)
        self.n += 1


def _random_target(rng, radius, kind):
    """A random target centre (unit vector) for a placement kind."""
    r_deg = np.degrees(radius)
    if kind == "polar":
        lat = rng.uniform(60.0, max(60.0, MAX_LAT_DEG - r_deg)) * rng.choice((-1.0, 1.0))
        lon = rng.uniform(-180.0, 180.0)
    elif kind == "antimeridian":
        lat = np.degrees(np.arcsin(rng.uniform(-np.sin(np.radians(60)), np.sin(np.radians(60)))))
        half = max(r_deg, 1e-3) / np.cos(np.radians(lat))
        lon = 180.0 + rng.uniform(-0.5, 0.5) * half
    else:
        lat = np.degrees(np.arcsin(rng.uniform(-np.sin(np.radians(60)), np.sin(np.radians(60)))))
        lon = rng.uniform(-180.0, 180.0)
    return lonlat_to_xyz([lon], [lat])[0]


def place_copies(rng, districts, n_polygons, n_points):
    """Choose the copies: list of (district index, rotation matrix, kind, kept point indices)."""
    poly_d = np.array([i for i, d in enumerate(districts) if len(d["polygons"])])
    point_d = np.array([i for i, d in enumerate(districts) if not len(d["polygons"])])
    max_r = max(d["radius"] for d in districts)
    margin = COPY_MARGIN_KM * 1000.0 / EARTH_RADIUS_M
    caps = _CapIndex(chord(EARTH_RADIUS_M * (2 * max_r + margin)) * 1.01)

    def place(d):
        dist = districts[d]
        u = rng.random()
        kind = ("polar" if u < POLAR_SHARE else
                "antimeridian" if u < POLAR_SHARE + ANTIMERIDIAN_SHARE else "anywhere")
        for attempt in range(200):
            if attempt == 20:      # the high-latitude bands and the antimeridian fill up first
                kind = "anywhere"
            target = _random_target(rng, dist["radius"], kind)
            if not caps.overlaps(target, dist["radius"], margin):
                break
        else:
            raise RuntimeError("Could not place a district copy without overlap; lower the counts.")
        caps.add(target, dist["radius"])
        spin = rng.uniform(0.0, 2.0 * np.pi)
        rot = axis_rotation(target, spin) @ rotation_between(dist["centre"], target)
        return rot, kind

    # Which districts are copied (with the attached points kept) ...
    chosen = []
    total_poly = 0
    while total_poly < n_polygons:
        d = int(rng.choice(poly_d))
        chosen.append([d, districts[d]["points"]])
        total_poly += len(districts[d]["polygons"])
    attached_total = sum(len(c[1]) for c in chosen)
    budget = ATTACHED_POINT_SHARE * n_points
    keep_p = min(1.0, budget / attached_total) if attached_total else 1.0
    total_pts = 0
    for c in chosen:
        if keep_p < 1.0:
            c[1] = c[1][rng.random(len(c[1])) < keep_p]
        total_pts += len(c[1])
    while total_pts < n_points:
        d = int(rng.choice(point_d))
        chosen.append([d, districts[d]["points"]])
        total_pts += len(districts[d]["points"])

    # ... then where: the widest first, so that they still find room.
    order = sorted(range(len(chosen)), key=lambda k: -districts[chosen[k][0]]["radius"])
    copies = [None] * len(chosen)
    for k in order:
        d, pts = chosen[k]
        rot, kind = place(d)
        copies[k] = (d, rot, kind, pts)
    return copies, keep_p


def _rotate_geometries(templates, groups):
    """Copies of templates; groups = list of (template indices, rotation matrix)."""
    index = np.concatenate([g[0] for g in groups]) if groups else np.zeros(0, dtype=np.int64)
    out = templates[index].copy()
    coords, cidx = shapely.get_coordinates(out, return_index=True)
    starts = np.searchsorted(cidx, np.cumsum([0] + [len(g[0]) for g in groups]))
    xyz = lonlat_to_xyz(coords[:, 0], coords[:, 1])
    for k, (_idx, rot) in enumerate(groups):
        sl = slice(starts[k], starts[k + 1])
        xyz[sl] = xyz[sl] @ rot.T
    new = xyz_to_lonlat(xyz)
    del xyz
    shapely.set_coordinates(out, new)
    return out, new, cidx, index


def _split_antimeridian(geoms, lonlat, cidx):
    """Cut polygons that straddle +/-180 degrees into MultiPolygons; returns how many."""
    n = len(geoms)
    if n == 0:
        return 0
    lo = np.full(n, np.inf)
    hi = np.full(n, -np.inf)
    np.minimum.at(lo, cidx, lonlat[:, 0])
    np.maximum.at(hi, cidx, lonlat[:, 0])
    cross = np.flatnonzero(hi - lo > 180.0)
    east = shapely.box(0.0, -90.0, 180.0, 90.0)
    west = shapely.box(180.0, -90.0, 360.0, 90.0)
    for i in cross:
        shifted = shapely.transform(geoms[i], lambda c: np.column_stack(
            (np.where(c[:, 0] < 0, c[:, 0] + 360.0, c[:, 0]), c[:, 1])))
        a = shapely.intersection(shifted, east)
        b = shapely.transform(shapely.intersection(shifted, west),
                              lambda c: np.column_stack((c[:, 0] - 360.0, c[:, 1])))
        parts = [p for g in (a, b) for p in shapely.get_parts(g) if p.geom_type == "Polygon"]
        geoms[i] = shapely.MultiPolygon(parts)
    return len(cross)


# --------------------------------------------------------------------------- planet / dense

def generate_planet(seed=1, n_polygons=PLANET_POLYGONS, n_points=PLANET_POINTS,
                    data_dir=DEFAULT_DATA_DIR, real=None):
    """The planet input as a dict of arrays (see ``save``)."""
    rng = np.random.default_rng(seed)
    real = read_real_data(data_dir) if real is None else real
    districts, dropped_mp = build_districts(real)
    copies, keep_p = place_copies(rng, districts, n_polygons, n_points)

    poly_copies = [k for k, c in enumerate(copies) if len(districts[c[0]]["polygons"])]
    poly_groups = [(districts[copies[k][0]]["polygons"], copies[k][1]) for k in poly_copies]
    polygons, lonlat, cidx, p_index = _rotate_geometries(real["polygons"], poly_groups)
    n_cut = _split_antimeridian(polygons, lonlat, cidx)
    del lonlat, cidx
    pt_copies = [k for k, c in enumerate(copies) if len(c[3])]
    pt_groups = [(copies[k][3], copies[k][1]) for k in pt_copies]
    points, _, _, q_index = _rotate_geometries(real["points"], pt_groups)
    p_copy = np.repeat(poly_copies, [len(g[0]) for g in poly_groups]).astype(np.int32)
    q_copy = np.repeat(pt_copies, [len(g[0]) for g in pt_groups]).astype(np.int32)

    kinds = [c[2] for c in copies]
    meta = {
        "variant": "planet", "seed": seed, "generator_version": GENERATOR_VERSION,
        "n_polygons": len(polygons), "n_points": len(points),
        "n_real_polygons": len(real["polygons"]), "n_real_points": len(real["points"]),
        "n_districts": len(districts), "n_copies": len(copies),
        "copies_by_kind": {k: kinds.count(k) for k in sorted(set(kinds))},
        "attached_point_keep_probability": keep_p,
        "polygons_cut_at_antimeridian": n_cut,
        "real_multipoints_left_out": dropped_mp,
        "max_abs_lat": float(np.abs(shapely.bounds(polygons)[:, [1, 3]]).max()),
    }
    return {
        "polygons": polygons,
        "polygon_ids": np.arange(1, len(polygons) + 1, dtype=np.int64),
        "polygon_source": real["polygon_source"][p_index],
        "polygon_template": p_index, "polygon_copy": p_copy,
        "points": points,
        "point_ids": np.arange(10_000_001, 10_000_001 + len(points), dtype=np.int64),
        "point_source": real["point_source"][q_index],
        "point_template": q_index, "point_copy": q_copy,
        "primary": real["primary"][q_index],
        "commodities": real["commodities"][q_index],
        "meta": meta,
    }


def generate_dense_extra(seed=1, n_polygons=DENSE_POLYGONS, data_dir=DEFAULT_DATA_DIR, real=None):
    """The quarry field over central Europe (added to the planet input by ``load('dense')``)."""
    rng = np.random.default_rng([seed, 70_000])
    real = read_real_data(data_dir) if real is None else real
    area = approx_area_km2(real["polygons"])
    small = np.flatnonzero((area >= QUARRY_AREA_KM2[0]) & (area <= QUARRY_AREA_KM2[1])
                           & (shapely.get_type_id(real["polygons"]) == 3))
    lon0, lat0, lon1, lat1 = DENSE_BOX
    km_lat = np.radians(1.0) * EARTH_RADIUS_M / 1000.0

    # Backbone: a jittered grid; neighbours stay < DENSE_BACKBONE_KM + 2*sqrt(2)*jitter apart.
    lats = np.arange(lat0, lat1 + 1e-9, DENSE_BACKBONE_KM / km_lat)
    positions = []
    for lat in lats:
        step = DENSE_BACKBONE_KM / (km_lat * np.cos(np.radians(lat)))
        lons = np.arange(lon0, lon1 + 1e-9, step)
        positions.append(np.column_stack((lons, np.full(len(lons), lat))))
    backbone = np.concatenate(positions)
    jitter = rng.uniform(-DENSE_JITTER_KM, DENSE_JITTER_KM, backbone.shape) / km_lat
    jitter[:, 0] /= np.cos(np.radians(backbone[:, 1]))
    backbone = backbone + jitter

    # Quarry fields: clusters around random centres, sizes drawn from a geometric law.
    fields = []
    remaining = n_polygons - len(backbone)
    while remaining > 0:
        size = min(remaining, int(rng.geometric(1.0 / DENSE_FIELD_MEAN_SIZE)))
        centre = (rng.uniform(lon0, lon1), rng.uniform(lat0, lat1))
        offs = rng.normal(0.0, DENSE_FIELD_SIGMA_KM, (size, 2)) / km_lat
        offs[:, 0] /= np.cos(np.radians(centre[1]))
        fields.append(np.asarray(centre) + offs)
        remaining -= size
    pos = np.concatenate([backbone] + fields)
    pos[:, 1] = np.clip(pos[:, 1], lat0 - 0.5, lat1 + 0.5)

    templates = rng.choice(small, size=len(pos))
    centres = feature_centres(real["polygons"])
    targets = lonlat_to_xyz(pos[:, 0], pos[:, 1])
    spins = rng.uniform(0.0, 2.0 * np.pi, len(pos))
    groups = [(np.array([t]), axis_rotation(targets[k], spins[k])
               @ rotation_between(centres[t], targets[k])) for k, t in enumerate(templates)]
    polygons, _, _, p_index = _rotate_geometries(real["polygons"], groups)

    # Self-check: every quarry lies within 20 km (centre to centre) of the connected backbone.
    bb = lonlat_to_xyz(backbone[:, 0], backbone[:, 1])
    bb_labels = components(bb, (DENSE_BACKBONE_KM + 2 * np.sqrt(2) * DENSE_JITTER_KM) * 1000)
    far, _ = cKDTree(bb).query(targets)
    if bb_labels.max() != 0 or far.max() > chord(20_000.0):
        raise RuntimeError("The dense quarry field is not one 20 km group; check DENSE_* settings.")

    # The real inventory points inside the box, at their real positions.
    pts = real["points"]
    lon, lat = shapely.get_coordinates(shapely.centroid(pts)).T
    inside = np.flatnonzero((lon >= lon0) & (lon <= lon1) & (lat >= lat0) & (lat <= lat1))
    meta = {
        "variant": "dense-extra", "seed": seed, "generator_version": GENERATOR_VERSION,
        "n_polygons": len(polygons), "n_backbone": len(backbone), "n_fields": len(fields),
        "n_points": len(inside), "box": DENSE_BOX, "n_quarry_templates": len(small),
        "max_quarry_to_backbone_km": float(2 * EARTH_RADIUS_M * np.arcsin(far.max() / 2) / 1000),
    }
    return {
        "polygons": polygons,
        "polygon_ids": np.arange(5_000_001, 5_000_001 + len(polygons), dtype=np.int64),
        "polygon_source": real["polygon_source"][p_index],
        "polygon_template": p_index, "polygon_copy": np.full(len(polygons), -1, dtype=np.int32),
        "points": pts[inside],
        "point_ids": np.arange(20_000_001, 20_000_001 + len(inside), dtype=np.int64),
        "point_source": real["point_source"][inside],
        "point_template": inside, "point_copy": np.full(len(inside), -1, dtype=np.int32),
        "primary": real["primary"][inside],
        "commodities": real["commodities"][inside],
        "meta": meta,
    }


# --------------------------------------------------------------------------- cache

def _pack_wkb(geoms):
    blobs = shapely.to_wkb(geoms)
    offsets = np.zeros(len(blobs) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(b) for b in blobs])
    return np.frombuffer(b"".join(blobs), dtype=np.uint8), offsets


def _unpack_wkb(data, offsets, chunk=16384):
    """Geometries from concatenated WKB, a chunk at a time to keep the memory peak low."""
    view = memoryview(data)
    n = len(offsets) - 1
    out = np.empty(n, dtype=object)
    for a in range(0, n, chunk):
        b = min(n, a + chunk)
        blobs = np.array([view[offsets[i]:offsets[i + 1]].tobytes() for i in range(a, b)],
                         dtype=object)
        out[a:b] = shapely.from_wkb(blobs)
    return out


def save(path, d):
    """Write a generated input as a compressed numpy archive (geometries as WKB)."""
    poly_wkb, poly_off = _pack_wkb(d["polygons"])
    pt_wkb, pt_off = _pack_wkb(d["points"])
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez_compressed(
        tmp, polygon_wkb=poly_wkb, polygon_offsets=poly_off, polygon_ids=d["polygon_ids"],
        polygon_source=d["polygon_source"], polygon_template=d["polygon_template"],
        polygon_copy=d["polygon_copy"], point_wkb=pt_wkb, point_offsets=pt_off,
        point_ids=d["point_ids"], point_source=d["point_source"],
        point_template=d["point_template"], point_copy=d["point_copy"], primary=d["primary"],
        commodities=d["commodities"], meta=np.array(json.dumps(d["meta"])))
    os.replace(tmp, path)


def read(path):
    """Read an archive written by ``save``."""
    with np.load(path) as z:
        polygons = _unpack_wkb(z["polygon_wkb"], z["polygon_offsets"])
        return {
            "polygons": polygons,
            "polygon_ids": z["polygon_ids"], "polygon_source": z["polygon_source"],
            "polygon_template": z["polygon_template"], "polygon_copy": z["polygon_copy"],
            "points": _unpack_wkb(z["point_wkb"], z["point_offsets"]),
            "point_ids": z["point_ids"], "point_source": z["point_source"],
            "point_template": z["point_template"], "point_copy": z["point_copy"],
            "primary": z["primary"], "commodities": z["commodities"],
            "meta": json.loads(str(z["meta"])),
        }


def cache_path(kind, seed):
    return CACHE_DIR / f"{kind}-v{GENERATOR_VERSION}-seed{seed}.npz"


def ensure(variant="planet", seed=1, data_dir=DEFAULT_DATA_DIR, log=print):
    """Generate the cached archives a variant needs (if missing); returns their paths."""
    kinds = ["planet"] + (["dense-extra"] if variant == "dense" else [])
    real = None
    paths = []
    for kind in kinds:
        path = cache_path(kind, seed)
        if not path.exists():
            t0 = time.perf_counter()
            real = read_real_data(data_dir) if real is None else real
            make = generate_planet if kind == "planet" else generate_dense_extra
            d = make(seed=seed, data_dir=data_dir, real=real)
            save(path, d)
            log(f"wrote {path} in {time.perf_counter() - t0:.1f} s: {json.dumps(d['meta'])}")
        paths.append(path)
    return paths


def concat(a, b):
    """Two inputs as one (the dense variant is the planet plus the quarry field)."""
    out = {k: np.concatenate([a[k], b[k]]) for k in a if k != "meta"}
    out["meta"] = {"variant": "dense", "planet": a["meta"], "extra": b["meta"],
                   "n_polygons": len(out["polygons"]), "n_points": len(out["points"])}
    return out


VARIANTS = ("planet", "dense", "quarry-field")


def load(variant="planet", seed=1, data_dir=DEFAULT_DATA_DIR, log=print):
    """The benchmark input as a dict of arrays, generating it if needed: 'planet', 'dense' (the
    planet plus the quarry field) or 'quarry-field' (the central-European quarries alone)."""
    if variant not in VARIANTS:
        raise ValueError(f"Unknown benchmark variant {variant!r}; use one of {', '.join(VARIANTS)}.")
    paths = ensure("planet" if variant == "planet" else "dense", seed, data_dir, log)
    if variant == "quarry-field":
        return read(paths[1])
    parts = [read(p) for p in paths]
    return parts[0] if len(parts) == 1 else concat(*parts)


REGIONS = ("india", "brazil", "world")


def load_region(region="india", data_dir=DEFAULT_DATA_DIR):
    """Real features at their real positions: the Maus v1 polygons of India (or Brazil) and every
    real inventory point within ATTACH_KM of one of them; or ("world") all real polygons and points."""
    if region not in REGIONS:
        raise ValueError(f"Unknown region {region!r}; use one of {', '.join(REGIONS)}.")
    real = read_real_data(data_dir)
    if region == "world":
        keep = np.ones(len(real["polygons"]), dtype=bool)
        near = np.arange(len(real["points"]))
    else:
        source = {"india": "maus2020-india", "brazil": "maus2020-brazil"}[region]
        keep = real["polygon_source"] == POLYGON_SOURCES.index(source)
        dist, _ = cKDTree(feature_centres(real["polygons"][keep])).query(
            feature_centres(real["points"]))
        near = np.flatnonzero(dist <= chord(ATTACH_KM * 1000))
    polys = real["polygons"][keep]
    return {
        "polygons": polys,
        "polygon_ids": np.arange(1, len(polys) + 1, dtype=np.int64),
        "polygon_source": real["polygon_source"][keep],
        "polygon_template": np.flatnonzero(keep),
        "polygon_copy": np.full(int(keep.sum()), -1, dtype=np.int32),
        "points": real["points"][near],
        "point_ids": np.arange(10_000_001, 10_000_001 + len(near), dtype=np.int64),
        "point_source": real["point_source"][near],
        "point_template": near, "point_copy": np.full(len(near), -1, dtype=np.int32),
        "primary": real["primary"][near],
        "commodities": real["commodities"][near],
        "meta": {"variant": f"region-{region}", "n_polygons": int(keep.sum()),
                 "n_points": len(near)},
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--dense", action="store_true",
                        help="also build the central-European quarry field (>= 70,000 polygons)")
    parser.add_argument("--data", default=str(DEFAULT_DATA_DIR), help="the shared data folder")
    parser.add_argument("--force", action="store_true", help="regenerate even if cached")
    args = parser.parse_args(argv)
    variant = "dense" if args.dense else "planet"
    if args.force:
        for kind in ("planet", "dense-extra"):
            cache_path(kind, args.seed).unlink(missing_ok=True)
    t0 = time.perf_counter()
    paths = ensure(variant, args.seed, args.data)
    print(f"{variant} input ready ({time.perf_counter() - t0:.1f} s): "
          + ", ".join(str(p) for p in paths))
    return 0


if __name__ == "__main__":
    sys.exit(main())
