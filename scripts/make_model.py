#!/usr/bin/env python3
"""Write the Graphical Modeler models in resources/.

- mine_clusters.model3: "Cluster mine features (local optimum)" on two layer inputs.
- mine_clusters_pipeline.model3: harmonise polygons + points -> cluster -> footprint summary;
  inputs `polygon_layers`, `point_layers` (several layers each) and, optional, what real
  sources need (see PIPELINE_OPTIONS): `polygon_source_names`, `point_source_names`,
  `default_commodity` (e.g. `Coal` or `GEM=Coal; ASGM=Gold` for layers without a primary
  commodity field, like the GEM coal tracker CSV or the Dethier KML), `primary_fields`,
  `commodity_fields`, `harmonisation_table`, and the footprint's regions `countries`,
  `country_field`, `biomes`, `biome_field`; the clustered points go to the footprint (Table 2);
  outputs `cluster:clustered_polygons` (required), `cluster:clustered_points`,
  `cluster:pareto_plot`, `footprint:area_by_commodity`, `footprint:area_by_country`,
  `footprint:area_by_biome`, `footprint:table2`, `footprint:report`,
  `harmonise_polygons:dropped_polygons`, `harmonise_points:dropped_points` (written when
  named). The harmonised layers themselves are not model outputs: a required child output would
  become a required model output.

Run with the system Python and the plugin importable, e.g. `make model`.
Model inputs: `polygons`, `points`; model outputs (childId:name): `cluster:clustered_polygons`,
`cluster:clustered_points`, `cluster:clusters`, `cluster:sensitivity`, `cluster:pareto_plot`.
"""
import os
import sys

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def start():
    import tempfile

    plugins = tempfile.mkdtemp()
    os.symlink(ROOT, os.path.join(plugins, "mine_clusters"))
    sys.path.insert(0, plugins)
    from qgis.core import QgsApplication
    from qgis.testing import start_app

    start_app()
    from mine_clusters.algorithms.provider import MineClustersProvider

    provider = MineClustersProvider()
    QgsApplication.processingRegistry().addProvider(provider)
    return provider


def make_cluster_model(out_path):
    from qgis.core import (
        QgsProcessing,
        QgsProcessingModelAlgorithm,
        QgsProcessingModelChildAlgorithm,
        QgsProcessingModelChildParameterSource,
        QgsProcessingModelOutput,
        QgsProcessingModelParameter,
        QgsProcessingParameterFeatureSource,
    )
    from qgis.PyQt.QtCore import QPointF

    model = QgsProcessingModelAlgorithm("Mine clusters example", "Mine clusters")
    model.setHelpContent({"ALG_DESC": "Clusters mining land-use polygons with mine points "
                                      "(local optimum, meta-optimised H_max) and writes the "
                                      "clustered layers, the sensitivity table, the Pareto "
                                      "plot and, when named, the links and the concordance "
                                      "table."})
    for i, (name, label, kind) in enumerate((
            ("polygons", "Mining land-use polygons", QgsProcessing.SourceType.TypeVectorPolygon),
            ("points", "Mine points", QgsProcessing.SourceType.TypeVectorPoint))):
        param = QgsProcessingModelParameter(name)
        param.setPosition(QPointF(120, 60 + 80 * i))
        model.addModelParameter(QgsProcessingParameterFeatureSource(name, label, [kind]), param)

    child = QgsProcessingModelChildAlgorithm("mineclusters:clusterlocaloptimum")
    child.setChildId("cluster")
    child.setDescription("Cluster mine features (local optimum)")
    child.setPosition(QPointF(420, 100))
    child.addParameterSources("POLYGONS", [
        QgsProcessingModelChildParameterSource.fromModelParameter("polygons")])
    child.addParameterSources("POINTS", [
        QgsProcessingModelChildParameterSource.fromModelParameter("points")])
    child.addParameterSources("PRIMARY_FIELD", [
        QgsProcessingModelChildParameterSource.fromStaticValue("primary_commodity")])
    child.addParameterSources("COMMODITIES_FIELD", [
        QgsProcessingModelChildParameterSource.fromStaticValue("commodities")])
    for name, value in (("H_LIMIT", 20000.0), ("THRESHOLD_STEP", 1000.0), ("METHOD", 0),
                        ("WEIGHT", 0.5), ("FORMULA", 0)):
        child.addParameterSources(name, [
            QgsProcessingModelChildParameterSource.fromStaticValue(value)])
    outputs = {}
    for j, (child_out, name) in enumerate((
            ("OUTPUT_POLYGONS", "clustered_polygons"), ("OUTPUT_POINTS", "clustered_points"),
            ("OUTPUT_CLUSTERS", "clusters"), ("OUTPUT_SENSITIVITY", "sensitivity"),
            ("OUTPUT_PLOT", "pareto_plot"), ("OUTPUT_LINKS", "links"),
            ("OUTPUT_CONCORDANCE", "concordance"))):
        out = QgsProcessingModelOutput(name, name)
        out.setChildId("cluster")
        out.setChildOutputName(child_out)
        out.setPosition(QPointF(700, 40 + 50 * j))
        out.setMandatory(name == "clustered_polygons")  # the others: write them if asked
        outputs[name] = out
    child.setModelOutputs(outputs)
    model.addChildAlgorithm(child)
    save(model, out_path)


