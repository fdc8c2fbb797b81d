"""Footprint summary and validation inside QGIS: definitions, real sample data clustered by the
cluster algorithm, Natural Earth countries, RESOLVE biomes, GEM coal mine boundaries, CRS,
errors, cancel."""
import csv
import os

import pytest

pytest.importorskip("qgis.core")

from qgis.core import (  # noqa: E402
    NULL,
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsProcessingException,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterField,
    QgsProcessingParameterFile,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterNumber,
    QgsProject,
    QgsVectorLayer,
    QgsWkbTypes,
)

from qgis_helpers import BIOMES, COUNTRIES, GEM, LogFeedback, memory_layer  # noqa: E402


TABLES = ["OUTPUT_COMMODITY", "OUTPUT_COUNTRY", "OUTPUT_BIOME", "OUTPUT_TABLE2", "OUTPUT_TABLE3"]


def prun(alg, params, feedback=None):
    import processing  # on sys.path once the qgis_app fixture ran

    return processing.run(alg, params, feedback=feedback)


def need(path):
    if not os.path.exists(path):
        pytest.skip(f"shared data not found: {path}")
    return path


def layer(path):
    lyr = QgsVectorLayer(path, os.path.basename(path), "ogr")
    assert lyr.isValid(), path
    return lyr


def rows(path):
    lyr = layer(path)
    names = [f.name() for f in lyr.fields()]
    return [dict(zip(names, f.attributes())) for f in lyr.getFeatures()]


def fp_alg():
    from mine_clusters.algorithms.footprint import FootprintSummaryAlgorithm
    return FootprintSummaryAlgorithm()


def va_alg():
    from mine_clusters.algorithms.validate import ValidateAlgorithm
    return ValidateAlgorithm()


def fp_outputs(tmp_path, prefix="fp"):
    out = {k: str(tmp_path / f"{prefix}_{k.lower()}.gpkg") for k in TABLES + ["OUTPUT_GRID"]}
    out.update({"PLOT_COMMODITY": str(tmp_path / f"{prefix}_commodity.png"),
                "PLOT_COUNTRY": str(tmp_path / f"{prefix}_country.svg"),
                "PLOT_BIOME": str(tmp_path / f"{prefix}_biome.png"),
                "PLOT_GRID": str(tmp_path / f"{prefix}_grid.png"),
                "REPORT": str(tmp_path / f"{prefix}_report.html")})
    return out


@pytest.fixture(scope="module")
def clustered(provider, sample_polygons, sample_points, tmp_path_factory):
    """The real sample data run through the cluster algorithm (its polygons and points)."""
    d = tmp_path_factory.mktemp("clustered")
    out = {"OUTPUT_POLYGONS": str(d / "polygons.gpkg"), "OUTPUT_POINTS": str(d / "points.gpkg"),
           "OUTPUT_CLUSTERS": str(d / "clusters.gpkg"),
           "OUTPUT_SENSITIVITY": str(d / "sensitivity.gpkg"), "OUTPUT_PLOT": "",
           "OUTPUT_HISTOGRAM": ""}
    prun("mineclusters:clusterlocaloptimum",
                   dict(POLYGONS=sample_polygons, POINTS=sample_points, **out),
                   feedback=LogFeedback())
    return out


# ---- definitions ----------------------------------------------------------------------------

