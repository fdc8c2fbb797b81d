"""Processing algorithm "Validate against reference polygons" (the paper's Table 4).

A thin wrapper: reads the clustered polygons and the reference polygons, transforms both to
EPSG:4326, calls ``core.validate.validate`` and writes the pairs, the summary, a plot and an
HTML report. Nothing scientific happens here.
"""

from qgis.core import (
    QgsFeature,
    QgsFeatureSink,
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

from . import compat
from . import provenance
from .base import MineClustersAlgorithm
from .footprint import (
    check_polygons,
    file_output,
    layer_name,
    native,
    read_layer,
    table_sink,
    to_wgs84,
    value_number,
    value_text,
    write_rows,
)


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

    def _source(self, parameters, name, context):
        source = self.parameterAsSource(parameters, name, context)
        if source is None:
            raise QgsProcessingException(self.invalidSourceError(parameters, name))
        return source

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        self.require_packages()
        from ..core import footprint_plots, report
        from ..core import validate as va
        from ..core.errors import Cancelled, InputError

        tr = self.tr
        clustered_label, reference_label = tr("clustered polygons"), tr("reference polygons")
        source = self._source(parameters, self.INPUT, context)
        name = layer_name(parameters, self.INPUT, source)
        ref = self._source(parameters, self.REFERENCE, context)
        rname = layer_name(parameters, self.REFERENCE, ref)
        check_polygons(source, clustered_label, name)
        check_polygons(ref, reference_label, rname)
        for fld in ("cluster_id", "primary_commodities"):
            if source.fields().lookupField(fld) < 0:
                raise QgsProcessingException(
                    tr("The clustered polygons layer '{layer}' has no '{field}' field; use the "
                       "'Clustered polygons' output of the cluster algorithm.").format(
                        layer=name, field=fld))
        fields = compat.parameter_as_fields(self, parameters, self.REFERENCE_FIELD, context)
        ref_field = fields[0] if fields else None
        id_fields = compat.parameter_as_fields(self, parameters, self.REFERENCE_ID_FIELD, context)
        id_field = id_fields[0] if id_fields else None
        if id_field and ref.fields().lookupField(id_field) < 0:
            raise QgsProcessingException(
                tr("The reference polygons layer '{layer}' has no '{field}' field; choose one of "
                   "its fields in 'Reference id or name field'.").format(
                    layer=rname, field=id_field))
        fixed = (self.parameterAsString(parameters, self.REFERENCE_COMMODITIES, context)
                 or "").strip()
        if ref_field and ref.fields().lookupField(ref_field) < 0:
            raise QgsProcessingException(
                tr("The reference polygons layer '{layer}' has no '{field}' field; choose its "
                   "commodity column in 'Reference commodity field'.").format(
                    layer=rname, field=ref_field))
        if not ref_field and not fixed:
            raise QgsProcessingException(
                tr("No reference commodities for the reference polygons layer '{layer}'; choose "
                   "its commodity column in 'Reference commodity field' or type them in "
                   "'Reference commodities when no field is chosen'.").format(layer=rname))
        for src, label, lname in ((source, clustered_label, name),
                                  (ref, reference_label, rname)):
            if src.featureCount() == 0:
                raise QgsProcessingException(
                    tr("The {kind} layer '{layer}' has no features; choose a layer with "
                       "polygons.").format(kind=label, layer=lname))
        include = self.parameterAsBool(parameters, self.INCLUDE_UNASSIGNED, context)
        made_by = provenance.record(self, parameters, context)
        table_path = self.parameterAsFile(parameters, self.TABLE, context)
        try:
            table = va.reference_harmonisation(table_path or None)
        except InputError as exc:
            raise QgsProcessingException(str(exc))
        feedback.pushInfo(tr("Reference commodities harmonised with {table} ({n} names).").format(
            table=table_path or tr("the table shipped with the plugin"), n=len(table)))

        # reading each layer, comparing, writing
        cancelled_msg = tr("Cancelled; no output was written.")
        steps = QgsProcessingMultiStepFeedback(4, feedback)
        read = read_layer(source, to_wgs84(source, context, feedback, clustered_label),
                          steps, clustered_label, name,
                          ["cluster_id", "primary_commodities"])
        if read is None:
            feedback.pushInfo(cancelled_msg)
            return {}
        ids, geoms, values, feats = read
        steps.setCurrentStep(1)
        others = []
        ref_fields = [f for f in (ref_field, id_field) if f]
        read = read_layer(ref, to_wgs84(ref, context, feedback, reference_label), steps,
                          reference_label, rname, list(dict.fromkeys(ref_fields)),
                          keep_features=False, others=others)
        if read is None:
            feedback.pushInfo(cancelled_msg)
            return {}
        rids, rgeoms, rvalues, _rfeats = read
        if others:
            feedback.pushWarning(
                tr("{n} features of the reference polygons layer '{layer}' are points or lines, "
                   "not polygons, and were left out (feature ids {ids}); {kept} polygons are "
                   "used.").format(n=len(others), layer=rname, kept=len(rids),
                                   ids=", ".join(map(str, others[:10]))
                                   + (", ..." if len(others) > 10 else "")))
        labels = dict(zip(rids, (value_text(v) for v in rvalues[id_field]))) if id_field else {}
        ref_comm = ([value_text(v) for v in rvalues[ref_field]] if ref_field
                    else [fixed] * len(rids))
        steps.setCurrentStep(2)
        try:
            result = va.validate(
                geoms, ids, [value_number(v) for v in values["cluster_id"]],
                [value_text(v) for v in values["primary_commodities"]], rgeoms, rids, ref_comm,
                harmonisation=table, include_unassigned=include,
                progress=lambda r: steps.setProgress(100 * r),
                should_stop=feedback.isCanceled,
                layer=tr("clustered polygons layer '{layer}'").format(layer=name),
                reference_layer=tr("reference polygons layer '{layer}'").format(layer=rname))
        except Cancelled:
            feedback.pushInfo(cancelled_msg)
            return {}
        except InputError as exc:
            raise QgsProcessingException(str(exc))
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
        written = {}

        def cancelled():  # what was written so far is deleted: nothing looks complete
            return compat.discard_outputs(written, feedback)

        # the reference's own id or name beside its feature id (reference_id)
        pair_schema = va.PAIR_FIELDS + (("reference_name", "string"),)
        out_fields = compat.fields_from_schema(pair_schema)
        sink, dest = self.parameterAsSink(parameters, self.OUTPUT, context, out_fields,
                                          QgsWkbTypes.Type.MultiPolygon, source.sourceCrs())
        if sink is None:
            raise QgsProcessingException(self.invalidSinkError(parameters, self.OUTPUT))
        written[self.OUTPUT] = dest
        names = [n for n, _ in va.PAIR_FIELDS]
        every = max(1, len(result.pairs) // 50)
        for k, pair in enumerate(result.pairs):
            if k % every == 0:
                if feedback.isCanceled():
                    del sink
                    return cancelled()
                steps.setProgress(60.0 * k / len(result.pairs))
            f = QgsFeature(out_fields)
            g = feats[pair["index"]].geometry()
            if g is not None and not g.isNull():
                g = type(g)(g)
                g.convertToMultiType()
                f.setGeometry(g)
            f.setAttributes([native(pair.get(n)) for n in names]
                            + [labels.get(pair.get("reference_id"))])
            sink.addFeature(f, QgsFeatureSink.Flag.FastInsert)
        compat.finish_sink(sink)
        del sink  # the GeoPackage is written when the sink is destroyed (QGIS 3.40)
        ssink, sdest, sfields = table_sink(self, parameters, self.OUTPUT_SUMMARY, context,
                                           va.SUMMARY_FIELDS)
        written[self.OUTPUT_SUMMARY] = sdest
        done = write_rows(ssink, sfields, va.SUMMARY_FIELDS, result.summary, feedback)
        del ssink
        if not done:
            return cancelled()
        steps.setProgress(70)

        images = []
        plot = written[self.PLOT] = file_output(self, parameters, self.PLOT, context)
        if plot:
            footprint_plots.validation_plot(result.pairs, plot)
            images.append((plot, tr("Similarity metrics over the compared pairs")))
        if feedback.isCanceled():
            return cancelled()
        steps.setProgress(85)
        html = written[self.REPORT] = file_output(self, parameters, self.REPORT, context)
        if html:
            report.validation_report(result, html, images=images, intro=[
                tr("Clustered polygons: {layer}; reference polygons: {reference}").format(
                    layer=name, reference=rname)
                + (tr(" (commodity field '{field}').").format(field=ref_field) if ref_field
                   else tr(" (all taken as '{commodities}').").format(commodities=fixed)),
                provenance.sentence(made_by)])
        if feedback.isCanceled():
            return cancelled()
        steps.setProgress(100)
        return provenance.finish(self, {
            self.OUTPUT: dest, self.OUTPUT_SUMMARY: sdest, self.PLOT: plot, self.REPORT: html,
            self.N_PAIRS: result.n_pairs,
            self.FULL_MATCH_PCT: prop["full_match"],
            self.NO_MATCH_PCT: prop["no_match"],
            self.MEAN_JACCARD: mean["jaccard"],
        }, made_by, [dest, sdest])
