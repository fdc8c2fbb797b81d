"""Validation metrics (Table 4) on hand-made sets and against GEM coal mine boundaries."""
import json
import os

import pytest
import shapely

from mine_clusters.core import validate as va
from mine_clusters.core.errors import Cancelled, InputError

DATA = os.environ.get("MINE_CLUSTERS_SHARED_DATA",
                      os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data"))


def test_metrics_coal_vs_coal_gold():
    m = va.set_metrics({"Coal"}, {"Coal", "Gold"})
    assert m.jaccard == pytest.approx(0.5)
    assert m.dice == pytest.approx(2 / 3)
    assert m.overlap == 1.0 and m.id_overlap == 1 and m.match == "partial"


@pytest.mark.parametrize("a,b,jac,dice,ovl,idv,match", [
    ({"Coal"}, {"coal"}, 1.0, 1.0, 1.0, 1, "full"),                # case-insensitive
    ({"Gold", "Copper"}, {"Copper", "Gold"}, 1.0, 1.0, 1.0, 1, "full"),
    ({"Gold"}, {"Coal"}, 0.0, 0.0, 0.0, 0, "none"),
    ({"Gold", "Copper", "Silver"}, {"Copper", "Zinc"}, 0.25, 0.4, 0.5, 1, "partial"),
    # unassigned polygon: |A∪B| = 1 and |A| + |B| = 1, so Jaccard = Dice = 0/1; min(|A|, |B|) = 0,
    # so the overlap coefficient is undefined and with it the identifier overlap (the R code's
    # `idoverlap = overlapcoeff > 0` is NA there)
    (set(), {"Coal"}, 0.0, 0.0, None, None, "none"),
    ({"Coal"}, set(), 0.0, 0.0, None, None, "none"),               # (and the other way round)
])
def test_metrics_table(a, b, jac, dice, ovl, idv, match):
    m = va.set_metrics(a, b)
    assert m.jaccard == pytest.approx(jac) and m.dice == pytest.approx(dice)
    assert (m.overlap is None and ovl is None) or m.overlap == pytest.approx(ovl)
    assert (m.id_overlap, m.match) == (idv, match)


def test_two_empty_sets_are_rejected():
    with pytest.raises(InputError, match="empty"):
        va.set_metrics(set(), set())


def sq(x, y, d=1.0):
    return shapely.box(x, y, x + d, y + d)


def test_pairs_and_summary_hand_case():
    # clustered polygons: 10 Coal (hits ref A, Coal), 11 Coal (hits A and B), 12 unassigned
    # (hits B), 13 Gold (hits nothing)
    clus = [sq(0, 0), sq(1.5, 0), sq(2.6, 0), sq(9, 9)]
    refs = [sq(0.5, 0, 1.5), sq(2.2, 0, 1)]
    r = va.validate(clus, [10, 11, 12, 13], [1, 1, 2, 3], ["Coal", "Coal", None, "Gold"],
                    refs, [100, 200], ["Coal", "Coal, Iron"])
    got = [(p["feature_id"], p["reference_id"], p["match"]) for p in r.pairs]
    assert got == [(10, 100, "full"), (11, 100, "full"), (11, 200, "partial"), (12, 200, "none")]
    # hand: Jaccard 1, 1, 0.5, 0 -> mean 0.625, median 0.75, SD (n-1) = sqrt(0.2291666...)
    mean = r.stat("Mean")
    assert mean["jaccard"] == pytest.approx(0.625)
    assert r.stat("Median")["jaccard"] == pytest.approx(0.75)
    assert r.stat("SD")["jaccard"] == pytest.approx((((0.375**2) * 2 + 0.125**2 + 0.625**2) / 3) ** 0.5)
    # the overlap coefficient and the identifier overlap of the unassigned pair are undefined:
    # the three defined pairs share Coal with the reference, so both means are 3/3 = 1
    assert mean["overlap"] == pytest.approx(1.0)
    assert mean["id_overlap"] == pytest.approx(1.0)
    assert [p["id_overlap"] for p in r.pairs] == [1, 1, 1, None]
    count, prop = r.stat("Count"), r.stat("Proportion")
    assert (count["full_match"], count["partial_match"], count["no_match"]) == (2, 1, 1)
    assert prop["full_match"] == pytest.approx(50.0)
    undefined = r.stat("Undefined")
    assert (undefined["jaccard"], undefined["dice"], undefined["overlap"],
            undefined["id_overlap"]) == (0, 0, 1, 1)
    assert [row["statistic"] for row in r.summary] == [
        "Mean", "SD", "Median", "Count", "Proportion", "Undefined"]
    assert set(r.summary[0]) == {n for n, _ in va.SUMMARY_FIELDS}
    assert set(r.pairs[0]) - {"index"} == {n for n, _ in va.PAIR_FIELDS}

    r2 = va.validate(clus, [10, 11, 12, 13], [1, 1, 2, 3], ["Coal", "Coal", None, "Gold"],
                     refs, [100, 200], ["Coal", "Coal, Iron"], include_unassigned=False)
    assert r2.n_pairs == 3 and r2.n_skipped_unassigned == 1


def test_identifier_overlap_of_an_unassigned_polygon_is_undefined():
    """An unassigned polygon's identifier overlap is NA, as in the R code, not 0.

    Pairs against the reference {Coal}: Coal (shares Coal: 1), Gold (shares nothing: 0),
    unassigned (undefined). Mean over the two defined pairs (1 + 0) / 2 = 0.5, SD (n - 1)
    sqrt(((1 - 0.5)² + (0 - 0.5)²) / 1) = sqrt(0.5); the overlap coefficient is 1, 0, undefined:
    the same figures. Jaccard is defined for all three (1, 0, 0): mean 1/3, nothing undefined.
    """
    b = [sq(0, 0), sq(2, 0), sq(4, 0)]
    r = va.validate(b, [1, 2, 3], [1, 2, 3], ["Coal", "Gold", None], [shapely.box(-1, 0, 6, 1)],
                    [9], ["Coal"])
    assert [(p["feature_id"], p["id_overlap"], p["overlap"]) for p in r.pairs] == [
        (1, 1, 1.0), (2, 0, 0.0), (3, None, None)]
    mean, sd, median = r.stat("Mean"), r.stat("SD"), r.stat("Median")
    for metric in ("id_overlap", "overlap"):
        assert mean[metric] == pytest.approx(0.5)
        assert sd[metric] == pytest.approx(0.5 ** 0.5)
        assert median[metric] == pytest.approx(0.5)
        assert r.stat("Undefined")[metric] == 1
    assert mean["jaccard"] == pytest.approx(1 / 3) and r.stat("Undefined")["jaccard"] == 0
    # the unassigned pair is still a "no match" among all three pairs
    assert r.stat("Count")["no_match"] == 2
    assert r.stat("Proportion")["no_match"] == pytest.approx(200 / 3)
    # a NaN (e.g. read back from a layer) is undefined too
    rows = va.summarise_pairs([dict(p, id_overlap=float("nan")) if p["id_overlap"] is None
                               else p for p in r.pairs])
    assert rows[0]["id_overlap"] == pytest.approx(0.5) and rows[-1]["id_overlap"] == 1


def test_reference_without_commodity_is_skipped_and_harmonised():
    r = va.validate([sq(0, 0)], [1], [1], ["Coal"], [sq(0.5, 0.5), sq(0.2, 0.2)], [1, 2],
                    [None, "Lignite"], harmonisation={"lignite": "Coal"})
    assert r.n_pairs == 1 and r.n_skipped_reference == 1
    assert r.pairs[0]["match"] == "full"


def test_reference_harmonisation_is_the_plugins_table():
    """The default table for the reference is core/data/commodity_harmonisation.csv, read here
    with the csv module: 'Lignite' is Coal there, 'Aggregates' is 'Not relevant' (dropped, as
    the harmonise algorithms drop it from the points)."""
    import csv

    path = os.path.join(os.path.dirname(va.__file__), "data", "commodity_harmonisation.csv")
    with open(path, encoding="utf-8") as fh:
        rows = {r["material"]: r["material_harmonized"] for r in csv.DictReader(fh)}
    assert rows["Lignite"] == "Coal" and rows["Aggregates"] == "Not relevant"
    table = va.reference_harmonisation()
    assert table["lignite"] == "Coal" and table["aggregates"] == "" and table["processing"] == ""
    # a reference naming Lignite matches a Coal cluster only once harmonised
    args = ([sq(0, 0)], [1], [1], ["Coal"], [sq(0.5, 0.5)], [7], ["Lignite, Aggregates"])
    assert va.validate(*args).pairs[0]["match"] == "none"
    pair = va.validate(*args, harmonisation=table).pairs[0]
    assert (pair["match"], pair["reference_commodities"]) == ("full", "Coal")


def test_errors_and_cancel():
    with pytest.raises(InputError, match="no polygon to validate"):
        va.validate([], [], [], [], [sq(0, 0)], [1], ["Coal"])
    with pytest.raises(InputError, match="reference polygons layer has no polygon"):
        va.validate([sq(0, 0)], [1], [1], ["Coal"], [], [], [])
    with pytest.raises(Cancelled):
        va.validate([sq(0, 0)], [1], [1], ["Coal"], [sq(0, 0)], [1], ["Coal"],
                    should_stop=lambda: True)


def _gem_boundaries():
    """Every GEM coal mine boundary polygon (the lease boundaries, not the methane points)."""
    path = os.path.join(DATA, "gem-coal-mine-boundaries-v1.0.2", "coal-mine-boundaries-methane.geojson")
    if not os.path.exists(path):
        pytest.skip("shared data not found")
    with open(path, encoding="utf-8") as fh:
        feats = [f for f in json.load(fh)["features"]
                 if f["geometry"] and f["geometry"]["type"] in ("Polygon", "MultiPolygon")]
    return [shapely.from_geojson(json.dumps(f["geometry"])) for f in feats]


def _india_clusters():
    """The Maus v1 India polygons clustered (engine defaults) with every ICMM, Jasansky and GEM
    point within their box widened by 0.5°, harmonised with the plugin's default table, as the
    harmonise and cluster algorithms do (scripts/make_sample_data.py)."""
    import csv

    from realdata import read_geojson, read_gpkg, shared_path

    from mine_clusters.core import cluster_mines, prepare_features
    from mine_clusters.core.harmonise import PointSource, harmonise_points

    paths = [shared_path("maus2020-v1-india-brazil", "indian_polygon_with_grId.geojson"),
             shared_path("icmm-global-mining-dataset-2025", "mines.geojson"),
             shared_path("jasansky2022-facilities-prerelease", "facilities.gpkg"),
             shared_path("gem-global-coal-mine-tracker-2022-07",
                         "Global-Coal-Mine-Tracker-July-2022.csv")]
    if not all(os.path.exists(p) for p in paths):
        pytest.skip("shared data not found")
    polys, props = read_geojson(paths[0])
    x0, y0, x1, y1 = shapely.total_bounds(polys)
    bbox = (x0 - 0.5, y0 - 0.5, x1 + 0.5, y1 + 0.5)
    g, p = read_geojson(paths[1], bbox)
    icmm = PointSource("ICMM 2025", g, [q["id"] for q in p], [q.get("primaryCommodity") for q in p],
                       [[q.get("secondaryCommodity") for q in p],
                        [q.get("otherCommodities") for q in p]])
    g, p = read_gpkg(paths[2], "facilities", bbox)
    jas = PointSource("Jasansky et al. 2022", g, [q["fid"] for q in p],
                      [q.get("primary_commodity") for q in p],
                      [[q.get("commodities_products") for q in p]])
    g, ids = [], []
    with open(paths[3], encoding="latin-1") as fh:
        for row in csv.DictReader(fh):
            try:
                x, y = float(row["Longitude"]), float(row["Latitude"])
            except ValueError:
                continue
            if bbox[0] <= x <= bbox[2] and bbox[1] <= y <= bbox[3]:
                g.append(shapely.Point(x, y))
                ids.append(row["Mine IDs"])
    gem = PointSource("GEM GCMT 2022-07", g, ids, ["Coal"] * len(g))   # its mines are coal mines
    pts = harmonise_points([icmm, jas, gem])
    assert set(pts.source) == {"ICMM 2025", "Jasansky et al. 2022", "GEM GCMT 2022-07"}
    res = cluster_mines(prepare_features(
        polygons=polys, polygon_ids=[q["fid"] for q in props], points=pts.points,
        point_ids=list(pts.point_id), primary=pts.primary_commodity, commodities=pts.commodities))
    return polys, res.polygons


def _names(text):
    return {x.strip().casefold() for x in (text or "").split(",") if x.strip()}


def test_gem_boundaries_against_clusters_of_all_real_india_points():
    """Real case: India's polygons clustered with all the shared inventories (ICMM, Jasansky,
    GEM: coal, iron, bauxite, gold, ...) against the GEM coal mine boundaries (reference {Coal}).
    A cluster near a coal mine may hold other commodities, so any match is possible; pairs
    and metrics are derived here apart from core: pairs with shapely, metrics with set
    arithmetic, statistics with the statistics module."""
    import statistics

    polys, t = _india_clusters()
    # the clusters are not all coal: a partial or no match is possible
    sets = {frozenset(_names(x)) for x in t.primary_commodities}
    assert {frozenset({"coal"}), frozenset()} < sets
    assert any(s and s != {"coal"} for s in sets)
    gem = _gem_boundaries()
    cg = [polys[i] for i in t.index]
    r = va.validate(cg, t.feature_id, t.cluster_id, t.primary_commodities, gem,
                    list(range(len(gem))), ["Coal"] * len(gem))
    # pairs: every clustered polygon and GEM boundary that intersect
    a, b = shapely.STRtree(shapely.make_valid(gem)).query(shapely.make_valid(cg),
                                                          predicate="intersects")
    expected = sorted((int(t.feature_id[i]), int(j)) for i, j in zip(a, b))
    assert len(expected) > 10
    assert [(p["feature_id"], p["reference_id"]) for p in r.pairs] == expected
    # metrics of each pair from its sets A (primary) and B = {coal}
    B = {"coal"}
    want = {m: [] for m in ("jaccard", "dice", "overlap", "id_overlap")}
    matches = []
    for p in r.pairs:
        A = _names(t.primary_commodities[list(t.feature_id).index(p["feature_id"])])
        inter, union = len(A & B), len(A | B)
        jac, dice = inter / union, 2 * inter / (len(A) + len(B))
        ovl = inter / min(len(A), len(B)) if A else None
        idv = (1 if inter else 0) if A else None
        match = "full" if A == B else "none" if not inter else "partial"
        assert (p["jaccard"], p["dice"], p["overlap"], p["id_overlap"], p["match"]) == \
            (pytest.approx(jac), pytest.approx(dice), ovl if ovl is None else pytest.approx(ovl),
             idv, match)
        for m, v in zip(want, (jac, dice, ovl, idv)):
            if v is not None:
                want[m].append(v)
        matches.append(match)
    for m, values in want.items():
        assert r.stat("Mean")[m] == pytest.approx(statistics.mean(values))
        assert r.stat("Median")[m] == pytest.approx(statistics.median(values))
        assert r.stat("SD")[m] == pytest.approx(statistics.stdev(values))
        assert r.stat("Undefined")[m] == len(r.pairs) - len(values)
    count = r.stat("Count")
    assert (count["full_match"], count["partial_match"], count["no_match"]) == (
        matches.count("full"), matches.count("partial"), matches.count("none"))


def test_validation_report_and_plot(tmp_path):
    from mine_clusters.core import footprint_plots, report

    r = va.validate([sq(0, 0), sq(1.5, 0)], [1, 2], [1, 2], ["Coal", "Gold,Coal"],
                    [sq(0.5, 0, 1.5)], [7], ["Coal"])
    png = footprint_plots.validation_plot(r.pairs, str(tmp_path / "v.png"))
    page = open(report.validation_report(r, str(tmp_path / "v.html"), images=[(png, "Metrics")]),
                encoding="utf-8").read()
    assert "Table 4" in page and "data:image/png;base64," in page
    assert "Proportion" in page and "50.0" in page


def test_validation_plot_suptitle_clear_of_the_subplot_titles():
    """The suptitle used to overlap the middle subplots' titles; the undefined pairs are named."""
    from mine_clusters.core import footprint_plots

    r = va.validate([sq(0, 0), sq(2, 0)], [1, 2], [1, 2], ["Coal", None], [shapely.box(-1, 0, 4, 1)],
                    [9], ["Coal"])
    fig = footprint_plots.validation_figure(r.pairs)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    top = fig._suptitle.get_window_extent(renderer)
    titles = [ax.title for ax in fig.axes]
    assert len(titles) == 4
    for t in titles:
        assert not t.get_window_extent(renderer).overlaps(top), t.get_text()
    assert [t.get_text() for t in titles] == [
        "Jaccard", "Dice", "Overlap coefficient (1 undefined)", "ID overlap (1 undefined)"]


def _pairs(result):
    return [(p["feature_id"], p["reference_id"]) for p in result.pairs]


def test_nan_vertex_is_one_sentence_naming_layer_feature_and_coordinate():
    # a NaN vertex used to reach shapely.make_valid and end in a GEOS error
    nan_ring = shapely.from_wkt("POLYGON ((9.3 47, NaN 47, 9.31 47.01, 9.3 47))")
    with pytest.raises(InputError, match="^Feature 7 of the reference polygons layer has a "
                                         r"coordinate that is not a number \(nan, 47.0\)"):
        va.validate([sq(9, 47)], [1], [1], ["Coal"], [sq(9, 47), nan_ring], [5, 7],
                    ["Coal", "Coal"])
    with pytest.raises(InputError) as err:     # the wrapper names the layer
        va.validate([sq(9, 47)], [1], [1], ["Coal"], [sq(9, 47), nan_ring], [5, 7],
                    ["Coal", "Coal"], reference_layer="reference polygons layer 'refs'")
    text = str(err.value)
    assert text.startswith("Feature 7 of the reference polygons layer 'refs' has a coordinate "
                           "that is not a number (nan, 47.0)")
    assert "\n" not in text and text.count(". ") == 0
    with pytest.raises(InputError, match="Feature 3 of the clustered polygons layer 'c' .*not a "
                                         "number"):
        va.validate([sq(9, 47), nan_ring], [2, 3], [1, 1], ["Coal", "Coal"], [sq(9, 47)], [5],
                    ["Coal"], layer="clustered polygons layer 'c'")


# a ring drawn across 180° (179.99 -> -179.99): 0.02° wide on the globe, not 359.98°
CROSS = shapely.from_wkt("POLYGON ((179.99 20, -179.99 20, -179.99 20.01, 179.99 20.01, "
                         "179.99 20))")


def test_reference_ring_across_the_antimeridian_is_cut_there():
    # clustered 1 (179.995..180) and 2 (-180..-179.995) lie inside the ring's 0.02° on the
    # globe; 3 at 0° is half a world away
    clus = [sq(179.995, 20, 0.005), sq(-180, 20, 0.005), sq(0, 20, 0.01)]
    r = va.validate(clus, [1, 2, 3], [1, 2, 3], ["Coal"] * 3, [CROSS], [9], ["Coal"])
    assert _pairs(r) == [(1, 9), (2, 9)]


def test_clustered_ring_across_the_antimeridian_is_cut_there():
    refs = [sq(-179.995, 20.002, 0.002), sq(0, 20, 0.01), sq(179.992, 20.002, 0.002)]
    r = va.validate([CROSS, sq(0, 20, 0.01)], [1, 2], [1, 2], ["Coal", "Coal"], refs,
                    [10, 20, 30], ["Coal"] * 3)
    assert _pairs(r) == [(1, 10), (1, 30), (2, 20)]


def test_longitudes_beyond_180_are_wrapped():
    # 185° E is 175° W and -185° is 175° E (one turn of 360°), as harmonise and footprint read them
    clus = [sq(185, 10), sq(-185, 0), sq(9, 47)]
    refs = [sq(-175, 10), sq(175, 0), sq(189, 47)]     # 189° E = 171° W: far from 9° E
    r = va.validate(clus, [1, 2, 3], [1, 2, 3], ["Coal"] * 3, refs, [10, 20, 30], ["Coal"] * 3)
    assert _pairs(r) == [(1, 10), (2, 20)]