def test_footprint_definitions(qgis_app):
    alg = fp_alg()
    alg.initAlgorithm()
    assert alg.name() == "footprintsummary" and alg.createInstance().name() == "footprintsummary"
    p = alg.parameterDefinition("INPUT")
    assert isinstance(p, QgsProcessingParameterFeatureSource) and not p.flags() & p.FlagOptional
    for name in ("POINTS", "COUNTRIES", "BIOMES"):
        assert alg.parameterDefinition(name).flags() & p.FlagOptional
    assert isinstance(alg.parameterDefinition("COUNTRY_FIELD"), QgsProcessingParameterField)
    assert alg.parameterDefinition("COUNTRY_FIELD").parentLayerParameterName() == "COUNTRIES"
    assert alg.parameterDefinition("BIOME_FIELD").defaultValue() == "BIOME_NAME"
    cell = alg.parameterDefinition("CELL_SIZE")
    assert isinstance(cell, QgsProcessingParameterNumber) and cell.defaultValue() == 50000.0
    alloc = alg.parameterDefinition("ALLOCATION")
    assert isinstance(alloc, QgsProcessingParameterEnum) and len(alloc.options()) == 2
    assert alloc.defaultValue() == 0
    for name in TABLES + ["OUTPUT_GRID"]:
        assert isinstance(alg.parameterDefinition(name), QgsProcessingParameterFeatureSink)
    for name in ("PLOT_COMMODITY", "PLOT_COUNTRY", "PLOT_BIOME", "REPORT", "PLOT_GRID"):
        assert isinstance(alg.parameterDefinition(name), QgsProcessingParameterFileDestination)
    assert {o.name() for o in alg.outputDefinitions()} >= {
        "TOTAL_AREA_KM2", "ASSIGNED_AREA_PCT", "N_POLYGONS", "N_CELLS"}


def test_validate_definitions(qgis_app):
    alg = va_alg()
    alg.initAlgorithm()
    assert alg.name() == "validate"
    assert alg.parameterDefinition("REFERENCE_FIELD").parentLayerParameterName() == "REFERENCE"
    table = alg.parameterDefinition("TABLE")
    assert isinstance(table, QgsProcessingParameterFile) and table.flags() & table.FlagOptional
    assert table.extension() == "csv"
    assert {o.name() for o in alg.outputDefinitions()} >= {
        "N_PAIRS", "FULL_MATCH_PCT", "NO_MATCH_PCT", "MEAN_JACCARD", "OUTPUT", "OUTPUT_SUMMARY"}


# ---- footprint on real data -----------------------------------------------------------------

