"""Processing algorithms "Harmonise land-use polygons" and "Harmonise mine points".

Thin wrappers around ``core.harmonise``: read the layers, transform them to EPSG:4326, call the
core, write the outputs. Two algorithms rather than one because a model (and the cluster
algorithm) takes the polygon and the point outputs as separate inputs, and each side has its
own parameters.
"""
import os

from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsFeatureRequest,
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingMultiStepFeedback,
    QgsProcessingOutputNumber,
    QgsProcessingParameterExtent,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterFile,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterString,
    QgsProviderRegistry,
    QgsVectorLayer,
    QgsWkbTypes,
)

from . import compat, layer_io, provenance
from .base import MineClustersAlgorithm

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


class _HarmoniseBase(MineClustersAlgorithm):
    LAYERS = "LAYERS"
    SOURCE_NAMES = "SOURCE_NAMES"
    ID_FIELDS = "ID_FIELDS"
    EXTENT = "EXTENT"
    OUTPUT = "OUTPUT"
    OUTPUT_DROPPED = "OUTPUT_DROPPED"
    HELP_ANCHOR = "the-other-algorithms"

    def group(self):
        return self.tr("Data preparation")

    def groupId(self):  # noqa: N802
        return "preparation"

    def _layers_label(self):
        """The description of the LAYERS parameter, as the messages name it."""
        raise NotImplementedError

    def _layers(self, parameters, context, kind):
        """The LAYERS; `kind` is the translated "polygon" or "point" of the messages."""
        layers = self.parameterAsLayerList(parameters, self.LAYERS, context)
        if not layers:
            raise QgsProcessingException(
                self.tr("No {kind} layer was given; add at least one layer in '{label}'.")
                .format(kind=kind, label=self._layers_label()))
        for layer in layers:
            if not isinstance(layer, QgsVectorLayer) or not layer.isValid():
                raise QgsProcessingException(
                    self.tr("The layer '{name}' is not a readable vector layer; choose a vector "
                            "{kind} layer in '{label}'.")
                    .format(name=layer.name() if layer else "?", kind=kind,
                            label=self._layers_label()))
        return layers

    def _source_names(self, parameters, context, layers):
        given = _names(self.parameterAsString(parameters, self.SOURCE_NAMES, context))
        if given and len(given) != len(layers):
            raise QgsProcessingException(
                self.tr("'Source names' lists {given} names for {layers} layers; give one name "
                        "per layer, in layer order, or leave it empty to use the layer names.")
                .format(given=len(given), layers=len(layers)))
        names = given or [_layer_label(layer) for layer in layers]
        seen = {}
        for i, n in enumerate(names):
            if n in seen:
                raise QgsProcessingException(
                    self.tr("Layers {first} and {second} are both named '{name}'; give each "
                            "source its own name in 'Source names'.")
                    .format(first=seen[n] + 1, second=i + 1, name=n))
            seen[n] = i
        return names

    def _read_layer(self, layer, name, kind, id_field, context, feedback, progress,
                    expected, fields=(), extent=None):
        """One layer read (layer_io.read: ids from `id_field`, features of another geometry
        type handed on for the core to drop and report). With `extent` (a QgsRectangle in the
        layer CRS), only the features that intersect it."""
        request = None
        if extent is not None:
            request = QgsFeatureRequest().setFilterRect(extent)
            request.setFlags(QgsFeatureRequest.Flag.ExactIntersect)
        read = layer_io.read(layer, context, feedback, kind, name, expected, fields,
                             id_field=id_field, mismatched="keep", request=request,
                             progress=progress)
        read.values = {f: layer_io.texts(v) for f, v in read.values.items()}
        return read

    def _add_extent(self):
        self.add_parameter(QgsProcessingParameterExtent(
            self.EXTENT, self.tr("Only features that intersect this extent (empty = all)"),
            optional=True),
            self.tr("Reads only the features whose geometry intersects this rectangle (given in "
                    "any CRS, compared in each layer's CRS); the features are kept whole, not "
                    "clipped. Empty: every feature of every layer."),
            advanced=True)

    def _extent(self, parameters, context, layer):
        """The EXTENT parameter in the layer's CRS, or None when not given."""
        if parameters.get(self.EXTENT) in (None, ""):
            return None
        rect = self.parameterAsExtent(parameters, self.EXTENT, context, layer.crs())
        return None if rect.isNull() else rect

    def _add_dropped_output(self):
        # Optional, created by default in the dialog; under qgis_process written only when
        # named (qgis_process gives absent sinks no default), like the cluster algorithm's.
        self.add_parameter(QgsProcessingParameterFeatureSink(
            self.OUTPUT_DROPPED, self.tr("Dropped features"), QgsProcessing.SourceType.TypeVector,
            optional=True, createByDefault=True),
            self.tr("A table without geometry, one row per input feature left out: source, "
                    "source_id and reason (e.g. empty or null geometry). The log lists the same "
                    "features. In the dialog it is created by default; under qgis_process it is "
                    "written only when you name a destination for it."))

    def _write(self, outputs, steps, schema, wkb_type, rows, geoms, multi, dropped):
        """One output feature per core row into OUTPUT (EPSG:4326) and, when asked for, one row
        per dropped feature into OUTPUT_DROPPED; {name: destination}."""
        from ..core.harmonise import DROPPED_FIELDS, dropped_rows

        fields = compat.fields_from_schema(schema)
        total = max(1, len(geoms) + len(dropped))
        share = 100.0 * len(geoms) / total
        geometries = (layer_io.output_geometry(w, multi=multi)
                      for w in layer_io.shapely_to_wkb(list(geoms)))
        written = {self.OUTPUT: outputs.write(
            self.OUTPUT, fields, wkb_type, QgsCoordinateReferenceSystem(layer_io.WGS84),
            layer_io.records_of(schema, rows, geometries), total=len(geoms),
            progress=lambda p: steps.setProgress(p * share / 100.0))}
        written[self.OUTPUT_DROPPED] = outputs.table(
            self.OUTPUT_DROPPED, DROPPED_FIELDS, dropped_rows(dropped),
            progress=lambda p: steps.setProgress(share + p * (100.0 - share) / 100.0))
        return written

    def _log(self, feedback, lines, dropped):
        for line in lines:
            feedback.pushInfo(line)
        by_reason = {}
        for source, fid, reason in dropped:
            by_reason.setdefault((source, reason), []).append(str(fid))
        for (source, reason), ids in sorted(by_reason.items()):
            more = (self.tr(" and {more} more (every one is in the 'Dropped features' output)")
                    .format(more=len(ids) - 20) if len(ids) > 20 else "")
            # the reason comes from the core (not translated)
            feedback.pushWarning(
                self.tr("Dropped {count} feature(s) of '{source}' ({reason}): {ids}{more}.")
                .format(count=len(ids), source=source, reason=reason, ids=", ".join(ids[:20]),
                        more=more))


