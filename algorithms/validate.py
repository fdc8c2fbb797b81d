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
from .base import MineClustersAlgorithm
from .footprint import (
    CANCELLED,
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

    def name(self):
        return "validate"

    def displayName(self):  # noqa: N802
        return "Validate against reference polygons"

    def group(self):
        return "Footprint"

    def groupId(self):  # noqa: N802
        return "footprint"

    def shortHelpString(self):  # noqa: N802
        return (
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
        self.addParameter(QgsProcessingParameterFeatureSource(
            self.INPUT, "Clustered polygons", [QgsProcessing.TypeVectorPolygon]))
        self.addParameter(QgsProcessingParameterFeatureSource(
            self.REFERENCE, "Reference polygons", [QgsProcessing.TypeVectorPolygon]))
        self.addParameter(QgsProcessingParameterField(
            self.REFERENCE_FIELD, "Reference commodity field (comma list)",
            parentLayerParameterName=self.REFERENCE, type=QgsProcessingParameterField.String,
            optional=True))
        self.addParameter(QgsProcessingParameterString(
            self.REFERENCE_COMMODITIES, "Reference commodities when no field is chosen "
            "(comma list, e.g. Coal)", defaultValue="", optional=True))
        self.addParameter(QgsProcessingParameterBoolean(
            self.INCLUDE_UNASSIGNED, "Count unassigned clustered polygons as no match",
            defaultValue=True))
        self.addParameter(QgsProcessingParameterFile(
            self.TABLE, "Harmonisation table for the reference commodities (CSV: raw name, "
            "harmonised name; empty = the table shipped with the plugin)", extension="csv",
            optional=True))
        self.addParameter(QgsProcessingParameterFeatureSink(
            self.OUTPUT, "Compared pairs", QgsProcessing.TypeVectorPolygon))
        self.addParameter(QgsProcessingParameterFeatureSink(
            self.OUTPUT_SUMMARY, "Table 4: similarity summary", QgsProcessing.TypeVector,
            optional=True, createByDefault=True))
        self.addParameter(QgsProcessingParameterFileDestination(
            self.PLOT, "Plot: metric histograms", "PNG files (*.png);;SVG files (*.svg)",
            optional=True, createByDefault=True))
        self.addParameter(QgsProcessingParameterFileDestination(
            self.REPORT, "Validation report", "HTML files (*.html)", optional=True,
            createByDefault=True))
        self.addOutput(QgsProcessingOutputNumber(self.N_PAIRS, "Compared pairs"))
        self.addOutput(QgsProcessingOutputNumber(self.FULL_MATCH_PCT, "Full match (%)"))
        self.addOutput(QgsProcessingOutputNumber(self.NO_MATCH_PCT, "No match (%)"))
        self.addOutput(QgsProcessingOutputNumber(self.MEAN_JACCARD, "Mean Jaccard"))

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

        source = self._source(parameters, self.INPUT, context)
        name = layer_name(parameters, self.INPUT, source)
        ref = self._source(parameters, self.REFERENCE, context)
        rname = layer_name(parameters, self.REFERENCE, ref)
        check_polygons(source, "clustered polygons", name)
        check_polygons(ref, "reference polygons", rname)
        for fld in ("cluster_id", "primary_commodities"):
            if source.fields().lookupField(fld) < 0:
                raise QgsProcessingException(
                    f"The clustered polygons layer '{name}' has no '{fld}' field; use the "
                    f"'Clustered polygons' output of the cluster algorithm.")
        fields = compat.parameter_as_fields(self, parameters, self.REFERENCE_FIELD, context)
        ref_field = fields[0] if fields else None
        fixed = (self.parameterAsString(parameters, self.REFERENCE_COMMODITIES, context)
                 or "").strip()
        if ref_field and ref.fields().lookupField(ref_field) < 0:
            raise QgsProcessingException(
                f"The reference polygons layer '{rname}' has no '{ref_field}' field; choose its "
                "commodity column in 'Reference commodity field'.")
        if not ref_field and not fixed:
            raise QgsProcessingException(
                f"No reference commodities for the reference polygons layer '{rname}'; choose "
                "its commodity column in 'Reference commodity field' or type them in "
                "'Reference commodities when no field is chosen'.")
        for src, label, lname in ((source, "clustered polygons", name),
                                  (ref, "reference polygons", rname)):
            if src.featureCount() == 0:
                raise QgsProcessingException(
                    f"The {label} layer '{lname}' has no features; choose a layer with polygons.")
        include = self.parameterAsBool(parameters, self.INCLUDE_UNASSIGNED, context)
        table_path = self.parameterAsFile(parameters, self.TABLE, context)
        try:
            table = va.reference_harmonisation(table_path or None)
        except InputError as exc:
            raise QgsProcessingException(str(exc))
        feedback.pushInfo("Reference commodities harmonised with "
                          f"{table_path or 'the table shipped with the plugin'} "
                          f"({len(table)} names).")

        # reading each layer, comparing, writing
        steps = QgsProcessingMultiStepFeedback(4, feedback)
        read = read_layer(source, to_wgs84(source, context, feedback, "clustered polygons"),
                          steps, "clustered polygons", name,
                          ["cluster_id", "primary_commodities"])
        if read is None:
            feedback.pushInfo(CANCELLED)
            return {}
        ids, geoms, values, feats = read
        steps.setCurrentStep(1)
        read = read_layer(ref, to_wgs84(ref, context, feedback, "reference polygons"), steps,
                          "reference polygons", rname, [ref_field] if ref_field else [],
                          keep_features=False)
        if read is None:
            feedback.pushInfo(CANCELLED)
            return {}
        rids, rgeoms, rvalues, _rfeats = read
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
                layer=f"clustered polygons layer '{name}'",
                reference_layer=f"reference polygons layer '{rname}'")
        except Cancelled:
            feedback.pushInfo(CANCELLED)
            return {}
        except InputError as exc:
            raise QgsProcessingException(str(exc))
        mean, count, prop = result.stat("Mean"), result.stat("Count"), result.stat("Proportion")
        feedback.pushInfo(
            f"{result.n_pairs} pairs compared; full match {int(count['full_match'])}, partial "
            f"{int(count['partial_match'])}, no match {int(count['no_match'])}; mean Jaccard "
            f"{mean['jaccard'] if mean['jaccard'] is not None else float('nan'):.2f}.")
        undefined = int(result.stat("Undefined")["id_overlap"])
        if undefined:
            feedback.pushInfo(f"{undefined} pairs have an unassigned clustered polygon: their "
                              "overlap coefficient and ID overlap are undefined and left out of "
                              "the mean, SD and median.")
        if result.n_skipped_reference:
            feedback.pushWarning(f"{result.n_skipped_reference} pairs skipped: the reference "
                                 "polygon has no commodity.")
        if result.n_pairs == 0:
            feedback.pushWarning("No clustered polygon intersects a reference polygon with "
                                 "commodities; check that both layers cover the same area.")

        steps.setCurrentStep(3)
        written = {}

        def cancelled():  # what was written so far is deleted: nothing looks complete
            return compat.discard_outputs(written, feedback)

        out_fields = compat.fields_from_schema(va.PAIR_FIELDS)
        sink, dest = self.parameterAsSink(parameters, self.OUTPUT, context, out_fields,
                                          QgsWkbTypes.MultiPolygon, source.sourceCrs())
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
            f.setAttributes([native(pair.get(n)) for n in names])
            sink.addFeature(f, QgsFeatureSink.FastInsert)
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
            images.append((plot, "Similarity metrics over the compared pairs"))
        if feedback.isCanceled():
            return cancelled()
        steps.setProgress(85)
        html = written[self.REPORT] = file_output(self, parameters, self.REPORT, context)
        if html:
            report.validation_report(result, html, images=images, intro=[
                f"Clustered polygons: {name}; reference polygons: {rname}"
                + (f" (commodity field '{ref_field}')." if ref_field
                   else f" (all taken as '{fixed}').")])
        if feedback.isCanceled():
            return cancelled()
        steps.setProgress(100)
        return {
            self.OUTPUT: dest, self.OUTPUT_SUMMARY: sdest, self.PLOT: plot, self.REPORT: html,
            self.N_PAIRS: result.n_pairs,
            self.FULL_MATCH_PCT: prop["full_match"],
            self.NO_MATCH_PCT: prop["no_match"],
            self.MEAN_JACCARD: mean["jaccard"],
        }
