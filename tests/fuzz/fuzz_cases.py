"""Generators of odd mine data for the fuzz suite: shapes, places, ids, areas and commodity text.

Every generated layer also says whether it holds something the core must refuse (``bad``): a
coordinate the core's one rule refuses (core/geometry.py: NaN, a latitude beyond ±90°, a
longitude beyond ±360°; a longitude beyond ±180° but within ±360° is one turn away and is
read), or an area that is NaN, infinite or negative. Clean layers must give a result; bad ones
a one-sentence ``InputError``.
"""
import math
import os
from dataclasses import dataclass, field

import shapely
from hypothesis import settings
from hypothesis import strategies as st
from shapely.geometry import MultiPoint, MultiPolygon, Point, Polygon

_EXPLORE = os.environ.get("MINE_CLUSTERS_FUZZ") == "explore"


def examples(n):
    """Settings for one fuzz test: n cases on CI, 5 n when exploring."""
    name = "mine-clusters-explore" if _EXPLORE else "mine-clusters-ci"
    return settings(settings.get_profile(name), max_examples=5 * n if _EXPLORE else n)


# Places where the Earth is awkward, and ordinary ones; offsets keep features of one anchor
# within a few kilometres (so they cluster) or up to tens of kilometres (so they do not).
ANCHORS = [(0.0, 0.0), (12.5, 47.3), (-70.2, -23.6), (179.995, 10.0), (-179.995, -10.0),
           (180.0, 0.0), (-180.0, 45.0), (0.0, 89.999), (45.0, -89.999), (0.0, 90.0),
           (-120.0, -90.0), (110.0, 60.0), (25.0, 84.9), (-0.001, 51.5)]

COMMODITY_TEXT = ["Gold", "gold", " GOLD ", "Gold\u00a0", "Göld", "ＧＯＬＤ", "Copper", "copper ",
                  "Lead;Zinc", "Lead, zinc", "zinc,LEAD", "Copper/Gold", "Iron ore", "iron  ore",
                  "İron", "Straße", "STRASSE", "Coal;", ",Coal", ";;", " , ", "NA", "na", "N/A",
                  "null", "None", "nan", "", "   ", "\t", None, float("nan"), "Gold,Gold",
                  "Lithium, Cobalt; Nickel", "Sand and gravel", "Ærø", "金"]


def wrap_lon(x):
    return ((x + 180.0) % 360.0) - 180.0 if abs(x) > 180.0 else x


def clamp_lat(y):
    return max(-90.0, min(90.0, y))


def _pt(cx, cy, dx, dy):
    return (wrap_lon(cx + dx), clamp_lat(cy + dy))


@st.composite
def places(draw):
    cx, cy = draw(st.sampled_from(ANCHORS))
    spread = draw(st.sampled_from([0.0, 0.002, 0.02, 0.3]))
    dx = draw(st.floats(-1.0, 1.0)) * spread
    dy = draw(st.floats(-1.0, 1.0)) * spread
    return cx + dx, cy + dy


POLYGON_KINDS = ["box", "box", "box", "triangle", "hole", "multi", "multi_far", "bowtie",
                 "zero_area", "spike", "repeated", "multi_empty_part", "empty", "null", "nan",
                 "lon_beyond", "lon_beyond_360", "lat_beyond"]
BAD_POLYGON_KINDS = {"nan", "lon_beyond_360", "lat_beyond"}