def save(model, out_path):
    if hasattr(model, "validate"):
        ok, problems = model.validate()
        if not ok:
            raise SystemExit("model does not validate: " + "; ".join(problems))
    if not model.toFile(out_path):
        raise SystemExit(f"could not write {out_path}")
    canonical_attribute_order(out_path)
    print(f"wrote {out_path}")


def canonical_attribute_order(path, order=("value", "name", "type")):
    """Qt writes each element's attributes in a random order (hash seed): put them in one order
    so that writing the same model twice gives the same file (and readable diffs)."""
    import re

    def tag(m):
        attrs = re.findall(r'(\w+)="([^"]*)"', m.group(1))
        attrs.sort(key=lambda kv: order.index(kv[0]) if kv[0] in order else len(order))
        return "<Option" + "".join(f' {k}="{v}"' for k, v in attrs) + m.group(2) + ">"

    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    text = re.sub(r'<Option((?:\s+\w+="[^"]*")*)\s*(/?)>', tag, text)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)


#: Optional inputs of the pipeline model: (model input, harmonise child, child parameter, label).
#: Real sources need them: a layer without a primary-commodity field (the GEM coal tracker, the
#: Dethier KML) takes its commodity from `default_commodity`.
PIPELINE_OPTIONS = (
    ("polygon_source_names", "harmonise_polygons", "SOURCE_NAMES",
     "Polygon source names (comma-separated, in layer order; empty = layer names)"),
    ("point_source_names", "harmonise_points", "SOURCE_NAMES",
     "Point source names (comma-separated, in layer order; empty = layer names)"),
    ("default_commodity", "harmonise_points", "DEFAULT_COMMODITY",
     "Commodity of point layers without a primary field (a name, or 'source=name; "
     "source=name')"),
    ("primary_fields", "harmonise_points", "PRIMARY_FIELDS",
     "Primary commodity fields (the first one a point layer has is used)"),
    ("commodity_fields", "harmonise_points", "COMMODITY_FIELDS",
     "All commodities fields (every one a point layer has is used)"),
    ("harmonisation_table", "harmonise_points", "TABLE",
     "Harmonisation table (CSV: raw name, harmonised name; empty = the table shipped with "
     "the plugin)"),
)


