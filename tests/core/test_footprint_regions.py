"""Footprint regions (issue 15, point 7): region polygons are read by the core's one geometry rule
(a ring drawn across ±180° is cut there, so Natural Earth's Russia stays in Eurasia and Alaska's
mines stay in the United States), and regions that overlap are reported, the mine land in the
overlap split equally between them, so that every table still sums to the total mine area."""
import os

import numpy as np
import pytest
import shapely

from mine_clusters.core import footprint as fp
from mine_clusters.core.errors import InputError
from realdata import read_gpkg, shared_path

NE = ("natural-earth-countries", "world-atlas-2.0.2")
SEPIN = ("sepin2025-combined-polygons-demo", "commit-633645897-1000polygons",
         "mining_polygons_combined_demo.gpkg")
RED_DOG = (-162.87, 68.07)       # the Red Dog zinc mine, north-west Alaska


def box(x0, y0, x1, y1):
    return shapely.box(x0, y0, x1, y1)


def polys(geoms, primary, area):
    n = len(geoms)
    return fp.mine_polygons(geoms, list(range(1, n + 1)), list(range(1, n + 1)), primary,
                            area_m2=area)


def rows_by(rows, *keys):
    return {tuple(r[k] for k in keys): r["area_km2"] for r in rows}


def km2(rows):
    return sum(r["area_km2"] for r in rows)


# ------------------------------------------------------------------ real data: Alaska and Russia

def _read_as_qgis_does(path, layer, field):
    """(geometries, names) of a layer as GDAL hands them to QGIS (WKB, nothing repaired)."""
    ogr = pytest.importorskip("osgeo.ogr")
    if not os.path.exists(path):
        pytest.skip("shared data not found")
    ds = ogr.Open(path)
    geoms, names = [], []
    for f in ds.GetLayerByName(layer) if layer else ds.GetLayer(0):
        g = f.GetGeometryRef()
        geoms.append(None if g is None else shapely.from_wkb(bytes(g.ExportToWkb())))
        names.append(f.GetField(field))
    return geoms, names


_COUNTRIES = {}


@pytest.fixture(params=["countries-10m.json", "countries-50m.json"])
def natural_earth(request):
    """(geometries, names, Regions) of the Natural Earth countries, read with GDAL."""
    if request.param not in _COUNTRIES:
        geoms, names = _read_as_qgis_does(shared_path(*NE, request.param), "countries", "name")
        _COUNTRIES[request.param] = geoms, names, fp.regions(geoms, names)
    return _COUNTRIES[request.param]


def _alaskan_mines():
    """The mine polygons of the Sepin et al. demo west of 141° W (Alaska; 101 polygons, 146 km²)."""
    path = shared_path(*SEPIN)
    if not os.path.exists(path):
        pytest.skip("shared data not found")
    geoms, _ = read_gpkg(path, "mining_polygons_combined_demo")
    geoms = np.asarray(geoms, dtype=object)
    west = shapely.bounds(geoms)[:, 0] < -141.0
    return list(geoms[west])


def test_natural_earth_russia_arrives_drawn_across_the_antimeridian(natural_earth):
    """The premise: GDAL hands Russia's mainland over as one ring jumping from 180° to -180° and
    back (drawn round the back of the globe, through Alaska, in the lon/lat plane); once read by
    the rule, no piece of Russia reaches Alaska."""
    geoms, names, regs = natural_earth
    russia = geoms[names.index("Russia")]
    drawn_across = [p for p in shapely.get_parts(russia)
                    if (np.abs(np.diff(shapely.get_coordinates(p.exterior)[:, 0])) > 180.0).any()]
    assert drawn_across and max(p.bounds[2] - p.bounds[0] for p in drawn_across) > 359.0
    assert {"Russia", "Fiji"} <= set(regs.cut_at_antimeridian)
    pieces = np.asarray([g for g, n in zip(regs.geoms, regs.names) if n == "Russia"], dtype=object)
    assert not shapely.intersects(pieces, shapely.Point(*RED_DOG)).any()
    assert not shapely.intersects(pieces, box(-168.0, 54.0, -141.0, 72.0)).any()   # Alaska
    assert shapely.intersects(pieces, shapely.Point(-175.0, 66.0)).any()           # Chukotka, east of 180°


