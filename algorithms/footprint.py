"""Processing algorithm "Footprint summary": mine land by commodity, country, biome and grid cell.

A thin wrapper: reads the clustered polygons (and optional points, countries, biomes), transforms
them to EPSG:4326, calls ``core.footprint.summarise`` and writes the tables, the grid, the plots
and the HTML report. Nothing scientific happens here.
"""
import os
import shutil
import time

from qgis.core import (
    QgsCategorizedSymbolRenderer,
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsCsException,
    QgsFeature,
    QgsFeatureRequest,
    QgsFeatureSink,
    QgsFillSymbol,
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingFeatureSource,
    QgsProcessingLayerPostProcessorInterface,
    QgsProcessingMultiStepFeedback,
    QgsProcessingOutputNumber,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterField,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterNumber,
    QgsRendererCategory,
    QgsVectorLayer,
    QgsWkbTypes,
)

from . import compat
from .base import MineClustersAlgorithm

CANCELLED = "Cancelled; no output was written."


# ----------------------------------------------------------------------------- shared helpers

def value_text(value):
    """An attribute value as str, or None for NULL."""
    if value is None or (hasattr(value, "isNull") and value.isNull()):
        return None
    return str(value)


def value_number(value):
    if value is None or (hasattr(value, "isNull") and value.isNull()):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def layer_name(parameters, name, source):
    try:
        return source.sourceName() or str(parameters.get(name))
    except Exception:  # some sources have no name
        return str(parameters.get(name))


def to_wgs84(source, context, feedback, label):
    """Transform from the source CRS to EPSG:4326, or None when none is needed."""
    wgs84 = QgsCoordinateReferenceSystem("EPSG:4326")
    crs = source.sourceCrs()
    if not crs.isValid():
        feedback.pushWarning(f"The {label} layer has no valid CRS; read as EPSG:4326.")
        return None
    if crs == wgs84:
        return None
    return QgsCoordinateTransform(crs, wgs84, context.transformContext())


def check_polygons(source, label, name):
    gtype = QgsWkbTypes.geometryType(source.wkbType())
    if gtype not in (QgsWkbTypes.PolygonGeometry, QgsWkbTypes.UnknownGeometry):
        raise QgsProcessingException(
            f"The {label} layer '{name}' does not hold polygons; choose a polygon layer.")


def read_layer(source, transform, feedback, label, name, fields, polygons=True,
               keep_features=True):
    """Features -> (ids, shapely geometries in EPSG:4326 or None, {field: values}, features).

    Returns None when cancelled. Non-polygon geometries in a polygon layer are an error.
    Only the given fields are fetched; `keep_features=False` keeps no QgsFeature (the list is
    then empty), which saves time and memory on large layers.
    """
    ids, wkbs, feats = [], [], []
    index = [source.fields().lookupField(f) for f in fields]
    columns = [[] for _ in fields]
    total = source.featureCount() or 1
    request = QgsFeatureRequest()
    request.setSubsetOfAttributes([i for i in index if i >= 0])
    # invalid rings are repaired in core (shapely.make_valid), so QGIS's check is skipped
    features = source.getFeatures(request,
                                  QgsProcessingFeatureSource.FlagSkipGeometryValidityChecks)
    for i, f in enumerate(features):
        if i % 1000 == 0:
            if feedback.isCanceled():
                return None
            feedback.setProgress(100.0 * i / total)
        g = f.geometry()
        if g is None or g.isNull() or g.isEmpty():
            wkbs.append(None)
        else:
            if polygons and g.type() != QgsWkbTypes.PolygonGeometry:
                raise QgsProcessingException(
                    f"Feature {f.id()} of the {label} layer '{name}' is a "
                    f"{QgsWkbTypes.displayString(g.wkbType())}, not a polygon; remove it or "
                    "choose another layer.")
            if transform is not None:
                g = type(g)(g)
                try:
                    g.transform(transform)
                except QgsCsException as exc:
                    raise QgsProcessingException(
                        f"Feature {f.id()} of the {label} layer '{name}' cannot be transformed "
                        f"to longitude/latitude ({exc}); fix its geometry or the layer CRS.")
            wkbs.append(bytes(g.asWkb()))
        ids.append(f.id())
        attrs = f.attributes()
        for col, k in zip(columns, index):
            col.append(attrs[k] if k >= 0 else None)
        if keep_features:
            feats.append(f)
    if feedback.isCanceled():
        return None
    return ids, compat.from_wkb(wkbs), dict(zip(fields, columns)), feats