@st.composite
def polygon(draw, kinds=POLYGON_KINDS):
    """(kind, geometry) of a polygon feature."""
    kind = draw(st.sampled_from(kinds))
    cx, cy = draw(places())
    s = draw(st.sampled_from([1e-5, 1e-3, 0.01, 0.05]))

    def ring(offsets):
        return [_pt(cx, cy, dx * s, dy * s) for dx, dy in offsets]

    if kind == "box":
        return kind, Polygon(ring([(0, 0), (1, 0), (1, 1), (0, 1)]))
    if kind == "triangle":
        return kind, Polygon(ring([(0, 0), (1, 0), (0.5, 1)]))
    if kind == "hole":
        return kind, Polygon(ring([(0, 0), (3, 0), (3, 3), (0, 3)]),
                             [ring([(1, 1), (1, 2), (2, 2), (2, 1)])])
    if kind == "multi":
        return kind, MultiPolygon([Polygon(ring([(0, 0), (1, 0), (1, 1), (0, 1)])),
                                   Polygon(ring([(2, 0), (3, 0), (3, 1), (2, 1)]))])
    if kind == "multi_far":  # a second part at another anchor, possibly across ±180
        fx, fy = draw(places())
        return kind, MultiPolygon([Polygon(ring([(0, 0), (1, 0), (1, 1), (0, 1)])),
                                   Polygon([_pt(fx, fy, dx * s, dy * s)
                                            for dx, dy in [(0, 0), (1, 0), (1, 1), (0, 1)]])])
    if kind == "bowtie":
        return kind, Polygon(ring([(0, 0), (1, 1), (1, 0), (0, 1)]))
    if kind == "zero_area":
        return kind, Polygon(ring([(0, 0), (1, 0), (2, 0)]))
    if kind == "spike":
        return kind, Polygon(ring([(0, 0), (1, 0), (1, 1), (1, 3), (1, 1), (0, 1)]))
    if kind == "repeated":
        return kind, Polygon(ring([(0, 0), (0, 0), (1, 0), (1, 0), (1, 1), (0, 1)]))
    if kind == "multi_empty_part":
        return kind, shapely.multipolygons([Polygon(ring([(0, 0), (1, 0), (1, 1), (0, 1)])),
                                            Polygon()])
    if kind == "empty":
        return kind, draw(st.sampled_from([Polygon(), MultiPolygon()]))
    if kind == "null":
        return kind, None
    if kind == "nan":
        return kind, Polygon([(cx, cy), (math.nan, cy), (cx, cy + s)])
    if kind in ("lon_beyond", "lon_beyond_360"):     # read one turn away; beyond 360: refused
        x = draw(st.sampled_from([180.5, -181.0, 359.0] if kind == "lon_beyond" else [540.0, -361.0]))
        return kind, Polygon([(x, 0.0), (x + s, 0.0), (x + s, s), (x, s)])
    if kind == "lat_beyond":
        return kind, Polygon([(cx, 90.5), (cx + s, 90.5), (cx, 91.0)])
    raise AssertionError(kind)


POINT_KINDS = ["point", "point", "point", "multipoint", "multipoint_empty_part", "empty",
               "empty_multi", "null", "duplicate_parts", "nan", "lon_beyond", "lon_beyond_360", "lat_beyond"]
BAD_POINT_KINDS = {"nan", "lon_beyond_360", "lat_beyond"}


@st.composite
def point(draw, kinds=POINT_KINDS):
    kind = draw(st.sampled_from(kinds))
    cx, cy = draw(places())
    p = Point(_pt(cx, cy, 0, 0))
    q = Point(_pt(cx, cy, 0.004, -0.003))
    if kind == "point":
        return kind, p
    if kind == "multipoint":
        far = draw(st.sampled_from([(0.01, 0.01), (34.0, 0.0), (0.5, -0.5)]))
        return kind, MultiPoint([p, q, Point(_pt(cx, cy, *far))])
    if kind == "multipoint_empty_part":
        return kind, shapely.multipoints([p, Point()])
    if kind == "duplicate_parts":
        return kind, MultiPoint([p, p])
    if kind == "empty":
        return kind, Point()
    if kind == "empty_multi":
        return kind, MultiPoint()
    if kind == "null":
        return kind, None
    if kind == "nan":
        return kind, Point(math.nan, cy)
    if kind == "lon_beyond":           # read one turn away (a latitude in range: the point is clean)
        return kind, Point(draw(st.sampled_from([180.0001, -200.0, 360.0])), clamp_lat(cy))
    if kind == "lon_beyond_360":
        return kind, Point(draw(st.sampled_from([540.0, -360.5])), clamp_lat(cy))
    if kind == "lat_beyond":
        return kind, Point(cx, draw(st.sampled_from([90.01, -95.0])))
    raise AssertionError(kind)


AREA_KINDS = ["missing", "missing", "given", "given", "zero", "nan", "negative", "inf"]
BAD_AREA_KINDS = {"nan", "negative", "inf"}


@st.composite
def area(draw):
    kind = draw(st.sampled_from(AREA_KINDS))
    return kind, {"missing": None, "given": draw(st.floats(1.0, 5e7)), "zero": 0.0,
                  "nan": math.nan, "negative": -draw(st.floats(1e-6, 1e6)),
                  "inf": math.inf}[kind]


def commodity_text():
    return st.one_of(st.sampled_from(COMMODITY_TEXT),
                     st.lists(st.sampled_from([t for t in COMMODITY_TEXT if isinstance(t, str)]),
                              min_size=2, max_size=4).flatmap(
                         lambda ts: st.sampled_from([",", ";", " ; ", ", "]).map(
                             lambda sep: sep.join(ts))))


