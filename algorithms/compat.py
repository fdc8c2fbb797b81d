"""Version shims and QGIS <-> shapely conversion: the only place that checks QGIS versions."""
from qgis.core import Qgis, QgsField, QgsFields, QgsGeometry


def _field_type(kind):
    if Qgis.QGIS_VERSION_INT >= 33800:  # QgsField accepts QMetaType from 3.38
        from qgis.PyQt.QtCore import QMetaType

        return {"int": QMetaType.Type.Int, "double": QMetaType.Type.Double,
                "string": QMetaType.Type.QString}[kind]
    from qgis.PyQt.QtCore import QVariant  # 3.22 rejects QMetaType; 3.38+ warns on QVariant

    # no spelling of these exists on both 3.22 and Qt6: the version branch above picks one
    return {"int": QVariant.Int, "double": QVariant.Double,  # noqa: QGS402
            "string": QVariant.String}[kind]  # noqa: QGS402


def parameter_as_fields(alg, parameters, name, context):
    """Field names of a field parameter (parameterAsFields is deprecated from 3.32 on)."""
    if Qgis.QGIS_VERSION_INT >= 33200:
        return alg.parameterAsStrings(parameters, name, context)
    return alg.parameterAsFields(parameters, name, context)


def make_field(name, kind):
    return QgsField(name, _field_type(kind))


def fields_from_schema(schema, base=None):
    """QgsFields = `base` (copied) + one field per (name, kind) of `schema`."""
    fields = QgsFields()
    if base is not None:
        for f in base:
            fields.append(QgsField(f))
    for name, kind in schema:
        fields.append(make_field(name, kind))
    return fields


def from_wkb(wkbs):
    """List of WKB (or None) -> list of shapely geometries. A NaN coordinate is reported by the
    core in one sentence naming the feature; the RuntimeWarning numpy 2 adds for it (QGIS 3.40
    with shapely 2.1) would be a second, confusing line on stderr, so it is silenced here."""
    import numpy as np
    import shapely

    with np.errstate(invalid="ignore"):
        return list(shapely.from_wkb(wkbs))


def to_shapely(geometries):
    """List of QgsGeometry (or None) -> list of shapely geometries (None for null/empty)."""
    wkbs = []
    for g in geometries:
        if g is None or g.isNull() or g.isEmpty():
            wkbs.append(None)
        else:
            wkbs.append(bytes(g.asWkb()))
    return from_wkb(wkbs)


def from_shapely(geom, multi=False):
    import shapely

    g = QgsGeometry()
    g.fromWkb(shapely.to_wkb(geom))
    if multi:
        g.convertToMultiType()
    return g


def discard_outputs(outputs, feedback):
    """After a cancel while writing: delete the files already written, so that no half-written
    output looks complete, and return the empty result of a cancelled run."""
    import os

    left = []
    for dest in outputs.values():
        if not isinstance(dest, str):
            continue
        path = dest.split("|")[0]
        for p in (path, path + "-wal", path + "-shm", path + "-journal"):
            if os.path.isfile(p):
                try:
                    os.remove(p)
                except OSError:
                    left.append(p)
    feedback.pushInfo("Cancelled while writing; the outputs written so far were deleted."
                      + (f" Delete by hand: {', '.join(left)}." if left else ""))
    return {}


def finish_sink(sink):
    """Write out a sink's buffered features (``finalize()`` where QGIS has it, PR 59241). The
    caller must also drop its reference (``del sink``) before the algorithm returns: on QGIS 3.40
    a GeoPackage output is committed only when its sink is destroyed, else it stays empty."""
    if sink is None:
        return
    sink.flushBuffer()
    if hasattr(sink, "finalize"):
        sink.finalize()