def native(value):
    """numpy scalars -> Python numbers (QVariant does not take numpy types)."""
    if value is None or type(value) in (str, int, float, bool):
        return value
    if hasattr(value, "item"):
        return value.item()
    return value


def qgs_geometry(geom):
    """A 2-D shapely geometry as QgsGeometry. The WKB dimension is explicit: inside qgis_process
    shapely can run on QGIS's older GEOS, which rejects shapely 2.1+'s default (4)."""
    import shapely
    from qgis.core import QgsGeometry

    g = QgsGeometry()
    g.fromWkb(shapely.to_wkb(geom, output_dimension=2))
    return g


def make_sink(alg, parameters, name, context, fields, wkb_type, crs):
    """(sink, dest) of an output; (None, None) when an optional output was not asked for."""
    value = parameters.get(name)
    sink, dest = alg.parameterAsSink(parameters, name, context, fields, wkb_type, crs)
    if sink is None:
        if value is None or value == "":
            return None, None
        raise QgsProcessingException(alg.invalidSinkError(parameters, name))
    return sink, dest


def table_sink(alg, parameters, name, context, schema):
    """A no-geometry sink with the core schema's fields (sink None when not asked for)."""
    fields = compat.fields_from_schema(schema)
    sink, dest = make_sink(alg, parameters, name, context, fields, QgsWkbTypes.NoGeometry,
                           QgsCoordinateReferenceSystem())
    return sink, dest, fields


def write_rows(sink, fields, schema, rows, feedback):
    """Rows (dicts) into a sink (None: nothing to do); False when cancelled."""
    if sink is None:
        return True
    names = [n for n, _ in schema]
    for row in rows:
        if feedback.isCanceled():
            return False
        f = QgsFeature(fields)
        f.setAttributes([native(row.get(n)) for n in names])
        sink.addFeature(f, QgsFeatureSink.FastInsert)
    compat.finish_sink(sink)
    return True


def file_output(alg, parameters, name, context):
    """A file destination's path, or None when the user skipped it."""
    value = parameters.get(name)
    if value is None or value == "":
        return None
    path = alg.parameterAsFileOutput(parameters, name, context)
    if not path:
        return None
    folder = os.path.dirname(path)
    if folder and not os.path.isdir(folder):
        os.makedirs(folder, exist_ok=True)
    return path


# ----------------------------------------------------------------------------- grid style

def dominant_renderer(values):
    """Categorised renderer of the grid by dominant commodity (colours as in the plots)."""
    from ..core.footprint import UNKNOWN
    from ..core.footprint_plots import colour_for

    cats = []
    for v in sorted(values, key=lambda v: (v == UNKNOWN, v)):
        sym = QgsFillSymbol.createSimple({"color": colour_for(v), "outline_style": "no"})
        cats.append(QgsRendererCategory(v, sym, v))
    return QgsCategorizedSymbolRenderer("dominant", cats)


def style_grid(layer):
    idx = layer.fields().lookupField("dominant")
    if idx < 0:
        return
    values = {str(v) for v in layer.uniqueValues(idx)
              if v is not None and not (hasattr(v, "isNull") and v.isNull())}
    layer.setRenderer(dominant_renderer(values))
    layer.triggerRepaint()


class _GridStyler(QgsProcessingLayerPostProcessorInterface):
    def postProcessLayer(self, layer, context, feedback):  # noqa: N802
        if isinstance(layer, QgsVectorLayer) and layer.isValid():
            style_grid(layer)


_KEEP = []  # post-processors must outlive the run (QGIS does not own them)


def attach_grid_style(context, dest_id):
    if dest_id and context.willLoadLayerOnCompletion(dest_id):
        styler = _GridStyler()
        _KEEP.append(styler)
        context.layerToLoadOnCompletionDetails(dest_id).setPostProcessor(styler)