def test_footprint_on_clustered_sample_with_countries_and_biomes(clustered, tmp_path):
    from mine_clusters.core import footprint as fp

    need(COUNTRIES)
    need(BIOMES)
    out = fp_outputs(tmp_path)
    fb = LogFeedback()
    res = prun(fp_alg(), dict(
        INPUT=clustered["OUTPUT_POLYGONS"], POINTS=clustered["OUTPUT_POINTS"],
        COUNTRIES=COUNTRIES + "|layername=countries", COUNTRY_FIELD="name",
        BIOMES=BIOMES, **out), feedback=fb)
    polys = rows(clustered["OUTPUT_POLYGONS"])
    total_km2 = sum(p["area_m2"] for p in polys) / 1e6
    assert res["TOTAL_AREA_KM2"] == pytest.approx(total_km2, rel=1e-9)
    assert res["N_POLYGONS"] == len(polys)

    com = rows(out["OUTPUT_COMMODITY"])
    assert [f for f in com[0] if f != "fid"] == [n for n, _ in fp.COMMODITY_FIELDS]
    assert sum(r["area_km2"] for r in com) == pytest.approx(total_km2, rel=1e-9)
    # the sample is the Jharkhand coal belt: coal is the largest assigned commodity
    assert com[0]["commodity"] == "Coal"
    for key in ("OUTPUT_COUNTRY", "OUTPUT_BIOME"):
        rr = rows(out[key])
        assert sum(r["area_km2"] for r in rr) == pytest.approx(total_km2, rel=1e-9)
    country = {r["region"] for r in rows(out["OUTPUT_COUNTRY"])}
    assert "India" in country
    assert sum(r["area_km2"] for r in rows(out["OUTPUT_COUNTRY"]) if r["region"] == "India") \
        > 0.99 * total_km2
    biome = {r["region"] for r in rows(out["OUTPUT_BIOME"])}
    assert "Tropical & Subtropical Dry Broadleaf Forests" in biome
    # every sample polygon lies inside India and the biomes: no 'Outside' from clipping noise
    assert "Outside" not in country and "Outside" not in biome

    # Table 2 reconciles with the cluster output
    t2 = {r["status"]: r for r in rows(out["OUTPUT_TABLE2"])}
    assert t2["Assigned"]["n_polygons"] == sum(p["status"] != "unassigned" for p in polys)
    assert t2["Unassigned"]["n_polygons"] == sum(p["status"] == "unassigned" for p in polys)
    # every cluster: the distinct cluster ids of the polygons and the points layers (the
    # sample has clusters of points only), and every clustered point
    points = rows(clustered["OUTPUT_POINTS"])
    status = {f["cluster_id"]: f["status"] for f in polys + points}
    assert len(status) > len({p["cluster_id"] for p in polys})
    assert t2["Total"]["n_clusters"] == len(status)
    assert t2["Assigned"]["n_clusters"] == sum(s != "unassigned" for s in status.values())
    assert t2["Total"]["n_points"] == len(points)
    assert t2["Assigned"]["n_points"] == sum(status[p["cluster_id"]] != "unassigned"
                                             for p in points)
    clusters = rows(clustered["OUTPUT_CLUSTERS"])
    assert t2["Assigned"]["area_km2"] == pytest.approx(
        sum(c["area_m2"] for c in clusters if c["status"] != "unassigned") / 1e6, rel=1e-9)
    # Table 3: the sample's polygons carry 'sources' (harmonise): one source, both statuses
    t3 = rows(out["OUTPUT_TABLE3"])
    assert {r["sources"] for r in t3} == {"Maus et al. 2020 v1"}
    assert sum(r["n_polygons"] for r in t3) == len(polys)
    assert sum(r["area_km2"] for r in t3) == pytest.approx(total_km2, rel=1e-9)

    grid = layer(out["OUTPUT_GRID"])
    assert grid.crs().authid() == "EPSG:4326"
    assert QgsWkbTypes.geometryType(grid.wkbType()) == QgsWkbTypes.PolygonGeometry
    gnames = [f.name() for f in grid.fields()]
    assert gnames[1:1 + len(fp.GRID_BASE_FIELDS)] == [n for n, _ in fp.GRID_BASE_FIELDS]
    assert "km2_Coal" in gnames
    grows = rows(out["OUTPUT_GRID"])
    assert res["N_CELLS"] == len(grows) > 1
    assert sum(r["mine_area_km2"] for r in grows) == pytest.approx(total_km2, rel=1e-9)
    assert grid.styleManager() is not None
    # the default style stored in the GeoPackage colours cells by dominant commodity
    styled = QgsVectorLayer(out["OUTPUT_GRID"], "grid", "ogr")
    assert styled.renderer().type() == "categorizedSymbol"
    assert styled.renderer().classAttribute() == "dominant"

    with open(out["PLOT_COMMODITY"], "rb") as f:
        assert f.read(4) == b"\x89PNG"
    assert "<svg" in open(out["PLOT_COUNTRY"], encoding="utf-8").read()
    assert res["PLOT_GRID"] == out["PLOT_GRID"] and os.path.getsize(out["PLOT_GRID"]) > 1000
    page = open(out["REPORT"], encoding="utf-8").read()
    assert "Table 2" in page and "India" in page and "data:image/png;base64," in page
    tables_dir = os.path.splitext(out["REPORT"])[0] + "_tables"
    with open(os.path.join(tables_dir, "commodity.csv"), encoding="utf-8") as f:
        assert sum(float(r["area_km2"]) for r in csv.DictReader(f)) == pytest.approx(total_km2)


