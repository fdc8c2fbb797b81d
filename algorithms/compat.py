"""Version shims: the only place that checks QGIS (and numpy) versions."""
from qgis.core import Qgis, QgsField, QgsFields


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


def finish_sink(sink):
    """Write out a sink's buffered features (``finalize()`` where QGIS has it, PR 59241). The
    caller must also drop its reference (``del sink``) before the algorithm returns: on QGIS 3.40
    a GeoPackage output is committed only when its sink is destroyed, else it stays empty."""
    if sink is None:
        return
    sink.flushBuffer()
    if hasattr(sink, "finalize"):
        sink.finalize()


def field_type_id(field):
    """The QMetaType id of a field's type (an int on Qt5 and Qt6 alike)."""
    kind = field.type()
    return int(getattr(kind, "value", kind))