def save_grid_style(dest_id):
    """For a GeoPackage output, store the style as the layer's default inside the file."""
    if not isinstance(dest_id, str) or ".gpkg" not in dest_id.lower():
        return False
    layer = QgsVectorLayer(dest_id, "grid", "ogr")
    if not layer.isValid():
        return False
    style_grid(layer)
    return not layer.saveStyleToDatabase("mine_clusters", "Dominant commodity", True, "")


# ----------------------------------------------------------------------------- the algorithm

class FootprintSummaryAlgorithm(MineClustersAlgorithm):
    INPUT = "INPUT"
    POINTS = "POINTS"
    COUNTRIES = "COUNTRIES"
    COUNTRY_FIELD = "COUNTRY_FIELD"
    BIOMES = "BIOMES"
    BIOME_FIELD = "BIOME_FIELD"
    CELL_SIZE = "CELL_SIZE"
    ALLOCATION = "ALLOCATION"
    TOP_N = "TOP_N"
    OUTPUT_COMMODITY = "OUTPUT_COMMODITY"
    OUTPUT_COUNTRY = "OUTPUT_COUNTRY"
    OUTPUT_BIOME = "OUTPUT_BIOME"
    OUTPUT_TABLE2 = "OUTPUT_TABLE2"
    OUTPUT_TABLE3 = "OUTPUT_TABLE3"
    OUTPUT_GRID = "OUTPUT_GRID"
    PLOT_COMMODITY = "PLOT_COMMODITY"
    PLOT_COUNTRY = "PLOT_COUNTRY"
    PLOT_BIOME = "PLOT_BIOME"
    PLOT_GRID = "PLOT_GRID"
    REPORT = "REPORT"
    TOTAL_AREA_KM2 = "TOTAL_AREA_KM2"
    ASSIGNED_AREA_PCT = "ASSIGNED_AREA_PCT"
    N_POLYGONS = "N_POLYGONS"
    N_CELLS = "N_CELLS"

    ALLOCATIONS = ("intersection", "centroid")
    REQUIRED = ("cluster_id", "primary_commodities")
    OPTIONAL = ("status", "area_m2", "sources")

    def name(self):
        return "footprintsummary"

    def displayName(self):  # noqa: N802
        return "Footprint summary"

    def group(self):
        return "Footprint"

    def groupId(self):  # noqa: N802
        return "footprint"

    def shortHelpString(self):  # noqa: N802
        return (
            "Mine land by primary commodity, country, biome and grid cell from the clustered "
            "polygons of the cluster algorithm (Maus et al. 2025, Tables 2-3, Figs. 9-10).<br><br>"
            "The area of a polygon (its <i>area_m2</i>, else its area on the sphere) whose cluster "
            "has n primary commodities is split equally among them; unassigned polygons count as "
            "<i>Unknown</i>. Countries and biomes: by default each polygon's area is split by its "
            "intersection with the regions, the part outside all of them is reported as "
            "<i>Outside</i>; the paper's rule gives the whole polygon to the region nearest its "
            "centroid. Every table sums to the total polygon area.<br><br>"
            "The grid has equal-area cells (exactly cell size² on the sphere R = 6,371,008.8 m, "
            "bounded by parallels and meridians, nearly square on the ground) holding the area "
            "per commodity and the dominant commodity, styled by it (Fig. 10).<br><br>"
            "Table 2 counts every cluster and every point of the cluster output when the "
            "clustered points are given (clusters of points only included, with no area), else "
            "the clusters holding polygons. Table 3 needs a <i>sources</i> field (from the "
            "harmonise algorithm). "
            "Tables can be saved as CSV; the HTML report embeds the plots and writes every table "
            "as CSV into a folder next to it.")

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(QgsProcessingParameterFeatureSource(
            self.INPUT, "Clustered polygons", [QgsProcessing.TypeVectorPolygon]))
        self.addParameter(QgsProcessingParameterFeatureSource(
            self.POINTS, "Clustered points (optional, for Table 2)",
            [QgsProcessing.TypeVectorPoint], optional=True))
        self.addParameter(QgsProcessingParameterFeatureSource(
            self.COUNTRIES, "Countries", [QgsProcessing.TypeVectorPolygon], optional=True))
        self.addParameter(QgsProcessingParameterField(
            self.COUNTRY_FIELD, "Country name field", defaultValue="name",
            parentLayerParameterName=self.COUNTRIES, optional=True))
        self.addParameter(QgsProcessingParameterFeatureSource(
            self.BIOMES, "Biomes or ecoregions", [QgsProcessing.TypeVectorPolygon], optional=True))
        self.addParameter(QgsProcessingParameterField(
            self.BIOME_FIELD, "Biome name field", defaultValue="BIOME_NAME",
            parentLayerParameterName=self.BIOMES, optional=True))
        self.addParameter(QgsProcessingParameterNumber(
            self.CELL_SIZE, "Grid cell size (m; 0 = no grid)", QgsProcessingParameterNumber.Double,
            defaultValue=50000.0, minValue=0.0, maxValue=2000000.0))
        self.addParameter(QgsProcessingParameterEnum(
            self.ALLOCATION, "Region allocation",
            options=["Split each polygon by intersection with the regions",
                     "Whole polygon to the region nearest its centroid (paper)"],
            defaultValue=0))
        top = QgsProcessingParameterNumber(
            self.TOP_N, "Countries shown in the plot", QgsProcessingParameterNumber.Integer,
            defaultValue=15, minValue=1, maxValue=100)
        top.setFlags(top.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
        self.addParameter(top)

        for name, label in ((self.OUTPUT_COMMODITY, "Area by commodity"),
                            (self.OUTPUT_COUNTRY, "Area by country and commodity"),
                            (self.OUTPUT_BIOME, "Area by biome and commodity"),
                            (self.OUTPUT_TABLE2, "Table 2: assigned and unassigned clusters"),
                            (self.OUTPUT_TABLE3, "Table 3: polygons by status and data source")):
            self.addParameter(QgsProcessingParameterFeatureSink(
                name, label, QgsProcessing.TypeVector, optional=True, createByDefault=True))
        self.addParameter(QgsProcessingParameterFeatureSink(
            self.OUTPUT_GRID, "Dominant commodity grid", QgsProcessing.TypeVectorPolygon,
            optional=True, createByDefault=True))
        for name, label in ((self.PLOT_COMMODITY, "Plot: area by commodity"),
                            (self.PLOT_COUNTRY, "Plot: countries by commodity"),
                            (self.PLOT_BIOME, "Plot: biomes by commodity")):
            self.addParameter(QgsProcessingParameterFileDestination(
                name, label, "PNG files (*.png);;SVG files (*.svg)", optional=True,
                createByDefault=True))
        self.addParameter(QgsProcessingParameterFileDestination(
            self.REPORT, "Footprint report", "HTML files (*.html)", optional=True,
            createByDefault=True))
        self.addParameter(QgsProcessingParameterFileDestination(
            self.PLOT_GRID, "Plot: map of the dominant commodity grid",
            "PNG files (*.png);;SVG files (*.svg)", optional=True, createByDefault=True))
        self.addOutput(QgsProcessingOutputNumber(self.TOTAL_AREA_KM2, "Total mine area (km²)"))
        self.addOutput(QgsProcessingOutputNumber(self.ASSIGNED_AREA_PCT,
                                                 "Area assigned to a commodity (%)"))
        self.addOutput(QgsProcessingOutputNumber(self.N_POLYGONS, "Number of polygons"))
        self.addOutput(QgsProcessingOutputNumber(self.N_CELLS, "Grid cells with mine land"))

    # ---- helpers --------------------------------------------------------------------------
    def _source(self, parameters, name, context, optional=False):
        value = parameters.get(name)
        if optional and (value is None or value == ""):
            return None
        source = self.parameterAsSource(parameters, name, context)
        if source is None:
            if optional:
                return None
            raise QgsProcessingException(self.invalidSourceError(parameters, name))
        return source

    def _region_field(self, parameters, name, context, source, lname, label, default):
        fields = compat.parameter_as_fields(self, parameters, name, context)
        field = fields[0] if fields else default
        if source.fields().lookupField(field) < 0:
            raise QgsProcessingException(
                f"The {label} layer '{lname}' has no '{field}' field; choose its name column in "
                f"'{label.capitalize()} name field'.")
        return field

    def _regions(self, parameters, src_name, field_name, context, feedback, label, default):
        from ..core import footprint as fp

        source = self._source(parameters, src_name, context, optional=True)
        if source is None:
            return None, None
        lname = layer_name(parameters, src_name, source)
        check_polygons(source, label, lname)
        field = self._region_field(parameters, field_name, context, source, lname, label, default)
        read = read_layer(source, to_wgs84(source, context, feedback, label), feedback, label,
                          lname, [field], keep_features=False)
        if read is None:
            return None, "cancel"
        _ids, geoms, values, _feats = read
        if not geoms:
            feedback.pushWarning(f"The {label} layer '{lname}' has no features; all mine area "
                                 f"is reported as 'Outside'.")
        return fp.regions(geoms, [value_text(v) for v in values[field]]), None

    # ---- run ------------------------------------------------------------------------------
    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        self.require_packages()
        from ..core import footprint as fp
        from ..core import footprint_plots as fplots
        from ..core import report
        from ..core.errors import Cancelled, InputError

        source = self._source(parameters, self.INPUT, context)
        name = layer_name(parameters, self.INPUT, source)
        check_polygons(source, "clustered polygons", name)
        names = source.fields().names()
        for fld in self.REQUIRED:
            if fld not in names:
                raise QgsProcessingException(
                    f"The clustered polygons layer '{name}' has no '{fld}' field; use the "
                    f"'Clustered polygons' output of the cluster algorithm.")
        if source.featureCount() == 0:
            raise QgsProcessingException(
                f"The clustered polygons layer '{name}' has no features; run the cluster "
                "algorithm on mine polygons first.")
        optional = [f for f in self.OPTIONAL if f in names]
        cell = self.parameterAsDouble(parameters, self.CELL_SIZE, context)
        if 0 < cell < 1000:
            raise QgsProcessingException(
                f"The grid cell size must be 0 (no grid) or at least 1000 m, got {cell:g} m.")
        allocation = self.ALLOCATIONS[self.parameterAsEnum(parameters, self.ALLOCATION, context)]
        top_n = self.parameterAsInt(parameters, self.TOP_N, context)

        steps = QgsProcessingMultiStepFeedback(4, feedback)
        timings, t0 = {}, time.perf_counter()
        feedback.pushInfo(f"Reading {source.featureCount()} clustered polygons from '{name}'.")
        read = read_layer(source, to_wgs84(source, context, feedback, "clustered polygons"),
                          steps, "clustered polygons", name, list(self.REQUIRED) + optional,
                          keep_features=False)
        if read is None:
            feedback.pushInfo(CANCELLED)
            return {}
        ids, geoms, values, _feats = read
        point_clusters = None
        points = self._source(parameters, self.POINTS, context, optional=True)
        if points is not None:
            pname = layer_name(parameters, self.POINTS, points)
            for fld in ("cluster_id", "primary_commodities"):
                if points.fields().lookupField(fld) < 0:
                    raise QgsProcessingException(
                        f"The clustered points layer '{pname}' has no '{fld}' field; use the "
                        "'Clustered points' output of the cluster algorithm.")
            point_clusters, point_primary = [], []
            request = QgsFeatureRequest().setFlags(QgsFeatureRequest.NoGeometry)
            request.setSubsetOfAttributes(["cluster_id", "primary_commodities"],
                                          points.fields())
            for f in points.getFeatures(request):
                if feedback.isCanceled():
                    feedback.pushInfo(CANCELLED)
                    return {}
                v = value_number(f["cluster_id"])
                point_clusters.append(None if v is None else int(v))
                point_primary.append(value_text(f["primary_commodities"]))
        steps.setCurrentStep(1)
        timings["read"], t0 = time.perf_counter() - t0, time.perf_counter()
        countries, stop = self._regions(parameters, self.COUNTRIES, self.COUNTRY_FIELD, context,
                                        feedback, "countries", "name")
        if stop:
            feedback.pushInfo(CANCELLED)
            return {}
        biomes, stop = self._regions(parameters, self.BIOMES, self.BIOME_FIELD, context,
                                     feedback, "biomes", "BIOME_NAME")
        if stop:
            feedback.pushInfo(CANCELLED)
            return {}

        steps.setCurrentStep(2)
        timings["regions"], t0 = time.perf_counter() - t0, time.perf_counter()
        try:
            polys = fp.mine_polygons(
                geoms, ids, [value_number(v) for v in values["cluster_id"]],
                [value_text(v) for v in values["primary_commodities"]],
                status=[value_text(v) for v in values["status"]] if "status" in values else None,
                area_m2=([value_number(v) for v in values["area_m2"]]
                         if "area_m2" in values else None),
                sources=([value_text(v) for v in values["sources"]]
                         if "sources" in values else None),
                layer=f"clustered polygons layer '{name}'")
            summary = fp.summarise(polys, countries, biomes, allocation, cell or None,
                                   point_clusters, progress=lambda r: steps.setProgress(100 * r),
                                   should_stop=feedback.isCanceled,
                                   point_primary=point_primary if points is not None else None)
        except Cancelled:
            feedback.pushInfo(CANCELLED)
            return {}
        except InputError as exc:
            raise QgsProcessingException(str(exc))
        feedback.pushInfo(
            f"Total mine area {summary.total_area_m2 / 1e6:,.2f} km² in {len(polys)} polygons; "
            f"{summary.assigned_area_pct:.1f} % assigned to a primary commodity; "
            f"{len(summary.commodity_rows)} commodities; region allocation: {allocation}.")
        if "sources" not in values:
            feedback.pushInfo("No 'sources' field: Table 3 is empty.")

        steps.setCurrentStep(3)
        timings["summary"], t0 = time.perf_counter() - t0, time.perf_counter()
        results = {}

        csv_dirs = []  # the report's CSV folder, once made

        def cancelled():
            """A cancel while writing: what was written so far is deleted (no output that
            looks complete is left)."""
            for csv_dir in csv_dirs:
                shutil.rmtree(csv_dir, ignore_errors=True)
            return compat.discard_outputs(results, feedback)

        tables = ((self.OUTPUT_COMMODITY, fp.COMMODITY_FIELDS, summary.commodity_rows),
                  (self.OUTPUT_COUNTRY, fp.REGION_FIELDS, summary.country_rows),
                  (self.OUTPUT_BIOME, fp.REGION_FIELDS, summary.biome_rows),
                  (self.OUTPUT_TABLE2, fp.TABLE2_FIELDS, summary.table2_rows),
                  (self.OUTPUT_TABLE3, fp.TABLE3_FIELDS, summary.table3_rows))
        for k, (key, schema, rows) in enumerate(tables):
            sink, results[key], fields = table_sink(self, parameters, key, context, schema)
            written = write_rows(sink, fields, schema, rows, feedback)
            del sink  # a GeoPackage is written when its sink is destroyed (QGIS 3.40)
            if not written:
                return cancelled()
            steps.setProgress(20.0 * (k + 1) / len(tables))

        timings["tables"], t0 = time.perf_counter() - t0, time.perf_counter()
        grid_rows = [] if summary.grid is None else summary.grid.rows
        grid_schema = fp.GRID_BASE_FIELDS if summary.grid is None else summary.grid.fields
        gfields = compat.fields_from_schema(grid_schema)
        gsink, results[self.OUTPUT_GRID] = make_sink(
            self, parameters, self.OUTPUT_GRID, context, gfields, QgsWkbTypes.Polygon,
            QgsCoordinateReferenceSystem("EPSG:4326"))
        gnames = [n for n, _ in grid_schema]
        if summary.grid is not None and gsink is not None:
            import shapely
            from qgis.core import QgsGeometry

            # 2-D WKB of every cell at once (see qgs_geometry), then features in batches
            wkbs = shapely.to_wkb(summary.grid.geometries(), output_dimension=2)
            batch = []
            for k, (row, wkb) in enumerate(zip(grid_rows, wkbs)):
                if k % 1000 == 0:
                    if feedback.isCanceled():
                        del gsink
                        return cancelled()
                    gsink.addFeatures(batch, QgsFeatureSink.FastInsert)
                    batch = []
                    steps.setProgress(20.0 + 40.0 * k / len(grid_rows))
                f = QgsFeature(gfields)
                g = QgsGeometry()
                g.fromWkb(wkb)
                f.setGeometry(g)
                f.setAttributes([native(row.get(n)) for n in gnames])
                batch.append(f)
            gsink.addFeatures(batch, QgsFeatureSink.FastInsert)
        compat.finish_sink(gsink)
        del gsink  # the GeoPackage is written when the sink is destroyed (QGIS 3.40)
        gdest = results[self.OUTPUT_GRID]
        attach_grid_style(context, gdest)
        self._grid_dest = gdest
        steps.setProgress(60)
        if feedback.isCanceled():
            return cancelled()

        timings["grid"], t0 = time.perf_counter() - t0, time.perf_counter()

        # ---- plots and report ----------------------------------------------------------------
        images = []
        plot = file_output(self, parameters, self.PLOT_COMMODITY, context)
        if plot:
            fplots.commodity_plot(summary.commodity_rows, plot)
            images.append((plot, "Mine area by primary commodity"))
        results[self.PLOT_COMMODITY] = plot
        for key, rows, title, rest in (
                (self.PLOT_COUNTRY, summary.country_rows, "Mine area by country", fplots.REST),
                (self.PLOT_BIOME, summary.biome_rows, "Mine area by biome", "Other biomes")):
            if feedback.isCanceled():
                return cancelled()
            steps.setProgress(70 if key == self.PLOT_COUNTRY else 75)
            plot = file_output(self, parameters, key, context)
            if plot:
                fplots.regions_plot(rows, summary.commodity_rows, plot, title,
                                    top_n=top_n if key == self.PLOT_COUNTRY else 30,
                                    rest_label=rest)
                images.append((plot, title))
            results[key] = plot
        if feedback.isCanceled():
            return cancelled()
        steps.setProgress(80)
        plot = file_output(self, parameters, self.PLOT_GRID, context)
        if plot and summary.grid is not None and summary.grid.rows:
            fplots.grid_plot(summary.grid, plot)
            images.append((plot, "Dominant primary commodity per grid cell "
                                 f"({summary.cell_size_m / 1000:g} km equal-area cells)"))
        else:
            plot = None
        results[self.PLOT_GRID] = plot
        if feedback.isCanceled():
            return cancelled()
        steps.setProgress(90)
        timings["plots"], t0 = time.perf_counter() - t0, time.perf_counter()
        html = file_output(self, parameters, self.REPORT, context)
        if html:
            csv_dir = os.path.splitext(html)[0] + "_tables"
            csv_dirs.append(csv_dir)
            os.makedirs(csv_dir, exist_ok=True)
            report.footprint_report(summary, html, images=images, csv_dir=csv_dir, intro=[
                f"Clustered polygons: {name} ({len(polys)} polygons)."])
            feedback.pushInfo(f"Report written to {html}; tables as CSV in {csv_dir}.")
        results[self.REPORT] = html
        if feedback.isCanceled():
            return cancelled()
        timings["report"] = time.perf_counter() - t0
        feedback.pushInfo("Timings: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items())
                          + ".")
        results.update({
            self.TOTAL_AREA_KM2: summary.total_area_m2 / 1e6,
            self.ASSIGNED_AREA_PCT: summary.assigned_area_pct,
            self.N_POLYGONS: len(polys),
            self.N_CELLS: len(grid_rows),
        })
        steps.setProgress(100)
        return results

    def postProcessAlgorithm(self, context, feedback):  # noqa: N802
        # The sinks are closed now: store the grid style inside a GeoPackage as its default.
        dest = getattr(self, "_grid_dest", None)
        if dest:
            try:
                save_grid_style(dest)
            except Exception as exc:  # a style is a convenience: never fail the run for it
                feedback.pushWarning(f"Could not store the default style in {dest}: {exc}")
        return {}