def test_report_embeds_every_plot_it_has_data_for_without_plot_files(clustered, tmp_path):
    """Only the report asked for (as qgis_process and the shipped model do): it still embeds the
    commodity, country, biome and grid plots; no plot file is left anywhere. Without countries
    or biomes their sections and plots are left out, not filled with 'Outside'."""
    need(COUNTRIES)
    need(BIOMES)
    base = dict(INPUT=clustered["OUTPUT_POLYGONS"], POINTS=clustered["OUTPUT_POINTS"])
    for k in TABLES + ["OUTPUT_GRID"]:
        base[k] = "TEMPORARY_OUTPUT"
    full = tmp_path / "full"
    full.mkdir()
    res = prun(fp_alg(), dict(base, COUNTRIES=COUNTRIES + "|layername=countries",
                              COUNTRY_FIELD="name", BIOMES=BIOMES,
                              REPORT=str(full / "report.html")))
    page = open(full / "report.html", encoding="utf-8").read()
    assert page.count("<img") == 4 and page.count("data:image/png;base64,") == 4, page.count("<img")
    for caption in ("Mine area by primary commodity", "Mine area by country", "Mine area by biome",
                    "Dominant primary commodity per grid cell"):
        assert caption in page
    assert "Area by country and commodity" in page and "India" in page
    assert "Area by biome and commodity" in page
    assert all(res[k] is None for k in ("PLOT_COMMODITY", "PLOT_COUNTRY", "PLOT_BIOME",
                                         "PLOT_GRID"))
    assert sorted(p.name for p in full.iterdir()) == ["report.html", "report_tables"]

    bare = tmp_path / "bare"
    bare.mkdir()
    prun(fp_alg(), dict(base, REPORT=str(bare / "report.html")))
    page = open(bare / "report.html", encoding="utf-8").read()
    assert page.count("<img") == 2  # commodity and grid: nothing to show by country or biome
    assert "Mine area by country" not in page and "Area by country and commodity" not in page
    assert "Area by biome and commodity" not in page and "Outside" not in page
    assert not os.path.exists(bare / "report_tables" / "country.csv")


def test_footprint_paper_rule_and_reprojected_input(clustered, tmp_path):
    """Input in EPSG:3857 is transformed, not rejected; the paper's rule gives whole polygons."""
    need(COUNTRIES)
    src = layer(clustered["OUTPUT_POLYGONS"])
    merc = QgsCoordinateReferenceSystem("EPSG:3857")
    spec_fields = [("cluster_id", "integer"), ("primary_commodities", "string"),
                   ("status", "string")]
    tr = QgsCoordinateTransform(src.crs(), merc, QgsProject.instance())
    data = []
    for f in src.getFeatures():
        g = f.geometry()
        g.transform(tr)
        data.append((g.asWkt(), [f["cluster_id"], f["primary_commodities"], f["status"]]))
    mem = memory_layer("MultiPolygon", "EPSG:3857", spec_fields, data, "merc")
    out = fp_outputs(tmp_path, "merc")
    res = prun(fp_alg(), dict(INPUT=mem, COUNTRIES=COUNTRIES + "|layername=countries",
                                        ALLOCATION=1, **out))
    # no area_m2 field: areas are computed on the sphere and agree with the engine's
    total = sum(f["area_m2"] for f in src.getFeatures()) / 1e6
    assert res["TOTAL_AREA_KM2"] == pytest.approx(total, rel=1e-3)
    country = rows(out["OUTPUT_COUNTRY"])
    assert {r["region"] for r in country} == {"India"}
    assert sum(r["area_km2"] for r in country) == pytest.approx(res["TOTAL_AREA_KM2"])


def test_footprint_without_regions_and_grid(clustered, tmp_path):
    out = fp_outputs(tmp_path, "bare")
    res = prun(fp_alg(), dict(INPUT=clustered["OUTPUT_POLYGONS"], CELL_SIZE=0, **out))
    assert res["N_CELLS"] == 0
    assert {r["region"] for r in rows(out["OUTPUT_COUNTRY"])} == {"Outside"}
    t2 = {r["status"]: r for r in rows(out["OUTPUT_TABLE2"])}
    assert t2["Total"]["n_points"] is None or str(t2["Total"]["n_points"]) == "NULL"


def test_footprint_with_sources_gives_table3(qgis_app, tmp_path):
    lyr = memory_layer("Polygon", "EPSG:4326",
                       [("cluster_id", "integer"), ("primary_commodities", "string"),
                        ("status", "string"), ("area_m2", "double"), ("sources", "string")],
                       [("POLYGON((85 22,85.01 22,85.01 22.01,85 22.01,85 22))",
                         [1, "Coal", "assigned", 2e6, "Maus/Tang"]),
                        ("POLYGON((86 22,86.01 22,86.01 22.01,86 22.01,86 22))",
                         [2, None, "unassigned", 1e6, "OSM"])])
    out = fp_outputs(tmp_path, "src")
    prun(fp_alg(), dict(INPUT=lyr, **out))
    t3 = rows(out["OUTPUT_TABLE3"])
    assert [(r["status"], r["sources"], r["n_polygons"]) for r in t3] == [
        ("Assigned", "Maus/Tang", 1), ("Unassigned", "OSM", 1)]
    assert t3[0]["area_km2"] == pytest.approx(2.0)