def make_pipeline_model(out_path):
    """harmonise polygons + harmonise points -> cluster -> footprint summary."""
    from qgis.core import (
        QgsApplication,
        QgsProcessing,
        QgsProcessingModelAlgorithm,
        QgsProcessingModelChildAlgorithm,
        QgsProcessingModelChildParameterSource as Src,
        QgsProcessingModelOutput,
        QgsProcessingModelParameter,
        QgsProcessingParameterFeatureSource,
        QgsProcessingParameterField,
        QgsProcessingParameterFile,
        QgsProcessingParameterMultipleLayers,
        QgsProcessingParameterString,
    )
    from qgis.PyQt.QtCore import QPointF

    model = QgsProcessingModelAlgorithm("Mine clusters pipeline", "Mine clusters")
    model.setHelpContent({"ALG_DESC": "Harmonises land-use polygon layers and mine point layers, "
                                      "clusters them (local optimum) and summarises the mining "
                                      "footprint by commodity. Point layers without a primary "
                                      "commodity field (e.g. the GEM coal tracker) take their "
                                      "commodity from 'Commodity of point layers without a "
                                      "primary field' ('Coal', or 'GEM=Coal; ASGM=Gold')."})
    for i, (name, label) in enumerate((("polygon_layers", "Land-use polygon layers"),
                                       ("point_layers", "Mine point layers"))):
        param = QgsProcessingModelParameter(name)
        param.setPosition(QPointF(120, 60 + 100 * i))
        model.addModelParameter(QgsProcessingParameterMultipleLayers(
            name, label, QgsProcessing.SourceType.TypeVectorAnyGeometry), param)
    option_sources = {}
    registry = QgsApplication.processingRegistry()
    for i, (name, child_id, child_param, label) in enumerate(PIPELINE_OPTIONS):
        alg_id = {"harmonise_polygons": "mineclusters:harmonisepolygons",
                  "harmonise_points": "mineclusters:harmonisepoints"}[child_id]
        default = registry.algorithmById(alg_id).parameterDefinition(child_param).defaultValue()
        if child_param == "TABLE":
            definition = QgsProcessingParameterFile(name, label, extension="csv", optional=True)
        else:
            definition = QgsProcessingParameterString(name, label, defaultValue=default,
                                                      optional=True)
        param = QgsProcessingModelParameter(name)
        param.setPosition(QPointF(120, 260 + 60 * i))
        model.addModelParameter(definition, param)
        option_sources.setdefault(child_id, {})[child_param] = Src.fromModelParameter(name)
    # the footprint's regions (optional): without them the report has no country/biome sections
    for i, (name, label, field, field_label, default, child_param, child_field) in enumerate((
            ("countries", "Countries (optional)", "country_field", "Country name field",
             "name", "COUNTRIES", "COUNTRY_FIELD"),
            ("biomes", "Biomes or ecoregions (optional)", "biome_field", "Biome name field",
             "BIOME_NAME", "BIOMES", "BIOME_FIELD"))):
        y = 260 + 60 * len(PIPELINE_OPTIONS) + 120 * i
        param = QgsProcessingModelParameter(name)
        param.setPosition(QPointF(120, y))
        model.addModelParameter(QgsProcessingParameterFeatureSource(
            name, label, [QgsProcessing.SourceType.TypeVectorPolygon], optional=True), param)
        fparam = QgsProcessingModelParameter(field)
        fparam.setPosition(QPointF(120, y + 50))
        model.addModelParameter(QgsProcessingParameterField(
            field, field_label, defaultValue=default, parentLayerParameterName=name,
            optional=True), fparam)
        option_sources.setdefault("footprint", {}).update({
            child_param: Src.fromModelParameter(name), child_field: Src.fromModelParameter(field)})

    def child(alg_id, child_id, x, y, sources, outputs):
        c = QgsProcessingModelChildAlgorithm(alg_id)
        c.setChildId(child_id)
        c.setDescription(child_id)
        c.setPosition(QPointF(x, y))
        alg = c.algorithm()
        for p in alg.parameterDefinitions():  # every unset input takes its default
            if p.isDestination() or p.name() in sources:
                continue
            if p.defaultValue() is not None:
                c.addParameterSources(p.name(), [Src.fromStaticValue(p.defaultValue())])
        for name, src in sources.items():
            c.addParameterSources(name, [src])
        outs = {}
        for j, (child_out, name, mandatory) in enumerate(outputs):
            o = QgsProcessingModelOutput(name, name)
            o.setChildId(child_id)
            o.setChildOutputName(child_out)
            o.setMandatory(mandatory)
            o.setPosition(QPointF(x + 250, y + 40 * j))
            outs[name] = o
        c.setModelOutputs(outs)
        model.addChildAlgorithm(c)

    child("mineclusters:harmonisepolygons", "harmonise_polygons", 380, 40,
          {"LAYERS": Src.fromModelParameter("polygon_layers"),
           **option_sources["harmonise_polygons"]},
          [("OUTPUT_DROPPED", "dropped_polygons", False)])
    child("mineclusters:harmonisepoints", "harmonise_points", 380, 260,
          {"LAYERS": Src.fromModelParameter("point_layers"),
           **option_sources["harmonise_points"]},
          [("OUTPUT_DROPPED", "dropped_points", False)])
    child("mineclusters:clusterlocaloptimum", "cluster", 680, 100,
          {"POLYGONS": Src.fromChildOutput("harmonise_polygons", "OUTPUT"),
           "POINTS": Src.fromChildOutput("harmonise_points", "OUTPUT")},
          [("OUTPUT_POLYGONS", "clustered_polygons", True),
           ("OUTPUT_POINTS", "clustered_points", False),
           ("OUTPUT_PLOT", "pareto_plot", False),
           ("OUTPUT_LINKS", "links", False),
           ("OUTPUT_CONCORDANCE", "concordance", False)])
    child("mineclusters:footprintsummary", "footprint", 980, 100,
          {"INPUT": Src.fromChildOutput("cluster", "OUTPUT_POLYGONS"),
           # Table 2 counts the points when they are written: a model output left unnamed is
           # not written at all (QGIS makes temporary layers only of non-final outputs)
           "POINTS": Src.fromChildOutput("cluster", "OUTPUT_POINTS"),
           **option_sources["footprint"]},
          [("OUTPUT_COMMODITY", "area_by_commodity", False),
           ("OUTPUT_COUNTRY", "area_by_country", False),
           ("OUTPUT_BIOME", "area_by_biome", False),
           ("OUTPUT_TABLE2", "table2", False),
           ("OUTPUT_RASTER", "mine_area_raster", False),
           ("REPORT", "report", False)])
    save(model, out_path)


if __name__ == "__main__":
    provider = start()  # keep the reference: an unreferenced provider loses its algorithms
    make_cluster_model(os.path.join(ROOT, "resources", "mine_clusters.model3"))
    make_pipeline_model(os.path.join(ROOT, "resources", "mine_clusters_pipeline.model3"))
