"""Readers for the shared real data sets, without QGIS or GDAL (GeoJSON and GeoPackage)."""
from __future__ import annotations

import json
import os
import sqlite3

import shapely

SHARED = os.environ.get("MINE_CLUSTERS_SHARED_DATA",
                        os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data"))


def shared_path(*parts):
    return os.path.normpath(os.path.join(SHARED, *parts))


def have_shared():
    return os.path.isdir(SHARED)


def read_geojson(path, bbox=None):
    """(geometries, properties) of a GeoJSON file, optionally those whose box meets ``bbox``."""
    with open(path, encoding="utf-8") as fh:
        data = json.load(fh)
    geoms, props = [], []
    for feat in data["features"]:
        g = shapely.from_geojson(json.dumps(feat["geometry"])) if feat.get("geometry") else None
        if bbox is not None and (g is None or not g.intersects(shapely.box(*bbox))):
            continue
        geoms.append(g)
        props.append(feat.get("properties") or {})
    return geoms, props


def _gpkg_geometry(blob):
    if blob is None:
        return None
    flags = blob[3]
    env = {0: 0, 1: 32, 2: 48, 3: 48, 4: 64}[(flags >> 1) & 7]
    if flags & 0x10:  # empty geometry flag
        return shapely.from_wkt("POINT EMPTY")
    return shapely.from_wkb(bytes(blob[8 + env:]))


def read_gpkg(path, table, bbox=None):
    """(geometries, properties) of a GeoPackage table."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        col = con.execute("SELECT column_name FROM gpkg_geometry_columns WHERE table_name=?", (table,)).fetchone()[0]
        cur = con.execute(f'SELECT * FROM "{table}"')
        names = [d[0] for d in cur.description]
        geoms, props = [], []
        for row in cur:
            rec = dict(zip(names, row))
            g = _gpkg_geometry(rec.pop(col))
            if bbox is not None and (g is None or g.is_empty or not g.intersects(shapely.box(*bbox))):
                continue
            geoms.append(g)
            props.append(rec)
        return geoms, props
    finally:
        con.close()