def test_footprint_missing_field_error(qgis_app, tmp_path):
    lyr = memory_layer("Polygon", "EPSG:4326", [("primary_commodities", "string")],
                       [("POLYGON((0 0,1 0,1 1,0 0))", ["Coal"])], "plain")
    with pytest.raises(QgsProcessingException, match="'plain' has no 'cluster_id' field"):
        prun(fp_alg(), dict(INPUT=lyr, **fp_outputs(tmp_path, "err")))


def test_footprint_bad_country_field_error(clustered, tmp_path):
    need(COUNTRIES)
    with pytest.raises(QgsProcessingException, match="has no 'ISO_A3' field"):
        prun(fp_alg(), dict(INPUT=clustered["OUTPUT_POLYGONS"],
                                      COUNTRIES=COUNTRIES + "|layername=countries",
                                      COUNTRY_FIELD="ISO_A3", **fp_outputs(tmp_path, "err2")))


def test_footprint_cancelled_gives_nothing(clustered, tmp_path):
    fb = LogFeedback()
    fb.cancel()
    res = prun(fp_alg(), dict(INPUT=clustered["OUTPUT_POLYGONS"],
                                        **fp_outputs(tmp_path, "cancel")), feedback=fb)
    assert not res.get("TOTAL_AREA_KM2")
    assert any("Cancelled" in m for m in fb.infos)


# ---- validation on real data ----------------------------------------------------------------

def _gem_pairs(polygons_path):
    """(feature id, GEM boundary position) of every clustered polygon and GEM boundary polygon
    that intersect, with shapely on the files: an independent count."""
    import json

    import shapely

    ours = layer(polygons_path)
    fids, geoms = [], []
    for f in ours.getFeatures():
        fids.append(f.id())
        geoms.append(shapely.make_valid(shapely.from_wkb(bytes(f.geometry().asWkb()))))
    with open(GEM, encoding="utf-8") as fh:
        refs = [shapely.from_geojson(json.dumps(f["geometry"])) for f in json.load(fh)["features"]
                if f.get("geometry") and f["geometry"]["type"] in ("Polygon", "MultiPolygon")]
    a, b = shapely.STRtree(shapely.make_valid(refs)).query(geoms, predicate="intersects")
    return sorted((fids[i], int(j)) for i, j in zip(a, b))


@pytest.mark.parametrize("reference", ["Coal", "Lignite, Aggregates"])
def test_validate_against_gem_boundaries(clustered, tmp_path, reference):
    """The sample (ICMM, Jasansky and GEM points) clustered, against the GEM coal mine
    boundaries as {Coal}: pairs counted with shapely, metrics from the commodity sets. Given
    as 'Lignite, Aggregates', the reference reads {Coal} through the default harmonisation
    table (Lignite -> Coal, Aggregates -> Not relevant)."""
    import statistics

    need(GEM)
    out = {"OUTPUT": str(tmp_path / "pairs.gpkg"), "OUTPUT_SUMMARY": str(tmp_path / "t4.gpkg"),
           "PLOT": str(tmp_path / "v.png"), "REPORT": str(tmp_path / "v.html")}
    fb = LogFeedback()
    res = prun(va_alg(), dict(INPUT=clustered["OUTPUT_POLYGONS"],
                                        REFERENCE=GEM + "|geometrytype=Polygon",
                                        REFERENCE_COMMODITIES=reference, **out), feedback=fb)
    pairs = rows(out["OUTPUT"])
    expected = _gem_pairs(clustered["OUTPUT_POLYGONS"])
    assert len(expected) > 10
    assert res["N_PAIRS"] == len(pairs) == len(expected)
    assert sorted(p["feature_id"] for p in pairs) == [fid for fid, _ in expected]
    defined = {"jaccard": [], "id_overlap": []}
    matches = []
    for p in pairs:
        assert p["reference_commodities"] == "Coal"
        text = p["primary_commodities"]
        A = set() if text == NULL else {x.strip().casefold() for x in text.split(",")}
        inter = len(A & {"coal"})
        jac = inter / len(A | {"coal"})
        match = "full" if A == {"coal"} else "partial" if inter else "none"
        assert p["match"] == match and p["jaccard"] == pytest.approx(jac)
        assert p["id_overlap"] == (NULL if not A else int(inter > 0))
        defined["jaccard"].append(jac)
        if A:
            defined["id_overlap"].append(int(inter > 0))
        matches.append(match)
    summary = {r["statistic"]: r for r in rows(out["OUTPUT_SUMMARY"])}
    assert list(summary) == ["Mean", "SD", "Median", "Count", "Proportion", "Undefined"]
    for m, values in defined.items():
        assert summary["Mean"][m] == pytest.approx(statistics.mean(values))
        assert summary["Undefined"][m] == len(pairs) - len(values)
    c = summary["Count"]
    assert (c["full_match"], c["partial_match"], c["no_match"]) == (
        matches.count("full"), matches.count("partial"), matches.count("none"))
    assert res["FULL_MATCH_PCT"] == pytest.approx(100.0 * matches.count("full") / len(pairs))
    assert res["MEAN_JACCARD"] == pytest.approx(statistics.mean(defined["jaccard"]))
    with open(out["REPORT"], encoding="utf-8") as fh:
        assert os.path.exists(out["PLOT"]) and "Table 4" in fh.read()