@pytest.mark.parametrize("allocation", ["intersection", "centroid"])
def test_alaskan_mines_go_to_the_united_states_not_russia(natural_earth, allocation):
    """Measured before the fix: with the 10m countries, 18.2 km² (intersection) and 36.3 km²
    (centroid) of these 145.7 km² went to Russia (with the 50m countries, 18.3 km² by
    intersection), the polygons between 65° N and 69° N, Red Dog among them."""
    _, _, regs = natural_earth
    mines = _alaskan_mines()
    p = polys(mines, ["Zinc"] * len(mines), None)
    s = fp.summarise(p, countries=regs, allocation=allocation, cell_size_m=None)
    area = {r["region"]: r["area_km2"] for r in s.country_rows}
    assert "Russia" not in area
    assert set(area) <= {"United States of America", fp.OUTSIDE}
    # a polygon on the coast has 0.63 km² at sea (by intersection; the centroid rule puts it
    # in the nearest country)
    assert area["United States of America"] > 0.995 * p.total_area_m2 / 1e6
    assert km2(s.country_rows) * 1e6 == pytest.approx(p.total_area_m2, rel=1e-9)
    assert s.overlaps == [] and s.overlap_lines() == []
    red_dog = [g for g in mines if g.distance(shapely.Point(*RED_DOG)) < 0.05]
    assert red_dog
    one = fp.region_table(polys(red_dog, ["Zinc"] * len(red_dog), None), regs, allocation)
    assert {r["region"] for r in one} == {"United States of America"}


def test_region_pieces_of_real_countries_stay_within_the_antimeridian(natural_earth):
    """Every piece lies inside -180..180 and no piece of a country spans more than half the
    globe (a band round it); Russia and Fiji keep their area (about 16.9 million and 18,400 km²,
    not the 18.8 million and 551,000 km² of the band read before)."""
    from mine_clusters.core.geodesy import polygon_area_m2

    _, _, regs = natural_earth
    b = shapely.bounds(regs.geoms)
    assert b[:, 0].min() >= -180.0 and b[:, 2].max() <= 180.0
    assert (b[:, 2] - b[:, 0]).max() <= 180.0
    for name, lo, hi in (("Russia", 16.8e12, 17.0e12), ("Fiji", 18.0e9, 19.1e9)):
        pieces = np.asarray([g for g, n in zip(regs.geoms, regs.names) if n == name], dtype=object)
        assert lo < polygon_area_m2(pieces).sum() < hi, name


def test_natural_earth_110m_antarctica_keeps_its_area():
    """The 110m shapefile draws Antarctica as one ring round the South Pole, closed along the
    pole from 180° to -180°: that step is the pole's edge, no crossing of ±180° (read as one,
    Antarctica lost 1.06 million km², 12.24 -> 11.18 million)."""
    from mine_clusters.core.geodesy import polygon_area_m2

    path = shared_path("natural-earth-countries", "ne_110m_admin_0_countries-4.1.0",
                       "ne_110m_admin_0_countries.shp")
    geoms, names = _read_as_qgis_does(path, None, "NAME")
    ant = geoms[names.index("Antarctica")]
    as_drawn = polygon_area_m2(np.asarray(shapely.get_parts(ant), dtype=object)).sum()
    regs = fp.regions([ant], ["Antarctica"])
    assert polygon_area_m2(regs.geoms).sum() == pytest.approx(as_drawn, rel=1e-9)


# ------------------------------------------------------------------ the rule on region polygons

