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
import shutil
import site
import subprocess
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


@pytest.fixture
def qgis_env(tmp_path, plugins_dir):
    """A fresh profile with the plugin enabled (as tests/e2e/test_qgis_process.py)."""
    profile = tmp_path / "config"
    ini = profile / "profiles" / "default" / "QGIS" / "QGIS3.ini"
    ini.parent.mkdir(parents=True)
    ini.write_text("[PythonPlugins]\nmine_clusters=true\n")
    (tmp_path / "runtime").mkdir(mode=0o700)
    env = dict(os.environ)
    env.update({"QGIS_CUSTOM_CONFIG_PATH": str(profile), "QGIS_PLUGINPATH": plugins_dir,
                "QT_QPA_PLATFORM": "offscreen", "XDG_RUNTIME_DIR": str(tmp_path / "runtime"),
                "PYTHONPATH": os.pathsep.join(site.getsitepackages())})
    return env


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


_OGR_TYPES = {"str": ogr.OFTString, "real": ogr.OFTReal, "int": ogr.OFTInteger64}
_GEOM_TYPES = {"point": ogr.wkbUnknown, "polygon": ogr.wkbUnknown, "line": ogr.wkbLineString}


def _transform(epsg):
    src, dst = osr.SpatialReference(), osr.SpatialReference()
    src.ImportFromEPSG(4326)
    dst.ImportFromEPSG(epsg)
    for s in (src, dst):
        s.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    return dst, osr.CoordinateTransformation(src, dst)


