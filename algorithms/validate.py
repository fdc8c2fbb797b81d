"""Processing algorithm "Validate against reference polygons" (the paper's Table 4).

A thin wrapper: reads the clustered polygons and the reference polygons with layer_io (in
EPSG:4326), calls ``core.validate.validate`` and writes the pairs, the summary, a plot and an
HTML report. Nothing scientific happens here.
"""

from qgis.core import (
    QgsGeometry,
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingMultiStepFeedback,
    QgsProcessingOutputNumber,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterField,
    QgsProcessingParameterFile,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterString,
    QgsWkbTypes,
)

from . import compat, layer_io, provenance
from .base import MineClustersAlgorithm


class ValidateAlgorithm(MineClustersAlgorithm):
    INPUT = "INPUT"
    REFERENCE = "REFERENCE"
    REFERENCE_FIELD = "REFERENCE_FIELD"
    REFERENCE_ID_FIELD = "REFERENCE_ID_FIELD"
    REFERENCE_COMMODITIES = "REFERENCE_COMMODITIES"
    INCLUDE_UNASSIGNED = "INCLUDE_UNASSIGNED"
    TABLE = "TABLE"
    OUTPUT = "OUTPUT"
    OUTPUT_SUMMARY = "OUTPUT_SUMMARY"
    PLOT = "PLOT"
    REPORT = "REPORT"
    N_PAIRS = "N_PAIRS"
    FULL_MATCH_PCT = "FULL_MATCH_PCT"
    NO_MATCH_PCT = "NO_MATCH_PCT"
    MEAN_JACCARD = "MEAN_JACCARD"

    HELP_ANCHOR = "the-other-algorithms"

    def name(self):
        return "validate"

    def displayName(self):  # noqa: N802
        return self.tr("Validate against reference polygons")

    def group(self):
        return self.tr("Footprint")

    def groupId(self):  # noqa: N802
        return "footprint"

    def tags(self):
        return self.tr(
            "mining,mine,land use,commodity,commodities,validation,validate,accuracy,reference,"
            "expert,ground truth,similarity,Jaccard,Dice,overlap coefficient,Table 4,harmonise,"
            "Maus").split(",")

    def help_html(self):
        return self.tr(
            "Compares the primary commodities of the clustered polygons with expert-labelled "
            "reference polygons, like the paper's Table 4 (Maus et al. 2025).<br><br>"
            "Every clustered polygon that intersects a reference polygon forms a pair, compared "
            "on commodity sets (names case-insensitive): Jaccard, Dice, overlap coefficient and "
            "identifier overlap (1 when they share a commodity). Full match: Jaccard = 1; no "
            "match: nothing shared; partial: the rest. The summary gives mean, SD (n - 1) and "
            "median of each metric and the count and share of each match.<br><br>"
            "Reference commodities come from a field (comma list) or, for a single-commodity "
            "reference such as coal mine boundaries, from the fixed list given, and are read "
            "through the harmonisation table (the one the harmonise algorithms use, or yours), "
            "so that e.g. 'Lignite' meets the clusters' 'Coal'. Pairs whose "
            "reference has no commodity are skipped. An unassigned clustered polygon counts as "
            "no match unless you leave unassigned polygons out; its overlap coefficient and "
            "identifier overlap are undefined (NULL), left out of their mean, SD and median "
            "and counted in the summary's Undefined row.")

    def initAlgorithm(self, config=None):  # noqa: N802
        tr = self.tr
        self.add_parameter(QgsProcessingParameterFeatureSource(
            self.INPUT, tr("Clustered polygons"), [QgsProcessing.SourceType.TypeVectorPolygon]),
            tr("The 'Clustered polygons' output of the cluster algorithm (it needs the "
               "cluster_id and primary_commodities fields), in any CRS. Each polygon is compared "
               "with every reference polygon it intersects."))
        self.add_parameter(QgsProcessingParameterFeatureSource(
            self.REFERENCE, tr("Reference polygons"), [QgsProcessing.SourceType.TypeVectorPolygon]),
            tr("Expert-labelled polygons with known commodities (e.g. mine boundaries), in any "
               "CRS: both layers are compared in EPSG:4326. Invalid reference geometries are "
               "repaired; null and empty ones are left out. A layer that mixes polygons with "
               "points or lines (e.g. the GEM coal mine boundaries file) is taken as it is: its "
               "polygons are used and the log says how many other features were left out."))
        self.add_parameter(QgsProcessingParameterField(
            self.REFERENCE_FIELD, tr("Reference commodity field (comma list)"),
            parentLayerParameterName=self.REFERENCE,
            type=QgsProcessingParameterField.DataType.String, optional=True),
            tr("Text field of the reference polygons with their commodities, several separated "
               "by commas, read through the harmonisation table. When chosen, the fixed "
               "reference commodities are ignored; pairs whose reference value is empty are "
               "skipped."))
        self.add_parameter(QgsProcessingParameterField(
            self.REFERENCE_ID_FIELD, tr("Reference id or name field (copied into the pairs)"),
            parentLayerParameterName=self.REFERENCE, optional=True),
            tr("A field of the reference polygons that identifies them to you (e.g. GEM's "
               "'GEM Mine ID' or a mine name): its value is written, as text, into the pairs' "
               "reference_name field beside reference_id (the reference's feature id). Empty: "
               "reference_name stays empty."))
        self.add_parameter(QgsProcessingParameterString(
            self.REFERENCE_COMMODITIES,
            tr("Reference commodities when no field is chosen (comma list, e.g. Coal)"),
            defaultValue="", optional=True),
            tr("Used only when no reference commodity field is chosen: every reference polygon "
               "gets this comma list (e.g. Coal for coal mine boundaries), read through the "
               "harmonisation table. Either this or the field is needed."))
        self.add_parameter(QgsProcessingParameterBoolean(
            self.INCLUDE_UNASSIGNED, tr("Count unassigned clustered polygons as no match"),
            defaultValue=True),
            tr("Checked (default, as in the paper and the R code): a pair with an unassigned "
               "clustered polygon is a no match (Jaccard and Dice 0, overlap coefficient and ID "
               "overlap NULL). Unchecked: such pairs are left out of the pairs and the summary."))
        self.add_parameter(QgsProcessingParameterFile(
            self.TABLE, tr("Harmonisation table for the reference commodities (CSV: raw name, "
                           "harmonised name; empty = the table shipped with the plugin)"),
            extension="csv", optional=True),
            tr("A CSV of two columns, raw name and harmonised name (names compared trimmed and "
               "case-insensitive), that maps the reference commodities to the clusters' names, "
               "e.g. Lignite to Coal. Empty: the table shipped with the plugin, the one the "
               "harmonise algorithms use."))
        self.add_parameter(QgsProcessingParameterFeatureSink(
            self.OUTPUT, tr("Compared pairs"), QgsProcessing.SourceType.TypeVectorPolygon),
            tr("One feature per clustered polygon and intersecting reference polygon, with the "
               "clustered polygon's geometry (in its layer's CRS), feature_id, cluster_id, "
               "reference_id (the reference's feature id), both commodity lists, jaccard, dice, "
               "overlap, id_overlap, match (full, partial or none) and reference_name (the "
               "chosen reference id or name field)."))
        self.add_parameter(QgsProcessingParameterFeatureSink(
            self.OUTPUT_SUMMARY, tr("Table 4: similarity summary"),
            QgsProcessing.SourceType.TypeVector, optional=True, createByDefault=True),
            tr("The paper's Table 4: Mean, SD (n - 1) and Median of each metric over its defined "
               "values, Count and Proportion (% of all pairs) of full, partial and no match, and "
               "an Undefined row counting the NULL values of each metric."))
        self.add_parameter(QgsProcessingParameterFileDestination(
            self.PLOT, tr("Plot: metric histograms"), tr("PNG files (*.png);;SVG files (*.svg)"),
            optional=True, createByDefault=True),
            tr("Histograms of Jaccard, Dice, overlap coefficient and ID overlap over the compared "
               "pairs, PNG or SVG by the file name."))
        self.add_parameter(QgsProcessingParameterFileDestination(
            self.REPORT, tr("Validation report"), tr("HTML files (*.html)"), optional=True,
            createByDefault=True),
            tr("An HTML page with the number of pairs, the Table 4 summary, the histograms and "
               "every compared pair; it opens in the Results Viewer."))
        self.addOutput(QgsProcessingOutputNumber(self.N_PAIRS, tr("Compared pairs")))
        self.addOutput(QgsProcessingOutputNumber(self.FULL_MATCH_PCT, tr("Full match (%)")))
        self.addOutput(QgsProcessingOutputNumber(self.NO_MATCH_PCT, tr("No match (%)")))
        self.addOutput(QgsProcessingOutputNumber(self.MEAN_JACCARD, tr("Mean Jaccard")))
        provenance.add_output(self)

    def compute(self, parameters, context, feedback, outputs):
        from ..core import footprint_plots, report
        from ..core import validate as va

        tr = self.tr
        clustered_label, reference_label = tr("clustered polygons"), tr("reference polygons")
        source = layer_io.source(self, parameters, self.INPUT, context)
        name = layer_io.layer_name(parameters, self.INPUT, source)
        ref = layer_io.source(self, parameters, self.REFERENCE, context)
        rname = layer_io.layer_name(parameters, self.REFERENCE, ref)
        layer_io.check_geometry_type(source, layer_io.POLYGON, clustered_label, name,
                                     self.parameterDefinition(self.INPUT).description())
        layer_io.check_geometry_type(ref, layer_io.POLYGON, reference_label, rname,
                                     self.parameterDefinition(self.REFERENCE).description())
        columns = layer_io.plugin_fields(
            source, ("cluster_id", "primary_commodities"), clustered_label, name,
            tr("use the 'Clustered polygons' output of the cluster algorithm"))
        ref_field = layer_io.chosen_field(self, parameters, self.REFERENCE_FIELD, context, ref,
                                          reference_label, rname, optional=True)
        id_field = layer_io.chosen_field(self, parameters, self.REFERENCE_ID_FIELD, context, ref,
                                         reference_label, rname, optional=True)
        fixed = (self.parameterAsString(parameters, self.REFERENCE_COMMODITIES, context)
                 or "").strip()
        if not ref_field and not fixed:
            raise QgsProcessingException(
                tr("No reference commodities for the reference polygons layer '{layer}'; choose "
                   "its commodity column in 'Reference commodity field' or type them in "
                   "'Reference commodities when no field is chosen'.").format(layer=rname))
        layer_io.check_not_empty(source, clustered_label, name, tr("choose a layer with polygons"))
        layer_io.check_not_empty(ref, reference_label, rname, tr("choose a layer with polygons"))
        include = self.parameterAsBool(parameters, self.INCLUDE_UNASSIGNED, context)
        made_by = provenance.record(self, parameters, context)
        table_path = self.parameterAsFile(parameters, self.TABLE, context)
        table = va.reference_harmonisation(table_path or None)
        feedback.pushInfo(tr("Reference commodities harmonised with {table} ({n} names).").format(
            table=table_path or tr("the table shipped with the plugin"), n=len(table)))

        # reading each layer, comparing, writing
        steps = QgsProcessingMultiStepFeedback(4, feedback)
        read = layer_io.read(source, context, feedback, clustered_label, name, layer_io.POLYGON,
                             list(columns.values()), progress=steps.setProgress,
                             keep_geometries=True)
        steps.setCurrentStep(1)
        ref_fields = [f for f in (ref_field, id_field) if f]
        rread = layer_io.read(ref, context, feedback, reference_label, rname, layer_io.POLYGON,
                              ref_fields, mismatched="skip", progress=steps.setProgress)
        if rread.skipped:
            others = rread.skipped
            feedback.pushWarning(
                tr("{n} features of the reference polygons layer '{layer}' are points or lines, "
                   "not polygons, and were left out (feature ids {ids}); {kept} polygons are "
                   "used.").format(n=len(others), layer=rname, kept=len(rread),
                                   ids=", ".join(map(str, others[:10]))
                                   + (", ..." if len(others) > 10 else "")))
        ref_comm = (layer_io.texts(rread.values[ref_field]) if ref_field
                    else [fixed] * len(rread))
        steps.setCurrentStep(2)
        result = va.validate(
            read.geoms, read.ids, layer_io.numbers(read.values[columns["cluster_id"]]),
            layer_io.texts(read.values[columns["primary_commodities"]]), rread.geoms, rread.ids,
            ref_comm,
            harmonisation=table, include_unassigned=include,
            progress=lambda r: steps.setProgress(100 * r),
            should_stop=feedback.isCanceled,
            layer=tr("clustered polygons layer '{layer}'").format(layer=name),
            reference_layer=tr("reference polygons layer '{layer}'").format(layer=rname),
            reference_names=layer_io.texts(rread.values[id_field]) if id_field else None)
        mean, count, prop = result.stat("Mean"), result.stat("Count"), result.stat("Proportion")
        feedback.pushInfo(
            tr("{n} pairs compared; full match {full}, partial {partial}, no match {none}; mean "
               "Jaccard {jaccard:.2f}.").format(
                n=result.n_pairs, full=int(count["full_match"]),
                partial=int(count["partial_match"]), none=int(count["no_match"]),
                jaccard=mean["jaccard"] if mean["jaccard"] is not None else float("nan")))
        undefined = int(result.stat("Undefined")["id_overlap"])
        if undefined:
            feedback.pushInfo(tr("{n} pairs have an unassigned clustered polygon: their overlap "
                                 "coefficient and ID overlap are undefined and left out of the "
                                 "mean, SD and median.").format(n=undefined))
        if result.n_skipped_reference:
            feedback.pushWarning(tr("{n} pairs skipped: the reference polygon has no "
                                    "commodity.").format(n=result.n_skipped_reference))
        if result.n_pairs == 0:
            feedback.pushWarning(tr("No clustered polygon intersects a reference polygon with "
                                    "commodities; check that both layers cover the same area."))

        steps.setCurrentStep(3)
        out_fields = compat.fields_from_schema(va.PAIR_FIELDS)
        rows = result.pairs

        def geometries():
            for pair in result.pairs:
                g = read.originals[pair["index"]]
                if g is not None:
                    g = QgsGeometry(g)
                    g.convertToMultiType()
                yield g

        dest = outputs.write(self.OUTPUT, out_fields, QgsWkbTypes.Type.MultiPolygon,
                             source.sourceCrs(),
                             layer_io.records_of(va.PAIR_FIELDS, rows, geometries()),
                             total=len(rows), progress=lambda p: steps.setProgress(0.6 * p))
        sdest = outputs.table(self.OUTPUT_SUMMARY, va.SUMMARY_FIELDS, result.summary)
        steps.setProgress(70)

        images = []
        plot = outputs.file(self.PLOT)
        if plot:
            footprint_plots.validation_plot(result.pairs, plot)
            images.append((plot, tr("Similarity metrics over the compared pairs")))
        layer_io.stop_if_cancelled(feedback)
        steps.setProgress(85)
        html = outputs.file(self.REPORT)
        if html:
            report.validation_report(result, html, images=images, intro=[
                tr("Clustered polygons: {layer}; reference polygons: {reference}").format(
                    layer=name, reference=rname)
                + (tr(" (commodity field '{field}').").format(field=ref_field) if ref_field
                   else tr(" (all taken as '{commodities}').").format(commodities=fixed)),
                provenance.sentence(made_by)])
        layer_io.stop_if_cancelled(feedback)
        steps.setProgress(100)
        return provenance.finish(self, {
            self.OUTPUT: dest, self.OUTPUT_SUMMARY: sdest, self.PLOT: plot, self.REPORT: html,
            self.N_PAIRS: result.n_pairs,
            self.FULL_MATCH_PCT: prop["full_match"],
            self.NO_MATCH_PCT: prop["no_match"],
            self.MEAN_JACCARD: mean["jaccard"],
        }, made_by, [dest, sdest])
