"""Processing algorithm "Footprint summary": mine land by commodity, country, biome and grid cell.

A thin wrapper: reads the clustered polygons (and optional points, countries, biomes), transforms
them to EPSG:4326, calls ``core.footprint.summarise`` and writes the tables, the grid, the plots
and the HTML report. Nothing scientific happens here.
"""
import os
import shutil
import tempfile
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
from qgis.PyQt.QtCore import QCoreApplication

from . import compat
from . import provenance
from .base import MineClustersAlgorithm


def _tr(text):
    """`text` translated in the algorithm's context (for the module's helpers without `self`,
    which validate.py shares)."""
    return QCoreApplication.translate("FootprintSummaryAlgorithm", text)


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
        feedback.pushWarning(_tr("The {kind} layer has no valid CRS; read as EPSG:4326.").format(
            kind=label))
        return None
    if crs == wgs84:
        return None
    return QgsCoordinateTransform(crs, wgs84, context.transformContext())


def check_polygons(source, label, name):
    """Raise when `source` (the `label` layer called `name`) is not a polygon layer."""
    gtype = QgsWkbTypes.geometryType(source.wkbType())
    if gtype not in (QgsWkbTypes.GeometryType.PolygonGeometry,
                     QgsWkbTypes.GeometryType.UnknownGeometry):
        raise QgsProcessingException(
            _tr("The {kind} layer '{layer}' does not hold polygons; choose a polygon "
                "layer.").format(kind=label, layer=name))