class HarmonisePolygonsAlgorithm(_HarmoniseBase):
    N_INPUT = "N_INPUT"
    N_POLYGONS = "N_POLYGONS"
    N_REPAIRED = "N_REPAIRED"
    N_DROPPED = "N_DROPPED"
    AREA_KM2 = "AREA_KM2"

    def _layers_label(self):
        return self.tr("Land-use polygon layers")

    def name(self):
        return "harmonisepolygons"

    def displayName(self):  # noqa: N802
        return self.tr("Harmonise land-use polygons (merge sources)")

    def tags(self):
        return self.tr(
            "mining,mine,land use,mining area,footprint,polygons,harmonise,harmonize,merge,union,"
            "dissolve,overlap,deduplicate,double counting,sources,Maus,Tang,Werner,OpenStreetMap,"
            "OSM,area,antimeridian,data preparation").split(",")

    def help_html(self):
        return self.tr(
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
        tr = self.tr
        self.add_parameter(QgsProcessingParameterMultipleLayers(
            self.LAYERS, tr("Land-use polygon layers (one per source)"),
            QgsProcessing.SourceType.TypeVectorAnyGeometry),
            tr("One polygon layer per data source (e.g. Maus, Tang and Werner, OpenStreetMap), "
               "each in any CRS. A layer of points or lines is refused; the non-polygon features "
               "of a mixed layer and null or empty geometries are dropped and reported, and "
               "invalid geometries are repaired."))
        self.add_parameter(QgsProcessingParameterString(
            self.SOURCE_NAMES,
            tr("Source names (comma-separated, in layer order; empty = layer names)"), optional=True),
            tr("One name per layer, in the order of the layers (e.g. Maus, Tang, OSM), written "
               "into the output's sources and input_ids. Empty: each layer's name (or its file "
               "name). The names must differ and must not hold '/', ';' or ':'."))
        self.add_parameter(QgsProcessingParameterString(
            self.ID_FIELDS, tr("Id fields (the first one a layer has is used; else the feature "
                               "id)"),
            defaultValue=DEFAULT_POLYGON_ID_FIELDS, optional=True),
            tr("Comma-separated field names, compared case-insensitively: each layer's ids come "
               "from the first of these fields it has, else from its feature ids (a NULL id "
               "becomes 'fid' and the feature id, e.g. 'fid 12'). The ids appear in input_ids as "
               "source:id and in the dropped features."),
            advanced=True)
        self._add_extent()
        self.add_parameter(QgsProcessingParameterFeatureSink(
            self.OUTPUT, tr("Harmonised polygons"), QgsProcessing.SourceType.TypeVectorPolygon),
            tr("The merged polygons in EPSG:4326: one multipolygon per group of input polygons "
               "that overlap or touch (directly or through a chain), with polygon_id, sources, "
               "n_inputs, input_ids and area_m2 (square metres on the sphere R = 6,371,008.8 m)."))
        self.addOutput(QgsProcessingOutputNumber(self.N_INPUT, tr("Input features")))
        self.addOutput(QgsProcessingOutputNumber(self.N_POLYGONS, tr("Output polygons")))
        self.addOutput(QgsProcessingOutputNumber(self.N_REPAIRED, tr("Repaired geometries")))
        self.addOutput(QgsProcessingOutputNumber(self.N_DROPPED, tr("Dropped features")))
        self.addOutput(QgsProcessingOutputNumber(self.AREA_KM2, tr("Total area (km²)")))
        self._add_dropped_output()
        provenance.add_output(self)

    def compute(self, parameters, context, feedback, outputs):
        from ..core.errors import InputError
        from ..core.harmonise import (
            POLYGON_FIELDS, PolygonSource, check_polygon_source_name, merge_polygons)

        kind = self.tr("polygon")
        layers = self._layers(parameters, context, kind)
        names = self._source_names(parameters, context, layers)
        for k, n in enumerate(names):
            try:
                check_polygon_source_name(n)
            except InputError:
                raise QgsProcessingException(
                    self.tr("The source name '{name}' of layer {number} is empty or holds '/', "
                            "';' or ':', which separate names and ids in the output; give each "
                            "layer a name without them in 'Source names'.")
                    .format(name=n, number=k + 1))
        id_candidates = _names(self.parameterAsString(parameters, self.ID_FIELDS, context))
        steps = QgsProcessingMultiStepFeedback(len(layers) + 2, feedback)
        sources = []
        for k, (layer, name) in enumerate(zip(layers, names)):
            steps.setCurrentStep(k)
            layer_io.check_geometry_type(layer, layer_io.POLYGON, kind, name, self._layers_label())
            id_field = _find_field(layer.fields(), id_candidates)
            feedback.pushInfo(self.tr("Reading {count} features of '{name}' (ids: {ids}).")
                              .format(count=layer.featureCount(), name=name,
                                      ids=id_field or self.tr("feature id")))
            read = self._read_layer(layer, name, kind, id_field, context, feedback,
                                    steps.setProgress, layer_io.POLYGON,
                                    extent=self._extent(parameters, context, layer))
            sources.append(PolygonSource(name, read.geoms, read.ids))
        steps.setCurrentStep(len(layers))
        result = merge_polygons(sources, progress=lambda r: steps.setProgress(100.0 * r),
                                should_stop=feedback.isCanceled)
        self._log(feedback, result.summary_lines(), result.dropped)

        steps.setCurrentStep(len(layers) + 1)
        written = self._write(outputs, steps, POLYGON_FIELDS, QgsWkbTypes.Type.MultiPolygon,
                              result.rows(), result.geometries, multi=True,
                              dropped=result.dropped)
        n = len(result.geometries)
        return provenance.finish(self, {
            **written, self.N_INPUT: result.n_in, self.N_POLYGONS: n,
            self.N_REPAIRED: len(result.repaired), self.N_DROPPED: len(result.dropped),
            self.AREA_KM2: float(result.area_m2.sum()) / 1e6},
            provenance.record(self, parameters, context), written.values())


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

    def _layers_label(self):
        return self.tr("Mine point layers")

    def name(self):
        return "harmonisepoints"

    def displayName(self):  # noqa: N802
        return self.tr("Harmonise mine points (commodity names)")

    def tags(self):
        return self.tr(
            "mining,mine,mines,inventory,points,facilities,commodity,commodities,primary commodity,"
            "harmonise,harmonize,harmonisation table,names,merge,sources,ICMM,Jasansky,GEM,"
            "Global Coal Mine Tracker,coal,S&P,SNL,data preparation").split(",")

    def help_html(self):
        return self.tr(
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
        tr = self.tr
        self.add_parameter(QgsProcessingParameterMultipleLayers(
            self.LAYERS, tr("Mine point layers (one per source)"),
            QgsProcessing.SourceType.TypeVectorAnyGeometry),
            tr("One point layer per mine inventory (e.g. ICMM, Jasansky et al., GEM Global Coal "
               "Mine Tracker), each in any CRS; a CSV goes in through the delimited-text "
               "provider. A layer of polygons or lines is refused; multipoints become one point "
               "per part, and null or empty geometries are dropped and reported."))
        self.add_parameter(QgsProcessingParameterString(
            self.SOURCE_NAMES,
            tr("Source names (comma-separated, in layer order; empty = layer names)"), optional=True),
            tr("One name per layer, in the order of the layers (e.g. ICMM, Jasansky, GEM), "
               "written into the output's source field and used by 'Commodity of layers without "
               "a primary field'. Empty: each layer's name (or its file name). The names must "
               "differ."))
        self.add_parameter(QgsProcessingParameterString(
            self.PRIMARY_FIELDS, tr("Primary commodity fields (the first one a layer has is used)"),
            defaultValue=DEFAULT_PRIMARY_FIELDS, optional=True),
            tr("Comma-separated field names, compared case-insensitively: each layer's primary "
               "commodities come from the first of these fields it has (values are lists "
               "separated by ',' or ';'). A layer with none of them needs 'Commodity of layers "
               "without a primary field'."))
        self.add_parameter(QgsProcessingParameterString(
            self.COMMODITY_FIELDS, tr("All commodities fields (every one a layer has is used)"),
            defaultValue=DEFAULT_COMMODITY_FIELDS, optional=True),
            tr("Comma-separated field names, compared case-insensitively: the names in every one "
               "of these fields a layer has (e.g. ICMM's secondaryCommodity and "
               "otherCommodities) are added to the primary commodities in the output's "
               "commodities field."))
        self.add_parameter(QgsProcessingParameterString(
            self.DEFAULT_COMMODITY,
            tr("Commodity of layers without a primary field (a name, or 'source=name; source=name')"),
            optional=True),
            tr("The primary commodity of every point of a layer that has none of the primary "
               "commodity fields: one name for all such layers (e.g. Coal), or one per source "
               "name (e.g. 'GEM=Coal; ASGM=Gold'). Empty: such a layer is an error. Layers with "
               "a primary field ignore it."))
        self.add_parameter(QgsProcessingParameterFile(
            self.TABLE,
            tr("Harmonisation table (CSV: raw name, harmonised name; empty = the table shipped with the plugin)"),
            extension="csv", optional=True),
            tr("A CSV of two columns, raw name and harmonised name (a header 'material, "
               "material_harmonized' or 'raw, harmonised' is recognised; the first row wins for "
               "a repeated name). Names are compared trimmed and case-insensitive; a name mapped "
               "to an empty value is removed. Empty: the plugin's table, the paper's R table with "
               "a documented review (synonyms such as Chromite and Chromium merged, placeholders "
               "such as 'Other mine' dropped; core/data/README.md); the R table itself is "
               "core/data/commodity_harmonisation_r.csv."))
        self.add_parameter(QgsProcessingParameterString(
            self.NON_COMMODITIES, tr("Non-commodity values (removed from the lists)"),
            defaultValue="Not relevant, Processing", optional=True),
            tr("Comma-separated values that are not commodities, removed from the primary and "
               "all-commodities lists (compared trimmed and case-insensitive) and counted in the "
               "log. Empty: nothing is removed this way."),
            advanced=True)
        self.add_parameter(QgsProcessingParameterString(
            self.DROP_PRIMARY, tr("Drop points whose primary commodity is"),
            defaultValue="Processing", optional=True),
            tr("Comma-separated raw primary commodity values (compared trimmed and "
               "case-insensitive): a point whose primary commodity holds only these is left out "
               "and listed among the dropped features. The default drops processing plants. "
               "Empty: no point is dropped for its commodity."),
            advanced=True)
        self.add_parameter(QgsProcessingParameterString(
            self.ID_FIELDS, tr("Id fields (the first one a layer has is used; else the feature "
                               "id)"),
            defaultValue=DEFAULT_POINT_ID_FIELDS, optional=True),
            tr("Comma-separated field names, compared case-insensitively: each layer's ids come "
               "from the first of these fields it has, else from its feature ids (a NULL id "
               "becomes 'fid' and the feature id, e.g. 'fid 12'). The ids fill the output's "
               "source_id (every part of a multipoint keeps its feature's id) and the dropped "
               "features."),
            advanced=True)
        self._add_extent()
        self.add_parameter(QgsProcessingParameterFeatureSink(
            self.OUTPUT, tr("Harmonised points"), QgsProcessing.SourceType.TypeVectorPoint),
            tr("The points of every layer in EPSG:4326, with point_id, source, source_id, "
               "primary_commodity and commodities (harmonised comma lists, the primary ones "
               "included in commodities): the fields 'Cluster mine features' takes by default."))
        self.addOutput(QgsProcessingOutputNumber(self.N_INPUT, tr("Input features")))
        self.addOutput(QgsProcessingOutputNumber(self.N_POINTS, tr("Output points")))
        self.addOutput(QgsProcessingOutputNumber(self.N_DROPPED, tr("Dropped features")))
        self.addOutput(QgsProcessingOutputNumber(self.N_UNKNOWN_NAMES,
                                                 tr("Commodity names not in the table")))
        self._add_dropped_output()
        provenance.add_output(self)

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
                    self.tr("'{pair}' in 'Commodity of layers without a primary field' is not of "
                            "the form source=name; write e.g. 'GEM=Coal; ASGM=Gold'.")
                    .format(pair=pair.strip()))
            source, value = (p.strip() for p in pair.split("=", 1))
            if source.casefold() not in by_key:
                raise QgsProcessingException(
                    self.tr("'Commodity of layers without a primary field' names the source "
                            "'{source}', which is none of the layers ({layers}); use the source "
                            "names.")
                    .format(source=source, layers=", ".join(names)))
            out[by_key[source.casefold()]] = value
        return out

    def compute(self, parameters, context, feedback, outputs):
        from ..core.harmonise import (
            POINT_FIELDS, PointSource, harmonise_points, read_harmonisation_table)

        kind = self.tr("point")
        layers = self._layers(parameters, context, kind)
        names = self._source_names(parameters, context, layers)
        primary_candidates = _names(self.parameterAsString(parameters, self.PRIMARY_FIELDS,
                                                           context))
        other_candidates = _names(self.parameterAsString(parameters, self.COMMODITY_FIELDS,
                                                         context))
        id_candidates = _names(self.parameterAsString(parameters, self.ID_FIELDS, context))
        constants = self._default_commodity(parameters, context, names)
        table_path = self.parameterAsFile(parameters, self.TABLE, context)
        table = read_harmonisation_table(table_path or None)
        shown = table_path or self.tr("the table shipped with the plugin")
        feedback.pushInfo(self.tr("Harmonisation table: {table} ({count} names).")
                          .format(table=shown, count=len(table)))

        steps = QgsProcessingMultiStepFeedback(len(layers) + 2, feedback)
        sources = []
        for k, (layer, name) in enumerate(zip(layers, names)):
            steps.setCurrentStep(k)
            layer_io.check_geometry_type(layer, layer_io.POINT, kind, name, self._layers_label())
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
                        self.tr("The point layer '{name}' has none of the primary commodity "
                                "fields ({fields}); add its field to 'Primary commodity fields' "
                                "or give its commodity in 'Commodity of layers without a "
                                "primary field'.")
                        .format(name=name,
                                fields=", ".join(primary_candidates) or self.tr("none given")))
            id_field = _find_field(fields, id_candidates)
            primary_text = (self.tr("from '{field}'").format(field=primary_field)
                            if primary_field else
                            self.tr("'{commodity}' for all").format(commodity=constant))
            others_text = (self.tr(", all commodities from {fields}")
                           .format(fields=", ".join(f"'{o}'" for o in others))
                           if others else "")
            feedback.pushInfo(
                self.tr("Reading {count} features of '{name}': primary commodity "
                        "{primary}{others}, ids from {ids}.")
                .format(count=layer.featureCount(), name=name, primary=primary_text,
                        others=others_text,
                        ids=repr(id_field) if id_field else self.tr("feature id")))
            wanted = ([primary_field] if primary_field else []) + others
            read = self._read_layer(layer, name, kind, id_field, context, feedback,
                                    steps.setProgress, layer_io.POINT, wanted,
                                    extent=self._extent(parameters, context, layer))
            values = read.values
            primary = values[primary_field] if primary_field else [constant] * len(read)
            sources.append(PointSource(name, read.geoms, read.ids, primary,
                                       [values[o] for o in others]))

        steps.setCurrentStep(len(layers))
        result = harmonise_points(
            sources, table=table,
            non_commodities=_names(self.parameterAsString(parameters, self.NON_COMMODITIES,
                                                          context)),
            drop_primary=_names(self.parameterAsString(parameters, self.DROP_PRIMARY, context)),
            progress=lambda r: steps.setProgress(100.0 * r),
            should_stop=feedback.isCanceled)
        self._log(feedback, result.summary_lines(), result.dropped)

        steps.setCurrentStep(len(layers) + 1)
        written = self._write(outputs, steps, POINT_FIELDS, QgsWkbTypes.Type.Point,
                              result.rows(), result.points, multi=False, dropped=result.dropped)
        n = len(result.points)
        return provenance.finish(self, {
            **written, self.N_INPUT: result.n_in, self.N_POINTS: n,
            self.N_DROPPED: len(result.dropped), self.N_UNKNOWN_NAMES: len(result.unknown)},
            provenance.record(self, parameters, context), written.values())
