"""Processing algorithms "Harmonise land-use polygons" and "Harmonise mine points".

Thin wrappers around ``core.harmonise``: read the layers, transform them to EPSG:4326, call the
core, write the outputs. Two algorithms rather than one because a model (and the cluster
algorithm) takes the polygon and the point outputs as separate inputs, and each side has its
own parameters.
"""
import os

from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsCsException,
    QgsFeatureRequest,
    QgsFeature,
    QgsFeatureSink,
    QgsGeometry,
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingMultiStepFeedback,
    QgsProcessingOutputNumber,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterExtent,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterFile,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterString,
    QgsProviderRegistry,
    QgsVectorLayer,
    QgsWkbTypes,
)

from . import compat
from .base import MineClustersAlgorithm

WGS84 = "EPSG:4326"
CANCELLED = "Cancelled; no output was written."

DEFAULT_POLYGON_ID_FIELDS = "id, fid"
DEFAULT_POINT_ID_FIELDS = "id, facility_id, Mine IDs, GEM Mine ID, snl_id, source_id, Name"
DEFAULT_PRIMARY_FIELDS = "primary_commodity, primaryCommodity, primary_commodities"
DEFAULT_COMMODITY_FIELDS = ("commodities, commodities_products, secondaryCommodity, "
                            "otherCommodities, commodities_list, list_of_commodities")


def _names(text):
    """A comma list typed by the user -> list of trimmed, non-empty names."""
    if text is None:
        return []
    return [t.strip() for t in str(text).split(",") if t.strip()]


def _text(value):
    if value is None or (hasattr(value, "isNull") and value.isNull()):
        return None
    return str(value)


def _find_field(fields, candidates):
    """The first of `candidates` that `fields` has (case-insensitive), else None."""
    names = {f.name().casefold(): f.name() for f in fields}
    for c in candidates:
        if c.casefold() in names:
            return names[c.casefold()]
    return None


def _layer_label(layer):
    """The layer name, or the file name of its source when the layer has no name."""
    if layer.name():
        return layer.name()
    try:
        parts = QgsProviderRegistry.instance().decodeUri(layer.providerType(), layer.source())
        path = parts.get("path") or ""
    except Exception:  # a provider without decodeUri support
        path = ""
    if not path:
        path = layer.source().split("?")[0].split("|")[0]
        if path.startswith("file://"):
            path = path[len("file://"):]
    return os.path.splitext(os.path.basename(path))[0] or layer.id()


def _to_qgis(geom, multi=False):
    """shapely -> QgsGeometry through 2D WKB. The dimension is explicit: inside QGIS, shapely
    may run on QGIS's own GEOS, which rejects shapely 2.1's default WKB dimension of 4."""
    import shapely

    g = QgsGeometry()
    g.fromWkb(shapely.to_wkb(geom, output_dimension=2))
    if multi:
        g.convertToMultiType()
    return g