def read_layer(source, transform, feedback, label, name, fields, polygons=True,
               keep_features=True, others=None):
    """Features -> (ids, shapely geometries in EPSG:4326 or None, {field: values}, features).

    Returns None when cancelled. Non-polygon geometries in a polygon layer are an error, unless
    `others` is a list: their feature ids are then appended to it and the features left out
    (a layer that mixes polygons with points or lines, e.g. the GEM coal mine boundaries).
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
                                  QgsProcessingFeatureSource.Flag.FlagSkipGeometryValidityChecks)
    for i, f in enumerate(features):
        if i % 1000 == 0:
            if feedback.isCanceled():
                return None
            feedback.setProgress(100.0 * i / total)
        g = f.geometry()
        if g is None or g.isNull() or g.isEmpty():
            wkbs.append(None)
        else:
            if polygons and g.type() != QgsWkbTypes.GeometryType.PolygonGeometry:
                if others is not None:
                    others.append(f.id())
                    continue
                raise QgsProcessingException(
                    _tr("Feature {fid} of the {kind} layer '{layer}' is a {geometry}, not a "
                        "polygon; remove it or choose another layer.").format(
                        fid=f.id(), kind=label, layer=name,
                        geometry=QgsWkbTypes.displayString(g.wkbType())))
            if transform is not None:
                g = type(g)(g)
                try:
                    g.transform(transform)
                except QgsCsException as exc:
                    raise QgsProcessingException(
                        _tr("Feature {fid} of the {kind} layer '{layer}' cannot be transformed "
                            "to longitude/latitude ({error}); fix its geometry or the layer "
                            "CRS.").format(fid=f.id(), kind=label, layer=name, error=exc))
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
    sink, dest = make_sink(alg, parameters, name, context, fields, QgsWkbTypes.Type.NoGeometry,
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
        sink.addFeature(f, QgsFeatureSink.Flag.FastInsert)
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

    HELP_ANCHOR = "the-other-algorithms"

    def name(self):
        return "footprintsummary"

    def displayName(self):  # noqa: N802
        return self.tr("Footprint summary")

    def group(self):
        return self.tr("Footprint")

    def groupId(self):  # noqa: N802
        return "footprint"

    def tags(self):
        return self.tr(
            "mining,mine,land use,footprint,mine area,area,commodity,commodities,primary "
            "commodity,country,countries,biome,biomes,ecoregions,grid,equal-area grid,dominant "
            "commodity,table,Table 2,Table 3,statistics,summary,report,plot,Maus").split(",")

    def help_html(self):
        return self.tr(
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
        tr = self.tr
        self.add_parameter(QgsProcessingParameterFeatureSource(
            self.INPUT, tr("Clustered polygons"), [QgsProcessing.SourceType.TypeVectorPolygon]),
            tr("The 'Clustered polygons' output of the cluster algorithm, in any CRS (read in "
               "EPSG:4326). It needs the cluster_id and primary_commodities fields; status, "
               "area_m2 (else the area on the sphere is used) and sources (for Table 3) are read "
               "when present."))
        self.add_parameter(QgsProcessingParameterFeatureSource(
            self.POINTS, tr("Clustered points (optional, for Table 2)"),
            [QgsProcessing.SourceType.TypeVectorPoint], optional=True),
            tr("The 'Clustered points' output of the cluster algorithm (cluster_id and "
               "primary_commodities fields). Given: Table 2 counts every point and every "
               "cluster, points-only clusters included. Empty (default): Table 2 counts the "
               "clusters holding polygons."))
        self.add_parameter(QgsProcessingParameterFeatureSource(
            self.COUNTRIES, tr("Countries"), [QgsProcessing.SourceType.TypeVectorPolygon],
            optional=True),
            tr("Country polygons (e.g. Natural Earth admin 0), in any CRS, for the table and "
               "plot of mine area by country and commodity. Empty (default): no country "
               "table."))
        self.add_parameter(QgsProcessingParameterField(
            self.COUNTRY_FIELD, tr("Country name field"), defaultValue="name",
            parentLayerParameterName=self.COUNTRIES, optional=True),
            tr("The field of the country layer that names each country (its values become the "
               "region column of the country table). Default: name."))
        self.add_parameter(QgsProcessingParameterFeatureSource(
            self.BIOMES, tr("Biomes or ecoregions"),
            [QgsProcessing.SourceType.TypeVectorPolygon], optional=True),
            tr("Biome or ecoregion polygons (e.g. RESOLVE Ecoregions 2017), in any CRS, for the "
               "table and plot of mine area by biome and commodity. Empty (default): no biome "
               "table."))
        self.add_parameter(QgsProcessingParameterField(
            self.BIOME_FIELD, tr("Biome name field"), defaultValue="BIOME_NAME",
            parentLayerParameterName=self.BIOMES, optional=True),
            tr("The field of the biome layer that names each biome (its values become the region "
               "column of the biome table). Default: BIOME_NAME, as in RESOLVE Ecoregions."))
        self.add_parameter(QgsProcessingParameterNumber(
            self.CELL_SIZE, tr("Grid cell size (m; 0 = no grid)"),
            QgsProcessingParameterNumber.Type.Double,
            defaultValue=50000.0, minValue=0.0, maxValue=2000000.0),
            tr("Side of the equal-area grid cells in metres: each cell has exactly this size "
               "squared on the sphere. Default 50,000 m (50 km cells, as in Fig. 10); at least "
               "1,000 m, or 0 for no grid."), decimals=0)
        self.add_parameter(QgsProcessingParameterEnum(
            self.ALLOCATION, tr("Region allocation"),
            options=[tr("Split each polygon by intersection with the regions"),
                     tr("Whole polygon to the region nearest its centroid (paper)")],
            defaultValue=0),
            tr("How a polygon's area goes to the countries and biomes. Split (default): by its "
               "intersection with the regions, the part outside all of them is 'Outside'. "
               "Nearest: the whole polygon to the region nearest its centroid, as in the paper."))
        self.add_parameter(QgsProcessingParameterNumber(
            self.TOP_N, tr("Countries shown in the plot"),
            QgsProcessingParameterNumber.Type.Integer,
            defaultValue=15, minValue=1, maxValue=100),
            tr("How many countries with the most mine area the country plot shows (1 to 100, "
               "default 15); the others are summed into one 'Rest of the world' bar."),
            advanced=True)

        self.add_parameter(QgsProcessingParameterFeatureSink(
            self.OUTPUT_COMMODITY, tr("Area by commodity"), QgsProcessing.SourceType.TypeVector,
            optional=True, createByDefault=True),
            tr("Table with one row per primary commodity (Unknown for unassigned polygons): "
               "commodity, area_km2, area_pct, n_polygons and n_clusters."))
        self.add_parameter(QgsProcessingParameterFeatureSink(
            self.OUTPUT_COUNTRY, tr("Area by country and commodity"),
            QgsProcessing.SourceType.TypeVector, optional=True, createByDefault=True),
            tr("Table with one row per country and commodity (region, commodity, area_km2, "
               "area_pct, region_pct); empty without a country layer."))
        self.add_parameter(QgsProcessingParameterFeatureSink(
            self.OUTPUT_BIOME, tr("Area by biome and commodity"),
            QgsProcessing.SourceType.TypeVector, optional=True, createByDefault=True),
            tr("Table with one row per biome and commodity (region, commodity, area_km2, "
               "area_pct, region_pct); empty without a biome layer."))
        self.add_parameter(QgsProcessingParameterFeatureSink(
            self.OUTPUT_TABLE2, tr("Table 2: assigned and unassigned clusters"),
            QgsProcessing.SourceType.TypeVector, optional=True, createByDefault=True),
            tr("The paper's Table 2: area, clusters, polygons and points of the assigned and "
               "unassigned clusters and their total, with shares and per-cluster means."))
        self.add_parameter(QgsProcessingParameterFeatureSink(
            self.OUTPUT_TABLE3, tr("Table 3: polygons by status and data source"),
            QgsProcessing.SourceType.TypeVector, optional=True, createByDefault=True),
            tr("The paper's Table 3: area and polygon counts by status (assigned, unassigned) "
               "and data source; empty when the clustered polygons have no sources field."))
        self.add_parameter(QgsProcessingParameterFeatureSink(
            self.OUTPUT_GRID, tr("Dominant commodity grid"),
            QgsProcessing.SourceType.TypeVectorPolygon, optional=True, createByDefault=True),
            tr("The equal-area cells holding mine land, in EPSG:4326: mine area, the dominant "
               "commodity and its share, and the area of every commodity, styled by the dominant "
               "commodity (Fig. 10)."))
        self.add_parameter(QgsProcessingParameterFileDestination(
            self.PLOT_COMMODITY, tr("Plot: area by commodity"),
            tr("PNG files (*.png);;SVG files (*.svg)"), optional=True, createByDefault=True),
            tr("Bar chart of the mine area by primary commodity (Fig. 9), PNG or SVG by the file "
               "name."))
        self.add_parameter(QgsProcessingParameterFileDestination(
            self.PLOT_COUNTRY, tr("Plot: countries by commodity"),
            tr("PNG files (*.png);;SVG files (*.svg)"), optional=True, createByDefault=True),
            tr("Stacked bars of the mine area of the countries with the most mine land, by "
               "commodity, PNG or SVG by the file name; needs the country layer."))
        self.add_parameter(QgsProcessingParameterFileDestination(
            self.PLOT_BIOME, tr("Plot: biomes by commodity"),
            tr("PNG files (*.png);;SVG files (*.svg)"), optional=True, createByDefault=True),
            tr("Stacked bars of the mine area by commodity of the 30 biomes with the most mine "
               "land (the rest as 'Other biomes'), PNG or SVG by the file name; needs the biome "
               "layer."))
        self.add_parameter(QgsProcessingParameterFileDestination(
            self.REPORT, tr("Footprint report"), tr("HTML files (*.html)"), optional=True,
            createByDefault=True),
            tr("An HTML page with every table and plot; the tables are also written as CSV into "
               "a folder next to it, named like the report plus _tables. It opens in the Results "
               "Viewer."))
        self.add_parameter(QgsProcessingParameterFileDestination(
            self.PLOT_GRID, tr("Plot: map of the dominant commodity grid"),
            tr("PNG files (*.png);;SVG files (*.svg)"), optional=True, createByDefault=True),
            tr("Map of the grid cells coloured by dominant commodity (Fig. 10), PNG or SVG by the "
               "file name; not written when there is no grid (cell size 0)."))
        self.addOutput(QgsProcessingOutputNumber(self.TOTAL_AREA_KM2,
                                                 tr("Total mine area (km²)")))
        self.addOutput(QgsProcessingOutputNumber(self.ASSIGNED_AREA_PCT,
                                                 tr("Area assigned to a commodity (%)")))
        self.addOutput(QgsProcessingOutputNumber(self.N_POLYGONS, tr("Number of polygons")))
        self.addOutput(QgsProcessingOutputNumber(self.N_CELLS, tr("Grid cells with mine land")))
        provenance.add_output(self)

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
                self.tr("The {kind} layer '{layer}' has no '{field}' field; choose its name "
                        "column in '{parameter}'.").format(
                    kind=label, layer=lname, field=field,
                    parameter=self.parameterDefinition(name).description()))
        return field

    def _regions(self, parameters, src_name, field_name, context, feedback, label, default):
        from ..core import footprint as fp

        source = self._source(parameters, src_name, context, optional=True)
        if source is None:
            return None, None, None
        lname = layer_name(parameters, src_name, source)
        check_polygons(source, label, lname)
        field = self._region_field(parameters, field_name, context, source, lname, label, default)
        read = read_layer(source, to_wgs84(source, context, feedback, label), feedback, label,
                          lname, [field], keep_features=False)
        if read is None:
            return None, "cancel", None
        _ids, geoms, values, _feats = read
        if not geoms:
            feedback.pushWarning(self.tr("The {kind} layer '{layer}' has no features; all mine "
                                         "area is reported as 'Outside'.").format(
                kind=label, layer=lname))
        return fp.regions(geoms, [value_text(v) for v in values[field]]), None, geoms

    # ---- run ------------------------------------------------------------------------------
    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        self.require_packages()
        from ..core import footprint as fp
        from ..core.errors import Cancelled, InputError

        tr = self.tr
        clustered_label = tr("clustered polygons")
        cancelled_msg = tr("Cancelled; no output was written.")
        source = self._source(parameters, self.INPUT, context)
        name = layer_name(parameters, self.INPUT, source)
        check_polygons(source, clustered_label, name)
        names = source.fields().names()
        for fld in self.REQUIRED:
            if fld not in names:
                raise QgsProcessingException(
                    tr("The clustered polygons layer '{layer}' has no '{field}' field; use the "
                       "'Clustered polygons' output of the cluster algorithm.").format(
                        layer=name, field=fld))
        if source.featureCount() == 0:
            raise QgsProcessingException(
                tr("The clustered polygons layer '{layer}' has no features; run the cluster "
                   "algorithm on mine polygons first.").format(layer=name))
        optional = [f for f in self.OPTIONAL if f in names]
        cell = self.parameterAsDouble(parameters, self.CELL_SIZE, context)
        if 0 < cell < 1000:
            raise QgsProcessingException(
                tr("The grid cell size must be 0 (no grid) or at least 1000 m, got {cell:g} "
                   "m.").format(cell=cell))
        allocation = self.ALLOCATIONS[self.parameterAsEnum(parameters, self.ALLOCATION, context)]
        top_n = self.parameterAsInt(parameters, self.TOP_N, context)

        steps = QgsProcessingMultiStepFeedback(4, feedback)
        timings, t0 = {}, time.perf_counter()
        feedback.pushInfo(tr("Reading {n} clustered polygons from '{layer}'.").format(
            n=source.featureCount(), layer=name))
        read = read_layer(source, to_wgs84(source, context, feedback, clustered_label),
                          steps, clustered_label, name, list(self.REQUIRED) + optional,
                          keep_features=False)
        if read is None:
            feedback.pushInfo(cancelled_msg)
            return {}
        ids, geoms, values, _feats = read
        point_clusters = None
        points = self._source(parameters, self.POINTS, context, optional=True)
        if points is not None:
            pname = layer_name(parameters, self.POINTS, points)
            for fld in ("cluster_id", "primary_commodities"):
                if points.fields().lookupField(fld) < 0:
                    raise QgsProcessingException(
                        tr("The clustered points layer '{layer}' has no '{field}' field; use "
                           "the 'Clustered points' output of the cluster algorithm.").format(
                            layer=pname, field=fld))
            point_clusters, point_primary = [], []
            request = QgsFeatureRequest().setFlags(QgsFeatureRequest.Flag.NoGeometry)
            request.setSubsetOfAttributes(["cluster_id", "primary_commodities"],
                                          points.fields())
            for f in points.getFeatures(request):
                if feedback.isCanceled():
                    feedback.pushInfo(cancelled_msg)
                    return {}
                v = value_number(f["cluster_id"])
                point_clusters.append(None if v is None else int(v))
                point_primary.append(value_text(f["primary_commodities"]))
        steps.setCurrentStep(1)
        timings["read"], t0 = time.perf_counter() - t0, time.perf_counter()
        countries, stop, country_outlines = self._regions(
            parameters, self.COUNTRIES, self.COUNTRY_FIELD, context, feedback, tr("countries"),
            "name")
        if stop:
            feedback.pushInfo(cancelled_msg)
            return {}
        biomes, stop, _ = self._regions(parameters, self.BIOMES, self.BIOME_FIELD, context,
                                        feedback, tr("biomes"), "BIOME_NAME")
        if stop:
            feedback.pushInfo(cancelled_msg)
            return {}

        steps.setCurrentStep(2)
        timings["regions"], t0 = time.perf_counter() - t0, time.perf_counter()
        self._made_by = provenance.record(self, parameters, context)
        try:
            polys = fp.mine_polygons(
                geoms, ids, [value_number(v) for v in values["cluster_id"]],
                [value_text(v) for v in values["primary_commodities"]],
                status=[value_text(v) for v in values["status"]] if "status" in values else None,
                area_m2=([value_number(v) for v in values["area_m2"]]
                         if "area_m2" in values else None),
                sources=([value_text(v) for v in values["sources"]]
                         if "sources" in values else None),
                layer=tr("clustered polygons layer '{layer}'").format(layer=name))
            summary = fp.summarise(polys, countries, biomes, allocation, cell or None,
                                   point_clusters, progress=lambda r: steps.setProgress(100 * r),
                                   should_stop=feedback.isCanceled,
                                   point_primary=point_primary if points is not None else None)
        except Cancelled:
            feedback.pushInfo(cancelled_msg)
            return {}
        except InputError as exc:
            raise QgsProcessingException(str(exc))
        feedback.pushInfo(
            tr("Total mine area {area:,.2f} km² in {n} polygons; {pct:.1f} % assigned to a "
               "primary commodity; {n_commodities} commodities; region allocation: "
               "{allocation}.").format(
                area=summary.total_area_m2 / 1e6, n=len(polys), pct=summary.assigned_area_pct,
                n_commodities=len(summary.commodity_rows), allocation=allocation))
        if "sources" not in values:
            feedback.pushInfo(tr("No 'sources' field: Table 3 is empty."))

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
            self, parameters, self.OUTPUT_GRID, context, gfields, QgsWkbTypes.Type.Polygon,
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
                    gsink.addFeatures(batch, QgsFeatureSink.Flag.FastInsert)
                    batch = []
                    steps.setProgress(20.0 + 40.0 * k / len(grid_rows))
                f = QgsFeature(gfields)
                g = QgsGeometry()
                g.fromWkb(wkb)
                f.setGeometry(g)
                f.setAttributes([native(row.get(n)) for n in gnames])
                batch.append(f)
            gsink.addFeatures(batch, QgsFeatureSink.Flag.FastInsert)
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
        html = file_output(self, parameters, self.REPORT, context)
        # The report embeds every plot it has data for, whether or not its file was asked for:
        # a plot not asked for is drawn into a temporary folder that lives as long as this run.
        scratch = tempfile.TemporaryDirectory(prefix="mine_clusters_") if html else None
        try:
            return self._plots_and_report(
                parameters, context, feedback, steps, summary, results, timings, t0, html,
                scratch.name if scratch else None, countries, biomes, top_n, name, polys,
                csv_dirs, grid_rows, cancelled, country_outlines)
        finally:
            if scratch is not None:
                scratch.cleanup()

    def _plots_and_report(self, parameters, context, feedback, steps, summary, results, timings,
                          t0, html, scratch, countries, biomes, top_n, name, polys, csv_dirs,
                          grid_rows, cancelled, country_outlines):
        from ..core import footprint_plots as fplots
        from ..core import report

        tr = self.tr

        def target(key, filename, has_data=True):
            """(path to draw into, path to return as the output): the requested file, else a
            scratch file for the report (None when neither is wanted or there is no data)."""
            path = file_output(self, parameters, key, context)
            if path:
                return path, path
            if scratch and has_data:
                return os.path.join(scratch, filename), None
            return None, None

        images = []
        plot, results[self.PLOT_COMMODITY] = target(self.PLOT_COMMODITY, "commodity.png")
        if plot:
            fplots.commodity_plot(summary.commodity_rows, plot)
            images.append((plot, tr("Mine area by primary commodity")))
        for key, rows, title, rest, regions, filename in (
                (self.PLOT_COUNTRY, summary.country_rows, tr("Mine area by country"),
                 fplots.REST, countries, "countries.png"),
                (self.PLOT_BIOME, summary.biome_rows, tr("Mine area by biome"),
                 tr("Other biomes"), biomes, "biomes.png")):
            if feedback.isCanceled():
                return cancelled()
            steps.setProgress(70 if key == self.PLOT_COUNTRY else 75)
            # no regions layer: no section in the report (a requested file is still drawn)
            plot, results[key] = target(key, filename, has_data=regions is not None)
            if plot:
                fplots.regions_plot(rows, summary.commodity_rows, plot, title,
                                    top_n=top_n if key == self.PLOT_COUNTRY else 30,
                                    rest_label=rest)
                images.append((plot, title))
        if feedback.isCanceled():
            return cancelled()
        steps.setProgress(80)
        has_grid = summary.grid is not None and bool(summary.grid.rows)
        plot, results[self.PLOT_GRID] = target(self.PLOT_GRID, "grid.png", has_data=has_grid)
        if plot and has_grid:
            fplots.grid_plot(summary.grid, plot, outlines=country_outlines)
            images.append((plot, tr("Dominant primary commodity per grid cell ({km:g} km "
                                    "equal-area cells)").format(km=summary.cell_size_m / 1000)))
        else:
            results[self.PLOT_GRID] = None
        if feedback.isCanceled():
            return cancelled()
        steps.setProgress(90)
        timings["plots"], t0 = time.perf_counter() - t0, time.perf_counter()
        if html:
            csv_dir = os.path.splitext(html)[0] + "_tables"
            csv_dirs.append(csv_dir)
            os.makedirs(csv_dir, exist_ok=True)
            # a section needs its input: no countries layer, no country section
            omit = [key for key, regions in (("country", countries), ("biome", biomes))
                    if regions is None]
            report.footprint_report(summary, html, images=images, csv_dir=csv_dir, intro=[
                tr("Clustered polygons: {layer} ({n} polygons).").format(
                    layer=name, n=len(polys)), provenance.sentence(self._made_by)], omit=omit)
            feedback.pushInfo(tr("Report written to {path}; tables as CSV in {folder}.").format(
                path=html, folder=csv_dir))
        results[self.REPORT] = html
        if feedback.isCanceled():
            return cancelled()
        timings["report"] = time.perf_counter() - t0
        feedback.pushInfo(tr("Timings: {timings}.").format(
            timings=", ".join(f"{k} {v:.1f} s" for k, v in timings.items())))
        results.update({
            self.TOTAL_AREA_KM2: summary.total_area_m2 / 1e6,
            self.ASSIGNED_AREA_PCT: summary.assigned_area_pct,
            self.N_POLYGONS: len(polys),
            self.N_CELLS: len(grid_rows),
        })
        steps.setProgress(100)
        return provenance.finish(self, results, self._made_by, results.values())

    def postProcessAlgorithm(self, context, feedback):  # noqa: N802
        # The sinks are closed now: store the grid style inside a GeoPackage as its default.
        dest = getattr(self, "_grid_dest", None)
        if dest:
            try:
                save_grid_style(dest)
            except Exception as exc:  # a style is a convenience: never fail the run for it
                feedback.pushWarning(self.tr("Could not store the default style in {dest}: "
                                             "{error}").format(dest=dest, error=exc))
        return super().postProcessAlgorithm(context, feedback)
