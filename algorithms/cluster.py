"""Processing algorithm "Cluster mine features (local optimum)": a thin wrapper around core.

Reads the two layers, transforms them to EPSG:4326, calls ``core.cluster_mines`` and writes
the outputs in the input layers' CRS. Nothing scientific happens here.
"""
import contextlib
import os
import queue
import re
import tempfile
import threading
import time

from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsCsException,
    QgsFeature,
    QgsFeatureRequest,
    QgsFeatureSink,
    QgsField,
    QgsFields,
    QgsGeometry,
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingFeatureSource,
    QgsProcessingMultiStepFeedback,
    QgsProcessingOutputNumber,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterField,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterNumber,
    QgsWkbTypes,
)

from qgis.PyQt.QtCore import QCoreApplication

from . import compat
from . import provenance
from . import styles
from .base import MineClustersAlgorithm

SKIP_CHECKS = QgsProcessingFeatureSource.Flag.FlagSkipGeometryValidityChecks
_BATCH = 2000  # features handed to a sink per call (fewer Python -> C++ crossings)
#: The WKB header of a little-endian 2D MultiPolygon of one polygon.
_ONE_PART_MULTIPOLYGON = b"\x01\x06\x00\x00\x00\x01\x00\x00\x00"


def _tr(text):
    """`text` translated in the algorithm's context (for the module's helpers without `self`)."""
    return QCoreApplication.translate("ClusterLocalOptimumAlgorithm", text)


def _text(value):
    """An attribute value as str, or None for NULL."""
    if value is None:
        return None
    if hasattr(value, "isNull") and value.isNull():
        return None
    return str(value)


