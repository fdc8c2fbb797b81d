#!/usr/bin/env python3
"""Hashes of every output table's rows, to show that two runs wrote the same outputs.

    /usr/bin/python3 scripts/output_hash.py DIR [DIR2]

For each GeoPackage layer and CSV file in DIR: the number of rows and a SHA-256 over every row
(feature id, each field's name, type and value, the geometry as ISO WKB), read with GDAL/OGR,
not with the code that wrote them, in feature-id order. With DIR2 the two are compared and the
exit code is 1 when any differs. The provenance metadata and the stored styles (timestamps) are
not rows of an output and are left out.
"""
import csv
import glob
import hashlib
import os
import sys

from osgeo import ogr

ogr.UseExceptions()


def layer_hash(layer):
    h = hashlib.sha256()
    defn = layer.GetLayerDefn()
    fields = [(defn.GetFieldDefn(i).GetName(), defn.GetFieldDefn(i).GetTypeName(),
               defn.GetFieldDefn(i).GetSubType()) for i in range(defn.GetFieldCount())]
    h.update(repr(fields).encode())
    h.update(repr(ogr.GeometryTypeToName(layer.GetGeomType())).encode())
    srs = layer.GetSpatialRef()
    h.update((srs.ExportToWkt() if srs else "").encode())
    n = 0
    features = sorted(layer, key=lambda f: f.GetFID())
    for f in features:
        g = f.GetGeometryRef()
        h.update(repr((f.GetFID(), [f.GetField(i) for i in range(len(fields))])).encode())
        h.update(g.ExportToIsoWkb() if g is not None else b"NULL")
        n += 1
    return n, h.hexdigest()


def hashes(folder):
    out = {}
    for path in sorted(glob.glob(os.path.join(folder, "*.gpkg"))):
        ds = ogr.Open(path)
        for i in range(ds.GetLayerCount()):
            layer = ds.GetLayer(i)
            if layer.GetName() == "layer_styles":
                continue
            out[f"{os.path.basename(path)}:{layer.GetName()}"] = layer_hash(layer)
    for path in sorted(glob.glob(os.path.join(folder, "*.csv"))):
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh))
        out[os.path.basename(path)] = (len(rows) - 1,
                                       hashlib.sha256(repr(rows).encode()).hexdigest())
    return out


def main(argv):
    first = hashes(argv[0])
    if len(argv) == 1:
        for k, (n, h) in first.items():
            print(f"{k}\t{n}\t{h}")
        return 0
    second = hashes(argv[1])
    same = True
    for k in sorted(set(first) | set(second)):
        a, b = first.get(k), second.get(k)
        ok = a == b
        same &= ok
        print(f"{'same' if ok else 'DIFFERENT'}\t{k}\t{a}\t{b}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