@pytest.mark.parametrize("allocation", ["intersection", "centroid"])
def test_a_region_ring_across_the_antimeridian_is_cut_there(allocation):
    """A ring drawn across ±180° covers 179°..180° and -180°..-179°, not the band between them
    round the globe; a region at 179°..181° (0..360 data) reaches -179° one turn away."""
    regs = fp.regions([shapely.Polygon([(179, -17), (-179, -17), (-179, -16), (179, -16)]),
                       box(179, -30, 181, -29)], ["Fiji", "Kermadec"])
    p = polys([box(0, -16.6, 0.1, -16.5), box(179.5, -16.6, 179.6, -16.5),
               box(-179.5, -16.6, -179.4, -16.5), box(-179.5, -29.6, -179.4, -29.5)],
              ["Coal", "Gold", "Iron", "Zinc"], [1e6, 2e6, 3e6, 4e6])
    area = rows_by(fp.region_table(p, regs, allocation), "region", "commodity")
    assert area[("Fiji", "Gold")] == pytest.approx(2.0)
    assert area[("Fiji", "Iron")] == pytest.approx(3.0)
    assert area[("Kermadec", "Zinc")] == pytest.approx(4.0)
    # the polygon at 0° is in no region: 'Outside' by intersection, the nearest by centroid
    at_zero = {k[0] for k in area if k[1] == "Coal"}
    assert at_zero == ({fp.OUTSIDE} if allocation == "intersection" else {"Fiji"})
    assert regs.cut_at_antimeridian == ("Fiji", "Kermadec")


def test_region_coordinates_are_refused_by_the_one_rule_naming_the_feature():
    layer = "countries layer 'world'"
    nan = shapely.from_wkt("POLYGON ((9.3 47, NaN 47, 9.31 47.01, 9.3 47))")
    with pytest.raises(InputError, match=r"^Feature 1 of the countries layer 'world' has a "
                                         r"coordinate that is not a number"):
        fp.regions([box(0, 0, 1, 1), nan], ["A", "B"], layer=layer)
    with pytest.raises(InputError, match=r"^Feature 12 of the countries layer 'world' has the "
                                         r"coordinate \(540\.0, 0\.0\) outside longitude"):
        fp.regions([box(530, 0, 540, 1)], ["A"], ids=[12], layer=layer)
    with pytest.raises(InputError, match=r"latitude -90\.\.90"):
        fp.regions([box(0, 80, 1, 91)], ["A"])
    with pytest.raises(InputError, match="2 geometries but 1 names"):
        fp.regions([box(0, 0, 1, 1), box(1, 0, 2, 1)], ["A"])


# ------------------------------------------------------------------ overlapping regions

def overlapping():
    """A = 0..2° E, B = 1..3° E on the equator: they overlap on 1..2° E."""
    return fp.regions([box(0, 0, 2, 1), box(1, 0, 3, 1)], ["A", "B"])


def three_mines():
    # Coal: half in A only, half in A and B; Gold: a quarter in A and B, half in B only, a
    # quarter outside both (the sum of its shares is 1: scaled, it used to hide the overlap and
    # the part outside); Iron: all in A and B
    return polys([box(0.5, 0.4, 1.5, 0.41), box(1.5, 0.5, 3.5, 0.51), box(1.2, 0.7, 1.3, 0.71)],
                 ["Coal", "Gold", "Iron"], [4e6, 8e6, 1e6])


