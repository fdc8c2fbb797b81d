"""Odd inputs through `qgis_process`, table-driven: layers written by the test (GeoPackage,
GeoJSON, CSV) in EPSG:4326, EPSG:3857, a UTM zone and EPSG:3035 (northing/easting axes), with
broken, degenerate, polar, antimeridian and empty features and awkward commodity text.

Every case must end either with exit code 0 and outputs that reconcile (every feature kept or
reported as dropped, areas adding up), or with a clean one-sentence error: never a Python
traceback. The default cases keep the run within a few minutes; the long tail runs with
MINE_CLUSTERS_E2E_ALL=1.
"""
import csv
import json
import math
import os
import re
import shutil
import subprocess
from collections import Counter
from dataclasses import dataclass, field

import pytest
import shapely

ogr = pytest.importorskip("osgeo.ogr")
osr = pytest.importorskip("osgeo.osr")

QGIS_PROCESS = shutil.which("qgis_process.bin") or shutil.which("qgis_process")
ALL = os.environ.get("MINE_CLUSTERS_E2E_ALL") == "1"
pytestmark = pytest.mark.skipif(QGIS_PROCESS is None, reason="qgis_process is not installed")
long_tail = pytest.mark.skipif(not ALL, reason="long tail: set MINE_CLUSTERS_E2E_ALL=1")

UTM = 32632        # UTM zone 32 N: the base site is at 9° E
LAEA = 3035        # ETRS89-extended / LAEA Europe: axes northing, easting


def qgis_process(env, alg, params):
    args = [QGIS_PROCESS, "--json", "run", alg, "--"]
    for k, v in params.items():       # a list: the parameter repeated (multiple layers)
        args += [f"{k}={x}" for x in v] if isinstance(v, list) else [f"{k}={v}"]
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=300,
                          stdin=subprocess.DEVNULL)


# ----------------------------------------------------------------------------- layers

@dataclass
class Layer:
    geometry: str                       # "point" | "polygon" | "line"
    rows: list                          # (lon/lat WKT or None, {field: value})
    crs: int = 4326
    fmt: str = "gpkg"                   # gpkg | geojson | csv
    fields: dict = field(default_factory=dict)   # name -> "str" | "real" | "int"
    name: str = "layer"
    lonlat: list = None     # set by write_layer: each row's geometry as read back (lon/lat WKT)
    native: bool = False    # rows already in the layer CRS (to write coordinates it cannot reach)


_OGR_TYPES = {"str": ogr.OFTString, "real": ogr.OFTReal, "int": ogr.OFTInteger64}
_GEOM_TYPES = {"point": ogr.wkbUnknown, "polygon": ogr.wkbUnknown, "line": ogr.wkbLineString}


def _transform(epsg):
    src, dst = osr.SpatialReference(), osr.SpatialReference()
    src.ImportFromEPSG(4326)
    dst.ImportFromEPSG(epsg)
    for s in (src, dst):
        s.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    return dst, osr.CoordinateTransformation(src, dst)


def _ogr_geometry(wkt):
    """OGR reads no NaN or inf in WKT (GDAL 3.6 returns None, 3.10 raises): such a geometry
    goes through shapely's WKB."""
    try:
        g = ogr.CreateGeometryFromWkt(wkt)
    except RuntimeError:
        g = None
    return g if g is not None else ogr.CreateGeometryFromWkb(
        shapely.to_wkb(shapely.from_wkt(wkt)))


def _transform_parts(g, tr):
    """Transforms `g` in place part by part: OGR would turn an EMPTY part into (inf, inf)."""
    if g.IsEmpty():
        return
    if ogr.GT_Flatten(g.GetGeometryType()) in (ogr.wkbMultiPoint, ogr.wkbMultiLineString,
                                               ogr.wkbMultiPolygon, ogr.wkbGeometryCollection):
        for i in range(g.GetGeometryCount()):
            _transform_parts(g.GetGeometryRef(i), tr)
    else:
        try:
            g.Transform(tr)
        except RuntimeError:  # GDAL 3.10 raises where 3.6 left the point untransformed
            pass


def _lonlat(g, crs):
    """An OGR geometry in `crs` as lon/lat WKT (None for no geometry)."""
    if g is None:
        return None
    g = g.Clone()
    if crs != 4326:
        src, _ = _transform(crs)
        _transform_parts(g, osr.CoordinateTransformation(src, _transform(4326)[0]))
    return g.ExportToIsoWkt()