def _number(value):
    if value is None or (hasattr(value, "isNull") and value.isNull()):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


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
            "<b>Outputs</b>: polygons and points with cluster_id, threshold_m, "
            "primary_commodities, commodities, status (assigned / unassigned / multiple) and "
            "area_m2; one multipolygon per cluster; the sensitivity table (global curve over h, "
            "local curve over H_max); the Pareto plot (paper Fig. 4b) and a histogram of the "
            "chosen local thresholds (Fig. A.11); an HTML report with the headline numbers and "
            "both plots, shown in the Results Viewer. Dropped empty or null geometries are listed "
            "in the log.<br><br>Needs the Python packages numpy, scipy, matplotlib and shapely 2 "
            "(see the plugin README).")

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
            tr("The input polygons with their attributes plus cluster_id, threshold_m, "
               "primary_commodities, commodities, status and area_m2, in the input CRS, styled "
               "by primary commodity."))
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

        self.addOutput(QgsProcessingOutputNumber(self.MAX_THRESHOLD_M, tr("H_max used (m)")))
        self.addOutput(QgsProcessingOutputNumber(self.GLOBAL_THRESHOLD_M,
                                                 tr("Global optimum threshold (m)")))
        self.addOutput(QgsProcessingOutputNumber(self.AREA_UNASSIGNED_PCT,
                                                 tr("Unassigned area (%)")))
        self.addOutput(QgsProcessingOutputNumber(
            self.AREA_MULTI_PCT, tr("Area with several primary commodities (%, may exceed 100)")))
        self.addOutput(QgsProcessingOutputNumber(self.N_CLUSTERS, tr("Number of clusters")))
        provenance.add_output(self)

    # ---- helpers --------------------------------------------------------------------------
    def _source(self, parameters, name, context):
        source = self.parameterAsSource(parameters, name, context)
        if source is None:
            raise QgsProcessingException(self.invalidSourceError(parameters, name))
        return source

    @staticmethod
    def _layer_name(parameters, name, source):
        try:
            return source.sourceName() or str(parameters.get(name))
        except Exception:  # older/odd sources
            return str(parameters.get(name))

    def _field(self, parameters, name, context, source, layer_label, layer_name, param_label,
               optional=False):
        """The chosen field (the parameter's default when not given), checked against the layer.

        An optional field that was not given and whose default the layer lacks is None."""
        given = parameters.get(name) not in (None, "", [])
        fields = compat.parameter_as_fields(self, parameters, name, context)
        if not fields:
            if optional:
                return None
            raise QgsProcessingException(
                self.tr("No field was chosen in '{param}'; choose the column of the {kind} "
                        "layer '{layer}' that holds it.").format(
                    param=param_label, kind=layer_label, layer=layer_name))
        field = fields[0]
        if source.fields().lookupField(field) < 0:
            if optional and not given:
                return None
            raise QgsProcessingException(
                self.tr("The {kind} layer '{layer}' has no '{field}' field; choose the right "
                        "column in '{param}'.").format(
                    kind=layer_label, layer=layer_name, field=field, param=param_label))
        return field

    @staticmethod
    def _check_geometry_type(source, expected, layer_label, layer_name, param_label):
        gtype = QgsWkbTypes.geometryType(source.wkbType())
        if gtype not in (expected, QgsWkbTypes.GeometryType.UnknownGeometry):
            names = {QgsWkbTypes.GeometryType.PointGeometry: _tr("point"),
                     QgsWkbTypes.GeometryType.LineGeometry: _tr("line"),
                     QgsWkbTypes.GeometryType.PolygonGeometry: _tr("polygon"),
                     QgsWkbTypes.GeometryType.NullGeometry: _tr("no")}
            raise QgsProcessingException(
                _tr("The {kind} layer '{layer}' has {found} geometries, but {needed} geometries "
                    "are needed; choose a {needed} layer in '{param}'.").format(
                    kind=layer_label, layer=layer_name, found=names.get(gtype, _tr("unknown")),
                    needed=names[expected], param=param_label))

    @staticmethod
    def _read(source, transform, feedback, steps, layer_label, layer_name, expected, names):
        """One pass over `source`: (ids, WKB in EPSG:4326 or None when empty, {field: values}).

        Only the geometry and the fields in `names` are read; the outputs read the source again,
        so no feature is held in memory. Returns None when cancelled."""
        ids, wkbs = [], []
        index = {n: source.fields().lookupField(n) for n in names if n}
        values = {n: [] for n in index}
        request = QgsFeatureRequest()
        request.setSubsetOfAttributes(sorted(set(index.values())))
        total = source.featureCount() or 1
        # Every feature goes to core (which copes with invalid polygons): never let the
        # context's invalid-geometry setting skip or abort silently.
        for i, f in enumerate(source.getFeatures(request, SKIP_CHECKS)):
            if feedback.isCanceled():
                return None
            fid = f.id()
            ids.append(fid)
            g = f.geometry()
            if g is None or g.isNull() or g.isEmpty():
                wkbs.append(None)
            else:
                if g.type() != expected:
                    raise QgsProcessingException(
                        _tr("Feature {fid} of the {kind} layer '{layer}' is a {found}, not a "
                            "{needed}; remove it or choose another layer.").format(
                            fid=fid, kind=layer_label, layer=layer_name,
                            found=QgsWkbTypes.displayString(g.wkbType()),
                            needed=_tr("point") if expected == QgsWkbTypes.GeometryType.PointGeometry
                            else _tr("polygon")))
                if transform is not None:
                    try:
                        g.transform(transform)
                    except QgsCsException as exc:
                        raise QgsProcessingException(
                            _tr("Feature {fid} of the {kind} layer '{layer}' cannot be "
                                "transformed to longitude/latitude ({error}); fix its geometry "
                                "or the layer CRS.").format(
                                fid=fid, kind=layer_label, layer=layer_name, error=exc))
                wkb = bytes(g.asWkb())
                if wkb.startswith(_ONE_PART_MULTIPOLYGON):
                    # The polygon itself: the core's elements are parts, and a MultiPolygon
                    # would cost it a copy of every polygon (GeoPackages store polygons as
                    # one-part MultiPolygons).
                    wkb = wkb[len(_ONE_PART_MULTIPOLYGON):]
                wkbs.append(wkb)
            if index:
                attrs = f.attributes()
                for n, j in index.items():
                    values[n].append(attrs[j])
            if i % 1000 == 0:
                steps.setProgress(100.0 * i / total)
        return ids, wkbs, values

    # ---- run ------------------------------------------------------------------------------
    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        self.require_packages()
        from ..core import Cancelled, InputError, cluster_mines, prepare_features
        from ..core import CLUSTER_FIELDS, FEATURE_FIELDS, SENSITIVITY_FIELDS
        from ..core import plots, report

        tr = self.tr
        polys = self._source(parameters, self.POLYGONS, context)
        points = self._source(parameters, self.POINTS, context)
        poly_name = self._layer_name(parameters, self.POLYGONS, polys)
        point_name = self._layer_name(parameters, self.POINTS, points)
        polygons_label, points_label = tr("polygons"), tr("points")
        self._check_geometry_type(polys, QgsWkbTypes.GeometryType.PolygonGeometry, polygons_label,
                                  poly_name, tr("Mining land-use polygons"))
        self._check_geometry_type(points, QgsWkbTypes.GeometryType.PointGeometry, points_label,
                                  point_name, tr("Mine points (with commodities)"))
        for src, label, lname in ((polys, polygons_label, poly_name),
                                  (points, points_label, point_name)):
            if src.featureCount() == 0:
                raise QgsProcessingException(
                    tr("The {kind} layer '{layer}' has no features; choose a layer with {kind} "
                       "in it.").format(kind=label, layer=lname))
        made_by = provenance.record(self, parameters, context)
        primary_field = self._field(parameters, self.PRIMARY_FIELD, context, points, points_label,
                                    point_name, tr("Primary commodity field"))
        commodities_field = self._field(parameters, self.COMMODITIES_FIELD, context, points,
                                        points_label, point_name, tr("All commodities field"),
                                        optional=True)
        area_field = self._field(parameters, self.AREA_FIELD, context, polys, polygons_label,
                                 poly_name, tr("Polygon area field"), optional=True)
        feedback.pushInfo(
            tr("Primary commodities from '{primary}', all commodities from {all}, polygon areas "
               "{areas}.").format(
                primary=primary_field,
                all=f"'{commodities_field}'" if commodities_field
                else tr("the primary field only"),
                areas=tr("from '{field}' (m²)").format(field=area_field) if area_field
                else tr("measured on the sphere")))

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

        steps = QgsProcessingMultiStepFeedback(4, feedback)
        cancelled_msg = tr("Cancelled; no output was written.")
        wgs84 = QgsCoordinateReferenceSystem("EPSG:4326")

        def transform_for(src, label):
            crs = src.sourceCrs()
            if not crs.isValid():
                feedback.pushWarning(tr("The {kind} layer has no valid CRS; read as "
                                        "EPSG:4326.").format(kind=label))
                return None
            if crs == wgs84:
                return None
            return QgsCoordinateTransform(crs, wgs84, context.transformContext())

        feedback.pushInfo(tr("Reading {n_polygons} polygons from '{polygons}' and {n_points} "
                             "points from '{points}'.").format(
            n_polygons=polys.featureCount(), polygons=poly_name, n_points=points.featureCount(),
            points=point_name))
        timings = {}
        t0 = time.perf_counter()
        read = self._read(polys, transform_for(polys, polygons_label), feedback, steps,
                          polygons_label,
                          poly_name, QgsWkbTypes.GeometryType.PolygonGeometry, [area_field])
        if read is None:
            feedback.pushInfo(cancelled_msg)
            return {}
        poly_ids, poly_wkbs, poly_values = read
        read = self._read(points, transform_for(points, points_label), feedback, steps,
                          points_label,
                          point_name, QgsWkbTypes.GeometryType.PointGeometry,
                          [primary_field, commodities_field])
        if read is None:
            feedback.pushInfo(cancelled_msg)
            return {}
        point_ids, point_wkbs, point_values = read

        shp_polys = compat.from_wkb(poly_wkbs)
        shp_points = compat.from_wkb(point_wkbs)
        del poly_wkbs, point_wkbs
        areas = [_number(v) for v in poly_values[area_field]] if area_field else None
        primary = [_text(v) for v in point_values[primary_field]]
        commodities = ([_text(v) for v in point_values[commodities_field]]
                       if commodities_field else None)
        del poly_values, point_values
        timings["read"] = time.perf_counter() - t0

        steps.setCurrentStep(1)
        if feedback.isCanceled():
            feedback.pushInfo(cancelled_msg)
            return {}
        t0 = time.perf_counter()
        try:
            features = prepare_features(
                polygons=shp_polys, polygon_ids=poly_ids, polygon_areas=areas,
                points=shp_points, point_ids=point_ids, primary=primary,
                commodities=commodities, progress=lambda r: steps.setProgress(20.0 * r),
                should_stop=feedback.isCanceled)
            result = cluster_mines(
                features, h_limit_m=h_limit, threshold_step_m=step,
                max_threshold_m=max_threshold, method=method, weight=weight, formula=formula,
                progress=lambda r: steps.setProgress(20.0 + 80.0 * r),
                should_stop=feedback.isCanceled)
        except Cancelled:
            feedback.pushInfo(cancelled_msg)
            return {}
        except InputError as exc:
            raise QgsProcessingException(str(exc))
        if feedback.isCanceled():
            feedback.pushInfo(cancelled_msg)
            return {}

        timings["cluster"] = time.perf_counter() - t0
        del features, shp_points  # what writing does not need (peak memory at planet scale)
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

        # ---- outputs ---------------------------------------------------------------------
        steps.setCurrentStep(2)
        outputs = {}
        writers = []  # the sinks still open, closed (or dropped on a cancel) below
        # Two kinds of work run beside the writing of the polygons and points, whose features
        # QGIS writes with the GIL released: the clusters' unions (GEOS, GIL released too) and the
        # closing of a finished GeoPackage (its commit and spatial index). A sink is closed
        # beside later work only when no other output goes to the same file.
        stop = threading.Event()
        files = [_file_of(self._destination(parameters, name, context))
                 for name in (self.OUTPUT_POLYGONS, self.OUTPUT_POINTS, self.OUTPUT_CLUSTERS,
                              self.OUTPUT_SENSITIVITY) if _asked(parameters.get(name))]
        closing = []  # _Background jobs closing sinks

        def close(writer, dest):
            path = _file_of(dest)
            if (path is None or not os.path.isfile(path) or None in files
                    or files.count(path) > 1):
                writer.close()
            else:
                closing.append(_Background(writer.close))

        def settle():
            """Waits for the work beside writing; re-raises its error."""
            stop.set()
            jobs = closing + ([cluster_job] if cluster_job is not None else [])
            errors = [job.wait() for job in jobs]
            closing.clear()
            for error in errors:
                if error is not None and not isinstance(error, Cancelled):
                    raise error

        def cancelled():
            for w in writers:
                w.close(discard=True)
            writers.clear()
            settle()
            return compat.discard_outputs(outputs, feedback)

        cluster_job = None
        if _asked(parameters.get(self.OUTPUT_CLUSTERS)):
            cluster_job = _Background(lambda: _cluster_wkbs(result, shp_polys, stop))

        try:
            poly_fields, poly_keep = _output_fields(polys.fields(), FEATURE_FIELDS,
                                                    rename_fid=False)
            sink, outputs[self.OUTPUT_POLYGONS] = self._sink(
                parameters, self.OUTPUT_POLYGONS, context, poly_fields,
                QgsWkbTypes.multiType(polys.wkbType())
                if polys.wkbType() != QgsWkbTypes.Type.Unknown else QgsWkbTypes.Type.MultiPolygon,
                polys.sourceCrs())
            writers.append(_Writer(sink, outputs[self.OUTPUT_POLYGONS]))
            del sink
            if not self._write_elements(writers[-1], polys, result.polygons, poly_fields,
                                        poly_keep, FEATURE_FIELDS, feedback, steps, parts=False):
                return cancelled()
            close(writers.pop(), outputs[self.OUTPUT_POLYGONS])

            # A multipoint gives one row per part, so an input 'fid' would repeat: keep it
            # renamed.
            point_fields, point_keep = _output_fields(points.fields(), FEATURE_FIELDS,
                                                      rename_fid=True)
            point_type = QgsWkbTypes.singleType(points.wkbType())
            if QgsWkbTypes.geometryType(point_type) != QgsWkbTypes.GeometryType.PointGeometry:
                point_type = QgsWkbTypes.Type.Point
            sink, outputs[self.OUTPUT_POINTS] = self._sink(
                parameters, self.OUTPUT_POINTS, context, point_fields, point_type,
                points.sourceCrs())
            if sink is not None:
                writers.append(_Writer(sink, outputs[self.OUTPUT_POINTS]))
                del sink
                if not self._write_elements(writers[-1], points, result.points, point_fields,
                                            point_keep, FEATURE_FIELDS, feedback, steps,
                                            parts=True):
                    return cancelled()
                close(writers.pop(), outputs[self.OUTPUT_POINTS])

            cluster_fields = compat.fields_from_schema(CLUSTER_FIELDS)
            sink, outputs[self.OUTPUT_CLUSTERS] = self._sink(
                parameters, self.OUTPUT_CLUSTERS, context, cluster_fields,
                QgsWkbTypes.Type.MultiPolygon, polys.sourceCrs())
            back = None
            if polys.sourceCrs().isValid() and polys.sourceCrs() != wgs84:
                back = QgsCoordinateTransform(wgs84, polys.sourceCrs(),
                                              context.transformContext())
            if sink is not None:
                writers.append(_Writer(sink, outputs[self.OUTPUT_CLUSTERS]))
                del sink
                table = result.clusters
                row_of = {cid: i for i, cid in enumerate(table.cluster_id.tolist())}
                rows = list(zip(*[_column(getattr(table, name)) for name, _kind in CLUSTER_FIELDS]))
                if cluster_job is None:  # asked for in a form the early check did not see
                    cluster_job = _Background(lambda: _cluster_wkbs(result, shp_polys, stop))
                while not cluster_job.done(0.2):
                    if feedback.isCanceled():
                        return cancelled()
                error = cluster_job.wait()
                if error is not None:
                    raise error
                ids, wkbs = cluster_job.value
                cluster_job = None
                batch = []
                for cid, wkb in zip(ids, wkbs):
                    f = QgsFeature(cluster_fields)
                    f.setAttributes(list(rows[row_of[cid]]))
                    g = QgsGeometry()
                    g.fromWkb(wkb)
                    g.convertToMultiType()
                    if back is not None:
                        g.transform(back)
                    f.setGeometry(g)
                    batch.append(f)
                    if len(batch) == _BATCH:
                        if feedback.isCanceled():
                            return cancelled()
                        writers[-1].add(batch)
                        batch = []
                writers[-1].add(batch)
                del ids, wkbs, batch
                close(writers.pop(), outputs[self.OUTPUT_CLUSTERS])

            sens_fields = compat.fields_from_schema(SENSITIVITY_FIELDS)
            sink, outputs[self.OUTPUT_SENSITIVITY] = self._sink(
                parameters, self.OUTPUT_SENSITIVITY, context, sens_fields, QgsWkbTypes.Type.NoGeometry,
                QgsCoordinateReferenceSystem())
            for row in (result.sensitivity_rows() if sink is not None else ()):
                f = QgsFeature(sens_fields)
                f.setAttributes([_py(row[name]) for name, _kind in SENSITIVITY_FIELDS])
                sink.addFeature(f, QgsFeatureSink.Flag.FastInsert)
            compat.finish_sink(sink)
            del sink  # a GeoPackage is written when its sink is destroyed (QGIS 3.40)
            settle()
        except BaseException:
            for w in writers:
                w.close(discard=True)
            with contextlib.suppress(Exception):  # the first error is the one to report
                settle()
            raise
        while writers:
            writers.pop(0).close()

        timings["write"] = time.perf_counter() - t0
        if feedback.isCanceled():
            return compat.discard_outputs(outputs, feedback)
        t0 = time.perf_counter()
        steps.setCurrentStep(3)
        plot_path = self.parameterAsFileOutput(parameters, self.OUTPUT_PLOT, context)
        if plot_path:
            plots.pareto_plot(result, plot_path)
            feedback.pushInfo(tr("Pareto plot: {path}").format(path=plot_path))
        outputs[self.OUTPUT_PLOT] = plot_path or None
        hist_path = self.parameterAsFileOutput(parameters, self.OUTPUT_HISTOGRAM, context)
        if hist_path:
            plots.threshold_histogram(result, hist_path)
            feedback.pushInfo(tr("Histogram of chosen thresholds: {path}").format(path=hist_path))
        outputs[self.OUTPUT_HISTOGRAM] = hist_path or None
        report_path = self.parameterAsFileOutput(parameters, self.OUTPUT_REPORT, context)
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
        outputs[self.OUTPUT_REPORT] = report_path or None

        timings["plots"] = time.perf_counter() - t0
        if feedback.isCanceled():
            return compat.discard_outputs(outputs, feedback)
        feedback.pushInfo(tr("Timings: {timings}.").format(
            timings=", ".join(f"{k} {v:.1f} s" for k, v in timings.items())))
        self._style_targets = [(outputs[self.OUTPUT_POLYGONS], "polygons"),
                               (outputs[self.OUTPUT_CLUSTERS], "clusters"),
                               (outputs[self.OUTPUT_POINTS], "points")]
        styles.attach(context, outputs[self.OUTPUT_POLYGONS], "polygons")
        styles.attach(context, outputs[self.OUTPUT_CLUSTERS], "clusters")
        styles.attach(context, outputs[self.OUTPUT_POINTS], "points")

        outputs.update({
            self.MAX_THRESHOLD_M: float(result.max_threshold_m),
            self.GLOBAL_THRESHOLD_M: float(result.global_threshold_m),
            self.AREA_UNASSIGNED_PCT: float(result.area_unassigned_pct),
            self.AREA_MULTI_PCT: float(result.area_multi_pct),
            self.N_CLUSTERS: int(result.n_clusters),
        })
        steps.setProgress(100)
        return provenance.finish(self, outputs, made_by, [
            outputs[self.OUTPUT_POLYGONS], outputs[self.OUTPUT_POINTS],
            outputs[self.OUTPUT_CLUSTERS], outputs[self.OUTPUT_SENSITIVITY]])

    def _sink(self, parameters, name, context, fields, wkb_type, crs):
        """(sink, dest_id); (None, None) for an optional output that was not asked for."""
        sink, dest_id = self.parameterAsSink(parameters, name, context, fields, wkb_type, crs)
        if sink is None:
            if self.parameterDefinition(name).flags() & \
                    QgsProcessingParameterDefinition.Flag.FlagOptional and not parameters.get(name):
                return None, None
            raise QgsProcessingException(self.invalidSinkError(parameters, name))
        return sink, dest_id

    def _destination(self, parameters, name, context):
        """Where an asked-for output goes (a path or URI), or None when it cannot be told."""
        try:
            return self.parameterAsOutputLayer(parameters, name, context) or None
        except Exception:  # an odd destination value: treated as unknown
            return None

    def postProcessAlgorithm(self, context, feedback):  # noqa: N802
        # The sinks are closed now: store the style inside GeoPackage outputs as their default.
        for dest_id, kind in getattr(self, "_style_targets", []):
            try:
                styles.save_default_style(dest_id, kind)
            except Exception as exc:  # a style is a convenience: never fail the run for it
                feedback.pushWarning(self.tr("Could not store the default style in {dest}: "
                                             "{error}").format(dest=dest_id, error=exc))
        return super().postProcessAlgorithm(context, feedback)

    @staticmethod
    def _write_elements(writer, source, table, fields, keep, schema, feedback, steps, parts):
        """Reads `source` again and hands `writer` one feature per core row (per part for
        points): the input attributes (`keep`) first, then the schema's fields. False when
        cancelled."""
        added = list(zip(*[_column(getattr(table, name)) for name, _kind in schema]))
        rows = {}
        for i, fid in enumerate(table.feature_id.tolist()):
            rows.setdefault(fid, []).append(i)
        part_of = table.part.tolist()
        n = max(len(added), 1)
        size = max(1, min(_BATCH, n // 100))  # about once per per cent: progress and cancel
        done = 0
        all_kept = keep == list(range(len(source.fields())))
        batch = []
        for f in source.getFeatures(QgsFeatureRequest(), SKIP_CHECKS):
            mine = rows.get(f.id())
            if not mine:
                continue  # dropped (reported) feature
            attrs = f.attributes()
            base = attrs if all_kept else [attrs[k] for k in keep]
            g = f.geometry()
            if parts:
                pieces = g.asGeometryCollection() if g.isMultipart() else [g]
                for i in mine:
                    out = QgsFeature(fields)
                    out.setAttributes(base + list(added[i]))
                    out.setGeometry(pieces[part_of[i]])
                    batch.append(out)
            else:
                # One row per polygon: the source feature itself is rewritten (as multi).
                if not g.isMultipart():
                    g.convertToMultiType()
                    f.setGeometry(g)
                f.setFields(fields, False)
                f.setAttributes(base + list(added[mine[0]]))
                batch.append(f)
            done += len(mine)
            if len(batch) >= size:
                if feedback.isCanceled():
                    return False
                writer.add(batch)
                batch = []
                steps.setProgress(100.0 * done / n)
        if feedback.isCanceled():
            return False
        writer.add(batch)
        return True


class _Writer:
    """Hands batches of features to a sink on a writer thread (QGIS writes with the GIL
    released, so the next batch is built meanwhile) and reports a sink that fails to write in
    one sentence."""

    def __init__(self, sink, dest):
        self.sink, self.dest = sink, dest
        self._error = None
        self._queue = queue.Queue(maxsize=4)
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()

    def _drain(self):
        while True:
            batch = self._queue.get()
            if batch is None:
                return
            if self._error is None and not self.sink.addFeatures(batch, QgsFeatureSink.Flag.FastInsert):
                self._error = self.sink.lastError() or "the features could not be written"

    def _raise(self):
        if self._error is not None:
            raise QgsProcessingException(_tr("Could not write {dest}: {error}").format(
                dest=self.dest, error=self._error))

    def add(self, batch):
        self._raise()
        if batch:
            self._queue.put(batch)

    def close(self, discard=False):
        """Finishes the sink and lets it go (a GeoPackage is committed when its sink is
        destroyed on QGIS 3.40); with `discard` the sink is dropped unfinished."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None
        if not discard:
            self._raise()
        if self.sink is not None and not discard:
            compat.finish_sink(self.sink)
        self.sink = None


class _Background:
    """A function run on a worker thread; ``wait()`` returns the error it raised (or None) and
    ``value`` holds its result."""

    def __init__(self, fn):
        self.value, self.error = None, None
        self._thread = threading.Thread(target=self._run, args=(fn,), daemon=True)
        self._thread.start()

    def _run(self, fn):
        try:
            self.value = fn()
        except BaseException as exc:  # handed to the algorithm's thread by wait()
            self.error = exc

    def done(self, timeout):
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def wait(self):
        self._thread.join()
        return self.error


def _cluster_wkbs(result, geoms, stop):
    """(cluster ids, WKB of their MultiPolygons in EPSG:4326) of the clusters holding polygons."""
    return result.cluster_polygons_wkb(geoms, should_stop=stop.is_set)


def _asked(value):
    """Whether an optional output parameter was given a destination."""
    return value is not None and not (isinstance(value, str) and not value.strip())


def _file_of(dest):
    """The local file an output destination (path, 'path|layername=..' or 'ogr:dbname=..')
    writes to, normalised; None for other destinations."""
    if not isinstance(dest, str) or not dest.strip():
        return None
    if dest.startswith("ogr:"):
        match = re.search(r"dbname='([^']*)'", dest)
        path = match.group(1) if match else None
    elif "://" in dest or dest.startswith(("memory:", "postgres:", "spatialite:")):
        return None
    else:
        path = dest.split("|")[0]
    return os.path.normcase(os.path.abspath(path)) if path else None


def _output_fields(base, schema, rename_fid):
    """Input fields (minus names the schema adds, which it replaces) + the schema's fields.

    Returns (QgsFields, indices of the kept input fields). With `rename_fid`, an input field
    named 'fid' is kept as 'input_fid' (GeoPackage treats 'fid' as the unique feature id).
    """
    added = {name.lower() for name, _kind in schema}
    fields, keep = QgsFields(), []
    for i, f in enumerate(base):
        if f.name().lower() in added:
            continue
        f = QgsField(f)
        if rename_fid and f.name().lower() == "fid":
            f.setName("input_fid")
        if fields.append(f):
            keep.append(i)
    for name, kind in schema:
        fields.append(compat.make_field(name, kind))
    return fields, keep


def _column(values):
    """A core column (numpy array or list) as plain Python values, NaN as None."""
    if getattr(values, "dtype", None) is not None and values.dtype.kind in "iub":
        return values.tolist()  # no NaN in integer columns: no per-value check
    out = values.tolist() if hasattr(values, "tolist") else list(values)
    return [None if isinstance(v, float) and v != v else v for v in out]


def _py(value):
    """numpy scalar / None -> plain Python value for QgsFeature.setAttributes."""
    if value is None:
        return None
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and value != value:  # NaN
        return None
    return value