def test_mine_land_where_regions_overlap_is_split_equally_and_reported():
    p = three_mines()
    s = fp.summarise(p, countries=overlapping(), biomes=overlapping(), cell_size_m=None)
    for rows in (s.country_rows, s.biome_rows):
        assert rows_by(rows, "region", "commodity") == pytest.approx({
            ("A", "Coal"): 3.0, ("B", "Coal"): 1.0,              # (was 2.67 and 1.33)
            ("A", "Gold"): 1.0, ("B", "Gold"): 5.0, (fp.OUTSIDE, "Gold"): 2.0,   # (was 2, 6, 0)
            ("A", "Iron"): 0.5, ("B", "Iron"): 0.5}, rel=1e-9)
        assert km2(rows) * 1e6 == pytest.approx(p.total_area_m2, rel=1e-12)
    # in both A and B: 2 km² of Coal, 2 of Gold, 1 of Iron
    assert len(s.overlaps) == 2
    for o, layer in zip(s.overlaps, ("countries", "biomes")):
        assert (o.regions, o.region_a, o.region_b, o.n_polygons) == (layer, "A", "B", 3)
        assert o.area_m2 == pytest.approx(5e6, rel=1e-9)
    lines = s.overlap_lines()
    assert lines == [
        "The countries 'A' and 'B' overlap on 5.00 km² of mine land in 3 polygons (38.46 % of the "
        "total); the country table splits that area equally between the two.",
        "The biomes 'A' and 'B' overlap on 5.00 km² of mine land in 3 polygons (38.46 % of the "
        "total); the biome table splits that area equally between the two."]


def test_overlaps_do_not_depend_on_the_order_of_the_regions():
    p = three_mines()
    a = fp.summarise(p, countries=overlapping(), cell_size_m=None)
    b = fp.summarise(p, countries=fp.regions([box(1, 0, 3, 1), box(0, 0, 2, 1)], ["B", "A"]),
                     cell_size_m=None)
    assert rows_by(a.country_rows, "region", "commodity") == pytest.approx(
        rows_by(b.country_rows, "region", "commodity"), rel=1e-12)
    assert [o[:3] + o[4:] for o in a.overlaps] == [o[:3] + o[4:] for o in b.overlaps]
    assert a.overlaps[0].area_m2 == pytest.approx(b.overlaps[0].area_m2, rel=1e-12)


def test_overlap_by_the_centroid_rule():
    """Coal's centroid lies on B's edge inside A (A's only), Gold's inside B only, Iron's inside
    both: Iron is split in two and reported (it all went to A, the first region, before)."""
    p = three_mines()
    s = fp.summarise(p, countries=overlapping(), allocation="centroid", cell_size_m=None)
    assert rows_by(s.country_rows, "region", "commodity") == pytest.approx({
        ("A", "Coal"): 4.0, ("B", "Gold"): 8.0, ("A", "Iron"): 0.5, ("B", "Iron"): 0.5})
    assert s.overlaps == [fp.RegionOverlap("countries", "A", "B", 1e6, 1)]
    assert s.overlap_lines() == [
        "The countries 'A' and 'B' overlap at the centroids of 1 polygon with 1.00 km² of mine "
        "land (7.69 % of the total); the country table splits their area equally between the two."]


def test_features_with_one_name_are_one_region_where_they_overlap():
    """Two overlapping features named A: nothing is split or reported, and Gold's quarter
    outside both stays 'Outside' (it was folded into A)."""
    p = three_mines()
    regs = fp.regions([box(0, 0, 2, 1), box(1, 0, 3, 1)], ["A", "A"])
    for allocation in fp.ALLOCATIONS:
        s = fp.summarise(p, countries=regs, allocation=allocation, cell_size_m=None)
        area = rows_by(s.country_rows, "region", "commodity")
        assert s.overlaps == []
        if allocation == "intersection":
            assert area == pytest.approx({("A", "Gold"): 6.0, ("A", "Coal"): 4.0, ("A", "Iron"): 1.0,
                                          (fp.OUTSIDE, "Gold"): 2.0})
        else:
            assert area == pytest.approx({("A", "Gold"): 8.0, ("A", "Coal"): 4.0, ("A", "Iron"): 1.0})


