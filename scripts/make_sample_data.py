#!/usr/bin/env python3
"""Write the bundled sample data: a small REAL regional subset of ../shared/data.

Region: the Jharkhand / Odisha coal and iron belt of eastern India, lon 84..87 E, lat 21..24 N.
- mine_polygons.gpkg: Maus et al. (2020) v1 mining polygons (India subset) in the region.
- mine_points.gpkg:   ICMM (2025), Jasansky et al. (2022 pre-release) and GEM Global Coal Mine
                      Tracker (July 2022) mine points in the region, with the fields
                      point_id, source, source_id, name, primary_commodity, commodities.
Commodity names go through the R implementation's harmonisation_metals_coal.csv (trimmed,
case-folded match; "Not relevant" and names mapped to "" are dropped; names not in the table are
kept trimmed as they are). The harmonise algorithm will later regenerate this; keep it simple.

Run with the system Python (it needs GDAL's osgeo, which Debian's QGIS brings):
    /usr/bin/python3 scripts/make_sample_data.py [SHARED_DATA_DIR]
"""
import csv
import json
import os
import sys

from osgeo import ogr, osr

ogr.UseExceptions()

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
OUT = os.path.join(ROOT, "resources", "sample")
BOX = (84.0, 21.0, 87.0, 24.0)  # lon min, lat min, lon max, lat max


def inside(x, y):
    return BOX[0] <= x <= BOX[2] and BOX[1] <= y <= BOX[3]


def load_harmonisation(path):
    table = {}
    with open(path, encoding="utf-8") as f:
        for row in csv.DictReader(f):
            table[row["material"].strip().casefold()] = row["material_harmonized"].strip()
    return table


def harmonise(text, table, seps=(",", ";")):
    """Comma list of harmonised names (sorted, unique) or None."""
    if text is None:
        return None
    for sep in seps[1:]:
        text = text.replace(sep, seps[0])
    out = set()
    for raw in text.split(seps[0]):
        name = raw.strip()
        if not name or name.upper() == "NA":
            continue
        mapped = table.get(name.casefold(), name)
        for part in mapped.split(","):
            part = part.strip()
            if part and part != "Not relevant":
                out.add(part)
    return ",".join(sorted(out)) or None


def wgs84():
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(4326)
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    return srs


def create(path, name, geom_type, fields):
    if os.path.exists(path):
        os.remove(path)
    ds = ogr.GetDriverByName("GPKG").CreateDataSource(path)
    lyr = ds.CreateLayer(name, wgs84(), geom_type)
    for fname, ftype in fields:
        lyr.CreateField(ogr.FieldDefn(fname, ftype))
    return ds, lyr


def main(shared):
    table = load_harmonisation(os.path.join(shared, "r-impl-harmonisation-tables",
                                            "harmonisation_metals_coal.csv"))
    os.makedirs(OUT, exist_ok=True)

    # Polygons: Maus 2020 v1, India.
    src = json.load(open(os.path.join(shared, "maus2020-v1-india-brazil",
                                      "indian_polygon_with_grId.geojson"), encoding="utf-8"))
    ds, lyr = create(os.path.join(OUT, "mine_polygons.gpkg"), "mine_polygons", ogr.wkbPolygon,
                     [("maus_fid", ogr.OFTInteger), ("ISO3_CODE", ogr.OFTString),
                      ("AREA_km2", ogr.OFTReal), ("source", ogr.OFTString)])
    n_poly = 0
    for feat in sorted(src["features"], key=lambda f: f["properties"]["fid"]):
        geom = ogr.CreateGeometryFromJson(json.dumps(feat["geometry"]))
        c = geom.Centroid()
        if not inside(c.GetX(), c.GetY()):
            continue
        out = ogr.Feature(lyr.GetLayerDefn())
        out.SetField("maus_fid", feat["properties"]["fid"])
        out.SetField("ISO3_CODE", feat["properties"]["ISO3_CODE"])
        out.SetField("AREA_km2", feat["properties"]["AREA"])
        out.SetField("source", "Maus et al. 2020 v1")
        out.SetGeometry(geom)
        lyr.CreateFeature(out)
        n_poly += 1
    ds = None

    # Points: ICMM, Jasansky, GEM.
    ds, lyr = create(os.path.join(OUT, "mine_points.gpkg"), "mine_points", ogr.wkbMultiPoint,
                     [("point_id", ogr.OFTInteger), ("source", ogr.OFTString),
                      ("source_id", ogr.OFTString), ("name", ogr.OFTString),
                      ("primary_commodity", ogr.OFTString), ("commodities", ogr.OFTString)])
    rows = []

    icmm = json.load(open(os.path.join(shared, "icmm-global-mining-dataset-2025", "mines.geojson"),
                          encoding="utf-8"))
    for feat in icmm["features"]:
        if not feat.get("geometry"):
            continue
        x, y = feat["geometry"]["coordinates"][:2]
        if not inside(x, y):
            continue
        p = feat["properties"]
        allc = ",".join(v for v in (p.get("primaryCommodity"), p.get("secondaryCommodity"),
                                    p.get("otherCommodities")) if v)
        rows.append(("ICMM 2025", p["id"], p.get("name"), p.get("primaryCommodity"), allc,
                     "MULTIPOINT (%r %r)" % (x, y)))

    jas = ogr.Open(os.path.join(shared, "jasansky2022-facilities-prerelease", "facilities.gpkg"))
    jl = jas.GetLayer("facilities")
    for f in jl:
        g = f.GetGeometryRef()
        if g is None or g.IsEmpty() or f.GetField("primary_commodity") == "Processing":
            continue  # the R implementation drops "Processing" facilities too
        g = ogr.ForceToMultiPoint(g.Clone())
        if not any(inside(*g.GetGeometryRef(i).GetPoint_2D()) for i in range(g.GetGeometryCount())):
            continue
        rows.append(("Jasansky et al. 2022", f.GetField("facility_id"), f.GetField("facility_name"),
                     f.GetField("primary_commodity"), f.GetField("commodities_products"),
                     g.ExportToWkt()))
    jas = None

    with open(os.path.join(shared, "gem-global-coal-mine-tracker-2022-07",
                           "Global-Coal-Mine-Tracker-July-2022.csv"), encoding="latin-1") as f:
        for r in csv.DictReader(f):
            try:
                x, y = float(r["Longitude"]), float(r["Latitude"])
            except ValueError:
                continue
            if not inside(x, y):
                continue
            rows.append(("GEM GCMT 2022-07", r["Mine IDs"], r["Mine Name"], "Coal", "Coal",
                         "MULTIPOINT (%r %r)" % (x, y)))

    rows.sort(key=lambda r: (r[0], str(r[1])))
    for i, (source, sid, name, primary, allc, wkt) in enumerate(rows, start=1):
        out = ogr.Feature(lyr.GetLayerDefn())
        out.SetField("point_id", i)
        out.SetField("source", source)
        out.SetField("source_id", str(sid))
        out.SetField("name", name)
        prim = harmonise(primary, table)
        out.SetField("primary_commodity", prim)
        every = harmonise(",".join(v for v in (primary, allc) if v), table)
        out.SetField("commodities", every)
        out.SetGeometry(ogr.CreateGeometryFromWkt(wkt))
        lyr.CreateFeature(out)
    ds = None
    print(f"wrote {n_poly} polygons and {len(rows)} points to {OUT}")


if __name__ == "__main__":
    default = os.path.join(ROOT, "..", "shared", "data")
    main(sys.argv[1] if len(sys.argv) > 1 else default)