class _HarmoniseBase(MineClustersAlgorithm):
    LAYERS = "LAYERS"
    SOURCE_NAMES = "SOURCE_NAMES"
    ID_FIELDS = "ID_FIELDS"
    EXTENT = "EXTENT"
    OUTPUT = "OUTPUT"
    OUTPUT_DROPPED = "OUTPUT_DROPPED"

    def group(self):
        return "Data preparation"

    def groupId(self):  # noqa: N802
        return "preparation"

    @staticmethod
    def _advanced(param):
        param.setFlags(param.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
        return param

    def _layers(self, parameters, context, kind):
        layers = self.parameterAsLayerList(parameters, self.LAYERS, context)
        if not layers:
            raise QgsProcessingException(
                f"No {kind} layer was given; add at least one layer in '{self._layers_label}'.")
        for layer in layers:
            if not isinstance(layer, QgsVectorLayer) or not layer.isValid():
                raise QgsProcessingException(
                    f"The layer '{layer.name() if layer else '?'}' is not a readable vector "
                    f"layer; choose a vector {kind} layer in '{self._layers_label}'.")
        return layers

    def _source_names(self, parameters, context, layers):
        given = _names(self.parameterAsString(parameters, self.SOURCE_NAMES, context))
        if given and len(given) != len(layers):
            raise QgsProcessingException(
                f"'Source names' lists {len(given)} names for {len(layers)} layers; give one "
                f"name per layer, in layer order, or leave it empty to use the layer names.")
        names = given or [_layer_label(layer) for layer in layers]
        seen = {}
        for i, n in enumerate(names):
            if n in seen:
                raise QgsProcessingException(
                    f"Layers {seen[n] + 1} and {i + 1} are both named '{n}'; give each source "
                    f"its own name in 'Source names'.")
            seen[n] = i
        return names

    @staticmethod
    def _read_layer(layer, name, id_field, context, feedback, steps, expected, extra_fields=(),
                    extent=None):
        """(ids, shapely geometries in lon/lat, {field: values}) of one layer; None if cancelled.
        With `extent` (a QgsRectangle in the layer CRS), only the features that intersect it.
        Progress goes to `steps` (this layer's step), cancel and warnings to `feedback`."""
        crs = layer.crs()
        wgs84 = QgsCoordinateReferenceSystem(WGS84)
        transform = None
        if not crs.isValid():
            feedback.pushWarning(f"The layer '{name}' has no valid CRS; read as {WGS84}.")
        elif crs != wgs84:
            transform = QgsCoordinateTransform(crs, wgs84, context.transformContext())
        ids, geoms = [], []
        values = {f: [] for f in extra_fields}
        total = max(layer.featureCount(), 1)
        request = QgsFeatureRequest()
        if extent is not None:
            request.setFilterRect(extent)
            request.setFlags(QgsFeatureRequest.ExactIntersect)
        for i, f in enumerate(layer.getFeatures(request)):
            if feedback.isCanceled():
                return None
            ids.append(_text(f[id_field]) if id_field else f.id())
            if id_field and ids[-1] is None:
                ids[-1] = f"fid {f.id()}"
            for field in extra_fields:
                values[field].append(_text(f[field]))
            g = f.geometry()
            if g is None or g.isNull() or g.isEmpty():
                geoms.append(None)
            elif g.type() != expected:
                geoms.append(g)  # the core drops it and reports why
            else:
                g = type(g)(g)
                if transform is not None:
                    try:
                        g.transform(transform)
                    except QgsCsException as exc:
                        # one line: PROJ's message comes in several ("forward transform of\n
                        # (inf, inf)\nError: ..."); an error like a bad coordinate, not a drop
                        proj = " ".join(str(exc).split())
                        which = f" ({id_field} '{ids[-1]}')" if id_field else ""
                        raise QgsProcessingException(
                            f"Feature {f.id()}{which} of the layer '{name}' cannot be "
                            f"transformed to longitude/latitude (PROJ: {proj}); fix its "
                            f"geometry or the layer CRS.")
                geoms.append(g)
            if i % 2000 == 0:
                steps.setProgress(min(100.0, 100.0 * i / total))
        return ids, compat.to_shapely(geoms), values

    def _add_extent(self):
        self.addParameter(self._advanced(QgsProcessingParameterExtent(
            self.EXTENT, "Only features that intersect this extent (empty = all)",
            optional=True)))

    def _extent(self, parameters, context, layer):
        """The EXTENT parameter in the layer's CRS, or None when not given."""
        if parameters.get(self.EXTENT) in (None, ""):
            return None
        rect = self.parameterAsExtent(parameters, self.EXTENT, context, layer.crs())
        return None if rect.isNull() else rect

    def _add_dropped_output(self):
        # Optional, created by default in the dialog; under qgis_process written only when
        # named (qgis_process gives absent sinks no default), like the cluster algorithm's.
        self.addParameter(QgsProcessingParameterFeatureSink(
            self.OUTPUT_DROPPED, "Dropped features", QgsProcessing.TypeVector,
            optional=True, createByDefault=True))

    def _write(self, parameters, context, feedback, steps, schema, wkb_type, rows, geoms, multi,
               dropped):
        """One output feature per core row into OUTPUT (EPSG:4326) and, when asked for, one row
        per dropped feature into OUTPUT_DROPPED; {name: destination}, or None when cancelled
        (what was written is then deleted)."""
        from ..core.harmonise import DROPPED_FIELDS, dropped_rows

        wgs84 = QgsCoordinateReferenceSystem(WGS84)
        jobs = [(self.OUTPUT, schema, wkb_type, rows, geoms, multi, len(geoms))]
        if parameters.get(self.OUTPUT_DROPPED):
            jobs.append((self.OUTPUT_DROPPED, DROPPED_FIELDS, QgsWkbTypes.NoGeometry,
                         dropped_rows(dropped), None, False, len(dropped)))
        total = max(1, sum(job[-1] for job in jobs))
        every = max(1, total // 100)
        done = 0
        written = {self.OUTPUT: None, self.OUTPUT_DROPPED: None}
        for name, fields_schema, wkb, job_rows, job_geoms, job_multi, _n in jobs:
            fields = compat.fields_from_schema(fields_schema)
            sink, dest_id = self.parameterAsSink(parameters, name, context, fields, wkb, wgs84)
            if sink is None:
                raise QgsProcessingException(self.invalidSinkError(parameters, name))
            written[name] = dest_id
            for i, row in enumerate(job_rows):
                if feedback.isCanceled():
                    del sink
                    compat.discard_outputs({k: v for k, v in written.items() if v}, feedback)
                    return None
                f = QgsFeature(fields)
                f.setAttributes([row[n] for n, _kind in fields_schema])
                if job_geoms is not None:
                    f.setGeometry(_to_qgis(job_geoms[i], multi=job_multi))
                sink.addFeature(f, QgsFeatureSink.FastInsert)
                done += 1
                if done % every == 0:
                    steps.setProgress(100.0 * done / total)
            compat.finish_sink(sink)
            del sink  # a GeoPackage is written when its sink is destroyed (QGIS 3.40)
        return written

    @staticmethod
    def _log(feedback, lines, dropped):
        for line in lines:
            feedback.pushInfo(line)
        by_reason = {}
        for source, fid, reason in dropped:
            by_reason.setdefault((source, reason), []).append(str(fid))
        for (source, reason), ids in sorted(by_reason.items()):
            shown = ", ".join(ids[:20]) + (f" and {len(ids) - 20} more (every one is in the "
                                           f"'Dropped features' output)"
                                           if len(ids) > 20 else "")
            feedback.pushWarning(f"Dropped {len(ids)} feature(s) of '{source}' ({reason}): "
                                 f"{shown}.")


class HarmonisePolygonsAlgorithm(_HarmoniseBase):
    N_INPUT = "N_INPUT"
    N_POLYGONS = "N_POLYGONS"
    N_REPAIRED = "N_REPAIRED"
    N_DROPPED = "N_DROPPED"
    AREA_KM2 = "AREA_KM2"
    _layers_label = "Land-use polygon layers"

    def name(self):
        return "harmonisepolygons"

    def displayName(self):  # noqa: N802
        return "Harmonise land-use polygons (merge sources)"

    def shortHelpString(self):  # noqa: N802
        return (
            "Merges mining land-use polygons from several sources (e.g. Maus, Tang &amp; Werner, "
            "OpenStreetMap) so that no area is counted twice (Maus et al. 2025, section 2.3.1)."
            "<br><br>Each layer is one source, named after the layer unless 'Source names' says "
            "otherwise. Polygons that overlap or touch, within a source or across sources, and "
            "chains of them, become one output polygon. Layers in any CRS; the output is in "
            "EPSG:4326. Polygons crossing the antimeridian are split at 180° and stay right; "
            "polygons that touch or overlap across it merge into one polygon with a part on "
            "each side. Invalid geometries are repaired; empty, null and non-polygon features "
            "(e.g. the points of a mixed layer) are dropped. The log lists the counts, the "
            "dropped features with their reasons and the area per combination of sources "
            "(paper Table 3); 'Dropped features' (optional) is a table of every dropped "
            "feature (source, source_id, reason). 'Only features that intersect this extent' "
            "(advanced) cuts a regional "
            "subset.<br><br><b>Output fields</b>: polygon_id; sources (the contributing "
            "source names in layer order, joined with '/', e.g. 'Maus/Tang/OSM'); n_inputs; "
            "input_ids ('source:id' of every merged input polygon, joined with ';'; the id is "
            "the first of the 'Id fields' the layer has, else the feature id); area_m2 "
            "(on the sphere R = 6,371,008.8 m, each edge a straight line in longitude/latitude "
            "as the layer draws it; QGIS's ellipsoidal measurements take edges as great-circle "
            "arcs).<br><br>This is one of two harmonise "
            "algorithms: polygons and points are separate so that a model can chain each into "
            "the matching input of 'Cluster mine features'. The other is 'Harmonise mine "
            "points'.")

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(QgsProcessingParameterMultipleLayers(
            self.LAYERS, "Land-use polygon layers (one per source)",
            QgsProcessing.TypeVectorAnyGeometry))
        self.addParameter(QgsProcessingParameterString(
            self.SOURCE_NAMES, "Source names (comma-separated, in layer order; empty = layer "
            "names)", optional=True))
        self.addParameter(self._advanced(QgsProcessingParameterString(
            self.ID_FIELDS, "Id fields (the first one a layer has is used; else the feature id)",
            defaultValue=DEFAULT_POLYGON_ID_FIELDS, optional=True)))
        self._add_extent()
        self.addParameter(QgsProcessingParameterFeatureSink(
            self.OUTPUT, "Harmonised polygons", QgsProcessing.TypeVectorPolygon))
        self.addOutput(QgsProcessingOutputNumber(self.N_INPUT, "Input features"))
        self.addOutput(QgsProcessingOutputNumber(self.N_POLYGONS, "Output polygons"))
        self.addOutput(QgsProcessingOutputNumber(self.N_REPAIRED, "Repaired geometries"))
        self.addOutput(QgsProcessingOutputNumber(self.N_DROPPED, "Dropped features"))
        self.addOutput(QgsProcessingOutputNumber(self.AREA_KM2, "Total area (km²)"))
        self._add_dropped_output()

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        self.require_packages()
        from ..core.errors import Cancelled, InputError
        from ..core.harmonise import (
            POLYGON_FIELDS, PolygonSource, check_polygon_source_name, merge_polygons)

        layers = self._layers(parameters, context, "polygon")
        names = self._source_names(parameters, context, layers)
        for k, n in enumerate(names):
            try:
                check_polygon_source_name(n)
            except InputError:
                raise QgsProcessingException(
                    f"The source name '{n}' of layer {k + 1} is empty or holds '/', ';' or "
                    f"':', which separate names and ids in the output; give each layer a name "
                    f"without them in 'Source names'.")
        id_candidates = _names(self.parameterAsString(parameters, self.ID_FIELDS, context))
        steps = QgsProcessingMultiStepFeedback(len(layers) + 2, feedback)
        sources = []
        for k, (layer, name) in enumerate(zip(layers, names)):
            steps.setCurrentStep(k)
            gtype = QgsWkbTypes.geometryType(layer.wkbType())
            if gtype in (QgsWkbTypes.PointGeometry, QgsWkbTypes.LineGeometry,
                         QgsWkbTypes.NullGeometry):
                raise QgsProcessingException(
                    f"The layer '{name}' has no polygons "
                    f"({QgsWkbTypes.displayString(layer.wkbType())}); choose polygon layers in "
                    f"'{self._layers_label}'.")
            id_field = _find_field(layer.fields(), id_candidates)
            feedback.pushInfo(f"Reading {layer.featureCount()} features of '{name}' (ids: "
                              f"{id_field or 'feature id'}).")
            read = self._read_layer(layer, name, id_field, context, feedback, steps,
                                    QgsWkbTypes.PolygonGeometry,
                                    extent=self._extent(parameters, context, layer))
            if read is None:
                feedback.pushInfo(CANCELLED)
                return {}
            ids, geoms, _ = read
            sources.append(PolygonSource(name, geoms, ids))
        steps.setCurrentStep(len(layers))
        try:
            result = merge_polygons(sources, progress=lambda r: steps.setProgress(100.0 * r),
                                    should_stop=feedback.isCanceled)
        except Cancelled:
            feedback.pushInfo(CANCELLED)
            return {}
        except InputError as exc:
            raise QgsProcessingException(str(exc))
        self._log(feedback, result.summary_lines(), result.dropped)

        steps.setCurrentStep(len(layers) + 1)
        written = self._write(parameters, context, feedback, steps, POLYGON_FIELDS,
                              QgsWkbTypes.MultiPolygon, result.rows(), result.geometries,
                              multi=True, dropped=result.dropped)
        if written is None:
            return {}
        n = len(result.geometries)
        return {**written, self.N_INPUT: result.n_in, self.N_POLYGONS: n,
                self.N_REPAIRED: len(result.repaired), self.N_DROPPED: len(result.dropped),
                self.AREA_KM2: float(result.area_m2.sum()) / 1e6}


class HarmonisePointsAlgorithm(_HarmoniseBase):
    PRIMARY_FIELDS = "PRIMARY_FIELDS"
    COMMODITY_FIELDS = "COMMODITY_FIELDS"
    DEFAULT_COMMODITY = "DEFAULT_COMMODITY"
    TABLE = "TABLE"
    NON_COMMODITIES = "NON_COMMODITIES"
    DROP_PRIMARY = "DROP_PRIMARY"
    N_INPUT = "N_INPUT"
    N_POINTS = "N_POINTS"
    N_DROPPED = "N_DROPPED"
    N_UNKNOWN_NAMES = "N_UNKNOWN_NAMES"
    _layers_label = "Mine point layers"

    def name(self):
        return "harmonisepoints"

    def displayName(self):  # noqa: N802
        return "Harmonise mine points (commodity names)"

    def shortHelpString(self):  # noqa: N802
        return (
            "Brings mine inventory points from several databases (e.g. ICMM, Jasansky et al., "
            "GEM Global Coal Mine Tracker, S&amp;P) into one layer with one schema and "
            "harmonised commodity names (Maus et al. 2025, section 2.3.1).<br><br>"
            "Each layer is one source. Per layer, the primary commodity is read from the first "
            "of the 'Primary commodity fields' it has, and all commodities from every one of "
            "the 'All commodities fields' it has (e.g. ICMM's secondaryCommodity and "
            "otherCommodities). A layer with no primary field (e.g. GEM's coal tracker) takes "
            "'Commodity of layers without a primary field': one name for all such layers "
            "('Coal'), or per layer ('GEM=Coal; ASGM=Gold', by source name). Values are lists "
            "separated by ',' or ';'. Each name is trimmed, case-folded and looked up in the "
            "harmonisation table (a CSV of raw name, harmonised name; by default the table of "
            "the paper's R implementation); names not in the table are kept as written and "
            "listed in the log with their counts; names the table maps to an empty value, and "
            "the 'Non-commodity values', are removed. Points whose raw primary commodity is one "
            "of 'Drop points whose primary commodity is' (default Processing, i.e. processing "
            "plants) are left out. Multipoints become one point per part, each with the source "
            "id of its feature; empty and null geometries are dropped and reported ('Dropped "
            "features', optional, is a table of every dropped feature: source, source_id, "
            "reason). 'Only "
            "features that intersect this extent' (advanced) keeps whole features that meet it. "
            "Layers in any CRS (a CSV through QGIS's delimited-text provider too); the output "
            "is in EPSG:4326.<br><br><b>Output fields</b>: point_id, source, source_id, "
            "primary_commodity, commodities (comma lists, primary included in commodities): the "
            "names 'Cluster mine features' takes by default.<br><br>This is one of two "
            "harmonise algorithms: polygons and points are separate so that a model can chain "
            "each into the matching input of the cluster algorithm. The other is 'Harmonise "
            "land-use polygons'.")

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(QgsProcessingParameterMultipleLayers(
            self.LAYERS, "Mine point layers (one per source)",
            QgsProcessing.TypeVectorAnyGeometry))
        self.addParameter(QgsProcessingParameterString(
            self.SOURCE_NAMES, "Source names (comma-separated, in layer order; empty = layer "
            "names)", optional=True))
        self.addParameter(QgsProcessingParameterString(
            self.PRIMARY_FIELDS, "Primary commodity fields (the first one a layer has is used)",
            defaultValue=DEFAULT_PRIMARY_FIELDS, optional=True))
        self.addParameter(QgsProcessingParameterString(
            self.COMMODITY_FIELDS, "All commodities fields (every one a layer has is used)",
            defaultValue=DEFAULT_COMMODITY_FIELDS, optional=True))
        self.addParameter(QgsProcessingParameterString(
            self.DEFAULT_COMMODITY, "Commodity of layers without a primary field (a name, or "
            "'source=name; source=name')", optional=True))
        self.addParameter(QgsProcessingParameterFile(
            self.TABLE, "Harmonisation table (CSV: raw name, harmonised name; empty = the "
            "table shipped with the plugin)", extension="csv", optional=True))
        self.addParameter(self._advanced(QgsProcessingParameterString(
            self.NON_COMMODITIES, "Non-commodity values (removed from the lists)",
            defaultValue="Not relevant, Processing", optional=True)))
        self.addParameter(self._advanced(QgsProcessingParameterString(
            self.DROP_PRIMARY, "Drop points whose primary commodity is",
            defaultValue="Processing", optional=True)))
        self.addParameter(self._advanced(QgsProcessingParameterString(
            self.ID_FIELDS, "Id fields (the first one a layer has is used; else the feature id)",
            defaultValue=DEFAULT_POINT_ID_FIELDS, optional=True)))
        self._add_extent()
        self.addParameter(QgsProcessingParameterFeatureSink(
            self.OUTPUT, "Harmonised points", QgsProcessing.TypeVectorPoint))
        self.addOutput(QgsProcessingOutputNumber(self.N_INPUT, "Input features"))
        self.addOutput(QgsProcessingOutputNumber(self.N_POINTS, "Output points"))
        self.addOutput(QgsProcessingOutputNumber(self.N_DROPPED, "Dropped features"))
        self.addOutput(QgsProcessingOutputNumber(self.N_UNKNOWN_NAMES,
                                                 "Commodity names not in the table"))
        self._add_dropped_output()

    def _default_commodity(self, parameters, context, names):
        """{source name: constant primary commodity} for layers without a primary field."""
        text = (self.parameterAsString(parameters, self.DEFAULT_COMMODITY, context) or "").strip()
        if not text:
            return {}
        if "=" not in text:
            return {n: text for n in names}
        out = {}
        by_key = {n.casefold(): n for n in names}
        for pair in text.split(";"):
            if not pair.strip():
                continue
            if "=" not in pair:
                raise QgsProcessingException(
                    f"'{pair.strip()}' in 'Commodity of layers without a primary field' is not "
                    f"of the form source=name; write e.g. 'GEM=Coal; ASGM=Gold'.")
            source, value = (p.strip() for p in pair.split("=", 1))
            if source.casefold() not in by_key:
                raise QgsProcessingException(
                    f"'Commodity of layers without a primary field' names the source "
                    f"'{source}', which is none of the layers ({', '.join(names)}); use the "
                    f"source names.")
            out[by_key[source.casefold()]] = value
        return out

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        self.require_packages()
        from ..core.errors import Cancelled, InputError
        from ..core.harmonise import (
            POINT_FIELDS, PointSource, harmonise_points, read_harmonisation_table)

        layers = self._layers(parameters, context, "point")
        names = self._source_names(parameters, context, layers)
        primary_candidates = _names(self.parameterAsString(parameters, self.PRIMARY_FIELDS,
                                                           context))
        other_candidates = _names(self.parameterAsString(parameters, self.COMMODITY_FIELDS,
                                                         context))
        id_candidates = _names(self.parameterAsString(parameters, self.ID_FIELDS, context))
        constants = self._default_commodity(parameters, context, names)
        table_path = self.parameterAsFile(parameters, self.TABLE, context)
        try:
            table = read_harmonisation_table(table_path or None)
        except InputError as exc:
            raise QgsProcessingException(str(exc))
        shown = table_path or "the table shipped with the plugin"
        feedback.pushInfo(f"Harmonisation table: {shown} ({len(table)} names).")

        steps = QgsProcessingMultiStepFeedback(len(layers) + 2, feedback)
        sources = []
        for k, (layer, name) in enumerate(zip(layers, names)):
            steps.setCurrentStep(k)
            gtype = QgsWkbTypes.geometryType(layer.wkbType())
            if gtype in (QgsWkbTypes.PolygonGeometry, QgsWkbTypes.LineGeometry,
                         QgsWkbTypes.NullGeometry):
                raise QgsProcessingException(
                    f"The layer '{name}' has no points "
                    f"({QgsWkbTypes.displayString(layer.wkbType())}); choose point layers in "
                    f"'{self._layers_label}'.")
            fields = layer.fields()
            primary_field = _find_field(fields, primary_candidates)
            others = [f.name() for f in fields
                      if f.name().casefold() in {c.casefold() for c in other_candidates}
                      and f.name() != primary_field]
            constant = None
            if primary_field is None:
                constant = constants.get(name)
                if constant is None:
                    raise QgsProcessingException(
                        f"The point layer '{name}' has none of the primary commodity fields "
                        f"({', '.join(primary_candidates) or 'none given'}); add its field to "
                        f"'Primary commodity fields' or give its commodity in 'Commodity of "
                        f"layers without a primary field'.")
            id_field = _find_field(fields, id_candidates)
            feedback.pushInfo(
                f"Reading {layer.featureCount()} features of '{name}': primary commodity "
                + (f"from '{primary_field}'" if primary_field else f"'{constant}' for all")
                + (", all commodities from " + ", ".join(f"'{o}'" for o in others)
                   if others else "")
                + f", ids from {repr(id_field) if id_field else 'feature id'}.")
            wanted = ([primary_field] if primary_field else []) + others
            read = self._read_layer(layer, name, id_field, context, feedback, steps,
                                    QgsWkbTypes.PointGeometry, wanted,
                                    extent=self._extent(parameters, context, layer))
            if read is None:
                feedback.pushInfo(CANCELLED)
                return {}
            ids, geoms, values = read
            primary = values[primary_field] if primary_field else [constant] * len(ids)
            sources.append(PointSource(name, geoms, ids, primary, [values[o] for o in others]))

        steps.setCurrentStep(len(layers))
        try:
            result = harmonise_points(
                sources, table=table,
                non_commodities=_names(self.parameterAsString(parameters, self.NON_COMMODITIES,
                                                              context)),
                drop_primary=_names(self.parameterAsString(parameters, self.DROP_PRIMARY,
                                                           context)),
                progress=lambda r: steps.setProgress(100.0 * r),
                should_stop=feedback.isCanceled)
        except Cancelled:
            feedback.pushInfo(CANCELLED)
            return {}
        except InputError as exc:
            raise QgsProcessingException(str(exc))
        self._log(feedback, result.summary_lines(), result.dropped)

        steps.setCurrentStep(len(layers) + 1)
        written = self._write(parameters, context, feedback, steps, POINT_FIELDS,
                              QgsWkbTypes.Point, result.rows(), result.points, multi=False,
                              dropped=result.dropped)
        if written is None:
            return {}
        n = len(result.points)
        return {**written, self.N_INPUT: result.n_in, self.N_POINTS: n,
                self.N_DROPPED: len(result.dropped), self.N_UNKNOWN_NAMES: len(result.unknown)}