def write_layer(directory, layer):
    """Writes the layer; returns the path or URI qgis_process takes."""
    srs, tr = _transform(layer.crs)
    if layer.fmt == "csv":
        def native(wkt):
            if not wkt or layer.crs == 4326:
                return wkt or ""
            g = ogr.CreateGeometryFromWkt(wkt)
            if not g.IsEmpty():
                g.Transform(tr)
            return g.ExportToWkt()
        path = directory / f"{layer.name}.csv"
        with open(path, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            names = list(layer.fields)
            w.writerow(["wkt", *names])
            for wkt, attrs in layer.rows:
                w.writerow([native(wkt), *["" if attrs.get(n) is None else attrs.get(n)
                                         for n in names]])
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
            g = ogr.CreateGeometryFromWkt(wkt)
            if layer.crs != 4326 and not g.IsEmpty():
                g.Transform(tr)
            f.SetGeometry(g)
        lyr.CreateFeature(f)
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


def polys(wkts, crs=4326, fmt="gpkg", area=None, extra=None):
    rows = []
    fields = {"name": "str"}
    if area is not None:
        fields["area_m2"] = "real"
    for k, w in enumerate(wkts):
        attrs = {"name": f"p{k}"}
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
    # areas: polygons = clusters = the input's (given, else on the sphere)
    area_out = sum(r["area_m2"] for r in out_polys)
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


# ----------------------------------------------------------------------------- harmonise

HARMONISE_POLYGON_CASES = [
    ("two_sources_overlapping_mixed_crs", [polys(P, UTM), polys([box(9.005, 47.005)], 3857)],
     "ok"),
    ("invalid_and_empty", [polys(P + [BOWTIE, ZERO, SPIKE, "POLYGON EMPTY", None])], "ok"),
    ("antimeridian_and_poles", [polys(ANTI + [
        "POLYGON ((0 89.99, 0.1 89.99, 0.1 90, 0 90, 0 89.99))"])], "ok"),
    ("laea_geojson", [polys(P, LAEA, "geojson")], "ok"),
    ("empty_layer", [polys([])], "either"),
    ("a_point_layer", [points(Q)], "either"),
]

for crs in CRSS:
    for shape in ("invalid", "empties", "identical", "touching"):
        HARMONISE_POLYGON_CASES.append((f"matrix_{shape}_{crs}", [
            polys(SHAPE_SETS[shape][0], crs), polys(SHAPE_SETS[shape][0][:2], 4326, "geojson")],
            "ok"))


@pytest.mark.parametrize("name,layers,expect", HARMONISE_POLYGON_CASES,
                         ids=[c[0] for c in HARMONISE_POLYGON_CASES])
def test_harmonise_polygons_odd_inputs(name, layers, expect, qgis_env, tmp_path):
    paths = []
    for k, layer in enumerate(layers):
        layer.name = f"src{k}"
        paths.append(write_layer(tmp_path, layer))
    out = tmp_path / "merged.gpkg"
    proc = qgis_process(qgis_env, "mineclusters:harmonisepolygons",
                        {"LAYERS": paths, "OUTPUT": out})
    if proc.returncode != 0:
        assert expect != "ok", proc.stderr[-3000:] + proc.stdout[-3000:]
        error_sentence(proc)
        return
    no_traceback(proc)
    results = json.loads(proc.stdout)["results"]
    rows = read_rows(out)
    assert len(rows) == results["N_POLYGONS"]
    n_in = sum(len(layer.rows) for layer in layers)
    assert results["N_INPUT"] == n_in
    merged = sum(r["n_inputs"] for r in rows)
    assert merged + results["N_DROPPED"] == n_in
    wkts = [w for layer in layers for w, _ in layer.rows if kept(w)]
    if wkts and name != "antimeridian_and_poles":
        union = shapely.union_all([shapely.make_valid(shapely.from_wkt(w)) for w in wkts])
        from mine_clusters.core.geodesy import geodesic_area_m2
        expected = float(geodesic_area_m2(shapely.get_parts(union)).sum())
        assert sum(r["area_m2"] for r in rows) == pytest.approx(expected, rel=1e-5)


HARMONISE_POINT_CASES = [
    ("odd_text_csv", [points(Q * 6, primary=ODD_TEXT, commodities=ODD_TEXT, fmt="csv")]),
    ("multipoints_and_empties_utm", [points(Q + ["MULTIPOINT ((9.001 47.001), (9.3 47.2))",
                                                 "POINT EMPTY", None], crs=UTM)]),
    ("two_sources_3857_laea", [points(Q, crs=3857), points(Q, crs=LAEA)]),
    ("beyond_180_and_poles", [points(["POINT (185 10)", "POINT (0 90)", "POINT (-180 -90)"])]),
]

for crs in CRSS:
    for shape in ("empties", "identical", "text"):
        HARMONISE_POINT_CASES.append((f"matrix_{shape}_{crs}", [
            points(SHAPE_SETS[shape][1], primary=ODD_TEXT, commodities=ODD_TEXT[::-1],
                   crs=crs, fmt=("gpkg", "csv", "geojson")[CRSS.index(crs) % 3])]))


@pytest.mark.parametrize("name,layers", HARMONISE_POINT_CASES,
                         ids=[c[0] for c in HARMONISE_POINT_CASES])
def test_harmonise_points_odd_inputs(name, layers, qgis_env, tmp_path):
    paths = []
    for k, layer in enumerate(layers):
        layer.name = f"inv{k}"
        paths.append(write_layer(tmp_path, layer))
    out = tmp_path / "pts.gpkg"
    proc = qgis_process(qgis_env, "mineclusters:harmonisepoints",
                        {"LAYERS": paths, "OUTPUT": out})
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout[-3000:]
    no_traceback(proc)
    results = json.loads(proc.stdout)["results"]
    rows = read_rows(out)
    assert len(rows) == results["N_POINTS"]
    assert results["N_INPUT"] == sum(len(layer.rows) for layer in layers)
    n_parts = sum(point_parts(w) for layer in layers for w, _ in layer.rows)
    n_empty = sum(point_parts(w) == 0 for layer in layers for w, _ in layer.rows)
    assert results["N_DROPPED"] >= n_empty
    assert len(rows) <= n_parts
    for r in rows:
        g = shapely.from_wkt(r["wkt"])
        assert -180.0 <= g.x <= 180.0 and -90.0 <= g.y <= 90.0, r["wkt"]


# ----------------------------------------------------------------------------- footprint

def clustered(wkts, primary, status=None, area=None, crs=4326, fmt="gpkg"):
    rows = []
    for k, w in enumerate(wkts):
        attrs = {"cluster_id": 1 + k % 3, "primary_commodities": primary[k % len(primary)]}
        if status is not None:
            attrs["status"] = status[k % len(status)]
        if area is not None:
            attrs["area_m2"] = area[k % len(area)]
        rows.append((w, attrs))
    fields = {"cluster_id": "int", "primary_commodities": "str", "status": "str",
              "area_m2": "real"}
    return Layer("polygon", rows, crs, fmt, fields, "clustered")


FOOTPRINT_CASES = [
    ("utm_with_areas", clustered(P, ["Gold"], area=[1e6, 2e6, 3e6]), "ok"),
    ("laea_without_area", clustered(P, ["Gold", None, "Coal,Gold"], crs=LAEA), "ok"),
    ("bowtie_zero_empty", clustered(P + [BOWTIE, ZERO, "POLYGON EMPTY"], ["Gold"],
                                    area=[None]), "either"),
    ("antimeridian_poles_3857", clustered(ANTI + [
        "POLYGON ((0 84, 0.1 84, 0.1 84.1, 0 84.1, 0 84))"], ["Coal"], crs=3857), "ok"),
    ("odd_commodity_text", clustered(P * 4, ODD_TEXT), "either"),
    ("bad_status", clustered(P, ["Gold"], status=["bogus"]), "error"),
]

for crs in CRSS:
    for shape in ("invalid", "identical", "touching"):
        FOOTPRINT_CASES.append((f"matrix_{shape}_{crs}", clustered(
            [w for w in SHAPE_SETS[shape][0]], ["Gold", None, "Coal,Gold"], crs=crs), "ok"))


@pytest.mark.parametrize("name,layer,expect", FOOTPRINT_CASES,
                         ids=[c[0] for c in FOOTPRINT_CASES])
def test_footprint_odd_inputs(name, layer, expect, qgis_env, tmp_path):
    path = write_layer(tmp_path, layer)
    out = tmp_path / "commodity.csv"
    proc = qgis_process(qgis_env, "mineclusters:footprintsummary",
                        {"INPUT": path, "OUTPUT_COMMODITY": out,
                         "OUTPUT_GRID": tmp_path / "grid.gpkg",
                         "REPORT": tmp_path / "report.html"})
    if proc.returncode != 0:
        assert expect != "ok", proc.stderr[-3000:] + proc.stdout[-3000:]
        error_sentence(proc)
        return
    assert expect != "error", "a bad input went through"
    no_traceback(proc)
    with open(out, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    total = sum(float(r["area_km2"]) for r in rows) * 1e6
    grid = read_rows(tmp_path / "grid.gpkg")
    assert sum(r["mine_area_km2"] for r in grid) * 1e6 == pytest.approx(total, rel=1e-6,
                                                                         abs=1e-3)
    assert (tmp_path / "report.html").stat().st_size > 0


VALIDATE_CASES = [
    ("overlapping_3857_vs_utm", clustered(P, ["Coal", "Gold,Coal", None], crs=3857),
     polys(P[:2], UTM, extra={"commodity": "str"}), "ok"),
    ("no_intersection", clustered(P, ["Coal"]), polys([box(100, 0)]), "ok"),
    ("invalid_reference", clustered(P, ["Coal"]), polys([BOWTIE, "POLYGON EMPTY", None]), "ok"),
    ("empty_reference", clustered(P, ["Coal"]), polys([]), "either"),
]

for crs in CRSS:
    for shape in ("invalid", "touching"):
        VALIDATE_CASES.append((f"matrix_{shape}_{crs}", clustered(
            SHAPE_SETS[shape][0], ["Coal", "Gold,Coal", None], crs=crs),
            polys(SHAPE_SETS[shape][0][1:3], 3857 if crs == 4326 else 4326), "ok"))


@pytest.mark.parametrize("name,layer,ref,expect", VALIDATE_CASES,
                         ids=[c[0] for c in VALIDATE_CASES])
def test_validate_odd_inputs(name, layer, ref, expect, qgis_env, tmp_path):
    layer.name, ref.name = "clustered", "reference"
    out = tmp_path / "pairs.gpkg"
    proc = qgis_process(qgis_env, "mineclusters:validate",
                        {"INPUT": write_layer(tmp_path, layer), "REFERENCE": write_layer(tmp_path, ref),
                         "REFERENCE_COMMODITIES": "Coal", "OUTPUT": out,
                         "OUTPUT_SUMMARY": tmp_path / "summary.csv"})
    if proc.returncode != 0:
        assert expect != "ok", proc.stderr[-3000:] + proc.stdout[-3000:]
        error_sentence(proc)
        return
    no_traceback(proc)
    results = json.loads(proc.stdout)["results"]
    pairs = read_rows(out)
    assert len(pairs) == results["N_PAIRS"]
    for p in pairs:
        assert 0.0 <= p["jaccard"] <= 1.0 and p["match"] in ("full", "partial", "none")


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