def test_validate_takes_the_gem_boundaries_file_as_shipped(clustered, tmp_path):
    """The GEM coal mine boundaries GeoJSON mixes 333 polygons with 1,782 points and a line:
    its polygons are used (the same pairs as with only its polygon sublayer), the others are
    reported, and the reference's own id comes through in reference_name."""
    import json

    need(GEM)
    fb = LogFeedback()
    out = {"OUTPUT": str(tmp_path / "pairs.gpkg"), "OUTPUT_SUMMARY": "", "PLOT": "", "REPORT": ""}
    res = prun(va_alg(), dict(INPUT=clustered["OUTPUT_POLYGONS"], REFERENCE=GEM,
                              REFERENCE_COMMODITIES="Coal", REFERENCE_ID_FIELD="id", **out),
               feedback=fb)
    pairs = rows(out["OUTPUT"])
    expected = _gem_pairs(clustered["OUTPUT_POLYGONS"])
    assert res["N_PAIRS"] == len(pairs) == len(expected) > 10
    assert sorted(p["feature_id"] for p in pairs) == [fid for fid, _ in expected]
    with open(GEM, encoding="utf-8") as fh:
        feats = json.load(fh)["features"]
    polygon_ids = [f["properties"]["id"] for f in feats
                   if f.get("geometry") and f["geometry"]["type"] in ("Polygon", "MultiPolygon")]
    # the j-th GEM polygon of the oracle is the one each pair names
    assert sorted((p["feature_id"], p["reference_name"]) for p in pairs) == sorted(
        (fid, polygon_ids[j]) for fid, j in expected)
    n_other = sum(1 for f in feats if f.get("geometry")
                  and f["geometry"]["type"] not in ("Polygon", "MultiPolygon"))
    assert n_other == 1783
    assert any(f"{n_other} features of the reference polygons layer" in w and "333 polygons" in w
               for w in fb.warnings), fb.warnings


