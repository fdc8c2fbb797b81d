"""Plots of a ClusterResult with matplotlib's object API (no pyplot: safe in QGIS worker threads).

- :func:`pareto_plot`: the paper's Fig. 4b. x = share of area with several primary commodities
  (A_m, %), y = share of area unassigned (A_u, %); the global curve over h and the local curve
  over H_max, each point labelled with its threshold in km, both optima marked. A_m can exceed
  100 % (a cluster with 3 primaries counts its area twice): axes follow the data, never clipped.
- :func:`threshold_histogram`: the paper's Fig. A.11, the thresholds chosen by the processing
  groups of the final run (groups holding polygon area; points-only groups choose nothing).
"""
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

GLOBAL_COLOUR = "#1f77b4"
LOCAL_COLOUR = "#d62728"


def _km(metres):
    km = float(metres) / 1000.0
    return f"{km:g}"


def _limits(values):
    """(low, high) covering all values with a margin; never clips (A_m may exceed 100 %)."""
    v = np.asarray([x for x in values if np.isfinite(x)], dtype=float)
    if v.size == 0:
        return -1.0, 1.0
    lo, hi = float(v.min()), float(v.max())
    pad = max(0.08 * (hi - lo), 0.5)
    return lo - pad, hi + pad


def _label_runs(ax, xs, ys, hs, colour, offset):
    """Label each point with its threshold in km; consecutive points at the same place share
    one label ("5-9"), so coinciding points stay readable."""
    xs, ys, hs = list(xs), list(ys), list(hs)
    i = 0
    while i < len(xs):
        j = i
        while (j + 1 < len(xs) and np.isclose(xs[j + 1], xs[i], rtol=0, atol=1e-9)
               and np.isclose(ys[j + 1], ys[i], rtol=0, atol=1e-9)):
            j += 1
        text = _km(hs[i]) if j == i else f"{_km(hs[i])}\u2013{_km(hs[j])}"
        ax.annotate(text, (xs[i], ys[i]), textcoords="offset points", xytext=offset,
                    fontsize=7, color=colour)
        i = j + 1


def pareto_figure(result, title=None):
    """The Fig. 4b Figure (with an Agg canvas attached)."""
    fig = Figure(figsize=(7.5, 6.0), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    g, loc = result.global_curve, result.local_curve
    ax.plot(g.area_multi_pct, g.area_unassigned_pct, "-o", color=GLOBAL_COLOUR, ms=4, lw=1.2,
            label="global: one threshold h for all")
    _label_runs(ax, g.area_multi_pct, g.area_unassigned_pct, g.threshold_m, GLOBAL_COLOUR, (5, 3))
    ax.plot(loc.area_multi_pct, loc.area_unassigned_pct, "-s", color=LOCAL_COLOUR, ms=4, lw=1.2,
            label="local optimum over H_max")
    _label_runs(ax, loc.area_multi_pct, loc.area_unassigned_pct, loc.threshold_m, LOCAL_COLOUR,
                (-22, -9))
    gi, li = g.chosen_index, loc.chosen_index
    ax.plot([g.area_multi_pct[gi]], [g.area_unassigned_pct[gi]], marker="*", ms=16,
            color=GLOBAL_COLOUR, mec="black", ls="none",
            label=f"global optimum h = {_km(g.threshold_m[gi])} km")
    ax.plot([loc.area_multi_pct[li]], [loc.area_unassigned_pct[li]], marker="*", ms=16,
            color=LOCAL_COLOUR, mec="black", ls="none",
            label=f"local optimum, H*_max = {_km(loc.threshold_m[li])} km")
    ax.set_xlim(*_limits(list(g.area_multi_pct) + list(loc.area_multi_pct)))
    ax.set_ylim(*_limits(list(g.area_unassigned_pct) + list(loc.area_unassigned_pct)))
    ax.set_xlabel("Area assigned to multiple primary commodities, A_m (% of total area)")
    ax.set_ylabel("Unassigned area, A_u (% of total area)")
    formula = {"eq1": "Eq. 1", "r": "R-code formula"}.get(getattr(result, "formula", ""), "")
    ax.set_title(title or f"Pareto sensitivity (labels: threshold in km; w = "
                          f"{getattr(result, 'weight', 0.5):g}, {formula})", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return fig


def histogram_figure(result, title=None):
    """The Fig. A.11 Figure: number of processing groups (with polygon area) per chosen h."""
    fig = Figure(figsize=(7.0, 4.5), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    groups = result.groups
    chosen = np.asarray(groups.chosen_threshold_m, dtype=float)
    with_area = np.asarray(groups.area_m2, dtype=float) > 0
    chosen = chosen[with_area]
    thresholds = np.asarray(result.thresholds_m, dtype=float)
    thresholds = thresholds[thresholds <= float(result.max_threshold_m) * (1 + 1e-12)]
    counts = [int(np.sum(np.isclose(chosen, h))) for h in thresholds]
    ax.bar(thresholds / 1000.0, counts, width=0.8 * (np.min(np.diff(thresholds)) / 1000.0
                                                     if len(thresholds) > 1 else 0.8),
           color="#7f7f7f", edgecolor="black")
    from matplotlib.ticker import MaxNLocator

    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("Chosen threshold h (km)")
    ax.set_ylabel("Processing groups")
    ax.set_title(title or f"Thresholds chosen by {int(with_area.sum())} processing groups with "
                          f"area (H_max = {_km(result.max_threshold_m)} km)", fontsize=10)
    ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def _save(fig, path):
    fmt = "svg" if str(path).lower().endswith(".svg") else "png"
    fig.savefig(path, format=fmt)
    return path


def pareto_plot(result, path, title=None):
    """Write Fig. 4b to `path` (PNG, or SVG when the name ends in .svg); returns `path`."""
    return _save(pareto_figure(result, title), path)


def threshold_histogram(result, path, title=None):
    """Write Fig. A.11 to `path` (PNG, or SVG when the name ends in .svg); returns `path`."""
    return _save(histogram_figure(result, title), path)
