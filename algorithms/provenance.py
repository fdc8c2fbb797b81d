"""Provenance of a run: the plugin version, the QGIS version, the algorithm, its parameters and
its input layers (name, source, feature count), recorded once per run and written

- into the results as the text output ``PROVENANCE`` (JSON; ``qgis_process --json`` prints it
  with the other results, the Results Viewer and the Modeler see it),
- into the header of every HTML report (one sentence, see :func:`sentence`),
- into the layer metadata of every GeoPackage output (abstract and history; *Layer Properties →
  Metadata* in QGIS), after the run, when the files are closed.
"""
import configparser
import datetime
import json
import os

from qgis.core import (
    Qgis,
    QgsLayerMetadata,
    QgsProcessingOutputString,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterVectorLayer,
    QgsProviderRegistry,
    QgsVectorLayer,
)
from qgis.PyQt.QtCore import QCoreApplication

PROVENANCE = "PROVENANCE"
PLUGIN_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _tr(text):
    return QCoreApplication.translate("MineClustersProvenance", text)


def plugin_version():
    """The version in metadata.txt (the one the plugin repository shows)."""
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(os.path.join(PLUGIN_DIR, "metadata.txt"), encoding="utf-8")
        return parser.get("general", "version")
    except (configparser.Error, OSError):
        return "unknown"


def add_output(alg):
    """Declares the PROVENANCE output of `alg` (call it in initAlgorithm)."""
    alg.addOutput(QgsProcessingOutputString(
        PROVENANCE, _tr("Provenance: plugin and QGIS versions, parameters, input layers (JSON)")))


def _plain(value):
    """A parameter value as JSON can hold it."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return str(value)


def _layer(layer, features=None):
    return {"name": layer.name(), "source": layer.publicSource(),
            "features": int(features if features is not None else layer.featureCount())}


def record(alg, parameters, context):
    """Everything that made this run, as a dict (JSON-ready)."""
    params, inputs = {}, []
    for p in alg.parameterDefinitions():
        name = p.name()
        if p.isDestination():
            continue
        value = parameters.get(name)
        if isinstance(p, (QgsProcessingParameterFeatureSource, QgsProcessingParameterVectorLayer)):
            layer = alg.parameterAsVectorLayer(parameters, name, context)
            if layer is not None:
                inputs.append(dict(parameter=name, **_layer(layer)))
                params[name] = layer.name()
                continue
            source = alg.parameterAsSource(parameters, name, context) if value else None
            if source is not None:
                inputs.append({"parameter": name, "name": source.sourceName(),
                               "source": str(value), "features": int(source.featureCount())})
                params[name] = source.sourceName()
                continue
        if isinstance(p, QgsProcessingParameterMultipleLayers):
            layers = alg.parameterAsLayerList(parameters, name, context) or []
            for layer in layers:
                if isinstance(layer, QgsVectorLayer):
                    inputs.append(dict(parameter=name, **_layer(layer)))
            params[name] = [layer.name() for layer in layers]
            continue
        params[name] = _plain(value if value is not None else p.defaultValue())
    return {
        "plugin": "Mine Clusters", "plugin_version": plugin_version(),
        "qgis_version": Qgis.version(), "algorithm": alg.id(),
        "run_at": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "parameters": params, "inputs": inputs,
    }


def sentence(rec):
    """One line for a report's header."""
    layers = "; ".join(_tr("{parameter}: '{name}' ({features} features, {source})").format(**i)
                       for i in rec["inputs"])
    return _tr("Made by Mine Clusters {version} ({algorithm}) on QGIS {qgis} at {when} from "
               "{layers}. Every parameter is in the PROVENANCE output and in the metadata of "
               "the GeoPackage outputs.").format(
        version=rec["plugin_version"], algorithm=rec["algorithm"], qgis=rec["qgis_version"],
        when=rec["run_at"], layers=layers or _tr("no input layer"))


def finish(alg, results, rec, outputs=()):
    """Adds the PROVENANCE output to `results` and remembers the GeoPackage outputs among
    `outputs` (destination ids) for :func:`save_metadata`."""
    text = json.dumps(rec, ensure_ascii=False, sort_keys=False)
    results[PROVENANCE] = text
    alg._provenance = (text, [d for d in outputs if isinstance(d, str) and ".gpkg" in d.lower()])
    return results


def _json_run():
    """Whether this process is `qgis_process ... --json run ...` (QCoreApplication's arguments)."""
    args = [str(a) for a in QCoreApplication.arguments()]
    return (bool(args) and os.path.basename(args[0]).lower().startswith("qgis_process")
            and "--json" in args[1:] and "run" in args[1:])


def report_failure(alg, parameters, context, error, stream=None):
    """Under ``qgis_process --json``, prints one JSON object for a failed run on standard output:
    qgis_process itself prints JSON only for a run that finished (QGIS 3.22 to 3.44), so a script
    would get nothing to parse. The object holds the error sentence, the algorithm, the inputs as
    given and the provenance record (as far as the inputs can be read); the error sentence stays
    on standard error as before. Elsewhere (the dialog, processing.run) it does nothing."""
    if stream is None:
        if not _json_run():
            return
        import sys
        stream = sys.stdout
    message = error if isinstance(error, str) else (
        str(error.args[0]) if getattr(error, "args", None) else str(error))
    try:
        rec = record(alg, parameters, context)
    except Exception:  # noqa: B902  (the inputs may be what failed: the error still gets out)
        rec = None
    doc = {"algorithm_details": {"id": alg.id(), "name": alg.displayName()},
           "inputs": _plain(dict(parameters)), "qgis_version": Qgis.version(),
           "plugin_version": plugin_version(), "ok": False, "error": message,
           "results": {}, "provenance": rec}
    stream.write(json.dumps(doc, ensure_ascii=False, indent=2) + "\n")
    stream.flush()


def _with_layer_name(registry, dest):
    """The GeoPackage URI with its layer named (saveLayerMetadata needs it): a Processing output
    path names none, and its file holds one layer."""
    parts = registry.decodeUri("ogr", dest)
    if parts.get("layerName"):
        return dest
    import sqlite3
    from contextlib import closing

    with closing(sqlite3.connect(f"file:{parts.get('path', dest)}?mode=ro", uri=True)) as con:
        names = [r[0] for r in con.execute(
            "SELECT table_name FROM gpkg_contents WHERE data_type IN ('features', 'attributes') "
            "AND table_name NOT IN ('layer_styles', 'qgis_projects')")]
    if len(names) != 1:
        return dest
    parts["layerName"] = names[0]
    return registry.encodeUri("ogr", parts)


def save_metadata(alg, feedback):
    """After the run (files closed): the provenance into each GeoPackage output's metadata."""
    text, targets = getattr(alg, "_provenance", (None, []))
    if not text:
        return
    rec = json.loads(text)
    registry = QgsProviderRegistry.instance()
    for dest in targets:
        try:
            uri = _with_layer_name(registry, dest)
            layer = QgsVectorLayer(uri, "output", "ogr")
            if not layer.isValid():
                continue
            md = QgsLayerMetadata(layer.metadata())
            md.setAbstract(sentence(rec))
            md.setHistory(list(md.history()) + [text])
            ok, error = registry.saveLayerMetadata("ogr", uri, md)
            del layer
            if not ok:
                raise RuntimeError(error)
        except Exception as exc:  # provenance in the metadata is a convenience: never fail the run
            feedback.pushWarning(_tr("Could not store the provenance in the metadata of {dest}: "
                                     "{error}").format(dest=dest, error=exc))