def test_real_biomes_that_overlap_are_reported():
    """The RESOLVE biomes (simplified) overlap by about 1,300 km² in all, most of it (895 km²)
    where the tropical grasslands and the tropical moist forests meet in Kenya: a 1 km² mine
    there is split in two and the pair named (it was split in two silently before)."""
    geoms, names = _read_as_qgis_does(
        shared_path("resolve-ecoregions2017-simplified", "biomes.shp"), None, "BIOME_NAME")
    grass = "Tropical & Subtropical Grasslands, Savannas & Shrublands"
    moist = "Tropical & Subtropical Moist Broadleaf Forests"
    mine = box(35.3825, 1.657, 35.3925, 1.667)
    holders = {n for g, n in zip(geoms, names) if g is not None and shapely.covers(g, mine)}
    assert holders == {grass, moist}                      # the premise: the data overlap there
    p = polys([mine], ["Gold"], [1e6])
    s = fp.summarise(p, biomes=fp.regions(geoms, names), cell_size_m=None)
    assert rows_by(s.biome_rows, "region") == pytest.approx({(grass,): 0.5, (moist,): 0.5}, rel=1e-9)
    assert s.overlaps == [fp.RegionOverlap("biomes", grass, moist, pytest.approx(1e6, rel=1e-9), 1)]
    assert s.overlap_lines() == [
        f"The biomes '{grass}' and '{moist}' overlap on 1.00 km² of mine land in 1 polygon "
        f"(100.00 % of the total); the biome table splits that area equally between the two."]


def test_a_mine_in_four_overlapping_regions_and_the_log_sentences():
    """Four regions over one mine: a quarter each, six pairs; the log names the two largest and
    sums up the rest in one sentence."""
    regs = fp.regions([box(0, 0, 1, 1), box(0, 0, 1.5, 1), box(0, 0, 2, 1), box(-1, 0, 1, 1)],
                      ["D", "C", "B", "A"])
    p = polys([box(0.2, 0.2, 0.3, 0.3)], ["Gold"], [2e6])
    for allocation in fp.ALLOCATIONS:
        s = fp.summarise(p, countries=regs, allocation=allocation, cell_size_m=None)
        assert rows_by(s.country_rows, "region") == pytest.approx(
            {("A",): 0.5, ("B",): 0.5, ("C",): 0.5, ("D",): 0.5})
        assert [(o.region_a, o.region_b) for o in s.overlaps] == [
            ("A", "B"), ("A", "C"), ("A", "D"), ("B", "C"), ("B", "D"), ("C", "D")]
        assert all(o.area_m2 == pytest.approx(2e6) and o.n_polygons == 1 for o in s.overlaps)
        lines = s.overlap_lines(max_pairs=2)
        assert len(lines) == 3
        assert "'A' and 'B'" in lines[0] and "'A' and 'C'" in lines[1]
        assert lines[2] == ("4 more pairs of overlapping countries share up to 2.00 km² of mine "
                            "land each (100.00 % of the total); the country table splits it "
                            "equally likewise.")


def test_regions_that_only_touch_do_not_overlap():
    """Countries side by side, a mine across their border and one across a cut between the
    pieces of one large region: no overlap."""
    big = shapely.Polygon([(x, 0.0) for x in np.linspace(2, 10, 400)] + [(10, 1), (2, 1)])
    regs = fp.regions([box(0, 0, 1, 1), box(1, 0, 2, 1), big], ["West", "East", "Big"])
    big_x = {tuple(shapely.bounds(g)[[0, 2]]) for g, n in zip(regs.geoms, regs.names) if n == "Big"}
    assert big_x == {(2.0, 6.0), (6.0, 10.0)}          # cut in two at 6° E
    cut = 6.0
    p = polys([box(0.9, 0.5, 1.1, 0.6), box(cut - 0.1, 0.5, cut + 0.1, 0.6)], ["Coal", "Gold"],
              [1e6, 1e6])
    for allocation in fp.ALLOCATIONS:
        s = fp.summarise(p, countries=regs, allocation=allocation, cell_size_m=None)
        assert s.overlaps == []
        assert km2(s.country_rows) == pytest.approx(2.0, rel=1e-12)
    area = rows_by(fp.region_table(p, regs), "region")
    assert area == pytest.approx({("West",): 0.5, ("East",): 0.5, ("Big",): 1.0}, rel=1e-9)