def test_validate_harmonises_the_reference_field(qgis_app, tmp_path):
    """A reference field naming 'Lignite' matches a 'Coal' cluster through the default table;
    a user table (TABLE) that maps it elsewhere gives no match; an unreadable one is an error."""
    clus = memory_layer("Polygon", "EPSG:4326", [("cluster_id", "integer"),
                                                 ("primary_commodities", "string")],
                        [("POLYGON((85 22,85.01 22,85.01 22.01,85 22.01,85 22))", [1, "Coal"])])
    ref = memory_layer("Polygon", "EPSG:4326", [("commodity", "string")],
                       [("POLYGON((85 22,85.02 22,85.02 22.02,85 22.02,85 22))", ["Lignite"])])
    params = dict(INPUT=clus, REFERENCE=ref, REFERENCE_FIELD="commodity",
                  OUTPUT=str(tmp_path / "pairs.gpkg"), OUTPUT_SUMMARY="", PLOT="", REPORT="")
    res = prun(va_alg(), params)
    pair = rows(str(tmp_path / "pairs.gpkg"))[0]
    assert (pair["reference_commodities"], pair["match"]) == ("Coal", "full")
    assert res["FULL_MATCH_PCT"] == 100.0
    table = tmp_path / "mine.csv"
    table.write_text("raw,harmonised\nLignite,Brown coal\n", encoding="utf-8")
    res = prun(va_alg(), dict(params, TABLE=str(table), OUTPUT=str(tmp_path / "p2.gpkg")))
    pair = rows(str(tmp_path / "p2.gpkg"))[0]
    assert (pair["reference_commodities"], pair["match"]) == ("Brown coal", "none")
    assert res["NO_MATCH_PCT"] == 100.0
    empty = tmp_path / "empty.csv"
    empty.write_text("\n", encoding="utf-8")
    with pytest.raises(QgsProcessingException, match="harmonisation table .* is empty"):
        prun(va_alg(), dict(params, TABLE=str(empty), OUTPUT=str(tmp_path / "p3.gpkg")))


def test_validate_needs_reference_commodities(clustered, tmp_path):
    need(GEM)
    with pytest.raises(QgsProcessingException, match="No reference commodities"):
        prun(va_alg(), dict(INPUT=clustered["OUTPUT_POLYGONS"],
                                      REFERENCE=GEM + "|geometrytype=Polygon",
                                      OUTPUT="TEMPORARY_OUTPUT", OUTPUT_SUMMARY="TEMPORARY_OUTPUT"))


def test_footprint_outputs_are_optional(clustered):
    """Only INPUT given: no output is required, the numbers are still returned."""
    res = prun(fp_alg(), dict(INPUT=clustered["OUTPUT_POLYGONS"]))
    assert res["TOTAL_AREA_KM2"] > 0 and res["N_CELLS"] > 0


SEPIN_1000 = os.path.join(os.path.dirname(GEM), "..", "sepin2025-combined-polygons-demo",
                          "commit-633645897-1000polygons", "mining_polygons_combined_demo.gpkg")


@pytest.mark.parametrize("allocation", [0, 1], ids=["intersection", "centroid"])
def test_alaskan_mines_are_in_the_united_states(provider, tmp_path, allocation):
    """Natural Earth 10m, as GDAL reads it, draws Russia's ring across ±180°: read as drawn, the
    ring was a band round the globe that covered Alaska, and 18 km² (intersection) or 36 km²
    (centroid) of the real Alaskan mine polygons went to Russia. The regions are cut at ±180°
    now: every Alaskan mine is in the United States (or Outside, at the coast), none in Russia,
    and no overlap of countries is reported."""
    src = layer(need(SEPIN_1000))
    alaska = [f.geometry() for f in src.getFeatures()
              if f.geometry().boundingBox().xMaximum() < -141.0
              and f.geometry().boundingBox().yMinimum() > 51.0]
    assert len(alaska) > 50, len(alaska)
    polys = memory_layer("Polygon", "EPSG:4326", [("cluster_id", "integer"),
                                                   ("primary_commodities", "string")],
                         [(g.asWkt(), [1, "Gold"]) for g in alaska], name="alaska")
    log = LogFeedback()
    out = str(tmp_path / "countries.csv")
    res = prun(fp_alg(), {"INPUT": polys, "COUNTRIES": need(COUNTRIES), "CELL_SIZE": 0,
                          "ALLOCATION": allocation, "OUTPUT_COUNTRY": out}, feedback=log)
    with open(out, encoding="utf-8") as fh:
        area = {}
        for r in csv.DictReader(fh):
            area[r["region"]] = area.get(r["region"], 0.0) + float(r["area_km2"])
    assert "Russia" not in area, area
    usa = [k for k in area if k.startswith("United States")]
    assert usa and area[usa[0]] >= 0.99 * res["TOTAL_AREA_KM2"], area
    assert not [w for w in log.warnings if "overlap" in w], log.warnings
    assert any("cut at ±180°" in line and "Russia" in line for line in log.infos), log.infos