def write_layer(directory, layer):
    """Writes the layer; returns the path or URI qgis_process takes. Sets `layer.lonlat` to
    the geometries as read back from the file (a writer may change them: GeoJSON has no
    EMPTY part, and writes such a geometry as null)."""
    srs, tr = _transform(layer.crs)
    if layer.fmt == "csv":
        def native(wkt):
            if not wkt or layer.crs == 4326 or layer.native:
                return wkt or ""
            g = _ogr_geometry(wkt)
            _transform_parts(g, tr)
            return g.ExportToIsoWkt()
        path = directory / f"{layer.name}.csv"
        texts = [native(wkt) for wkt, _ in layer.rows]
        with open(path, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            names = list(layer.fields)
            w.writerow(["wkt", *names])
            for text, (_, attrs) in zip(texts, layer.rows):
                w.writerow([text, *["" if attrs.get(n) is None else attrs.get(n)
                                    for n in names]])
        layer.lonlat = [_lonlat(_ogr_geometry(t), layer.crs) if t else None for t in texts]
        return (f"delimitedtext://file://{path}?type=csv&wktField=wkt&crs=EPSG:{layer.crs}"
                f"&geomType={layer.geometry}&detectTypes=yes")
    ext = {"gpkg": ("GPKG", "gpkg"), "geojson": ("GeoJSON", "geojson")}[layer.fmt]
    path = directory / f"{layer.name}.{ext[1]}"
    ds = ogr.GetDriverByName(ext[0]).CreateDataSource(str(path))
    lyr = ds.CreateLayer(layer.name, srs, _GEOM_TYPES[layer.geometry])
    for name, kind in layer.fields.items():
        lyr.CreateField(ogr.FieldDefn(name, _OGR_TYPES[kind]))
    for wkt, attrs in layer.rows:
        f = ogr.Feature(lyr.GetLayerDefn())
        for name, value in attrs.items():
            if value is not None:
                f.SetField(name, value)
        if wkt is not None:
            g = _ogr_geometry(wkt)
            if layer.crs != 4326 and not layer.native:
                _transform_parts(g, tr)
            f.SetGeometry(g)
        lyr.CreateFeature(f)
    # Closed by dropping the object, not by ds.Close(): GDAL 3.10 (Debian 13) fails to store an
    # infinite extent in gpkg_contents, and after Close() raised that, dropping the object
    # closes the dataset a second time and crashes the process (segmentation fault). Dropped
    # only, the error is printed ("Exception ignored") and the features are written all the
    # same (read back below), as GDAL 3.6 and 3.13 do.
    ds = None
    ds = ogr.Open(str(path))
    layer.lonlat = [_lonlat(f.GetGeometryRef(), layer.crs) for f in ds.GetLayer(0)]
    ds = None
    return str(path)


def read_rows(path, layer=None):
    """Attribute dicts of an output (GeoPackage or CSV), plus 'wkt' for geometry layers."""
    ds = ogr.Open(str(path))
    lyr = ds.GetLayerByName(layer) if layer else ds.GetLayer(0)
    out = []
    for f in lyr:
        row = {k: f.GetField(k) for k in f.keys()}
        g = f.GetGeometryRef()
        row["wkt"] = g.ExportToWkt() if g is not None else None
        out.append(row)
    return out


def no_traceback(proc):
    text = proc.stdout + proc.stderr
    assert "Traceback" not in text and "Error executing algorithm" not in text, text[-3000:]


def error_sentence(proc):
    """The one error the user sees (qgis_process prints it on stderr or in --json's log)."""
    assert proc.returncode != 0
    no_traceback(proc)
    lines = [l.strip() for l in (proc.stderr + "\n" + proc.stdout).splitlines() if l.strip()]
    assert lines, "no error message"
    return "\n".join(lines)


def lonlat_area(wkts):
    from mine_clusters.core.geodesy import geodesic_area_m2
    geoms = [shapely.from_wkt(w) for w in wkts if w]
    return float(geodesic_area_m2(geoms).sum()) if geoms else 0.0


def as_read(wkt, crs):
    """The lon/lat geometry QGIS reads back from a layer in `crs` (through the CRS and back):
    a line drawn as a polygon may come back as a thin sliver with an area."""
    if crs == 4326 or not wkt:
        return wkt
    g = ogr.CreateGeometryFromWkt(wkt)
    if g.IsEmpty():
        return wkt
    dst, tr = _transform(crs)
    g.Transform(tr)
    back = osr.CoordinateTransformation(dst, _transform(4326)[0])
    g.Transform(back)
    return g.ExportToWkt()


def kept(wkt):
    return wkt is not None and not shapely.from_wkt(wkt).is_empty


def point_parts(wkt):
    if not kept(wkt):
        return 0
    return sum(not p.is_empty for p in shapely.get_parts(shapely.from_wkt(wkt)))


# ----------------------------------------------------------------------------- shapes

def box(x, y, s=0.01):
    return f"POLYGON (({x} {y}, {x + s} {y}, {x + s} {y + s}, {x} {y + s}, {x} {y}))"


BASE = (9.0, 47.0)       # in UTM zone 32 N and in the LAEA Europe area


def site_polygons(x=BASE[0], y=BASE[1]):
    return [box(x, y), box(x + 0.015, y), box(x + 0.2, y + 0.2), box(x + 0.5, y)]


def site_points(x=BASE[0], y=BASE[1]):
    return [f"POINT ({x + 0.005} {y + 0.005})", f"POINT ({x + 0.205} {y + 0.205})",
            f"POINT ({x + 0.9} {y})"]


def polys(wkts, crs=4326, fmt="gpkg", area=None, extra=None, names=None):
    rows = []
    fields = {"name": "str"}
    if area is not None:
        fields["area_m2"] = "real"
    for k, w in enumerate(wkts):
        attrs = {"name": f"p{k}" if names is None else names[k]}
        if area is not None:
            attrs["area_m2"] = area[k]
        rows.append((w, attrs))
    return Layer("polygon", rows, crs, fmt, {**fields, **(extra or {})}, "mine_polygons")


def points(wkts, primary=None, commodities=None, crs=4326, fmt="gpkg"):
    primary = primary or ["Gold", "Copper", "Coal", "Gold", "Lead,Zinc"] * 20
    rows = []
    for k, w in enumerate(wkts):
        attrs = {"primary_commodity": primary[k % len(primary)]}
        if commodities is not None:
            attrs["commodities"] = commodities[k % len(commodities)]
        rows.append((w, attrs))
    return Layer("point", rows, crs, fmt,
                 {"primary_commodity": "str", "commodities": "str"}, "mine_points")


# ----------------------------------------------------------------------------- cluster cases

@dataclass
class Case:
    name: str
    polygons: Layer
    points: Layer
    params: dict = field(default_factory=dict)
    expect: str = "ok"              # "ok" | "error" | "either"
    message: str = ""               # a fragment the error sentence must hold
    slow: bool = False


P, Q = site_polygons(), site_points()
BOWTIE = "POLYGON ((9 47, 9.01 47.01, 9.01 47, 9 47.01, 9 47))"
ZERO = "POLYGON ((9 47, 9.01 47, 9.02 47, 9 47))"
SPIKE = "POLYGON ((9 47, 9.01 47, 9.01 47.01, 9.01 47.03, 9.01 47.01, 9 47.01, 9 47))"
ANTI = ["POLYGON ((179.99 10, 180 10, 180 10.01, 179.99 10.01, 179.99 10))",
        "POLYGON ((-180 10, -179.99 10, -179.99 10.01, -180 10.01, -180 10))"]
ODD_TEXT = ["Gold; Copper", "gold", " GOLD ", "Göld", "ＧＯＬＤ", "Lead/Zinc", "NA", "   ", "",
            None, "n/a", "İron", "Straße,STRASSE", "金", "Coal;", ";;,"]

CLUSTER_CASES = [
    Case("basic_4326", polys(P), points(Q)),
    Case("basic_3857", polys(P, 3857), points(Q, crs=3857)),
    Case("basic_utm", polys(P, UTM), points(Q, crs=UTM)),
    Case("basic_laea_northing_easting", polys(P, LAEA), points(Q, crs=LAEA)),
    Case("mixed_crs_polygons_utm_points_3857", polys(P, UTM), points(Q, crs=3857)),
    Case("geojson", polys(P, fmt="geojson"), points(Q, fmt="geojson")),
    Case("points_csv_wkt", polys(P), points(Q, fmt="csv")),
    Case("bowtie_zero_area_spike", polys(P + [BOWTIE, ZERO, SPIKE]), points(Q)),
    Case("empty_and_null_polygons", polys(P + ["POLYGON EMPTY", None, "MULTIPOLYGON EMPTY"]),
         points(Q)),
    Case("multipolygon_with_hole", polys(P + [
        "MULTIPOLYGON (((9 47, 9.03 47, 9.03 47.03, 9 47.03, 9 47), (9.01 47.01, 9.01 47.02, "
        "9.02 47.02, 9.02 47.01, 9.01 47.01)), ((9.1 47, 9.11 47, 9.11 47.01, 9.1 47)))"]),
         points(Q)),
    Case("multipoint_spanning_34_degrees", polys(P), points(Q + [
        "MULTIPOINT ((9.001 47.001), (43 47), (9.21 47.2))"])),
    Case("empty_and_null_points", polys(P), points(Q + ["POINT EMPTY", None,
                                                        "MULTIPOINT EMPTY"])),
    Case("points_only_empty_polygon_layer", polys([]), points(Q), expect="either"),
    Case("polygons_only_empty_point_layer", polys(P), points([]), expect="either"),
    Case("single_polygon_single_point", polys(P[:1]), points(Q[:1])),
    Case("all_identical", polys([P[0]] * 6), points([Q[0]] * 5)),
    Case("all_far_apart", polys([box(-170 + 40 * k, -50 + 20 * k) for k in range(5)]),
         points([f"POINT ({-150 + 40 * k} {-40 + 20 * k})" for k in range(5)])),
    Case("antimeridian", polys(ANTI), points(["POINT (179.995 10.005)",
                                              "POINT (-179.995 10.005)"])),
    Case("poles", polys(["POLYGON ((0 89.99, 0.1 89.99, 0.1 90, 0 90, 0 89.99))",
                         "POLYGON ((10 -90, 10.1 -90, 10.1 -89.99, 10 -89.99, 10 -90))"]),
         points(["POINT (0 90)", "POINT (180 -90)", "POINT (-180 89.999)"])),
    Case("odd_commodity_text", polys(P), points(Q * 6, primary=ODD_TEXT, commodities=ODD_TEXT)),
    Case("null_primary_everywhere", polys(P), points(Q, primary=[None])),
    Case("longitude_beyond_180", polys(P), points(Q + ["POINT (185 10)"]), expect="either"),
    Case("area_field_given_and_null", polys(P, area=[1e6, None, 0.0, 2.5e5]), points(Q),
         params={"AREA_FIELD": "area_m2"}),
    Case("area_field_negative", polys(P, area=[1e6, -5.0, 0.0, 2.5e5]), points(Q),
         params={"AREA_FIELD": "area_m2"}, expect="error", message="area"),
    Case("missing_primary_field", polys(P), points(Q), params={"PRIMARY_FIELD": "nope"},
         expect="error", message="nope"),
    Case("lines_as_polygons", Layer("line", [("LINESTRING (9 47, 9.1 47.1)", {})],
                                    fields={}, name="lines"), points(Q), expect="error"),
    Case("h_limit_zero", polys(P), points(Q), params={"H_LIMIT": "0"}, expect="error"),
    Case("step_above_h_limit", polys(P), points(Q),
         params={"H_LIMIT": "1000", "THRESHOLD_STEP": "5000"}, expect="error",
         message="threshold step"),
    Case("max_threshold_not_a_candidate", polys(P), points(Q),
         params={"MAX_THRESHOLD": "1500"}, expect="error", message="1500"),
    Case("global_method_r_formula_w0", polys(P), points(Q),
         params={"METHOD": "1", "FORMULA": "1", "WEIGHT": "0"}),
    # the long tail
    Case("weight_above_one", polys(P), points(Q), params={"WEIGHT": "1.5"}, expect="error",
         slow=True),
    Case("geojson_3857", polys(P, 3857, "geojson"), points(Q, crs=3857, fmt="geojson"),
         slow=True),
    Case("utm_antimeridian_far_outside_zone", polys(ANTI, UTM), points(Q, crs=UTM),
         expect="either", slow=True),
    Case("laea_with_bowtie", polys(P + [BOWTIE], LAEA), points(Q, crs=LAEA), slow=True),
    Case("csv_points_3857", polys(P), points(Q, crs=3857, fmt="csv"), slow=True),
    Case("many_identical_points", polys(P), points([Q[0]] * 300), slow=True),
    Case("fixed_h_max", polys(P), points(Q), params={"MAX_THRESHOLD": "3000"}, slow=True),
    Case("tiny_h_limit", polys(P), points(Q), params={"H_LIMIT": "1", "THRESHOLD_STEP": "1"},
         slow=True),
    Case("latitude_beyond_90", polys(P), points(Q + ["POINT (9 91)"]), expect="either",
         slow=True),
    Case("polar_3857_clipped", polys(["POLYGON ((0 84, 0.1 84, 0.1 84.1, 0 84.1, 0 84))"], 3857),
         points(["POINT (0.05 84.05)"], crs=3857), slow=True),
]

# The matrix: each odd shape set in every CRS (and the vector formats).
CRSS = [4326, 3857, UTM, LAEA]
SHAPE_SETS = {
    "invalid": (P + [BOWTIE, ZERO, SPIKE], Q),
    "empties": (P + ["POLYGON EMPTY", None], Q + ["POINT EMPTY", None,
                                                   "MULTIPOINT ((9.001 47.001), (9.5 47.5))"]),
    "identical": ([P[0]] * 4, [Q[0]] * 4),
    "text": (P, Q * 4),
    "touching": ([box(9, 47), box(9.01, 47), box(9.02, 47.01), box(9.5, 47.5, 0.001)],
                 ["POINT (9.01 47.01)", "POINT (9.5005 47.5005)"]),
}
for crs in CRSS:
    for k, (shape, (pw, qw)) in enumerate(SHAPE_SETS.items()):
        fmt = ("gpkg", "geojson")[k % 2]
        CLUSTER_CASES.append(Case(
            f"matrix_{shape}_{crs}_{fmt}", polys(pw, crs, fmt),
            points(qw, primary=ODD_TEXT if shape == "text" else None,
                   commodities=ODD_TEXT if shape == "text" else None, crs=crs,
                   fmt="csv" if shape == "touching" else fmt)))


def _case_params(case):
    return [pytest.param(c, id=c.name, marks=[long_tail] if c.slow else []) for c in case]


@pytest.mark.parametrize("case", _case_params(CLUSTER_CASES))
def test_cluster_odd_inputs(case, qgis_env, tmp_path):
    out = {"OUTPUT_POLYGONS": tmp_path / "op.gpkg", "OUTPUT_POINTS": tmp_path / "opt.gpkg",
           "OUTPUT_CLUSTERS": tmp_path / "oc.gpkg", "OUTPUT_SENSITIVITY": tmp_path / "os.csv",
           "OUTPUT_PLOT": tmp_path / "plot.png", "OUTPUT_HISTOGRAM": tmp_path / "hist.png"}
    params = {"POLYGONS": write_layer(tmp_path, case.polygons),
              "POINTS": write_layer(tmp_path, case.points), "H_LIMIT": "5000",
              **case.params, **{k: str(v) for k, v in out.items()}}
    proc = qgis_process(qgis_env, "mineclusters:clusterlocaloptimum", params)
    if proc.returncode != 0:
        assert case.expect in ("error", "either"), proc.stderr[-3000:] + proc.stdout[-3000:]
        text = error_sentence(proc)
        assert case.message.lower() in text.lower(), text
        return
    assert case.expect in ("ok", "either"), "a bad input went through"
    no_traceback(proc)
    results = json.loads(proc.stdout)["results"]
    for name in ("MAX_THRESHOLD_M", "GLOBAL_THRESHOLD_M", "AREA_UNASSIGNED_PCT",
                 "AREA_MULTI_PCT", "N_CLUSTERS"):
        assert math.isfinite(results[name]), name
    log = json.loads(proc.stdout).get("log", {})
    warnings = " ".join(log.get("warning", []) if isinstance(log, dict) else [])
    # every polygon kept or reported dropped
    poly_wkts = [w for w, _ in case.polygons.rows]
    out_polys = read_rows(out["OUTPUT_POLYGONS"])
    n_dropped = len(poly_wkts) - sum(kept(w) for w in poly_wkts)
    assert len(out_polys) == len(poly_wkts) - n_dropped
    if n_dropped:
        assert f"Dropped {n_dropped} polygons" in warnings, warnings
    # every point part kept (one row per part) or its feature reported dropped
    pt_wkts = [w for w, _ in case.points.rows]
    out_pts = read_rows(out["OUTPUT_POINTS"])
    assert len(out_pts) == sum(point_parts(w) for w in pt_wkts)
    n_dropped = sum(point_parts(w) == 0 for w in pt_wkts)
    if n_dropped:
        assert f"Dropped {n_dropped} points" in warnings, warnings
    # areas: polygons = clusters = the input's (given, else on the sphere); an input area_m2
    # field stays as it is, the cluster's area is then mc_area_m2 (core.schema.output_name)
    area_col = "mc_area_m2" if "area_m2" in case.polygons.fields else "area_m2"
    if "area_m2" in case.polygons.fields:
        assert [r["area_m2"] for r in out_polys] == \
            [attrs.get("area_m2") for w, attrs in case.polygons.rows if kept(w)]
    area_out = sum(r[area_col] for r in out_polys)
    crs = case.polygons.crs
    clusters = read_rows(out["OUTPUT_CLUSTERS"])
    assert sum(r["area_m2"] for r in clusters) == pytest.approx(area_out, rel=1e-9, abs=1e-6)
    assert sum(r["n_polygons"] for r in clusters) == len(out_polys)
    if "AREA_FIELD" in case.params:
        given = [a for (w, attrs) in case.polygons.rows if kept(w)
                 for a in [attrs.get("area_m2")]]
        expected = sum(a if a is not None else lonlat_area([as_read(w, crs)]) for a, w in
                       zip(given, [w for w in poly_wkts if kept(w)]))
    else:
        expected = lonlat_area([as_read(w, crs) for w in poly_wkts if kept(w)])
    # A line drawn as a polygon along a parallel, read from a projected CRS, may come back
    # with its middle vertex a hair off the line: a valid sliver whose area on the sphere is
    # the ~40 m² between the parallel and the chord (depending on the transform's rounding).
    sliver = 100.0 if crs != 4326 and ZERO in poly_wkts else 1e-3
    assert area_out == pytest.approx(expected, rel=1e-6, abs=sliver)
    assert {r["status"] for r in out_polys + out_pts} <= {"assigned", "unassigned", "multiple"}
    assert out["OUTPUT_PLOT"].stat().st_size > 0


# ----------------------------------------------------------------------------- the other algorithms

# Every case below is one `Odd`: its layers (the first is the main input), extra parameters
# (a Layer as a value is written and passed as its path), what must happen and, for an
# expected error, a fragment the one-sentence message must hold (the layer, field or value).

@dataclass
class Odd:
    name: str
    layers: list
    params: dict = field(default_factory=dict)
    expect: str = "ok"              # "ok" | "error" | "either"
    message: str = ""
    slow: bool = False
    bug: str = ""                   # a known bug in the algorithm: xfail(strict=True)


def _odd_params(cases):
    out = []
    for c in cases:
        marks = [long_tail] if c.slow else []
        if c.bug:
            marks.append(pytest.mark.xfail(strict=True, reason=c.bug))
        out.append(pytest.param(c, id=c.name, marks=marks))
    names = [c.name for c in cases]
    assert len(set(names)) == len(names), "two cases share a name"
    return out


FORMATS = ("gpkg", "geojson", "csv")
OTHER_CRS = {4326: 3857, 3857: LAEA, UTM: 4326, LAEA: UTM}   # a second source's CRS

HOLE = ("MULTIPOLYGON (((9 47, 9.03 47, 9.03 47.03, 9 47.03, 9 47), (9.01 47.01, 9.01 47.02, "
        "9.02 47.02, 9.02 47.01, 9.01 47.01)), ((9.1 47, 9.11 47, 9.11 47.01, 9.1 47)))")
HOLE_OUTSIDE = ("POLYGON ((9.7 47, 9.71 47, 9.71 47.01, 9.7 47.01, 9.7 47), "
                "(9.72 47, 9.73 47, 9.73 47.01, 9.72 47.01, 9.72 47))")   # invalid: hole off shell
EMPTY_PART = "MULTIPOLYGON (((9.3 47, 9.31 47, 9.31 47.01, 9.3 47.01, 9.3 47)), EMPTY)"
REPEATED = "POLYGON ((9.6 47, 9.6 47, 9.61 47, 9.61 47, 9.61 47.01, 9.6 47.01, 9.6 47))"
CROSS = "POLYGON ((179.99 20, -179.99 20, -179.99 20.01, 179.99 20.01, 179.99 20))"  # over 180°
POLES = ["POLYGON ((0 89.99, 0.1 89.99, 0.1 90, 0 90, 0 89.99))",
         "POLYGON ((10 -90, 10.1 -90, 10.1 -89.99, 10 -89.99, 10 -90))"]
WORLD = [box(-170 + 40 * k, -50 + 20 * k) for k in range(5)]
EUROPE = [box(9, 47), box(-5, 40), box(20, 60), box(26, 37), box(2, 51.5)]   # far apart
BEYOND_180 = [box(185, 10), box(190, -5), box(-185, 0)]
NAN_POLYGON = "POLYGON ((9.3 47, NaN 47, 9.31 47.01, 9.3 47))"

# Polygon shape sets near the base site: each goes through every CRS (and rotates formats).
POLY_SETS = {
    "invalid": P + [BOWTIE, ZERO, SPIKE, HOLE_OUTSIDE],
    "empties": P + ["POLYGON EMPTY", None, "MULTIPOLYGON EMPTY", EMPTY_PART],
    "identical": [P[0]] * 4,
    "touching": SHAPE_SETS["touching"][0],
    "holes_nested": [HOLE, box(9.2, 47.2, 0.03), box(9.21, 47.21, 0.005), REPEATED],
    "chain": [box(9 + 0.009 * k, 47) for k in range(5)] + [box(9.8, 47, 1e-5)],
    "single": [P[1]],
    "europe": EUROPE,
}
DUPLICATE_NAMES = ["d0", "d0", "d1", "d1", "d0", "d1"]


def in_native_crs(layer):
    """The layer with its rows' coordinates taken as already in its CRS."""
    layer.native = True
    return layer


# ----------------------------------------------------------------------------- oracles

UNKNOWN = {"", "na"}                                      # METHOD.md: unknown values
RAW_MISSING = {"", "na", "n/a", "nan", "null", "none"}    # missing in raw inventories


def _names(text, separators, missing):
    if text is None or (isinstance(text, float) and math.isnan(text)):
        return set()
    text = str(text)
    for sep in separators[1:]:
        text = text.replace(sep, separators[0])
    keys = {" ".join(token.split()).casefold() for token in text.split(separators[0])}
    return keys - missing


def names_of(text):
    """Commodity identities of a value as METHOD.md reads it: a comma list, names trimmed and
    case-folded; empty, NULL, NA and blank items mean unknown."""
    return _names(text, ",", UNKNOWN)


def raw_names_of(text):
    """The same as harmonise reads raw inventories: ',' or ';' separates, and n/a, nan, null
    and none are missing too (the algorithm's help)."""
    return _names(text, ",;", RAW_MISSING)


def geometries(layer):
    """The lon/lat geometries the algorithm gets from a written layer (None: null or empty)."""
    out = []
    for w in layer.lonlat:
        g = shapely.from_wkt(w) if w else None
        out.append(None if g is None or g.is_empty else g)
    return out


def _flat(g):
    if hasattr(g, "geoms"):
        for part in g.geoms:
            yield from _flat(part)
    else:
        yield g


def _shift(g, dx):
    return shapely.transform(g, lambda c: c + [dx, 0.0])


def unwrap(g):
    """A geometry drawn across the antimeridian (wider than 180°) with its western
    longitudes moved by +360°, so that planar geometry sees it whole."""
    if g is None or g.bounds[2] - g.bounds[0] <= 180.0:
        return g

    def east(c):
        c = c.copy()
        c[c[:, 0] < 0, 0] += 360.0
        return c
    return shapely.transform(g, east)


def polygonal(g):
    """The polygons of `g` repaired with make_valid; None when nothing with an area is left."""
    if g is None:
        return None
    if not g.is_valid:
        g = shapely.make_valid(g)
    parts = [p for p in _flat(g) if p.geom_type == "Polygon" and not p.is_empty]
    if not parts:
        return None
    out = parts[0] if len(parts) == 1 else shapely.MultiPolygon(parts)
    return out if out.area > 0 else None


def sphere_area(geoms):
    from mine_clusters.core.geodesy import geodesic_area_m2
    geoms = [g for g in geoms if g is not None]
    return float(geodesic_area_m2(geoms).sum()) if geoms else 0.0


def meets(a, b, distance):
    """a and b within `distance` degrees of each other on the globe (also across 180°)."""
    a, b = unwrap(a), unwrap(b)
    return any(shapely.dwithin(a, _shift(b, dx), distance) for dx in (-360.0, 0.0, 360.0))


def overlap(a, b):
    """Planar area (deg²) a and b share on the globe (also across 180°)."""
    a, b = unwrap(a), unwrap(b)
    return max(a.intersection(_shift(b, dx)).area for dx in (-360.0, 0.0, 360.0))


def sliver_tolerance(layers):
    """Absolute area tolerance (m²): a line drawn as a polygon and read from a projected CRS
    may come back as a sliver with ~40 m² on the sphere (see the cluster test)."""
    return 100.0 if any(layer.crs != 4326 and ZERO in [w for w, _ in layer.rows]
                        for layer in layers) else 1e-3


_WARNING = re.compile(r"^(?P<path>.+?):\d+: \w*Warning: ")


def _without_qgis_warnings(text):
    """The lines of `text` without Python's warnings raised in QGIS's own code (with the source
    line Python prints under each): QGIS 3.44 under Python 3.14 prints e.g. "codecs.open() is
    deprecated" from its Processing plugin. A warning from this plugin's code is kept."""
    out, skip_source = [], False
    for raw in text.splitlines():
        if skip_source and raw.startswith((" ", "\t")):
            skip_source = False
            continue
        skip_source = False
        m = _WARNING.match(raw.strip())
        if m and "mine_clusters" not in m.group("path"):
            skip_source = True
            continue
        out.append(raw)
    return out


def the_error(proc):
    """The error qgis_process reports: one distinct line (printed once or twice), a sentence,
    no traceback; with --json, stdout holds the plugin's JSON object of the failure with that
    same sentence."""
    no_traceback(proc)
    doc = None
    if proc.stdout.strip().startswith("{"):
        doc = json.loads(proc.stdout)
        assert doc["ok"] is False and doc["results"] == {}, doc
    lines = []
    for line in _without_qgis_warnings(proc.stderr + ("" if doc else "\n" + proc.stdout)):
        line = line.strip()
        if not line or "DeprecationWarning" in line or line.startswith("<string>"):
            continue
        if line not in lines:
            lines.append(line)
    assert len(lines) == 1, lines
    assert lines[0].endswith("."), lines[0]
    if doc is not None:
        assert doc["error"] == lines[0], (doc["error"], lines[0])
    return lines[0]


def finished(proc, case):
    """True for a successful run that should succeed; an error must be expected and clean."""
    if proc.returncode != 0:
        assert case.expect in ("error", "either"), proc.stderr[-3000:] + proc.stdout[-3000:]
        message = the_error(proc)
        assert case.message.lower() in message.lower(), message
        return False
    assert case.expect in ("ok", "either"), "a bad input went through: " + proc.stdout[-2000:]
    no_traceback(proc)
    return True


def logged(proc, level):
    log = json.loads(proc.stdout).get("log", {})
    return log.get(level, []) if isinstance(log, dict) else []


def reported_dropped(warnings, source, fid):
    """`fid` of `source` listed in a 'Dropped n feature(s) of ...' warning."""
    pattern = re.compile(rf"^Dropped \d+ feature\(s\) of '{re.escape(source)}' .*[:,] "
                         rf"{re.escape(str(fid))}(,| and|\.$)")
    return any(pattern.search(w) for w in warnings)


def write_params(tmp_path, params):
    out = {}
    for k, v in params.items():
        if isinstance(v, Layer):
            v.name = k.lower()
            v = write_layer(tmp_path, v)
        out[k] = v
    return out


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def number(text):
    return float(text) if text not in (None, "") else None


# ----------------------------------------------------------------------------- harmonise polygons

HARMONISE_POLYGON_CASES = []
for ci, crs in enumerate(CRSS):
    for si, (shape, wkts) in enumerate([*POLY_SETS.items(), ("duplicate_ids", P + P[:2])]):
        fmt = FORMATS[(si + ci) % 3]
        names = DUPLICATE_NAMES if shape == "duplicate_ids" else None
        second = FORMATS[(si + ci + 1) % 3]
        HARMONISE_POLYGON_CASES.append(Odd(f"matrix_{shape}_{crs}_{fmt}", [
            polys(wkts, crs, fmt, names=names),
            polys(wkts[:2], OTHER_CRS[crs], second, names=names and names[:2])]))

HARMONISE_POLYGON_CASES += [
    Odd("two_sources_overlapping_mixed_crs", [polys(P, UTM), polys([box(9.005, 47.005)], 3857)]),
    Odd("antimeridian_4326", [polys(ANTI + [CROSS]), polys([box(-179.995, 20)])]),
    Odd("antimeridian_3857_geojson", [polys(ANTI + [CROSS], 3857, "geojson")]),
    Odd("poles_4326", [polys(POLES + P[:1])]),
    Odd("all_far_apart_world_4326", [polys(WORLD)]),
    Odd("longitudes_beyond_180", [polys(P + BEYOND_180)]),
    Odd("latitude_beyond_90", [polys(P + [box(9, 90.5)])], expect="error", message="p4"),
    Odd("nan_vertex", [polys(P + [NAN_POLYGON])], expect="error", message="p4"),
    Odd("a_point_layer", [points(Q)], expect="error", message="src0"),
    Odd("a_line_layer", [Layer("line", [("LINESTRING (9 47, 9.1 47.1)", {"name": "l0"})],
                               fields={"name": "str"})], expect="error", message="src0"),
    Odd("points_and_lines_in_a_polygon_layer", [polys(P + [
        "POINT (9 47)", "MULTIPOINT ((9 47), (9.1 47))", "LINESTRING (9 47, 9.1 47.1)",
        "GEOMETRYCOLLECTION (POINT (9.3 47), POLYGON ((9.3 47, 9.31 47, 9.31 47.01, 9.3 47)))"])]),
    Odd("empty_layer", [polys([])], expect="either"),
    Odd("default_id_fields", [polys(P + ["POLYGON EMPTY"]), polys(P[:1], fmt="geojson")],
        params={"ID_FIELDS": "id, fid"}),
    Odd("null_ids", [polys(P + [None], names=[None, "x", None, "x", None])]),
    Odd("poles_laea", [polys(POLES, LAEA)]),
    Odd("source_names_given", [polys(P), polys(P[:2], 3857)],
        params={"SOURCE_NAMES": "Maus, Tang"}),
    # the long tail
    Odd("two_sources_one_name", [polys(P), polys(P[:2], 3857)], params={"SOURCE_NAMES": "a,a"},
        expect="error", message="'a'", slow=True),
    Odd("source_name_with_separator", [polys(P)], params={"SOURCE_NAMES": "Maus/Tang"},
        expect="error", message="Maus/Tang", slow=True),
    Odd("all_far_apart_world_3857_csv", [polys(WORLD, 3857, "csv")], slow=True),
    Odd("antimeridian_csv", [polys(ANTI + [CROSS], fmt="csv")], slow=True),
    Odd("europe_in_laea_and_utm", [polys(EUROPE, LAEA), polys(EUROPE, UTM, "csv")], slow=True),
    Odd("two_hundred_identical", [polys([P[0]] * 200)], slow=True),
]


@pytest.mark.parametrize("case", _odd_params(HARMONISE_POLYGON_CASES))
def test_harmonise_polygons_odd_inputs(case, qgis_env, tmp_path):
    paths = []
    for k, layer in enumerate(case.layers):
        layer.name = f"src{k}"
        paths.append(write_layer(tmp_path, layer))
    out = tmp_path / "merged.gpkg"
    params = {"LAYERS": paths, "ID_FIELDS": "name", **case.params, "OUTPUT": out}
    proc = qgis_process(qgis_env, "mineclusters:harmonisepolygons", params)
    if not finished(proc, case):
        return
    results = json.loads(proc.stdout)["results"]
    rows = read_rows(out)
    assert len(rows) == results["N_POLYGONS"]
    assert results["N_INPUT"] == sum(len(layer.rows) for layer in case.layers)
    # The oracle: an input is kept when it has an area once read in lon/lat and repaired
    # (an EMPTY, NULL, point, line or zero-area feature is dropped and reported).
    source_names = [s.strip() for s in case.params.get("SOURCE_NAMES", "").split(",")
                    if s.strip()] or [layer.name for layer in case.layers]
    by_id = case.params.get("ID_FIELDS", "name") == "name"
    kept, dropped, shapes, n_invalid = Counter(), [], [], 0
    for source, layer in zip(source_names, case.layers):
        for (_, attrs), g in zip(layer.rows, geometries(layer)):
            poly = polygonal(unwrap(g))
            key = (source, attrs.get("name"))
            if poly is not None and poly.area > 1e-11:
                kept[key] += 1
                shapes.append(poly)
                n_invalid += not unwrap(g).is_valid
            else:
                dropped.append(key)
    got = Counter()
    for r in rows:
        for member in r["input_ids"].split(";"):
            source, fid = member.split(":", 1)
            got[(source, fid)] += 1
        assert r["n_inputs"] == len(r["input_ids"].split(";"))
    assert sum(got.values()) == sum(kept.values())
    assert results["N_DROPPED"] == len(dropped)
    assert results["N_REPAIRED"] == n_invalid
    warnings = logged(proc, "warning")
    if by_id and all(fid is not None for _, fid in [*kept, *dropped]):
        assert got == kept                     # every input id exactly once, duplicates too
        for source, fid in dropped:
            assert reported_dropped(warnings, source, fid), (source, fid, warnings)
    # area: the union of the kept inputs on the sphere (in one frame across 180°)
    if shapes and max(s.bounds[2] for s in shapes) > 180.0:
        shapes = [_shift(s, 360.0) if s.bounds[0] < -90.0 else s for s in shapes]
    expected = sphere_area(shapely.get_parts(shapely.union_all(shapes))) if shapes else 0.0
    assert sum(r["area_m2"] for r in rows) == pytest.approx(expected, rel=1e-5, abs=1e-3)
    assert results["AREA_KM2"] * 1e6 == pytest.approx(expected, rel=1e-5, abs=1e-3)
    # the merged polygons lie in -180..180 / -90..90 and do not touch each other
    merged = [shapely.from_wkt(r["wkt"]) for r in rows]
    for k, a in enumerate(merged):
        x0, y0, x1, y1 = a.bounds
        assert -180.0 <= x0 <= x1 <= 180.0 and -90.0 <= y0 <= y1 <= 90.0, a.wkt
        for b in merged[k + 1:]:
            assert not meets(a, b, 0.0), (a.wkt, b.wkt)


# ----------------------------------------------------------------------------- harmonise points

def inventory(wkts, primary=None, commodities=None, crs=4326, fmt="gpkg", names=None,
              primary_field="primary_commodity"):
    """A mine inventory layer with a 'name' id (one of the default id fields)."""
    primary = primary or ["Gold", "Copper", "Coal", "Gold", "Lead,Zinc"]
    rows = []
    for k, w in enumerate(wkts):
        attrs = {"name": f"q{k}" if names is None else names[k],
                 primary_field: primary[k % len(primary)]}
        if commodities is not None:
            attrs["commodities"] = commodities[k % len(commodities)]
        rows.append((w, attrs))
    return Layer("point", rows, crs, fmt, {"name": "str", primary_field: "str",
                                            "commodities": "str"}, "inventory")


EUROPE_POINTS = [f"POINT ({shapely.from_wkt(w).centroid.x} {shapely.from_wkt(w).centroid.y})"
                 for w in EUROPE]
POINT_SETS = {
    "empties": (Q + ["POINT EMPTY", None, "MULTIPOINT EMPTY", "MULTIPOINT ((9.001 47.001), EMPTY)"],
                None),
    "multipoints": (Q + ["MULTIPOINT ((9.001 47.001), (9.3 47.2))",
                         "MULTIPOINT ((9.1 47.1), (9.1 47.1), (9.1 47.1))",
                         "MULTIPOINT ((9.002 47.002), (43 47))"], None),
    "identical": ([Q[0]] * 4, None),
    "text": (Q * 6, ODD_TEXT),
    "processing": (Q * 2, ["Processing", "Gold, Processing", " processing ", "Not relevant",
                           "PROCESSING", "Gold"]),
    "single": (Q[1:2], None),
    "europe": (EUROPE_POINTS, None),
    "duplicate_ids": (Q * 2, None),
}

HARMONISE_POINT_CASES = []
for ci, crs in enumerate(CRSS):
    for si, (shape, (wkts, primary)) in enumerate(POINT_SETS.items()):
        fmt = FORMATS[(si + ci) % 3]
        HARMONISE_POINT_CASES.append(Odd(f"matrix_{shape}_{crs}_{fmt}", [inventory(
            wkts, primary, primary[::-1] if primary else None, crs, fmt,
            names=DUPLICATE_NAMES if shape == "duplicate_ids" else None)]))

NO_PRIMARY = dict(primary_field="kind")
HARMONISE_POINT_CASES += [
    Odd("two_sources_3857_laea", [inventory(Q, crs=3857), inventory(Q, crs=LAEA)]),
    Odd("poles_4326", [inventory(["POINT (0 90)", "POINT (180 -90)", "POINT (-180 89.999)",
                                  "POINT (45 -90)"])]),
    Odd("antimeridian_4326", [inventory(["POINT (180 10)", "POINT (-180 10)",
                                         "POINT (179.9999 10)",
                                         "MULTIPOINT ((179.99 10), (-179.99 10))"])]),
    Odd("longitudes_beyond_180", [inventory(["POINT (185 10)", "POINT (359 -10)",
                                             "POINT (-270 5)", "MULTIPOINT ((190 0), (9 47))"])]),
    Odd("longitude_beyond_360", [inventory(Q + ["POINT (540 10)"])], expect="error",
        message="540"),
    Odd("latitude_beyond_90", [inventory(Q + ["POINT (9 91)"])], expect="error", message="q3"),
    # GEOS 3.12+ (QGIS 3.40's shapely) reads a point with a NaN coordinate as EMPTY, the WKB
    # encoding of an empty point: the part is then an empty part, not a bad coordinate
    Odd("nan_coordinate", [inventory(Q + ["MULTIPOINT ((9 47), (NaN 47))"])],
        expect="ok" if shapely.geos_version >= (3, 12, 0) else "error", message="q3"),
    Odd("all_far_apart_world_4326", [inventory([f"POINT ({-170 + 40 * k} {-60 + 30 * k})"
                                                for k in range(5)])]),
    Odd("a_polygon_layer", [polys(P)], expect="error", message="inv0"),
    Odd("a_line_layer", [Layer("line", [("LINESTRING (9 47, 9.1 47.1)", {})], fields={})],
        expect="error", message="inv0"),
    Odd("polygons_in_a_point_layer", [inventory(Q + [P[0], BOWTIE])]),
    Odd("empty_layer", [inventory([])], expect="either"),
    Odd("no_primary_field", [inventory(Q, **NO_PRIMARY)], expect="error", message="inv0"),
    Odd("no_primary_field_one_commodity", [inventory(Q, **NO_PRIMARY)],
        params={"DEFAULT_COMMODITY": "Coal"}),
    Odd("only_unknown_primaries", [inventory(Q * 2, ["   ", "NA", "n/a", "", None, "null"])]),
    Odd("null_ids", [inventory(Q + ["POINT EMPTY"], names=[None, "x", "x", None])]),
    Odd("primary_processing_in_two_spellings", [inventory(Q, ["Processing;processing", "Gold"])]),
    Odd("infinite_coordinate_utm", [inventory(Q + ["MULTIPOINT ((9 47), (inf inf))"], crs=UTM)],
        expect="error", message="inv0"),
    Odd("easting_beyond_the_utm_domain", [in_native_crs(inventory(
        ["POINT (500000 5200000)", "POINT (1e30 5200000)"], crs=UTM))], expect="error",
        message="inv0"),
    # the long tail
    Odd("default_commodity_unknown_source", [inventory(Q, **NO_PRIMARY)],
        params={"DEFAULT_COMMODITY": "GEM=Coal"}, expect="error", message="GEM", slow=True),
    Odd("default_commodity_not_a_pair", [inventory(Q, **NO_PRIMARY)],
        params={"DEFAULT_COMMODITY": "inv0=Coal; Gold"}, expect="error", message="Gold",
        slow=True),
    Odd("no_primary_field_per_source", [inventory(Q, **NO_PRIMARY),
                                        inventory(Q, crs=3857, **NO_PRIMARY)],
        params={"DEFAULT_COMMODITY": "inv0=Coal; INV1 = Gold"}, slow=True),
    Odd("antimeridian_3857_geojson", [inventory(["POINT (180 10)", "POINT (-179.995 10.005)",
                                                 "MULTIPOINT ((179.99 10), (-179.99 10))"],
                                                crs=3857, fmt="geojson")], slow=True),
    Odd("poles_laea", [inventory(["POINT (0 90)", "POINT (45 -90)"], crs=LAEA)],
        expect="either", slow=True),
    Odd("three_sources_all_formats", [inventory(Q, fmt=f, crs=c) for f, c in
                                      zip(FORMATS, (4326, UTM, LAEA))], slow=True),
    Odd("three_hundred_identical", [inventory([Q[0]] * 300)], slow=True),
    Odd("odd_text_csv", [inventory(Q * 6, ODD_TEXT, ODD_TEXT, fmt="csv")], slow=True),
    Odd("all_far_apart_world_3857_csv", [inventory([f"POINT ({-170 + 40 * k} {-60 + 30 * k})"
                                                    for k in range(5)], crs=3857, fmt="csv")],
        slow=True),
]


@pytest.mark.parametrize("case", _odd_params(HARMONISE_POINT_CASES))
def test_harmonise_points_odd_inputs(case, qgis_env, tmp_path):
    paths = []
    for k, layer in enumerate(case.layers):
        layer.name = f"inv{k}"
        paths.append(write_layer(tmp_path, layer))
    out = tmp_path / "pts.gpkg"
    proc = qgis_process(qgis_env, "mineclusters:harmonisepoints",
                        {"LAYERS": paths, **case.params, "OUTPUT": out})
    if not finished(proc, case):
        return
    results = json.loads(proc.stdout)["results"]
    rows = read_rows(out)
    assert len(rows) == results["N_POINTS"]
    assert results["N_INPUT"] == sum(len(layer.rows) for layer in case.layers)
    # The oracle: each non-empty point part is one row with its feature's id, its longitude
    # wrapped into -180..180; a feature with no point, or whose primary is only
    # "Processing" (the default to drop), is dropped and reported.
    expected, dropped, raw_primary = {}, [], {}
    for layer in case.layers:
        for (_, attrs), g in zip(layer.rows, geometries(layer)):
            parts = [p for p in _flat(g) if p.geom_type == "Point" and not p.is_empty] if g else []
            primary = raw_names_of(attrs.get("primary_commodity"))
            key = (layer.name, attrs.get("name"))
            if not parts or (primary and primary <= {"processing"}):
                dropped.append(key)
                continue
            expected.setdefault(key, []).extend(
                (((p.x + 180.0) % 360.0) - 180.0 if abs(p.x) > 180.0 else p.x, p.y)
                for p in parts)
            raw_primary.setdefault(key, []).append(attrs.get("primary_commodity"))
    assert results["N_DROPPED"] == len(dropped)
    assert len(rows) == sum(len(v) for v in expected.values())
    got = {}
    for r in rows:
        g = shapely.from_wkt(r["wkt"])
        assert -180.0 <= g.x <= 180.0 and -90.0 <= g.y <= 90.0, r["wkt"]
        got.setdefault((r["source"], r["source_id"]), []).append((g.x, g.y))
        # the primary commodities are among all commodities; no empty or unknown names
        prim = names_of(r["primary_commodity"])
        assert prim <= names_of(r["commodities"]), r
        for text in (r["primary_commodity"], r["commodities"]):
            if text is not None:
                assert all(t.strip() and t.strip() == t and t.casefold() not in RAW_MISSING
                           for t in text.split(",")), r
    if "DEFAULT_COMMODITY" not in case.params:
        for r in rows:      # a point without a known primary name has no primary commodity
            key = (r["source"], r["source_id"])
            if key in raw_primary and not any(raw_names_of(v) for v in raw_primary[key]):
                assert r["primary_commodity"] is None, r
    else:
        assert all(r["primary_commodity"] in ("Coal", "Gold") for r in rows), rows
    if all(fid is not None for _, fid in [*expected, *dropped]):
        assert sorted(got) == sorted(expected)
        for key, coords in expected.items():
            for (x, y), (ex, ey) in zip(sorted(got[key]), sorted(coords)):
                assert y == pytest.approx(ey, abs=1e-7), (key, got[key], coords)
                if abs(ey) < 89.9999:               # a pole has no longitude
                    assert x == pytest.approx(ex, abs=1e-7), (key, got[key], coords)
        warnings = logged(proc, "warning")
        for source, fid in dropped:
            assert reported_dropped(warnings, source, fid), (source, fid, warnings)


# ----------------------------------------------------------------------------- footprint

def clustered(wkts, primary, status=None, area=None, crs=4326, fmt="gpkg", cluster=None,
              sources=None):
    """A clustered-polygons layer as the cluster algorithm writes it: cluster k % 3 + 1
    takes primary[k % len(primary)] (keep len(primary) 3 for consistent clusters)."""
    rows = []
    for k, w in enumerate(wkts):
        attrs = {"cluster_id": 1 + k % 3 if cluster is None else cluster[k],
                 "primary_commodities": primary[k % len(primary)]}
        if status is not None:
            attrs["status"] = status[k % len(status)]
        if area is not None:
            attrs["area_m2"] = area[k % len(area)]
        if sources is not None:
            attrs["sources"] = sources[k % len(sources)]
        rows.append((w, attrs))
    fields = {"cluster_id": "int", "primary_commodities": "str", "status": "str",
              "area_m2": "real"}
    if sources is not None:
        fields["sources"] = "str"
    return Layer("polygon", rows, crs, fmt, fields, "clustered")


THREE = ["Gold", None, "Coal,Gold"]
# odd commodity text, each name in one spelling (case variants: their own case below)
FOOTPRINT_TEXT = ["Gold; Copper", "gold", "Göld", "ＧＯＬＤ", "Lead/Zinc", "NA", "   ", "", None,
                  "n/a", "İron", "Straße,STRASSE", "金", "Coal;", ";;,", " na , Zinc ,"]
EMPTY_AREAS = [None] * 4 + [5e5, 0.0, 1e5, None]      # the empties need a given area
FOOTPRINT_SETS = {
    **{k: (v, THREE, None, None) for k, v in POLY_SETS.items() if k != "empties"},
    "empties_with_area": (POLY_SETS["empties"], THREE, EMPTY_AREAS, None),
    "odd_text": (P * 4, FOOTPRINT_TEXT, None, list(range(1, 17))),
}
FOOTPRINT_CASES = []
for ci, crs in enumerate(CRSS):
    for si, (shape, (wkts, primary, area, cluster)) in enumerate(FOOTPRINT_SETS.items()):
        fmt = FORMATS[(si + ci) % 3]
        FOOTPRINT_CASES.append(Odd(f"matrix_{shape}_{crs}_{fmt}", [clustered(
            wkts, primary, area=area, crs=crs, fmt=fmt, cluster=cluster)],
            slow=shape == "single" and crs in (3857, LAEA)))

COUNTRIES = Layer("polygon", [
    ("POLYGON ((8 46, 9.2 46, 9.2 48, 8 48, 8 46))", {"name": "West"}),
    ("POLYGON ((9.2 46, 10 46, 10 48, 9.2 48, 9.2 46))", {"name": "East"}),   # touches West
    ("POLYGON ((179 19, -179 19, -179 21, 179 21, 179 19))", {"name": "Date line"}),
    (None, {"name": "No geometry"}), (BOWTIE, {"name": None})], fields={"name": "str"})
CLUSTERED_POINTS = Layer("point", [
    (w, {"cluster_id": c, "primary_commodities": p}) for w, c, p in (
        (Q[0], 1, "Gold"), (Q[1], 2, None), (Q[2], 7, "Copper"), ("POINT (9 47)", None, None),
        (None, 8, None))], fields={"cluster_id": "int", "primary_commodities": "str"})

FOOTPRINT_CASES += [

    Odd("antimeridian_4326", [clustered(ANTI + [CROSS], ["Coal"] * 3)]),

    Odd("poles_4326", [clustered(POLES + P[:1], THREE)]),

    Odd("all_far_apart_world", [clustered(WORLD, THREE)]),
    Odd("longitudes_beyond_180", [clustered(P + BEYOND_180, THREE)]),
    Odd("areas_given_null_nan_zero", [clustered(P, THREE, area=[1e6, None, math.nan, 0.0])]),
    Odd("area_negative", [clustered(P, THREE, area=[1e6, -5.0, 0.0])], expect="error",
        message="negative"),
    Odd("null_geometry_without_area", [clustered(P + [None], THREE)], expect="error",
        message="area_m2"),
    Odd("no_cluster_id_field", [Layer("polygon", [(w, {"primary_commodities": "Gold"})
                                                  for w in P],
                                      fields={"primary_commodities": "str"})],
        expect="error", message="cluster_id"),
    Odd("bad_status", [clustered(P, THREE, status=["bogus"])], expect="error",
        message="bogus"),
    Odd("a_point_layer", [points(Q)], expect="error", message="clustered"),
    Odd("empty_layer", [clustered([], THREE)], expect="error", message="clustered"),
    Odd("nan_vertex", [clustered(P + [NAN_POLYGON], THREE)], expect="error", message="clustered"),
    Odd("easting_beyond_the_utm_domain", [in_native_crs(clustered(
        [box(500000, 5200000, 1000), box(1e30, 5200000, 1000)], THREE, crs=UTM))],
        expect="error", message="clustered"),
    Odd("case_variants_are_one_commodity", [clustered(P, ["Gold", " gold ", "GOLD", "Coal"],
                                                      cluster=[1, 2, 3, 4])]),
    Odd("with_points_incl_points_only_clusters", [clustered(P, THREE)],
        params={"POINTS": CLUSTERED_POINTS}),
    Odd("countries_touching_antimeridian_null", [clustered(P + [CROSS], THREE)],
        params={"COUNTRIES": COUNTRIES, "COUNTRY_FIELD": "name"}),
    Odd("sources_field_odd_values", [clustered(P * 2, THREE, sources=[
        "Maus/Tang", "NA", None, "  ", "OSM", "Maus/Tang"])]),
    Odd("poles_laea", [clustered(POLES, THREE, crs=LAEA)]),
    # the long tail
    Odd("status_case_and_spaces", [clustered(P, THREE, status=["ASSIGNED", " Unassigned ",
                                                                "Multiple"])], slow=True),
    Odd("null_cluster_id", [clustered(P, THREE, cluster=[1, None, 2, 3])], expect="error",
        message="cluster_id", slow=True),
    Odd("area_infinite", [clustered(P, THREE, area=[1e6, math.inf, 0.0])], expect="error",
        message="infinite", slow=True),
    Odd("grid_cell_too_small", [clustered(P, THREE)], params={"CELL_SIZE": "500"},
        expect="error", message="500", slow=True),
    Odd("no_grid", [clustered(P, THREE)], params={"CELL_SIZE": "0"}, slow=True),
    Odd("countries_centroid_rule", [clustered(P + [CROSS, BOWTIE], THREE, crs=3857)],
        params={"COUNTRIES": COUNTRIES, "COUNTRY_FIELD": "name", "ALLOCATION": "1"}, slow=True),
    Odd("one_cluster_assigned_and_not", [clustered(P, THREE, cluster=[1, 1, 1, 1])],
        expect="error", message="Cluster 1", slow=True),
    Odd("unassigned_with_a_commodity", [clustered(P, THREE, status=["unassigned"])],
        expect="error", message="unassigned", slow=True),
    Odd("utm_with_areas", [clustered(P, THREE, area=[1e6, 2e6, 3e6], crs=UTM)], slow=True),
    Odd("polar_3857", [clustered(["POLYGON ((0 84, 0.1 84, 0.1 84.1, 0 84.1, 0 84))"],
                                 ["Coal"], crs=3857)], slow=True),
    Odd("antimeridian_3857_geojson", [clustered(ANTI + [CROSS], THREE, crs=3857,
                                                fmt="geojson")], slow=True),
    Odd("latitude_beyond_90", [clustered(P + [box(9, 90.5)], THREE)], expect="either",
        slow=True),
    Odd("big_grid_cells", [clustered(WORLD, THREE)], params={"CELL_SIZE": "2000000"},
        slow=True),
    Odd("countries_in_utm", [clustered(P, THREE, crs=UTM)],
        params={"COUNTRIES": COUNTRIES, "COUNTRY_FIELD": "name"}, slow=True),
]


@pytest.mark.parametrize("case", _odd_params(FOOTPRINT_CASES))
def test_footprint_odd_inputs(case, qgis_env, tmp_path):
    layer = case.layers[0]
    layer.name = "clustered"
    out = {"OUTPUT_COMMODITY": tmp_path / "commodity.csv", "OUTPUT_TABLE2": tmp_path / "t2.csv",
           "OUTPUT_TABLE3": tmp_path / "t3.csv", "OUTPUT_COUNTRY": tmp_path / "country.csv",
           "OUTPUT_GRID": tmp_path / "grid.gpkg", "REPORT": tmp_path / "report.html"}
    proc = qgis_process(qgis_env, "mineclusters:footprintsummary", {
        "INPUT": write_layer(tmp_path, layer), **write_params(tmp_path, case.params), **out})
    if not finished(proc, case):
        return
    results = json.loads(proc.stdout)["results"]
    # The oracle: each polygon counts its given area_m2, else its area on the sphere as
    # read and repaired, split equally among its primary commodities (METHOD.md names: a
    # name differing only in case is the same commodity); one without any is Unknown.
    total = placed = unassigned = 0.0
    by_name = Counter()
    for (_, attrs), g in zip(layer.rows, geometries(layer)):
        a = attrs.get("area_m2")
        if a is None or math.isnan(a):
            a = sphere_area([polygonal(unwrap(g))])
        total += a
        placed += a if g is not None else 0.0        # the grid holds what has a place
        names = names_of(attrs.get("primary_commodities"))
        for name in names or [None]:
            by_name[name] += a / max(len(names), 1)
        status = (attrs.get("status") or "").strip().lower()
        unassigned += a if not names and status in ("", "unassigned") else 0.0
    tol = dict(rel=1e-6, abs=sliver_tolerance([layer]))
    assert results["TOTAL_AREA_KM2"] * 1e6 == pytest.approx(total, **tol)
    assert results["N_POLYGONS"] == len(layer.rows)
    assert results["ASSIGNED_AREA_PCT"] / 100 * results["TOTAL_AREA_KM2"] * 1e6 == \
        pytest.approx(total - unassigned, **tol)
    table = {}
    for r in read_csv(out["OUTPUT_COMMODITY"]):
        name = None if r["commodity"] == "Unknown" else " ".join(r["commodity"].split()).casefold()
        assert name not in table, f"two rows for the commodity {r['commodity']!r}"
        table[name] = float(r["area_km2"]) * 1e6
    assert sum(table.values()) == pytest.approx(total, **tol)
    assert table == pytest.approx(dict(by_name), **tol)
    t2 = {r["status"]: r for r in read_csv(out["OUTPUT_TABLE2"])}
    assert float(t2["Total"]["area_km2"]) * 1e6 == pytest.approx(total, **tol)
    assert (float(t2["Assigned"]["area_km2"]) + float(t2["Unassigned"]["area_km2"])) * 1e6 == \
        pytest.approx(total, **tol)
    assert int(t2["Total"]["n_polygons"]) == len(layer.rows)
    assert int(t2["Assigned"]["n_polygons"]) + int(t2["Unassigned"]["n_polygons"]) == \
        len(layer.rows)
    if "POINTS" in case.params:
        n_points = sum(attrs["cluster_id"] is not None for _, attrs in case.params["POINTS"].rows)
        assert int(t2["Total"]["n_points"]) == n_points
    if "sources" in layer.fields:
        t3 = read_csv(out["OUTPUT_TABLE3"])
        assert sum(float(r["area_km2"]) for r in t3) * 1e6 == pytest.approx(total, **tol)
        assert sum(int(r["n_polygons"]) for r in t3) == len(layer.rows)
    countries = read_csv(out["OUTPUT_COUNTRY"])
    assert sum(float(r["area_km2"]) for r in countries) * 1e6 == pytest.approx(total, **tol)
    grid = read_rows(out["OUTPUT_GRID"])
    if case.params.get("CELL_SIZE") == "0":
        assert grid == [] and results["N_CELLS"] == 0
    else:
        assert sum(r["mine_area_km2"] for r in grid) * 1e6 == pytest.approx(placed, **tol)
    assert out["REPORT"].stat().st_size > 0


# ----------------------------------------------------------------------------- validate

def reference(wkts, commodity=None, crs=4326, fmt="gpkg"):
    rows = [(w, {"commodity": None if commodity is None else commodity[k % len(commodity)]})
            for k, w in enumerate(wkts)]
    return Layer("polygon", rows, crs, fmt, {"commodity": "str"}, "reference")


COAL3 = ["Coal", "Gold,Coal", None]
REF_TEXT = ["Coal", " coal ; GOLD", "NA", "   ", None, "Gold/Silver", "ＣＯＡＬ", "Coal,,"]
REF_NAMES = ["Coal", "gold , COAL", "Coal,,NA", " coal "]      # each has a name
VALIDATE_SETS = {
    "invalid": (POLY_SETS["invalid"], [P[1], BOWTIE, box(9.7, 47.005)]),
    "empties": (POLY_SETS["empties"], [P[0], "POLYGON EMPTY", None, EMPTY_PART]),
    "identical": (POLY_SETS["identical"], [P[0], P[0]]),
    "touching": (POLY_SETS["touching"], POLY_SETS["touching"][1:3]),
    "holes_nested": (POLY_SETS["holes_nested"], [box(9.2, 47.2), box(9.012, 47.012, 0.005)]),
    "chain": (POLY_SETS["chain"], [box(9.02, 47.002, 0.002), box(9.8, 47, 0.001)]),
    "single": (POLY_SETS["single"], POLY_SETS["single"]),
    "europe": (EUROPE, [box(-4.995, 40.005, 0.001), box(26, 37), box(30, 30)]),
}
VALIDATE_CASES = []
for ci, crs in enumerate(CRSS):
    for si, (shape, (wkts, refs)) in enumerate(VALIDATE_SETS.items()):
        fmt = FORMATS[(si + ci) % 3]
        by_field = (si + ci) % 2 == 1     # half take the reference commodities from a field
        VALIDATE_CASES.append(Odd(
            f"matrix_{shape}_{crs}_{fmt}" + ("_field" if by_field else ""),
            [clustered(wkts, COAL3, crs=crs, fmt=fmt),
             reference(refs, [REF_NAMES[si % 4], REF_TEXT[si]] if by_field else None,
                       OTHER_CRS[crs], FORMATS[(si + ci + 1) % 3])],
            params={"REFERENCE_FIELD": "commodity"} if by_field else {}))

VALIDATE_CASES += [
    Odd("overlapping_3857_vs_utm", [clustered(P, COAL3, crs=3857), reference(P[:2], crs=UTM)]),
    Odd("no_intersection", [clustered(P, COAL3), reference([box(100, 0)])]),
    Odd("reference_all_null_or_empty", [clustered(P, COAL3),
                                        reference(["POLYGON EMPTY", None])]),
    Odd("empty_reference_layer", [clustered(P, COAL3), reference([])], expect="error",
        message="reference"),
    Odd("empty_clustered_layer", [clustered([], COAL3), reference(P)], expect="error",
        message="clustered"),
    Odd("antimeridian_reference_ring", [
        clustered([box(179.995, 20, 0.005), box(-180, 20, 0.005), box(0, 20)], COAL3),
        reference([CROSS])]),
    Odd("antimeridian_clustered_ring_3857", [
        clustered([CROSS, box(0, 20)], COAL3, crs=3857),
        reference([box(-179.995, 20.002, 0.002), box(0, 20), box(179.992, 20.002, 0.002)])]),
    Odd("poles", [clustered(POLES, COAL3), reference(POLES[:1] + [box(0, 89.95, 0.05)])]),
    Odd("all_far_apart_world", [clustered(WORLD, COAL3), reference(WORLD[1:4], crs=3857)]),
    Odd("longitudes_beyond_180", [clustered(P + BEYOND_180, COAL3),
                                  reference([box(-175, 10), P[0]])], expect="either"),
    Odd("reference_field_odd_text", [clustered(P * 2, COAL3), reference(P * 2, REF_TEXT)],
        params={"REFERENCE_FIELD": "commodity"}),
    Odd("reference_field_missing", [clustered(P, COAL3), reference(P)],
        params={"REFERENCE_FIELD": "nope"}, expect="error", message="nope"),
    Odd("no_reference_commodities", [clustered(P, COAL3), reference(P)],
        params={"REFERENCE_COMMODITIES": ""}, expect="error", message="reference"),
    Odd("unassigned_left_out", [clustered(P, COAL3), reference(P, ["Coal", "Gold"])],
        params={"REFERENCE_FIELD": "commodity", "INCLUDE_UNASSIGNED": "false"}),
    Odd("clustered_without_primary_field", [
        Layer("polygon", [(w, {"cluster_id": 1}) for w in P], fields={"cluster_id": "int"}),
        reference(P)], expect="error", message="primary_commodities"),
    Odd("reference_is_a_point_layer", [clustered(P, COAL3), points(Q)], expect="error",
        message="reference"),
    Odd("clustered_odd_text", [clustered(P * 4, ODD_TEXT, cluster=list(range(1, 17))),
                               reference(P, ["STRASSE, Gold; Copper", "Gold", "strasse, gold",
                                             "Coal;, 金"])],
        params={"REFERENCE_FIELD": "commodity"}),
    Odd("clustered_is_a_point_layer", [points(Q), reference(P)], expect="error",
        message="clustered"),
    Odd("nan_vertex_reference", [clustered(P, COAL3), reference(P[:2] + [NAN_POLYGON])],
        expect="error", message="reference"),
    # the long tail
    Odd("many_identical_references", [clustered(P[:1], COAL3), reference([P[0]] * 40)], slow=True),
    Odd("latitude_beyond_90", [clustered(P + [box(9, 90.5)], COAL3), reference(P)],
        expect="either", slow=True),
    Odd("both_csv_laea", [clustered(P, COAL3, crs=LAEA, fmt="csv"),
                          reference(P, crs=LAEA, fmt="csv")], slow=True),
]


@pytest.mark.parametrize("case", _odd_params(VALIDATE_CASES))
def test_validate_odd_inputs(case, qgis_env, tmp_path):
    layer, ref = case.layers
    layer.name, ref.name = "clustered", "reference"
    out = tmp_path / "pairs.gpkg"
    params = {"INPUT": write_layer(tmp_path, layer), "REFERENCE": write_layer(tmp_path, ref),
              "REFERENCE_COMMODITIES": "Coal", **case.params, "OUTPUT": out,
              "OUTPUT_SUMMARY": tmp_path / "summary.csv", "REPORT": tmp_path / "report.html"}
    proc = qgis_process(qgis_env, "mineclusters:validate", params)
    if not finished(proc, case):
        return
    results = json.loads(proc.stdout)["results"]
    pairs = read_rows(out)
    assert len(pairs) == results["N_PAIRS"]
    # The oracle: a pair for every clustered and reference polygon that meet on the globe
    # (shared area: certainly; touching only: maybe, as reprojection may open a gap), unless
    # the reference has no commodity (or, when left out, the clustered one has none).
    include = case.params.get("INCLUDE_UNASSIGNED", "true") == "true"
    field_name = case.params.get("REFERENCE_FIELD")
    surely, maybe = [], 0
    for (_, attrs), a in zip(layer.rows, geometries(layer)):
        prim = names_of(attrs.get("primary_commodities"))
        if a is None or (not prim and not include):
            continue
        for (_, rattrs), b in zip(ref.rows, geometries(ref)):
            refs = names_of(rattrs.get(field_name) if field_name else "Coal")
            if b is None or not refs:
                continue
            pa, pb = polygonal(a), polygonal(b)
            if pa is not None and pb is not None and overlap(pa, pb) > 1e-12:
                surely.append(len(prim & refs) / len(prim | refs))
            elif meets(a, b, 1e-7) or (pa is not None and pb is not None
                                       and meets(pa, pb, 1e-7)):
                maybe += 1
    assert len(surely) <= results["N_PAIRS"] <= len(surely) + maybe
    if not maybe:
        assert sorted(p["jaccard"] for p in pairs) == pytest.approx(sorted(surely))
    for p in pairs:
        assert 0.0 <= p["jaccard"] <= 1.0 and 0.0 <= p["dice"] <= 1.0, p
        assert p["overlap"] is None or 0.0 <= p["overlap"] <= 1.0, p
        assert p["id_overlap"] in (None, 0, 1), p
        assert p["match"] == ("full" if p["jaccard"] == 1.0 else
                              "none" if p["jaccard"] == 0.0 else "partial"), p
        assert p["reference_commodities"], p
    count = {r["statistic"]: r for r in read_csv(tmp_path / "summary.csv")}["Count"]
    assert sum(number(count[k]) or 0 for k in ("full_match", "partial_match", "no_match")) == \
        results["N_PAIRS"]
    assert (tmp_path / "report.html").stat().st_size > 0


def test_partition_is_the_same_in_every_crs(qgis_env, tmp_path):
    """The same mines in EPSG:4326, EPSG:3857, UTM 32 N and EPSG:3035 give the same clusters
    (gaps of 0.4, 1.5, 2.6 and 7 km keep clear of the 1 km candidate thresholds)."""
    gaps_deg = [0.0, 0.01 + 0.4 / 76, 0.02 + (0.4 + 1.5) / 76, 0.03 + (0.4 + 1.5 + 2.6) / 76,
                0.04 + (0.4 + 1.5 + 2.6 + 7.0) / 76]     # ~76 km per degree of lon at 47° N
    wkts = [box(9.0 + g, 47.0) for g in gaps_deg]
    seen = {}
    for crs in CRSS:
        d = tmp_path / str(crs)
        d.mkdir()
        out = d / "op.gpkg"
        proc = qgis_process(qgis_env, "mineclusters:clusterlocaloptimum", {
            "POLYGONS": write_layer(d, polys(wkts, crs)),
            "POINTS": write_layer(d, points(["POINT (9.005 47.005)", "POINT (9.2 47.0)"],
                                            crs=crs)),
            "H_LIMIT": "10000", "OUTPUT_POLYGONS": out})
        assert proc.returncode == 0, proc.stderr[-3000:]
        no_traceback(proc)
        rows = sorted(read_rows(out), key=lambda r: r["name"])
        seen[crs] = [(r["name"], r["cluster_id"], r["threshold_m"], r["status"]) for r in rows]
    assert all(v == seen[4326] for v in seen.values()), seen
