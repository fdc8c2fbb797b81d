"""Processing algorithm "Cluster mine features (local optimum)": a thin wrapper around core.

Reads the two layers (layer_io: in EPSG:4326), calls ``core.prepare_features`` and
``core.cluster_mines`` and writes the outputs in the input layers' CRS. Nothing scientific
happens here.
"""
import os
import tempfile
import threading
import time

from qgis.core import (
    QgsFeatureRequest,
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingMultiStepFeedback,
    QgsProcessingOutputNumber,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterField,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterNumber,
    QgsWkbTypes,
)

from . import bulk, compat, layer_io, provenance
from .base import MineClustersAlgorithm


class ClusterLocalOptimumAlgorithm(MineClustersAlgorithm):
    POLYGONS = "POLYGONS"
    POINTS = "POINTS"
    PRIMARY_FIELD = "PRIMARY_FIELD"
    COMMODITIES_FIELD = "COMMODITIES_FIELD"
    AREA_FIELD = "AREA_FIELD"
    H_LIMIT = "H_LIMIT"
    THRESHOLD_STEP = "THRESHOLD_STEP"
    MAX_THRESHOLD = "MAX_THRESHOLD"
    METHOD = "METHOD"
    WEIGHT = "WEIGHT"
    FORMULA = "FORMULA"
    OUTPUT_POLYGONS = "OUTPUT_POLYGONS"
    OUTPUT_POINTS = "OUTPUT_POINTS"
    OUTPUT_CLUSTERS = "OUTPUT_CLUSTERS"
    OUTPUT_SENSITIVITY = "OUTPUT_SENSITIVITY"
    OUTPUT_PLOT = "OUTPUT_PLOT"
    OUTPUT_HISTOGRAM = "OUTPUT_HISTOGRAM"
    OUTPUT_REPORT = "OUTPUT_REPORT"
    OUTPUT_LINKS = "OUTPUT_LINKS"
    OUTPUT_CONCORDANCE = "OUTPUT_CONCORDANCE"
    MAX_THRESHOLD_M = "MAX_THRESHOLD_M"
    GLOBAL_THRESHOLD_M = "GLOBAL_THRESHOLD_M"
    AREA_UNASSIGNED_PCT = "AREA_UNASSIGNED_PCT"
    AREA_MULTI_PCT = "AREA_MULTI_PCT"
    N_CLUSTERS = "N_CLUSTERS"

    METHODS = ("local", "global")
    FORMULAS = ("eq1", "r")

    # ---- identity -------------------------------------------------------------------------
    HELP_ANCHOR = "what-it-does"

    def name(self):
        return "clusterlocaloptimum"

    def displayName(self):  # noqa: N802
        return self.tr("Cluster mine features (local optimum)")

    def group(self):
        return self.tr("Clustering")

    def groupId(self):  # noqa: N802
        return "clustering"

    def tags(self):
        return self.tr(
            "mining,mine,land use,commodity,commodities,cluster,clustering,single linkage,"
            "hierarchical,geodesic,pareto,optimum,threshold,Maus").split(",")

    def summary(self):
        return self.tr("Gives mining land-use polygons the commodities of nearby mine points "
                       "(geodesic single linkage, local Pareto optimum).")

    def help_html(self):
        return self.tr(
            "Links mining land-use polygons with mine inventory points by exact geodesic single "
            "linkage and assigns each polygon the primary commodities of its cluster "
            "(Maus et al. 2025).<br><br>"
            "Features closer than the pre-grouping limit form groups. Within a group, clusters at "
            "each candidate threshold (multiples of the threshold step) are scored by the Pareto "
            "distance of the paper's Eq. 1 between the unassigned area share and the share of area "
            "with several primary commodities (weight w for the latter). With the local method, "
            "the clusters at the largest allowed threshold H_max are processing groups, each with "
            "its own best threshold; H_max itself is chosen the same way unless you fix it. "
            "Distances are metres on the Earth whatever the layer CRS.<br><br>"
            "<b>Outputs</b>: polygons and points with their own attributes unchanged plus "
            "cluster_id, threshold_m, primary_commodities, commodities, status (assigned / "
            "unassigned / multiple) and area_m2 (written as mc_&lt;name&gt; where the input "
            "already has the name; the log says so); one multipolygon per cluster; the "
            "sensitivity table (global curve over h, local curve over H_max); the Pareto plot "
            "(paper Fig. 4b) and a histogram of the chosen local thresholds (Fig. A.11); an "
            "HTML report with the headline numbers and both plots, shown in the Results Viewer. "
            "<br><br><b>Why a polygon got its commodity</b>: each clustered polygon carries "
            "via_point_fid (the point with a primary commodity of its cluster nearest along the "
            "links), via_distance_m, via_links, via_max_link_m (below this threshold it would "
            "lose that point) and stable_from_m / stable_to_m (the candidate thresholds over "
            "which its primary commodities stay the same). On request: the links themselves "
            "(one line per single-linkage link holding a cluster together, k - 1 for k features) "
            "and the concordance table (each feature's cluster and primary commodities at every "
            "candidate threshold, as in the paper's R code).<br><br>"
            "Dropped empty or null geometries are listed in the log.<br><br>Needs the Python "
            "packages numpy, scipy, matplotlib and shapely 2 (see the plugin README).")

    # ---- parameters -----------------------------------------------------------------------
    def initAlgorithm(self, config=None):  # noqa: N802
        tr = self.tr
        self.add_parameter(QgsProcessingParameterFeatureSource(
            self.POLYGONS, tr("Mining land-use polygons"),
            [QgsProcessing.SourceType.TypeVectorPolygon]),
            tr("Mine areas without commodities (e.g. the Maus et al. polygons, or the output of "
               "Harmonise land-use polygons), in any CRS: distances are measured on the Earth."))
        self.add_parameter(QgsProcessingParameterFeatureSource(
            self.POINTS, tr("Mine points (with commodities)"),
            [QgsProcessing.SourceType.TypeVectorPoint]),
            tr("Mine inventory points or multipoints with their commodities (e.g. the output of "
               "Harmonise mine points), in any CRS. Each part of a multipoint is its own point."))
        self.add_parameter(QgsProcessingParameterField(
            self.PRIMARY_FIELD, tr("Primary commodity field (comma lists allowed)"),
            defaultValue="primary_commodity", parentLayerParameterName=self.POINTS,
            type=QgsProcessingParameterField.DataType.String,
            # QGIS 3.22 rejects an absent value of a required field parameter even when it has a
            # default; marked optional so the default works, processAlgorithm still requires it.
            optional=True),
            tr("Text field of the points with the primary commodity, or several separated by "
               "commas. Empty, NULL and NA mean unknown. Required: the default is "
               "primary_commodity."))
        self.add_parameter(QgsProcessingParameterField(
            self.COMMODITIES_FIELD, tr("All commodities field (comma list)"),
            defaultValue="commodities", parentLayerParameterName=self.POINTS,
            type=QgsProcessingParameterField.DataType.String, optional=True),
            tr("Text field of the points with every commodity of the mine, separated by commas "
               "(listed in the outputs' commodities field). Optional: without it the primary "
               "commodities are used."))
        self.add_parameter(QgsProcessingParameterField(
            self.AREA_FIELD, tr("Polygon area field (m²; empty = geodesic area)"),
            parentLayerParameterName=self.POLYGONS,
            type=QgsProcessingParameterField.DataType.Numeric, optional=True),
            tr("Numeric field of the polygons with each polygon's area in m² (e.g. area_m2 of "
               "Harmonise land-use polygons). Empty: the area is measured on the sphere."))
        self.add_parameter(QgsProcessingParameterNumber(
            self.H_LIMIT, tr("Pre-grouping limit (m)"), QgsProcessingParameterNumber.Type.Double,
            defaultValue=20000.0, minValue=0.0),
            tr("Features further apart than this (geodesic metres) are never linked; it is also "
               "the largest candidate threshold. The paper uses 20,000 m."), decimals=0)
        self.add_parameter(QgsProcessingParameterNumber(
            self.THRESHOLD_STEP, tr("Threshold step (m; candidates are its multiples up to the limit)"),
            QgsProcessingParameterNumber.Type.Double, defaultValue=1000.0, minValue=0.0),
            tr("The candidate thresholds h are the multiples of this step up to the pre-grouping "
               "limit (default 1,000 m: 1, 2, ..., 20 km)."), decimals=0)
        self.add_parameter(QgsProcessingParameterNumber(
            self.MAX_THRESHOLD, tr("Largest allowed threshold H_max (m; empty = meta-optimised)"),
            QgsProcessingParameterNumber.Type.Double, optional=True, minValue=0.0),
            tr("Fixes H_max, the threshold whose clusters are the processing groups of the local "
               "method. Empty: H_max is itself chosen by the Pareto distance over the candidates."),
            decimals=0)
        self.add_parameter(QgsProcessingParameterEnum(
            self.METHOD, tr("Method"),
            options=[tr("Local optimum per processing group"), tr("One global threshold")],
            defaultValue=0),
            tr("Local: each processing group gets its own Pareto-optimal threshold (the paper's "
               "method). Global: one threshold for all features."))
        self.add_parameter(QgsProcessingParameterNumber(
            self.WEIGHT, tr("Weight w of the multiple-commodity area (0..1)"),
            QgsProcessingParameterNumber.Type.Double, defaultValue=0.5, minValue=0.0,
            maxValue=1.0),
            tr("Weight of the multiple-commodity area A_m against the unassigned area A_u in the "
               "Pareto distance (0.5 = equal weight, as in the paper)."),
            advanced=True, decimals=2)
        self.add_parameter(QgsProcessingParameterEnum(
            self.FORMULA, tr("Pareto distance"),
            options=[tr("Paper's Eq. 1"), tr("Published R code (a/max(a) + (b/max(b))²)")],
            defaultValue=0),
            tr("The distance to the ideal point that picks the threshold: the paper's Eq. 1, or "
               "the formula of the published R code, to reproduce its results."), advanced=True)

        self.add_parameter(QgsProcessingParameterFeatureSink(
            self.OUTPUT_POLYGONS, tr("Clustered polygons"),
            QgsProcessing.SourceType.TypeVectorPolygon),
            tr("The input polygons with their attributes unchanged plus cluster_id, threshold_m, "
               "primary_commodities, commodities, status, area_m2 and why: via_point_fid, "
               "via_distance_m, via_links, via_max_link_m, stable_from_m, stable_to_m "
               "(mc_<name> where the input has the name), in the input CRS, styled by primary "
               "commodity."))
        # Optional (created by default in the dialog) so that `qgis_process run ... POLYGONS=
        # POINTS= OUTPUT_POLYGONS=` works alone: qgis_process gives absent sinks no default.
        self.add_parameter(QgsProcessingParameterFeatureSink(
            self.OUTPUT_POINTS, tr("Clustered points"), QgsProcessing.SourceType.TypeVectorPoint,
            optional=True, createByDefault=True),
            tr("One row per point part with the same added fields as the polygons."))
        self.add_parameter(QgsProcessingParameterFeatureSink(
            self.OUTPUT_CLUSTERS, tr("Clusters"), QgsProcessing.SourceType.TypeVectorPolygon,
            optional=True, createByDefault=True),
            tr("One multipolygon per cluster holding polygons, with its commodities, counts, "
               "area and status."))
        self.add_parameter(QgsProcessingParameterFeatureSink(
            self.OUTPUT_SENSITIVITY, tr("Sensitivity table"), QgsProcessing.SourceType.TypeVector,
            optional=True, createByDefault=True),
            tr("A_u, A_m and the Pareto distance at every candidate: the global curve over h and "
               "the local curve over H_max."))
        self.add_parameter(QgsProcessingParameterFileDestination(
            self.OUTPUT_PLOT, tr("Pareto plot"), tr("PNG files (*.png);;SVG files (*.svg)"),
            optional=True, createByDefault=True),
            tr("The paper's Fig. 4b: unassigned against multiple-commodity area for both curves, "
               "PNG or SVG by the file name."))
        self.add_parameter(QgsProcessingParameterFileDestination(
            self.OUTPUT_HISTOGRAM, tr("Histogram of chosen thresholds"),
            tr("PNG files (*.png);;SVG files (*.svg)"), optional=True, createByDefault=True),
            tr("The paper's Fig. A.11: how many processing groups chose each threshold."))
        self.add_parameter(QgsProcessingParameterFileDestination(
            self.OUTPUT_REPORT, tr("Report"), tr("HTML files (*.html)"), optional=True,
            createByDefault=True),
            tr("An HTML page with the headline numbers, both plots, the chosen thresholds and the "
               "sensitivity curves; it opens in the Results Viewer."))

        self.add_parameter(QgsProcessingParameterFeatureSink(
            self.OUTPUT_LINKS, tr("Links (why features share a cluster)"),
            QgsProcessing.SourceType.TypeVectorLine, optional=True, createByDefault=False),
            tr("One line per single-linkage link that holds a cluster together (k - 1 for a "
               "cluster of k features): the shortest geodesic connection of the two features, "
               "drawn along the great circle (split at ±180°), with cluster_id, from_layer, "
               "from_fid, from_part, to_layer, to_fid, to_part, distance_m and threshold_m; in the "
               "polygons' CRS, thin dark lines. Not written unless asked for."))
        self.add_parameter(QgsProcessingParameterFeatureSink(
            self.OUTPUT_CONCORDANCE, tr("Concordance table (cluster at every threshold)"),
            QgsProcessing.SourceType.TypeVector, optional=True, createByDefault=False),
            tr("One row per polygon and per point part: layer, feature_id, part, then "
               "cluster_<h> (the cluster at threshold h, metres) and primary_<h> (its primary "
               "commodities) for every candidate h, as the paper's R code gives (Fig. A.12). Not "
               "written unless asked for."))

        self.addOutput(QgsProcessingOutputNumber(self.MAX_THRESHOLD_M, tr("H_max used (m)")))
        self.addOutput(QgsProcessingOutputNumber(self.GLOBAL_THRESHOLD_M,
                                                 tr("Global optimum threshold (m)")))
        self.addOutput(QgsProcessingOutputNumber(self.AREA_UNASSIGNED_PCT,
                                                 tr("Unassigned area (%)")))
        self.addOutput(QgsProcessingOutputNumber(
            self.AREA_MULTI_PCT, tr("Area with several primary commodities (%, may exceed 100)")))
        self.addOutput(QgsProcessingOutputNumber(self.N_CLUSTERS, tr("Number of clusters")))
        provenance.add_output(self)

    # ---- run ------------------------------------------------------------------------------
    def _parameters(self, parameters, context):
        """(h_limit, step, max_threshold or None, method, weight, formula), checked."""
        tr = self.tr
        h_limit = self.parameterAsDouble(parameters, self.H_LIMIT, context)
        step = self.parameterAsDouble(parameters, self.THRESHOLD_STEP, context)
        raw_max = parameters.get(self.MAX_THRESHOLD)
        max_threshold = (None if raw_max is None or str(raw_max).strip() in ("", "None", "NULL")
                         else self.parameterAsDouble(parameters, self.MAX_THRESHOLD, context))
        method = self.METHODS[self.parameterAsEnum(parameters, self.METHOD, context)]
        weight = self.parameterAsDouble(parameters, self.WEIGHT, context)
        formula = self.FORMULAS[self.parameterAsEnum(parameters, self.FORMULA, context)]
        if h_limit <= 0:
            raise QgsProcessingException(
                tr("The pre-grouping limit must be more than 0 m, got {value} m.").format(
                    value=f"{h_limit:g}"))
        if step <= 0 or step > h_limit:
            raise QgsProcessingException(
                tr("The threshold step must be more than 0 m and at most the pre-grouping limit "
                   "({limit} m), got {value} m.").format(limit=f"{h_limit:g}", value=f"{step:g}"))
        return h_limit, step, max_threshold, method, weight, formula

    def compute(self, parameters, context, feedback, outputs):
        from ..core import cluster_mines, prepare_features
        from ..core import CLUSTER_FIELDS, FEATURE_FIELDS, LINK_FIELDS, SENSITIVITY_FIELDS, TRACE_FIELDS
        from ..core import plots, report

        tr = self.tr
        polys = layer_io.source(self, parameters, self.POLYGONS, context)
        points = layer_io.source(self, parameters, self.POINTS, context)
        poly_name = layer_io.layer_name(parameters, self.POLYGONS, polys)
        point_name = layer_io.layer_name(parameters, self.POINTS, points)
        polygons_label, points_label = tr("polygons"), tr("points")
        layer_io.check_geometry_type(polys, layer_io.POLYGON, polygons_label, poly_name,
                                     tr("Mining land-use polygons"))
        layer_io.check_geometry_type(points, layer_io.POINT, points_label, point_name,
                                     tr("Mine points (with commodities)"))
        layer_io.check_not_empty(polys, polygons_label, poly_name)
        layer_io.check_not_empty(points, points_label, point_name)
        made_by = provenance.record(self, parameters, context)
        primary_field = layer_io.chosen_field(self, parameters, self.PRIMARY_FIELD, context,
                                              points, points_label, point_name)
        commodities_field = layer_io.chosen_field(self, parameters, self.COMMODITIES_FIELD,
                                                  context, points, points_label, point_name,
                                                  optional=True)
        area_field = layer_io.chosen_field(self, parameters, self.AREA_FIELD, context, polys,
                                           polygons_label, poly_name, optional=True)
        feedback.pushInfo(
            tr("Primary commodities from '{primary}', all commodities from {all}, polygon areas "
               "{areas}.").format(
                primary=primary_field,
                all=f"'{commodities_field}'" if commodities_field
                else tr("the primary field only"),
                areas=tr("from '{field}' (m²)").format(field=area_field) if area_field
                else tr("measured on the sphere")))
        h_limit, step, max_threshold, method, weight, formula = \
            self._parameters(parameters, context)

        steps = QgsProcessingMultiStepFeedback(4, feedback)
        feedback.pushInfo(tr("Reading {n_polygons} polygons from '{polygons}' and {n_points} "
                             "points from '{points}'.").format(
            n_polygons=polys.featureCount(), polygons=poly_name, n_points=points.featureCount(),
            points=point_name))
        timings = {}
        t0 = time.perf_counter()
        # Only the geometry and the fields the core needs are read; the outputs read the
        # sources again, so no feature is held in memory.
        polys_at = bulk.location(self, parameters, self.POLYGONS, context)
        points_at = bulk.location(self, parameters, self.POINTS, context)
        read_polys = layer_io.read(polys, context, feedback, polygons_label, poly_name,
                                   layer_io.POLYGON, [area_field] if area_field else [],
                                   progress=lambda p: steps.setProgress(0.5 * p), bulk=polys_at)
        read_points = layer_io.read(points, context, feedback, points_label, point_name,
                                    layer_io.POINT,
                                    [f for f in (primary_field, commodities_field) if f],
                                    progress=lambda p: steps.setProgress(50 + 0.5 * p),
                                    bulk=points_at)
        shp_polys = read_polys.geoms
        timings["read"] = time.perf_counter() - t0

        steps.setCurrentStep(1)
        t0 = time.perf_counter()
        features = prepare_features(
            polygons=shp_polys, polygon_ids=read_polys.ids,
            polygon_areas=layer_io.numbers(read_polys.values[area_field]) if area_field else None,
            points=read_points.geoms, point_ids=read_points.ids,
            primary=layer_io.texts(read_points.values[primary_field]),
            commodities=(layer_io.texts(read_points.values[commodities_field])
                         if commodities_field else None),
            progress=lambda r: steps.setProgress(20.0 * r), should_stop=feedback.isCanceled)
        del read_polys, read_points
        result = cluster_mines(
            features, h_limit_m=h_limit, threshold_step_m=step,
            max_threshold_m=max_threshold, method=method, weight=weight, formula=formula,
            progress=lambda r: steps.setProgress(20.0 + 80.0 * r),
            should_stop=feedback.isCanceled)
        layer_io.stop_if_cancelled(feedback)
        timings["cluster"] = time.perf_counter() - t0
        # The links' lines (nearest points, great circles) are drawn on a worker thread beside
        # the writing of the polygons; nothing else of the features is needed to write.
        stop = threading.Event()
        lines = None
        if layer_io.asked(parameters.get(self.OUTPUT_LINKS)):
            lines = outputs.background(lambda f=features: _link_wkbs(result, f, stop))
        from ..core.geometry import known_shapes
        from ..core.memory import release_free_memory

        known = known_shapes(features, shp_polys)  # the unions need not check or repair them again
        del features  # what writing does not need (peak memory at planet scale)
        release_free_memory()

        t0 = time.perf_counter()
        dropped = list(result.dropped)
        for layer, label in (("polygons", polygons_label), ("points", points_label)):
            ids = [str(fid) for lay, fid, _reason in dropped if lay == layer]
            if ids:
                reasons = sorted({reason for lay, _fid, reason in dropped if lay == layer})
                feedback.pushWarning(
                    tr("Dropped {n} {kind} feature(s) ({reasons}): feature ids {ids}.").format(
                        n=len(ids), kind=label, reasons="; ".join(reasons), ids=", ".join(ids)))
        feedback.pushInfo(
            tr("H_max = {h_max} m, global optimum h = {h} m, {n} clusters, unassigned area "
               "{a_u} %, multiple-commodity area {a_m} % ({method} method, w = {w}, "
               "{formula}).").format(
                h_max=f"{result.max_threshold_m:g}", h=f"{result.global_threshold_m:g}",
                n=result.n_clusters, a_u=f"{result.area_unassigned_pct:.2f}",
                a_m=f"{result.area_multi_pct:.2f}", method=method, w=f"{weight:g}",
                formula=formula))

        # ---- outputs: the clusters' unions (GEOS, GIL released) are built on a worker thread
        # while the polygons and points are written (QGIS writes with the GIL released too)
        steps.setCurrentStep(2)
        unions = None
        written = {}  # output kind -> the primary commodity values written (for its style)
        if layer_io.asked(parameters.get(self.OUTPUT_CLUSTERS)):
            unions = outputs.background(
                lambda g=shp_polys, k=known: _cluster_wkbs(result, g, stop, k))
            # the worker holds the polygons' shapes now: they are let go (and their memory freed,
            # a fifth of a second at planet scale) on its thread once the unions are made
            shp_polys = known = None
        try:
            self._write_elements(outputs, self.OUTPUT_POLYGONS, polys, polys_at, result.polygons,
                                 FEATURE_FIELDS + TRACE_FIELDS, parts=False,
                                 progress=lambda p: steps.setProgress(0.45 * p),
                                 kind=polygons_label, layer=poly_name)
            self._write_elements(outputs, self.OUTPUT_POINTS, points, points_at, result.points,
                                 FEATURE_FIELDS, parts=True,
                                 progress=lambda p: steps.setProgress(45 + 0.1 * p),
                                 kind=points_label, layer=point_name)
            cluster_fields = compat.fields_from_schema(CLUSTER_FIELDS)
            sink = outputs.sink(self.OUTPUT_CLUSTERS, cluster_fields,
                                QgsWkbTypes.Type.MultiPolygon, polys.sourceCrs())
            if sink is not None:
                if unions is None:  # asked for in a form the early check did not see
                    unions = outputs.background(
                        lambda g=shp_polys, k=known: _cluster_wkbs(result, g, stop, k))
                    shp_polys = known = None
                ids, wkbs, boxes = unions.result(feedback)
                del unions
                import numpy as np

                cid = result.clusters.cluster_id   # the clusters' rows of the shapes, by numpy
                by_id = np.argsort(cid, kind="stable")
                index = by_id[np.searchsorted(cid, ids, sorter=by_id)]
                columns = [layer_io.pick(layer_io.column(getattr(result.clusters, name)), index)
                           for name, _kind in CLUSTER_FIELDS]
                written["clusters"] = set(layer_io.pick(result.clusters.primary_commodities, index))
                back = layer_io.from_wgs84(polys.sourceCrs(), context)
                # the shapes' boxes are the unions' where nothing moves them (for the index)
                batches = (([c[a:a + bulk.BATCH] for c in columns],
                            layer_io.output_geometries(wkbs[a:a + bulk.BATCH], multi=True,
                                                       transform=back),
                            boxes[a:a + bulk.BATCH] if back is None else None)
                           for a in range(0, len(ids), bulk.BATCH))
                outputs.feed_columns(sink, batches, total=len(ids),
                                     progress=lambda p: steps.setProgress(55 + 0.4 * p))
                del ids, wkbs, boxes, sink, columns, batches
            outputs.table(self.OUTPUT_SENSITIVITY, SENSITIVITY_FIELDS, result.sensitivity_rows())
            self._write_links(outputs, lines, polys.sourceCrs(), context, LINK_FIELDS)
            if layer_io.asked(parameters.get(self.OUTPUT_CONCORDANCE)):
                conc = result.concordance(should_stop=feedback.isCanceled)
                outputs.table(self.OUTPUT_CONCORDANCE, conc.fields,
                              layer_io.rows_of(conc, conc.fields), plain=True)
                del conc
            else:
                outputs.dests[self.OUTPUT_CONCORDANCE] = None
        finally:
            stop.set()
        outputs.settle()

        timings["write"] = time.perf_counter() - t0
        layer_io.stop_if_cancelled(feedback)
        t0 = time.perf_counter()
        steps.setCurrentStep(3)
        plot_path = outputs.file(self.OUTPUT_PLOT)
        if plot_path:
            plots.pareto_plot(result, plot_path)
            feedback.pushInfo(tr("Pareto plot: {path}").format(path=plot_path))
        hist_path = outputs.file(self.OUTPUT_HISTOGRAM)
        if hist_path:
            plots.threshold_histogram(result, hist_path)
            feedback.pushInfo(tr("Histogram of chosen thresholds: {path}").format(path=hist_path))
        report_path = outputs.file(self.OUTPUT_REPORT)
        if report_path:
            # The report embeds both plots whether or not their files were asked for.
            with tempfile.TemporaryDirectory(prefix="mine_clusters_") as tmp:
                images = [
                    (plot_path or plots.pareto_plot(result, os.path.join(tmp, "pareto.png")),
                     tr("Pareto plot (paper Fig. 4b): unassigned against multiple-commodity "
                        "area; the stars mark the optima.")),
                    (hist_path or plots.threshold_histogram(
                        result, os.path.join(tmp, "thresholds.png")),
                     tr("Thresholds chosen by the processing groups (paper Fig. A.11)."))]
                report.cluster_report(result, report_path, images=images, intro=[
                    tr("Polygons: '{polygons}' ({n_polygons} features); points: '{points}' "
                       "({n_points} features).").format(
                        polygons=poly_name, n_polygons=polys.featureCount(), points=point_name,
                        n_points=points.featureCount()), provenance.sentence(made_by)])
            feedback.pushInfo(tr("Report: {path}").format(path=report_path))
        timings["plots"] = time.perf_counter() - t0
        layer_io.stop_if_cancelled(feedback)
        feedback.pushInfo(tr("Timings: {timings}.").format(
            timings=", ".join(f"{k} {v:.1f} s" for k, v in timings.items())))
        # the categories from the values written (reading them back took a query per output)
        written.update(polygons=set(result.polygons.primary_commodities),
                       points=set(result.points.primary_commodities))
        for name, kind in ((self.OUTPUT_POLYGONS, "polygons"), (self.OUTPUT_CLUSTERS, "clusters"),
                           (self.OUTPUT_POINTS, "points"), (self.OUTPUT_LINKS, "links")):
            outputs.style(name, kind, written.get(kind))

        results = dict(outputs.dests)
        results.update({
            self.MAX_THRESHOLD_M: float(result.max_threshold_m),
            self.GLOBAL_THRESHOLD_M: float(result.global_threshold_m),
            self.AREA_UNASSIGNED_PCT: float(result.area_unassigned_pct),
            self.AREA_MULTI_PCT: float(result.area_multi_pct),
            self.N_CLUSTERS: int(result.n_clusters),
        })
        steps.setProgress(100)
        return provenance.finish(self, results, made_by, [
            results.get(k) for k in (self.OUTPUT_POLYGONS, self.OUTPUT_POINTS,
                                     self.OUTPUT_CLUSTERS, self.OUTPUT_SENSITIVITY,
                                     self.OUTPUT_LINKS, self.OUTPUT_CONCORDANCE)])

    def _write_links(self, outputs, lines, crs, context, schema):
        """OUTPUT_LINKS: the links table with the lines drawn on the worker thread (`lines`:
        its Background, None when the output was not asked for), in the polygons' CRS."""
        if lines is None:
            outputs.dests[self.OUTPUT_LINKS] = None
            return
        fields = compat.fields_from_schema(schema)
        sink = outputs.sink(self.OUTPUT_LINKS, fields, QgsWkbTypes.Type.MultiLineString, crs)
        if sink is None:
            return
        table, wkbs = lines.result(outputs.feedback)
        back = layer_io.from_wgs84(crs, context)
        geometries = (layer_io.output_geometry(w, multi=True, transform=back) for w in wkbs)
        outputs.feed(sink, layer_io.records_of(schema, layer_io.rows_of(table, schema),
                                               geometries, plain=True), total=len(table))

    def _write_elements(self, outputs, name, src, at, table, schema, parts, progress, kind,
                        layer):
        """Output `name`: `src` read again (in bulk from `at`, its :class:`.bulk.Location`, when
        the output is a GeoPackage written directly), one feature per core row (per part for
        points): the input attributes first, unchanged, then the schema's fields (``mc_``
        before a name an input field has, said in the log)."""
        # A multipoint gives one row per part, so an input 'fid' would repeat: keep it renamed.
        fields, keep, names = layer_io.output_fields(src.fields(), schema, rename_fid=parts)
        renamed = [f"{name} -> {out}" for name, out in names.items() if out != name]
        if renamed and layer_io.asked(outputs.parameters.get(name)):
            outputs.feedback.pushInfo(self.tr(
                "The {kind} layer '{layer}' has fields of the names the cluster algorithm writes: "
                "they are kept as they are, and its own fields are written as {renamed}.").format(
                kind=kind, layer=layer, renamed=", ".join(renamed)))
        if parts:
            wkb_type = QgsWkbTypes.singleType(src.wkbType())
            if QgsWkbTypes.geometryType(wkb_type) != QgsWkbTypes.GeometryType.PointGeometry:
                wkb_type = QgsWkbTypes.Type.Point
        elif src.wkbType() != QgsWkbTypes.Type.Unknown:
            wkb_type = QgsWkbTypes.multiType(src.wkbType())
        else:
            wkb_type = QgsWkbTypes.Type.MultiPolygon
        sink = outputs.sink(name, fields, wkb_type, src.sourceCrs(),
                            threaded=layer_io.threaded(len(table)))
        if sink is None:
            return None
        import numpy as np

        added = [layer_io.column(getattr(table, n)) for n, _kind in schema]
        # the core's rows by input feature id (in the core's order within one feature)
        feature_id = np.asarray(table.feature_id, dtype=np.int64)
        order = np.argsort(feature_id, kind="stable")
        sorted_id = feature_id[order]
        part_of = np.asarray(table.part)
        all_kept = keep == list(range(len(src.fields())))
        done = [None]  # the last feature id written

        def core_rows(ids):
            """(position in `ids` of each output row, its core row) of the input features
            `ids`: a row per polygon, a row per part of a multipoint, none for a dropped one."""
            ids = np.asarray(ids, dtype=np.int64)
            lo = np.searchsorted(sorted_id, ids, "left")
            count = np.searchsorted(sorted_id, ids, "right") - lo
            if not parts:
                count = np.minimum(count, 1)
            at = np.repeat(np.arange(len(ids)), count)
            rank = np.arange(len(at)) - np.repeat(np.cumsum(count) - count, count)
            return at, order[np.repeat(lo, count) + rank]

        def qgis_records():
            rows = {}
            for i, fid in enumerate(feature_id.tolist()):
                rows.setdefault(fid, []).append(i)
            part_list = part_of.tolist()
            for f in src.getFeatures(QgsFeatureRequest(), layer_io.SKIP_CHECKS):
                if done[0] is not None and f.id() <= done[0]:
                    continue  # written from the bulk read
                mine = rows.get(f.id())
                if not mine:
                    continue  # dropped (reported) feature
                attrs = f.attributes()
                base = attrs if all_kept else [attrs[k] for k in keep]
                g = f.geometry()
                if parts:
                    pieces = g.asGeometryCollection() if g.isMultipart() else [g]
                    for i in mine:
                        yield base + [c[i] for c in added], pieces[part_list[i]]
                else:
                    # one row per polygon, as a multipolygon
                    if not g.isMultipart():
                        g.convertToMultiType()
                    yield base + [c[mine[0]] for c in added], g

        def bulk_columns():
            kept = [src.fields().at(k).name() for k in keep]
            try:
                for ids, values, wkbs in bulk.batches(at, kept):
                    where, mine = core_rows(ids)
                    columns = [layer_io.pick(values[n], where) for n in kept] + \
                        [layer_io.pick(c, mine) for c in added]
                    if parts:
                        geometries = [layer_io.part_wkb(wkbs[k], p) for k, p in
                                      zip(where.tolist(), part_of[mine].tolist())]
                    else:
                        geometries = layer_io.output_geometries(layer_io.pick(wkbs, where),
                                                                multi=True)
                    yield columns, geometries
                    done[0] = ids[-1] if ids else done[0]
            except bulk.NotBulk:
                pass  # the rest through QGIS, from the feature after the last one written
            else:
                return
            for chunk in layer_io.chunks(qgis_records(), layer_io.BATCH):
                rows, geometries = zip(*chunk)
                yield [list(c) for c in zip(*rows)], list(geometries)

        if at is not None and isinstance(sink, layer_io.GeoPackageSink):
            return outputs.feed_columns(sink, bulk_columns(), total=len(table), progress=progress)
        return outputs.feed(sink, qgis_records(), total=len(table), progress=progress)


def _link_wkbs(result, features, stop):
    """(the links table, WKB of each link's line in EPSG:4326, in its row order)."""
    from ..core.trace import link_lines

    table = result.links()
    return table, layer_io.shapely_to_wkb(link_lines(result, features, table,
                                                     should_stop=stop.is_set))


def _cluster_wkbs(result, geoms, stop, known):
    """(cluster ids, WKB of their MultiPolygons in EPSG:4326, their boxes) of the clusters
    holding polygons (`known`: core.geometry.known_shapes of `geoms`)."""
    from ..core.geometry import cluster_polygons_wkb

    return cluster_polygons_wkb(result, geoms, should_stop=stop.is_set, known=known,
                                with_bounds=True)
