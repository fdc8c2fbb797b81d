#!/usr/bin/env python3
"""Write resources/mine_clusters.model3: a Graphical Modeler model that runs
"Cluster mine features (local optimum)" on two layer inputs and exposes its outputs.

Run with the system Python and the plugin importable, e.g. `make model`.
Model inputs: `polygons`, `points`; model outputs (childId:name): `cluster:clustered_polygons`,
`cluster:clustered_points`, `cluster:clusters`, `cluster:sensitivity`, `cluster:pareto_plot`.
"""
import os
import sys

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def main(out_path):
    import tempfile

    plugins = tempfile.mkdtemp()
    os.symlink(ROOT, os.path.join(plugins, "mine_clusters"))
    sys.path.insert(0, plugins)
    from qgis.core import (
        QgsApplication,
        QgsProcessing,
        QgsProcessingModelAlgorithm,
        QgsProcessingModelChildAlgorithm,
        QgsProcessingModelChildParameterSource,
        QgsProcessingModelOutput,
        QgsProcessingModelParameter,
        QgsProcessingParameterFeatureSource,
    )
    from qgis.PyQt.QtCore import QPointF
    from qgis.testing import start_app

    start_app()
    from mine_clusters.algorithms.provider import MineClustersProvider

    provider = MineClustersProvider()
    QgsApplication.processingRegistry().addProvider(provider)

    model = QgsProcessingModelAlgorithm("Mine clusters example", "Mine clusters")
    model.setHelpContent({"ALG_DESC": "Clusters mining land-use polygons with mine points "
                                      "(local optimum, meta-optimised H_max) and writes the "
                                      "clustered layers, the sensitivity table and the Pareto "
                                      "plot."})
    for i, (name, label, kind) in enumerate((
            ("polygons", "Mining land-use polygons", QgsProcessing.TypeVectorPolygon),
            ("points", "Mine points", QgsProcessing.TypeVectorPoint))):
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
            ("OUTPUT_PLOT", "pareto_plot"))):
        out = QgsProcessingModelOutput(name, name)
        out.setChildId("cluster")
        out.setChildOutputName(child_out)
        out.setPosition(QPointF(700, 40 + 50 * j))
        out.setMandatory(name == "clustered_polygons")  # the others: write them if asked
        outputs[name] = out
    child.setModelOutputs(outputs)
    model.addChildAlgorithm(child)
    if hasattr(model, "validate"):
        ok, problems = model.validate()
        if not ok:
            raise SystemExit("model does not validate: " + "; ".join(problems))
    if not model.toFile(out_path):
        raise SystemExit(f"could not write {out_path}")
    print(f"wrote {out_path}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "resources",
                                                               "mine_clusters.model3"))