@dataclass
class Layers:
    polygons: list = field(default_factory=list)
    polygon_kinds: list = field(default_factory=list)
    polygon_ids: list = field(default_factory=list)
    areas: object = None                 # None or a list
    area_kinds: list = field(default_factory=list)
    points: list = field(default_factory=list)
    point_kinds: list = field(default_factory=list)
    point_ids: list = field(default_factory=list)
    primary: list = field(default_factory=list)
    commodities: object = None           # None or a list

    @property
    def bad(self):
        return (any(k in BAD_POLYGON_KINDS for k in self.polygon_kinds)
                or any(k in BAD_POINT_KINDS for k in self.point_kinds)
                or any(a in BAD_AREA_KINDS for a, g in zip(self.area_kinds, self.polygons)
                       if g is not None and not g.is_empty))

    def permuted(self, pp, qp):
        """The same layers with the polygons in order pp and the points in order qp."""
        def take(seq, order):
            return None if seq is None else [seq[i] for i in order]
        return Layers(take(self.polygons, pp), take(self.polygon_kinds, pp),
                      take(self.polygon_ids, pp), take(self.areas, pp),
                      take(self.area_kinds, pp), take(self.points, qp),
                      take(self.point_kinds, qp), take(self.point_ids, qp),
                      take(self.primary, qp), take(self.commodities, qp))


@st.composite
def layers(draw, max_polygons=12, max_points=10, polygon_kinds=POLYGON_KINDS,
           point_kinds=POINT_KINDS, allow_bad_areas=True, unique_ids=None):
    """Polygons and points as prepare_features takes them; sometimes one layer is empty, all
    features identical or the ids repeated."""
    shape = draw(st.sampled_from(["mixed", "mixed", "mixed", "polygons_only", "points_only",
                                  "single", "identical", "far_apart"]))
    n_p = draw(st.integers(0, max_polygons))
    n_q = draw(st.integers(0, max_points))
    if shape == "polygons_only":
        n_q = 0
    elif shape == "points_only":
        n_p = 0
    elif shape == "single":
        n_p, n_q = draw(st.sampled_from([(1, 0), (0, 1)]))
    out = Layers()
    # one case in four may hold something the core must refuse
    if draw(st.integers(0, 3)) != 0:
        polygon_kinds = [k for k in polygon_kinds if k not in BAD_POLYGON_KINDS]
        point_kinds = [k for k in point_kinds if k not in BAD_POINT_KINDS]
        allow_bad_areas = False
    if shape == "identical":
        pk, pg = draw(polygon(["box", "triangle", "multi"]))
        qk, qg = draw(point(["point", "multipoint"]))
        out.polygons, out.polygon_kinds = [pg] * n_p, [pk] * n_p
        out.points, out.point_kinds = [qg] * n_q, [qk] * n_q
    elif shape == "far_apart":
        for i in range(n_p):
            out.polygons.append(shapely.box(-170 + 17 * i, -60 + 5 * i, -169.99 + 17 * i,
                                            -59.99 + 5 * i))
            out.polygon_kinds.append("box")
        for i in range(n_q):
            out.points.append(Point(-165 + 17 * i, 30 - 6 * i))
            out.point_kinds.append("point")
    else:
        for _ in range(n_p):
            k, g = draw(polygon(polygon_kinds))
            out.polygons.append(g)
            out.polygon_kinds.append(k)
        for _ in range(n_q):
            k, g = draw(point(point_kinds))
            out.points.append(g)
            out.point_kinds.append(k)
    unique = draw(st.booleans()) if unique_ids is None else unique_ids
    if unique:
        ids = draw(st.lists(st.integers(-2**40, 2**40), min_size=n_p + n_q, max_size=n_p + n_q,
                            unique=True))
    else:
        ids = draw(st.lists(st.integers(0, 3), min_size=n_p + n_q, max_size=n_p + n_q))
    out.polygon_ids, out.point_ids = ids[:n_p], ids[n_p:]
    if draw(st.booleans()):
        out.areas, out.area_kinds = None, ["missing"] * n_p
    else:
        drawn = [draw(area()) for _ in range(n_p)]
        if not allow_bad_areas:
            drawn = [(k, v) if k not in BAD_AREA_KINDS else ("missing", None) for k, v in drawn]
        out.area_kinds = [k for k, _ in drawn]
        out.areas = [v for _, v in drawn]
    out.primary = [draw(commodity_text()) for _ in range(n_q)]
    if draw(st.booleans()):
        out.commodities = [draw(commodity_text()) for _ in range(n_q)]
    return out


def is_one_sentence(message):
    """An error a user can read: one line, not empty, ending like a sentence, no traceback."""
    return (bool(message) and "\n" not in message and message.rstrip()[-1] in ".)"
            and "Traceback" not in message)
