"""Plots of the footprint summary (the paper's Fig. 9): area by commodity, and regions (top
countries, biomes) as bars stacked by commodity. matplotlib Figure + Agg canvas only (no pyplot:
the algorithms run in a worker thread). Colours are the same for a commodity in every plot and
in the grid layer's style.
"""
from __future__ import annotations

import os

from .colours import UNASSIGNED_COLOUR, commodity_colour
from .footprint import OUTSIDE, UNKNOWN

UNKNOWN_COLOUR = UNASSIGNED_COLOUR  # land with no commodity: the grey of the maps too
OTHER = "Other commodities"
OTHER_COLOUR = "#d9d9d9"
REST = "Rest of the world"


def colour_for(name: str) -> str:
    if name == UNKNOWN:
        return UNKNOWN_COLOUR
    if name == OTHER:
        return OTHER_COLOUR
    return commodity_colour(name)


def _figure(width, height, constrained=False):
    """A Figure on an Agg canvas; `constrained` lays out titles (a suptitle included) so that
    nothing overlaps."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=110, constrained_layout=constrained)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path):
    ext = os.path.splitext(path)[1].lower().lstrip(".")
    fig.savefig(path, format=ext if ext in ("png", "svg", "pdf") else "png",
                bbox_inches="tight")
    return path


def _top_commodities(commodity_rows, max_commodities):
    """Commodity names kept in legends: the largest ones, the rest folded into OTHER."""
    names = [r["commodity"] for r in commodity_rows if r["commodity"] != UNKNOWN]
    keep = names[:max_commodities]
    return keep


def commodity_figure(commodity_rows, title="Mine area by primary commodity", max_bars=25):
    """Horizontal bars: km² per primary commodity, labelled with its share (%)."""
    rows = [r for r in commodity_rows if r["commodity"] != UNKNOWN][:max_bars]
    rest = [r for r in commodity_rows if r["commodity"] != UNKNOWN][max_bars:]
    if rest:
        rows.append({"commodity": OTHER, "area_km2": sum(r["area_km2"] for r in rest),
                     "area_pct": sum(r["area_pct"] for r in rest)})
    rows += [r for r in commodity_rows if r["commodity"] == UNKNOWN]
    fig = _figure(7.5, 0.8 + 0.32 * max(len(rows), 1))
    ax = fig.add_subplot(1, 1, 1)
    labels = [r["commodity"] for r in rows][::-1]
    values = [r["area_km2"] for r in rows][::-1]
    ax.barh(range(len(rows)), values, color=[colour_for(n) for n in labels], edgecolor="#303030",
            linewidth=0.3)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels(labels, fontsize=8)
    top = max(values) if values else 1.0
    for y, r in enumerate(rows[::-1]):
        ax.text(r["area_km2"] + 0.01 * top, y, f"{r['area_pct']:.1f} %", va="center", fontsize=7)
    ax.set_xlim(0, top * 1.15 if top > 0 else 1)
    ax.set_xlabel("Area (km²)")
    ax.set_title(title, fontsize=10)
    ax.grid(axis="x", linewidth=0.3, alpha=0.5)
    return fig


def regions_figure(region_rows, commodity_rows, title, top_n=15, max_commodities=10,
                   rest_label=REST):
    """Bars for the `top_n` largest regions (others as `rest_label`, 'Outside' last), stacked by
    commodity: the largest `max_commodities` commodities, other ones folded, Unknown in grey."""
    totals = {}
    for r in region_rows:
        totals[r["region"]] = totals.get(r["region"], 0.0) + r["area_km2"]
    named = [k for k in totals if k != OUTSIDE]
    named.sort(key=lambda k: (-totals[k], k))
    shown = named[:top_n]
    folded = set(named[top_n:])
    keep = _top_commodities(commodity_rows, max_commodities)
    stack = keep + ([OTHER] if any(r["commodity"] not in keep and r["commodity"] != UNKNOWN
                                   for r in region_rows) else []) + [UNKNOWN]
    bars = shown + ([rest_label] if folded else []) + ([OUTSIDE] if OUTSIDE in totals else [])
    grid = {b: {c: 0.0 for c in stack} for b in bars}
    for r in region_rows:
        b = rest_label if r["region"] in folded else r["region"]
        c = r["commodity"] if r["commodity"] in keep or r["commodity"] == UNKNOWN else OTHER
        grid[b][c] += r["area_km2"]
    fig = _figure(8.5, 1.2 + 0.32 * max(len(bars), 1))
    ax = fig.add_subplot(1, 1, 1)
    ys = list(range(len(bars)))[::-1]
    left = [0.0] * len(bars)
    total_all = sum(totals.values()) or 1.0
    for c in stack:
        vals = [grid[b][c] for b in bars]
        if not any(vals):
            continue
        ax.barh(ys, vals, left=left, color=colour_for(c), label=c, edgecolor="#303030",
                linewidth=0.2)
        left = [a + v for a, v in zip(left, vals)]
    top = max(left) if left else 1.0
    for y, b, tot in zip(ys, bars, left):
        ax.text(tot + 0.01 * top, y, f"{100.0 * tot / total_all:.1f} %", va="center", fontsize=7)
    ax.set_yticks(ys)
    ax.set_yticklabels(bars, fontsize=8)
    ax.set_xlim(0, top * 1.15 if top > 0 else 1)
    ax.set_xlabel("Area (km²)")
    ax.set_title(title, fontsize=10)
    ax.grid(axis="x", linewidth=0.3, alpha=0.5)
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(handles, labels, fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5),
                  frameon=False, title="Primary commodity", title_fontsize=7)
    return fig


def commodity_plot(commodity_rows, path, title="Mine area by primary commodity"):
    return _save(commodity_figure(commodity_rows, title), path)


def regions_plot(region_rows, commodity_rows, path, title, top_n=15, rest_label=REST):
    return _save(regions_figure(region_rows, commodity_rows, title, top_n=top_n,
                                rest_label=rest_label), path)


def validation_figure(pairs, title="Similarity of primary commodities to the reference"):
    """Histograms of the four metrics over the compared pairs."""
    fig = _figure(9.0, 2.6, constrained=True)     # the suptitle clear of the subplot titles
    for k, (key, label) in enumerate((("jaccard", "Jaccard"), ("dice", "Dice"),
                                      ("overlap", "Overlap coefficient"),
                                      ("id_overlap", "ID overlap"))):
        ax = fig.add_subplot(1, 4, k + 1)
        vals = [p[key] for p in pairs if p[key] is not None and p[key] == p[key]]
        ax.hist(vals, bins=[i / 10 for i in range(11)], color="#4c72b0", edgecolor="white")
        undefined = len(pairs) - len(vals)
        ax.set_title(label + (f" ({undefined} undefined)" if undefined else ""), fontsize=8)
        ax.set_xlim(0, 1)
        ax.tick_params(labelsize=7)
        if k == 0:
            ax.set_ylabel("Pairs", fontsize=8)
    fig.suptitle(title, fontsize=9)
    return fig


def validation_plot(pairs, path, title="Similarity of primary commodities to the reference"):
    return _save(validation_figure(pairs, title), path)


def grid_figure(grid_table, title="Dominant primary commodity per grid cell", max_legend=12,
                outlines=None):
    """The paper's Fig. 10 in plain longitude/latitude: each cell with mine land coloured by its
    dominant commodity (cells drawn at least a few points wide so that small ones stay visible).

    Every colour drawn is in the legend: the `max_legend` - 1 commodities dominating the most
    area keep their own colour, the others are drawn and listed as "Other commodities", and
    Unknown (no commodity) is always listed. The axes span the data (a little padding), not the
    globe. `outlines`: polygons in lon/lat (e.g. the countries) drawn as thin grey lines for
    orientation."""
    import numpy as np
    from matplotlib.collections import PolyCollection
    from matplotlib.patches import Patch

    fig = _figure(10.0, 5.4)
    ax = fig.add_subplot(1, 1, 1)
    seen = {}
    for row in grid_table.rows:
        seen[row["dominant"]] = seen.get(row["dominant"], 0.0) + row["mine_area_km2"]
    ranked = sorted((k for k in seen if k != UNKNOWN), key=lambda k: (-seen[k], k))
    slots = max(1, max_legend - (UNKNOWN in seen))
    own = ranked if len(ranked) <= slots else ranked[:slots - 1]
    shown = {k: k for k in own}
    shown.update({k: OTHER for k in ranked if k not in shown})
    if UNKNOWN in seen:
        shown[UNKNOWN] = UNKNOWN
    # one vertex array for all cells (Rectangle patches cost ~0.2 ms each at 50,000+ cells)
    b = np.array([grid_table.grid.cell_bounds(r, c) for r, c in grid_table.cells],
                 dtype=float).reshape(-1, 4)
    verts = np.stack([b[:, [0, 1]], b[:, [2, 1]], b[:, [2, 3]], b[:, [0, 3]]], axis=1)
    colours = [colour_for(shown[row["dominant"]]) for row in grid_table.rows]
    ax.add_collection(PolyCollection(verts, facecolors=colours, edgecolors=colours,
                                     linewidths=0.6, zorder=2))
    if len(b):
        pad = max(1.0, 0.03 * max(b[:, 2].max() - b[:, 0].min(), b[:, 3].max() - b[:, 1].min()))
        xlim = (max(b[:, 0].min() - pad, -180.0), min(b[:, 2].max() + pad, 180.0))
        ylim = (max(b[:, 1].min() - pad, -90.0), min(b[:, 3].max() + pad, 90.0))
        if outlines is not None:
            _draw_outlines(ax, outlines, xlim, ylim)
        ax.set_xlim(*xlim)
        ax.set_ylim(*ylim)
    # equal degrees on both axes by shaping the box, never by widening the limits past ±90°
    ax.set_aspect("equal", adjustable="box")
    ax.set_xlabel("Longitude (°)")
    ax.set_ylabel("Latitude (°)")
    ax.set_title(title, fontsize=10)
    ax.grid(linewidth=0.3, alpha=0.5)
    names = own + ([OTHER] if len(own) < len(ranked) else [])
    names += [UNKNOWN] if UNKNOWN in seen else []
    ax.legend(handles=[Patch(color=colour_for(n), label=n) for n in names], fontsize=7,
              loc="lower left", frameon=True, title="Dominant commodity", title_fontsize=7)
    return fig


def _draw_outlines(ax, polygons, xlim, ylim):
    """The rings of `polygons` (lon/lat) that meet the plotted box, simplified to the plot's
    scale, as thin grey lines under the cells."""
    import numpy as np
    import shapely
    from matplotlib.collections import LineCollection

    geoms = np.asarray([g for g in polygons if g is not None], dtype=object)
    if not len(geoms):
        return
    box = shapely.box(xlim[0], ylim[0], xlim[1], ylim[1])
    geoms = geoms[shapely.intersects(geoms, box)]
    tolerance = max(xlim[1] - xlim[0], ylim[1] - ylim[0]) / 2000.0
    rings = shapely.get_rings(shapely.get_parts(shapely.simplify(geoms, tolerance)))
    segments = [np.asarray(shapely.get_coordinates(r)) for r in rings]
    ax.add_collection(LineCollection([s for s in segments if len(s) > 1], colors="#808080",
                                     linewidths=0.4, zorder=1))


def grid_plot(grid_table, path, title="Dominant primary commodity per grid cell", outlines=None):
    return _save(grid_figure(grid_table, title, outlines=outlines), path)
