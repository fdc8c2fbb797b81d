"""Self-contained HTML reports (tables and embedded plots) that open in any browser.

All text is escaped; PNG and SVG plots are embedded as data URIs, so the file can be moved or
mailed alone. Tables can also be written as CSV next to it. No qgis imports.
"""
from __future__ import annotations

import base64
import csv
import html
import math
import os
from dataclasses import dataclass, field
from typing import Optional

_STYLE = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em;color:#222;max-width:70em}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:1.8em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}
th,td{border:1px solid #ccc;padding:.2em .5em}th{background:#f0f0f0}
td.n{text-align:right;font-variant-numeric:tabular-nums}
p.note{color:#555;font-size:.85em}img{max-width:100%;margin:.5em 0}
"""


@dataclass
class Table:
    title: str
    fields: tuple                 # (name, kind) schema
    rows: list                    # dicts keyed by field names
    note: str = ""
    headers: Optional[dict] = None   # field name -> column header
    max_rows: int = 200


@dataclass
class Report:
    title: str
    intro: list = field(default_factory=list)      # paragraphs (plain text)
    items: list = field(default_factory=list)      # Table, ("image", path, caption), ("text", s)

    def add_table(self, table: Table):
        self.items.append(table)

    def add_image(self, path, caption=""):
        if path and os.path.exists(path):
            self.items.append(("image", path, caption))

    def add_text(self, text):
        self.items.append(("text", text))


def format_value(value, kind):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if kind == "double":
        v = float(value)
        if abs(v) >= 100:
            return f"{v:,.1f}"
        if abs(v) >= 1:
            return f"{v:,.2f}"
        return f"{v:.3g}" if v else "0"
    if kind == "int":
        return f"{int(value):,}"
    return str(value)


def _image_uri(path):
    ext = os.path.splitext(path)[1].lower()
    mime = {".png": "image/png", ".svg": "image/svg+xml", ".jpg": "image/jpeg"}.get(ext)
    if mime is None:
        return None
    with open(path, "rb") as f:
        return f"data:{mime};base64," + base64.b64encode(f.read()).decode("ascii")


def _table_html(t: Table):
    esc = html.escape
    out = [f"<h2>{esc(t.title)}</h2>"]
    if t.note:
        out.append(f'<p class="note">{esc(t.note)}</p>')
    if not t.rows:
        out.append('<p class="note">No rows.</p>')
        return "\n".join(out)
    heads = t.headers or {}
    out.append("<table><thead><tr>" + "".join(
        f"<th>{esc(heads.get(n, n))}</th>" for n, _ in t.fields) + "</tr></thead><tbody>")
    for row in t.rows[:t.max_rows]:
        out.append("<tr>" + "".join(
            f'<td class="{"n" if k != "string" else ""}">{esc(format_value(row.get(n), k))}</td>'
            for n, k in t.fields) + "</tr>")
    out.append("</tbody></table>")
    if len(t.rows) > t.max_rows:
        out.append(f'<p class="note">First {t.max_rows} of {len(t.rows)} rows; the full table '
                   f"is in the output layer / CSV.</p>")
    return "\n".join(out)


def render(report: Report) -> str:
    esc = html.escape
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>{esc(report.title)}</title><style>{_STYLE}</style></head><body>",
             f"<h1>{esc(report.title)}</h1>"]
    parts += [f"<p>{esc(p)}</p>" for p in report.intro]
    for item in report.items:
        if isinstance(item, Table):
            parts.append(_table_html(item))
        elif item[0] == "image":
            uri = _image_uri(item[1])
            if uri:
                parts.append(f'<figure><img src="{uri}" alt="{esc(item[2])}">'
                             f"<figcaption>{esc(item[2])}</figcaption></figure>")
        elif item[0] == "text":
            parts.append(f"<p>{esc(item[1])}</p>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_html(report: Report, path) -> str:
    with open(path, "w", encoding="utf-8") as f:
        f.write(render(report))
    return path


def write_csv(fields, rows, path) -> str:
    """A table as UTF-8 CSV (empty cells for None), columns in schema order."""
    names = [n for n, _ in fields]
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(names)
        for row in rows:
            w.writerow(["" if row.get(n) is None else row.get(n) for n in names])
    return path


# ----------------------------------------------------------------------------- ready-made reports

_HEADERS = {
    "area_km2": "Area (km²)", "area_pct": "Area (%)", "region_pct": "Share of region (%)",
    "n_polygons": "Polygons", "n_clusters": "Clusters", "n_points": "Points",
    "clusters_pct": "Clusters (%)", "polygons_pct": "Polygons (%)", "points_pct": "Points (%)",
    "cluster_area_km2": "Area/cluster (km²)", "polygons_per_cluster": "Polygons/cluster",
    "points_per_cluster": "Points/cluster", "polygon_area_km2": "Area/polygon (km²)",
    "overlap": "Overlap coefficient", "id_overlap": "ID overlap",
}


def footprint_report(summary, path, images=(), intro=(), csv_dir=None, top_rows=200,
                     omit=()) -> str:
    """HTML report of a `footprint.FootprintSummary` with the given plot files embedded.

    `images`: (path, caption) pairs. With `csv_dir`, every table is also written there as CSV.
    `omit`: tables left out ("country", "biome" when no such regions were given: their rows
    would say only that all the area is outside regions that nobody supplied).
    """
    from . import footprint as fp

    rep = Report("Mine land footprint", intro=list(intro))
    rep.add_text(f"Total mine area: {format_value(summary.total_area_m2 / 1e6, 'double')} km²; "
                 f"assigned to a primary commodity: "
                 f"{format_value(summary.assigned_area_pct, 'double')} %. Region allocation: "
                 f"{summary.allocation}; grid cell size: "
                 + (f"{summary.cell_size_m / 1000:g} km." if summary.cell_size_m else "no grid."))
    tables = [
        ("commodity", Table("Area by primary commodity", fp.COMMODITY_FIELDS,
                            summary.commodity_rows, "The area of a polygon whose cluster has n "
                            "primary commodities is split equally among them; Unknown = "
                            "unassigned.", _HEADERS, top_rows)),
        ("table2", Table("Table 2: assigned and unassigned clusters", fp.TABLE2_FIELDS,
                         summary.table2_rows, "Every cluster and every point of the cluster "
                         "output when the clustered points are given (a cluster of points only "
                         "counts with no area and no polygon; averages are over all the row's "
                         "clusters), else the clusters holding polygons and no point columns.",
                         _HEADERS, top_rows)),
        ("table3", Table("Table 3: polygons by assignment status and data source",
                         fp.TABLE3_FIELDS, summary.table3_rows, "", _HEADERS, top_rows)),
        ("country", Table("Area by country and commodity", fp.REGION_FIELDS,
                          summary.country_rows, "Outside = mine area outside every country "
                          "polygon.", _HEADERS, top_rows)),
        ("biome", Table("Area by biome and commodity", fp.REGION_FIELDS, summary.biome_rows,
                        "Outside = mine area outside every biome polygon.", _HEADERS, top_rows)),
    ]
    for img, caption in images:
        rep.add_image(img, caption)
    for key, t in tables:
        if key in omit or (key == "table3" and not t.rows):
            continue
        if key in ("country", "biome") and not t.rows:
            continue
        rep.add_table(t)
        if csv_dir:
            write_csv(t.fields, t.rows, os.path.join(csv_dir, f"{key}.csv"))
    if summary.grid is not None and csv_dir:
        write_csv(summary.grid.fields, summary.grid.rows, os.path.join(csv_dir, "grid.csv"))
    return write_html(rep, path)


def validation_report(result, path, images=(), intro=()) -> str:
    """HTML report of a `validate.ValidationResult` (the paper's Table 4 and the pairs)."""
    from . import validate as va

    rep = Report("Validation against reference polygons", intro=list(intro))
    rep.add_text(f"{result.n_pairs} pairs of a clustered polygon and a reference polygon that "
                 f"intersect; {result.n_skipped_reference} pairs skipped because the reference "
                 f"has no commodity; {result.n_skipped_unassigned} unassigned pairs left out.")
    rep.add_table(Table("Table 4: similarity of the primary commodities", va.SUMMARY_FIELDS,
                        result.summary, "Full match: Jaccard = 1; no match: no shared "
                        "commodity; partial: the rest. Proportions in % of all pairs. The "
                        "overlap coefficient and ID overlap of an unassigned clustered polygon "
                        "are undefined: Mean, SD and Median leave them out, the Undefined row "
                        "counts them.", _HEADERS))
    for img, caption in images:
        rep.add_image(img, caption)
    rep.add_table(Table("Pairs", va.PAIR_FIELDS, result.pairs, "", _HEADERS))
    return write_html(rep, path)


def cluster_report(result, path, images=(), intro=()) -> str:
    """HTML report of a clustering run (`engine.ClusterResult`): the headline numbers, the plots
    given as (path, caption) pairs (the Pareto plot and the threshold histogram), the chosen
    thresholds and both sensitivity curves."""
    import numpy as np

    from .schema import SENSITIVITY_FIELDS

    def km(metres):
        return f"{float(metres) / 1000:g} km"

    groups = result.groups
    with_area = np.asarray(groups.area_m2, dtype=float) > 0
    total_km2 = float(result.total_area_m2) / 1e6
    method = {"local": "local optimum per processing group", "global": "one global threshold"}
    formula = {"eq1": "the paper's Eq. 1", "r": "the published R code's formula"}
    headline = [
        ("H_max used", km(result.max_threshold_m)),
        ("Global optimum threshold h", km(result.global_threshold_m)),
        ("Unassigned area A_u", f"{result.area_unassigned_pct:.2f} %"),
        ("Area with several primary commodities A_m", f"{result.area_multi_pct:.2f} %"),
        ("Clusters", f"{result.n_clusters:,}"),
        ("Processing groups (with polygon area)", f"{len(groups):,} ({int(with_area.sum()):,})"),
        ("Polygons / point parts clustered", f"{len(result.polygons):,} / {len(result.points):,}"),
        ("Dropped input features (empty or null geometry)", f"{len(result.dropped):,}"),
        ("Total polygon area", f"{format_value(total_km2, 'double')} km²"),
        ("Pre-grouping limit", km(result.h_limit_m)),
        ("Method", method.get(result.method, result.method)),
        ("Pareto distance", f"{formula.get(result.formula, result.formula)}, w = {result.weight:g}"),
    ]
    rep = Report("Mine clusters", intro=list(intro))
    rep.add_table(Table("Headline numbers", (("item", "string"), ("value", "string")),
                        [{"item": k, "value": v} for k, v in headline],
                        "A_m counts a cluster's area once per primary commodity beyond the "
                        "first, so it can exceed 100 %.", {"item": "", "value": ""}))
    for img, caption in images:
        rep.add_image(img, caption)
    chosen = np.asarray(groups.chosen_threshold_m, dtype=float)[with_area]
    area = np.asarray(groups.area_m2, dtype=float)[with_area]
    rows = [{"threshold_m": float(h), "n_groups": int(np.sum(np.isclose(chosen, h))),
             "area_km2": float(np.sum(area[np.isclose(chosen, h)])) / 1e6}
            for h in np.unique(chosen)]
    rep.add_table(Table("Thresholds chosen by the processing groups",
                        (("threshold_m", "double"), ("n_groups", "int"), ("area_km2", "double")),
                        rows, "Processing groups with polygon area only.",
                        {"threshold_m": "Threshold h (m)", "n_groups": "Processing groups",
                         "area_km2": "Area (km²)"}))
    rep.add_table(Table("Sensitivity curves", SENSITIVITY_FIELDS, result.sensitivity_rows(),
                        "global: A_u and A_m over one threshold h for all features; local: the "
                        "local optimum over H_max. chosen = 1 marks the optimum of each curve.",
                        {"curve": "Curve", "threshold_m": "Threshold (m)",
                         "area_unassigned_pct": "A_u (%)", "area_multi_pct": "A_m (%)",
                         "distance": "Pareto distance", "chosen": "Chosen"}))
    return write_html(rep, path)
