"""The wrappers' one I/O layer: QGIS layers in, core inputs out; core rows in, QGIS outputs out.

Every algorithm reads its layers with :func:`read` (CRS transform to EPSG:4326, the one-sentence
errors naming layer and feature, progress and cancel) and writes through the run's
:class:`Outputs` (sinks fed in batches on a writer thread, finished GeoPackages closed beside later
work, and the cancel rule: a cancelled run deletes what it wrote, so no half-written output looks
complete). A cancel anywhere raises the core's ``Cancelled``; the algorithm base class turns it
into the one log sentence. Nothing here imports the science stack at load time.
"""
import contextlib
import csv
import itertools
import operator
import os
import queue
import re
import shutil
import threading

from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsCsException,
    QgsFeature,
    QgsFeatureRequest,
    QgsFeatureSink,
    QgsField,
    QgsFields,
    QgsGeometry,
    QgsProcessingException,
    QgsProcessingFeatureSource,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterFeatureSink,
    QgsWkbTypes,
)
from qgis.PyQt.QtCore import QCoreApplication

from . import compat

WGS84 = "EPSG:4326"
#: Features handed to a sink per call (fewer Python -> C++ crossings).
BATCH = 2000
#: Every feature goes to the core, which repairs invalid polygons itself: the context's
#: invalid-geometry setting must never skip or abort silently.
SKIP_CHECKS = QgsProcessingFeatureSource.Flag.FlagSkipGeometryValidityChecks
#: The WKB header of a little-endian 2D MultiPolygon of one polygon.
_ONE_PART_MULTIPOLYGON = b"\x01\x06\x00\x00\x00\x01\x00\x00\x00"


def tr(text):
    """`text` translated in this module's context."""
    return QCoreApplication.translate("MineClustersIO", text)


def cancelled():
    """The core's ``Cancelled``, raised wherever a wrapper sees the user's cancel."""
    from ..core.errors import Cancelled

    return Cancelled()


def stop_if_cancelled(feedback):
    if feedback.isCanceled():
        raise cancelled()


# ----------------------------------------------------------------------------- values

def is_null(value):
    """Whether an attribute value is NULL (None, or a null QVariant)."""
    return value is None or (hasattr(value, "isNull") and value.isNull())


def text(value):
    """An attribute value as str, or None for NULL."""
    if is_null(value):
        return None
    return str(value)


def number(value):
    """An attribute value as float, or None for NULL and what is no number."""
    if is_null(value):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def texts(values):
    return [text(v) for v in values]


def numbers(values):
    return [number(v) for v in values]


def native(value):
    """A core value as QGIS takes it: numpy scalars as Python numbers, NaN as NULL."""
    if value is None:
        return None
    if type(value) not in (str, int, float, bool) and hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and value != value:
        return None
    return value


def column(values):
    """A core column (numpy array or list) as plain Python values, NaN as None."""
    kind = getattr(getattr(values, "dtype", None), "kind", None)
    if kind is not None and kind in "iub":
        return values.tolist()  # no NaN in integer columns: no per-value check
    if kind == "f":  # only the NaN positions are visited
        import numpy as np

        out = values.tolist()
        for i in np.flatnonzero(np.isnan(values)).tolist():
            out[i] = None
        return out
    out = values.tolist() if hasattr(values, "tolist") else list(values)
    return [None if isinstance(v, float) and v != v else v for v in out]


def rows_of(table, schema):
    """The rows of a core column table (attributes named as in `schema`) as value lists."""
    return list(map(list, zip(*[column(getattr(table, name)) for name, _kind in schema])))


# ----------------------------------------------------------------------------- inputs

def source(alg, parameters, name, context, optional=False):
    """The feature source of parameter `name`; None for an optional one not given."""
    if optional and parameters.get(name) in (None, ""):
        return None
    src = alg.parameterAsSource(parameters, name, context)
    if src is None:
        if optional:
            return None
        raise QgsProcessingException(alg.invalidSourceError(parameters, name))
    return src


def layer_name(parameters, name, src):
    """The name the messages give the layer of parameter `name`."""
    try:
        return src.sourceName() or str(parameters.get(name))
    except Exception:  # some sources have no name
        return str(parameters.get(name))


def _geometry_word(gtype):
    return {QgsWkbTypes.GeometryType.PointGeometry: tr("point"),
            QgsWkbTypes.GeometryType.LineGeometry: tr("line"),
            QgsWkbTypes.GeometryType.PolygonGeometry: tr("polygon"),
            QgsWkbTypes.GeometryType.NullGeometry: tr("no")}.get(gtype, tr("unknown"))


POINT = QgsWkbTypes.GeometryType.PointGeometry
POLYGON = QgsWkbTypes.GeometryType.PolygonGeometry


def check_geometry_type(src, expected, kind, layer, parameter):
    """Refuse a layer whose geometry type is not `expected` (a layer of unknown type, e.g. a
    mixed one, is read feature by feature)."""
    gtype = QgsWkbTypes.geometryType(src.wkbType())
    if gtype not in (expected, QgsWkbTypes.GeometryType.UnknownGeometry):
        needed = _geometry_word(expected)
        raise QgsProcessingException(
            tr("The {kind} layer '{layer}' has {found} geometries, but {needed} geometries are "
               "needed; choose a {needed} layer in '{param}'.").format(
                kind=kind, layer=layer, found=_geometry_word(gtype), needed=needed,
                param=parameter))


def check_not_empty(src, kind, layer, hint=None):
    if src.featureCount() == 0:
        raise QgsProcessingException(
            tr("The {kind} layer '{layer}' has no features; {hint}.").format(
                kind=kind, layer=layer,
                hint=hint or tr("choose a layer with {kind} in it").format(kind=kind)))


def chosen_field(alg, parameters, name, context, src, kind, layer, optional=False, default=None):
    """The field chosen in parameter `name` (its default, else `default`, when not given),
    checked against the layer; None for an optional field not given whose default the layer
    lacks."""
    given = parameters.get(name) not in (None, "", [])
    fields = compat.parameter_as_fields(alg, parameters, name, context)
    parameter = alg.parameterDefinition(name).description()
    field = fields[0] if fields else default
    if not field:
        if optional:
            return None
        raise QgsProcessingException(
            tr("No field was chosen in '{param}'; choose the column of the {kind} layer "
               "'{layer}' that holds it.").format(param=parameter, kind=kind, layer=layer))
    if src.fields().lookupField(field) < 0:
        if optional and not given:
            return None
        raise QgsProcessingException(
            tr("The {kind} layer '{layer}' has no '{field}' field; choose the right column in "
               "'{param}'.").format(kind=kind, layer=layer, field=field, param=parameter))
    return field


def to_wgs84(crs, context, feedback, kind, layer):
    """The transform from `crs` to EPSG:4326; None when none is needed (or the CRS is not
    valid: read as EPSG:4326, with a warning)."""
    wgs84 = QgsCoordinateReferenceSystem(WGS84)
    if not crs.isValid():
        feedback.pushWarning(tr("The {kind} layer '{layer}' has no valid CRS; read as "
                                "{crs}.").format(kind=kind, layer=layer, crs=WGS84))
        return None
    if crs == wgs84:
        return None
    return QgsCoordinateTransform(crs, wgs84, context.transformContext())


def from_wgs84(crs, context):
    """The transform from EPSG:4326 back to `crs`; None when none is needed."""
    wgs84 = QgsCoordinateReferenceSystem(WGS84)
    if not crs.isValid() or crs == wgs84:
        return None
    return QgsCoordinateTransform(wgs84, crs, context.transformContext())


class Read:
    """What :func:`read` gives: feature ids, shapely geometries in lon/lat (None for null or
    empty ones), {field: raw values}, the QgsGeometry of each feature in the layer CRS (with
    ``keep_geometries``) and the ids of the features left out for their geometry type."""

    def __init__(self):
        self.ids, self.geoms, self.values, self.originals, self.skipped = [], [], {}, [], []

    def __len__(self):
        return len(self.ids)


def read(src, context, feedback, kind, layer, geometry, fields=(), id_field=None,
         mismatched="error", request=None, progress=None, keep_geometries=False, bulk=None):
    """One pass over `src`, a feature source or vector layer (the `kind` layer called `layer`).

    `geometry` is :data:`POINT`, :data:`POLYGON` or None (attributes only). A feature of another
    geometry type is an error (`mismatched` "error"), left out and listed in ``skipped``
    ("skip"), or handed on untransformed for the core to drop and report ("keep"). Ids are the
    feature ids, or the text of `id_field` ('fid N' when NULL). Only `fields` are fetched.
    Progress goes to `progress` (0..100, default the feedback's), cancel raises ``Cancelled``.
    With `bulk` (a :class:`.bulk.Location` of `src`) a layer read whole, without a transform,
    is read through GDAL's Arrow stream when that gives exactly what QGIS would."""
    report = progress or feedback.setProgress
    if bulk is not None and request is None and not keep_geometries and \
            (geometry is None or src.sourceCrs() == QgsCoordinateReferenceSystem(WGS84)):
        from .bulk import NotBulk

        try:
            return _read_bulk(bulk, src, feedback, geometry, fields, id_field, report)
        except NotBulk:
            pass  # read through QGIS below
    out = Read()
    index = {n: src.fields().lookupField(n) for n in dict.fromkeys(list(fields) + [id_field]) if n}
    columns = {n: [] for n in fields}
    request = QgsFeatureRequest(request) if request is not None else QgsFeatureRequest()
    request.setSubsetOfAttributes(sorted({i for i in index.values() if i >= 0}))
    if geometry is None:
        request.setFlags(request.flags() | QgsFeatureRequest.Flag.NoGeometry)
    transform = (to_wgs84(src.sourceCrs(), context, feedback, kind, layer)
                 if geometry is not None else None)
    features = (src.getFeatures(request, SKIP_CHECKS)
                if isinstance(src, QgsProcessingFeatureSource) else src.getFeatures(request))
    total = max(src.featureCount(), 1)
    id_at = index.get(id_field, -1)
    need_attrs = bool(columns) or bool(id_field)   # else no attribute list is built per feature
    wkbs = []
    for i, f in enumerate(features):
        if i % 1000 == 0:
            stop_if_cancelled(feedback)
            report(min(100.0, 100.0 * i / total))
        attrs = f.attributes() if need_attrs else None
        fid = f.id()
        if id_field:
            fid = text(attrs[id_at]) if id_at >= 0 else None
            fid = f"fid {f.id()}" if fid is None else fid
        if geometry is not None:
            g = f.geometry()
            if g is None or g.isNull() or g.isEmpty():
                if keep_geometries:
                    out.originals.append(None)
                wkbs.append(None)
            elif g.type() != geometry:
                if mismatched == "skip":
                    out.skipped.append(f.id())
                    continue
                if mismatched == "error":
                    raise QgsProcessingException(
                        tr("Feature {fid} of the {kind} layer '{layer}' is a {found}, not a "
                           "{needed}; remove it or choose another layer.").format(
                            fid=f.id(), kind=kind, layer=layer,
                            found=QgsWkbTypes.displayString(g.wkbType()),
                            needed=_geometry_word(geometry)))
                if keep_geometries:
                    out.originals.append(QgsGeometry(g))
                wkbs.append(bytes(g.asWkb()))  # the core drops it and says why
            else:
                if keep_geometries:
                    out.originals.append(QgsGeometry(g))
                wkbs.append(_wkb(g, transform, f.id(), id_field, fid, kind, layer))
        out.ids.append(fid)
        for n, col in columns.items():
            col.append(attrs[index[n]] if index[n] >= 0 else None)
    stop_if_cancelled(feedback)
    report(100.0)
    out.values = columns
    if geometry is not None:
        out.geoms = from_wkb(wkbs)
    return out


#: shapely type ids of the geometries :func:`read` takes for POINT and POLYGON.
_TYPE_IDS = {POINT: (0, 4), POLYGON: (3, 6)}


def _read_bulk(loc, src, feedback, geometry, fields, id_field, report):
    """:func:`read` through GDAL's Arrow stream; raises NotBulk where it would differ from the
    QGIS read (a geometry of another type is left to the QGIS read, which reports it)."""
    import numpy as np

    from .bulk import NotBulk, batches

    out = Read()
    names = list(dict.fromkeys(list(fields) + ([id_field] if id_field else [])))
    columns = {n: [] for n in fields}
    wkbs, total = [], max(src.featureCount(), 1)
    for ids, values, batch_wkbs in batches(loc, names, geometry is not None,
                                           stop=lambda: stop_if_cancelled(feedback)):
        if id_field:
            ids = [f"fid {fid}" if v is None else text(v)
                   for fid, v in zip(ids, values[id_field])]
        out.ids.extend(ids)
        for n, col in columns.items():
            col.extend(values[n])
        if batch_wkbs is not None:
            wkbs.extend(map(_as_polygon, batch_wkbs))
        report(min(100.0, 100.0 * len(out.ids) / total))
    if len(out.ids) != src.featureCount():
        raise NotBulk("not every feature was read")
    out.values = columns
    if geometry is not None:
        import shapely

        out.geoms = from_wkb(wkbs)
        geoms = np.asarray(out.geoms, dtype=object)
        present = ~shapely.is_missing(geoms)
        present[present] = ~shapely.is_empty(geoms[present])
        if not np.isin(shapely.get_type_id(geoms[present]), _TYPE_IDS[geometry]).all():
            raise NotBulk("a geometry of another type")
        for i in np.flatnonzero(~present & ~shapely.is_missing(geoms)).tolist():
            out.geoms[i] = None  # empty: as a null geometry, as the QGIS read gives it
    stop_if_cancelled(feedback)
    report(100.0)
    return out


def _as_polygon(wkb):
    """WKB of a one-part MultiPolygon as the WKB of its polygon; other WKB (or None) as it is."""
    if wkb is not None and wkb.startswith(_ONE_PART_MULTIPOLYGON):
        return wkb[len(_ONE_PART_MULTIPOLYGON):]
    return wkb


def _wkb(g, transform, fid, id_field, shown_id, kind, layer):
    """The WKB of `g` in EPSG:4326 (a one-part MultiPolygon as its polygon: the core's elements
    are parts, and GeoPackages store polygons as one-part MultiPolygons, which would cost the core
    a copy of every polygon)."""
    if transform is not None:
        g = QgsGeometry(g)
        try:
            g.transform(transform)
        except QgsCsException as exc:
            # one line: PROJ's message comes in several ("forward transform of\n(inf, inf)\n...")
            proj = " ".join(str(exc).split())
            which = f" ({id_field} '{shown_id}')" if id_field else ""
            raise QgsProcessingException(
                tr("Feature {fid}{which} of the {kind} layer '{layer}' cannot be transformed to "
                   "longitude/latitude (PROJ: {proj}); fix its geometry or the layer CRS.")
                .format(fid=fid, which=which, kind=kind, layer=layer, proj=proj))
    return _as_polygon(bytes(g.asWkb()))


# ----------------------------------------------------------------------------- geometry

def from_wkb(wkbs):
    """List of WKB (or None) -> list of shapely geometries. A NaN coordinate is reported by the
    core in one sentence naming the feature; the RuntimeWarning numpy 2 adds for it (QGIS 3.40
    with shapely 2.1) would be a second, confusing line on stderr, so it is silenced here."""
    import numpy as np
    import shapely

    with np.errstate(invalid="ignore"):
        return list(shapely.from_wkb(wkbs))


def shapely_to_wkb(geoms):
    """2-D WKB of shapely geometries, vectorised. The dimension is explicit: inside QGIS,
    shapely may run on QGIS's own older GEOS, which rejects shapely 2.1's default (4)."""
    import shapely

    return shapely.to_wkb(geoms, output_dimension=2)


def qgis_geometry(wkb, multi=False, transform=None):
    g = QgsGeometry()
    g.fromWkb(wkb)
    if multi:
        g.convertToMultiType()
    if transform is not None:
        g.transform(transform)
    return g


#: ISO WKB type codes (2-D and Z) of the single types and their multi types.
_MULTI_OF = {1: 4, 2: 5, 3: 6, 1001: 1004, 1002: 1005, 1003: 1006}
_MULTI = frozenset(_MULTI_OF.values())


def part_wkb(wkb, part):
    """Part `part` of little-endian ISO WKB of a point or multipoint (the point itself for part
    0 of a point), as QGIS gives a multipoint's parts; None for no geometry."""
    if wkb is None:
        return None
    from .gpkg import wkb_vertex_bytes

    code = int.from_bytes(wkb[1:5], "little")
    if code % 1000 == 1:
        return wkb if part == 0 else None
    size = 5 + wkb_vertex_bytes(code)
    start = 9 + size * part
    return wkb[start:start + size]


def output_geometry(wkb, multi=False, transform=None):
    """An output geometry from core WKB (EPSG:4326): the WKB itself where nothing is to be done
    (a GeoPackage written directly takes it as it is), a one-part multi type made by prefixing
    the header, else a QgsGeometry converted (`multi`) and transformed by QGIS."""
    if transform is None and wkb is not None and wkb[:1] == b"\x01":
        code = int.from_bytes(wkb[1:5], "little")
        if not multi or code in _MULTI:
            return wkb
        if code in _MULTI_OF:
            return b"\x01" + _MULTI_OF[code].to_bytes(4, "little") + b"\x01\x00\x00\x00" + wkb
    return qgis_geometry(wkb, multi, transform) if wkb is not None else None


#: The first five bytes (little-endian, type code) of ISO WKB of a multi type.
_MULTI_HEADS = frozenset(b"\x01" + code.to_bytes(4, "little") for code in _MULTI)
_HEAD = operator.itemgetter(slice(0, 5))


def output_geometries(wkbs, multi=False, transform=None):
    """:func:`output_geometry` of each WKB of the list `wkbs`: the list itself where every one is
    written as it is (their headers read by one loop in C; a call per geometry was a quarter of a
    second for the planet's polygons)."""
    if transform is None and wkbs and None not in wkbs:
        heads = set(map(_HEAD, wkbs))
        if heads <= _MULTI_HEADS if multi else all(h[:1] == b"\x01" for h in heads):
            return wkbs
    return [output_geometry(w, multi=multi, transform=transform) for w in wkbs]


def output_fields(base, schema, rename_fid=False):
    """Every input field, unchanged, then the schema's fields, each under its own name or, when
    an input field has that name, under the name core.schema.output_name gives (``mc_...``).

    Returns (QgsFields, indices of the kept input fields, {schema name: output name}). With
    `rename_fid`, an input field named 'fid' is kept as 'input_fid' (GeoPackage treats 'fid' as
    the unique feature id, and one input feature gives several rows)."""
    from ..core.schema import output_name

    fields, keep = QgsFields(), []
    for i, f in enumerate(base):
        f = QgsField(f)
        if rename_fid and f.name().lower() == "fid":
            f.setName(output_name("input_fid", base.names()))
        if fields.append(f):
            keep.append(i)
    names = {}
    for name, kind in schema:
        names[name] = output_name(name, fields.names())
        fields.append(compat.make_field(names[name], kind))
    return fields, keep, names


def plugin_fields(src, names, kind, layer, hint, optional=()):
    """{field the plugin wrote: the layer's field holding it} for a layer the plugin made (its
    own name, or the ``mc_`` name it took beside an input field of that name; core.schema).
    `names` are required (`hint` says what to do when one is missing); `optional` are looked
    up when present."""
    from ..core.schema import input_name

    available = src.fields().names()
    found = {}
    for name in list(names) + list(optional):
        field = input_name(name, available)
        if field is None and name in names:
            raise QgsProcessingException(
                tr("The {kind} layer '{layer}' has no '{field}' field; {hint}.").format(
                    kind=kind, layer=layer, field=name, hint=hint))
        if field is not None:
            found[name] = field
    return found


def pick(values, index):
    """values[index[0]], values[index[1]], ... as a list (`index`: a numpy array or a list);
    `values` itself, or a slice of it, where `index` runs through it in order."""
    import numpy as np

    index = np.asarray(index, dtype=np.int64)
    n = len(index)
    if n and index[0] + n - 1 == index[-1] and (n == 1 or (np.diff(index) == 1).all()):
        start = int(index[0])
        return values if start == 0 and n == len(values) else values[start:start + n]
    return [values[i] for i in index.tolist()]


def chunks(iterable, size):
    """Lists of `size` items of `iterable` (the last one shorter)."""
    it = iter(iterable)
    while True:
        chunk = list(itertools.islice(it, size))
        if not chunk:
            return
        yield chunk


def records_of(schema, rows, geometries=None, plain=False):
    """Output records of `rows` (dicts by the schema's names, or value lists in its order): each
    a (values, geometry) pair, the values as QGIS and a GeoPackage take them (:func:`native`;
    `plain`: the rows are lists of plain values already, as :func:`rows_of` gives them), the
    geometry from `geometries` (an iterable beside the rows: QgsGeometry, WKB or None; None: no
    geometry)."""
    names = [n for n, _kind in schema]
    geometries = iter(geometries) if geometries is not None else None
    for row in rows:
        if not plain:
            row = [native(v) for v in ([row.get(n) for n in names] if isinstance(row, dict)
                                       else row)]
        yield row, (next(geometries) if geometries is not None else None)


# ----------------------------------------------------------------------------- outputs

def threaded(total):
    """Whether an output of `total` records (0: not known) is fed on a writer thread: more than
    one batch."""
    return total > BATCH or total == 0


def asked(value):
    """Whether an optional output parameter was given a destination."""
    return value is not None and not (isinstance(value, str) and not value.strip())


def file_of(dest):
    """The local file an output destination (path, 'path|layername=..' or 'ogr:dbname=..')
    writes to, normalised; None for other destinations."""
    if not isinstance(dest, str) or not dest.strip():
        return None
    if dest.startswith("ogr:"):
        match = re.search(r"dbname='([^']*)'", dest)
        path = match.group(1) if match else None
    elif "://" in dest or dest.startswith(("memory:", "postgres:", "spatialite:")):
        return None
    else:
        path = dest.split("|")[0]
    return os.path.normcase(os.path.abspath(path)) if path else None


class _Writer:
    """Records ((values, geometry) pairs, :func:`records_of`) written in batches, on a writer
    thread when `threaded` (the next batch is built meanwhile: QGIS, GEOS and SQLite write with
    the GIL released); a failure to write is reported in one sentence naming the output."""

    def __init__(self, dest, threaded=True):
        self.dest = dest
        self._error = None
        self._queue = self._thread = None
        if threaded:
            self._queue = queue.Queue(maxsize=4)
            self._thread = threading.Thread(target=self._drain, daemon=True)
            self._thread.start()

    def _convert(self, records):
        """A batch of records in the form :meth:`_write` takes (on the calling thread)."""
        raise NotImplementedError

    def _write(self, batch):
        raise NotImplementedError

    def _drain(self):
        while True:
            batch = self._queue.get()
            if batch is None:
                return
            if self._error is None:
                self._write(batch)

    def _raise(self):
        if self._error is not None:
            raise QgsProcessingException(tr("Could not write {dest}: {error}").format(
                dest=self.dest, error=self._error))

    def add(self, records):
        self._raise()
        if not records:
            return
        batch = self._convert(records)
        if self._thread is not None:
            self._queue.put(batch)
        elif self._error is None:
            self._write(batch)

    def add_columns(self, columns, geometries, bounds=None):
        """Adds rows given as `columns` (one list of values per field) with `geometries`
        (`bounds`: their boxes, for writers that index them; a QGIS sink does it itself)."""
        rows = map(list, zip(*columns)) if columns else ([] for _ in geometries)
        records = list(zip(rows, geometries))
        for start in range(0, len(records), BATCH):
            self.add(records[start:start + BATCH])

    def _finish(self, discard):
        raise NotImplementedError

    def close(self, discard=False):
        """Finishes the output and lets it go; with `discard` it is dropped unfinished."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None
        if not discard:
            self._raise()
        self._finish(discard)


class Sink(_Writer):
    """A QGIS feature sink (any destination QGIS can write)."""

    def __init__(self, sink, dest, fields, threaded=True):
        self.sink, self.fields = sink, fields
        super().__init__(dest, threaded)

    def _convert(self, records):
        features = []
        for values, g in records:
            f = QgsFeature(self.fields)
            f.setAttributes(values)
            if g is not None:
                f.setGeometry(g if isinstance(g, QgsGeometry) else qgis_geometry(g))
            features.append(f)
        return features

    def _write(self, batch):
        if not self.sink.addFeatures(batch, QgsFeatureSink.Flag.FastInsert):
            self._error = self.sink.lastError() or "the features could not be written"

    def _finish(self, discard):
        """A GeoPackage is committed when its sink is destroyed on QGIS 3.40: it is let go."""
        if self.sink is not None and not discard:
            compat.finish_sink(self.sink)
        self.sink = None


class GeoPackageSink(_Writer):
    """The rows of a GeoPackage output that QGIS created empty, inserted directly
    (:mod:`.gpkg`): plain values, the geometry's WKB."""

    def __init__(self, table, dest):
        self.table = table
        # On the calling thread: SQLite releases the GIL for every row it inserts, and a writer
        # thread would wait for it again after each row while Python builds the next batch
        # (measured: 2.8 s alone, 9.6 s beside a busy Python thread for the planet polygons).
        super().__init__(dest, threaded=False)

    def _convert(self, records):
        rows, geometries = [], []
        for values, g in records:
            rows.append(values)
            geometries.append(g)
        return self._columns([list(c) for c in zip(*rows)], geometries)

    def add_columns(self, columns, geometries, bounds=None):
        self._raise()
        if geometries:
            self._write(self._columns(columns, geometries) + (bounds,))

    def _columns(self, columns, geometries):
        """The columns (plain values, checked column by column in C; else value by value) and
        the geometries' WKB, as :meth:`.gpkg.Table.add` takes them."""
        try:
            columns = [c if all(map(_PLAIN.__contains__, map(type, c))) else
                       [v if v.__class__ in _PLAIN else _plain(v) for v in c] for c in columns]
        except TypeError as exc:  # a value no GeoPackage field holds
            self._error = str(exc)
            self._raise()
        wkbs = [None if g is None else g if g.__class__ is bytes else
                None if g.isNull() else bytes(g.asWkb()) for g in geometries]
        return columns, wkbs

    def _write(self, batch):
        import sqlite3

        try:
            self.table.add(*batch)
        except (sqlite3.Error, ValueError, TypeError, OverflowError) as exc:
            self._error = str(exc) or type(exc).__name__

    def _finish(self, discard):
        import sqlite3

        if self.table is None:
            return
        table, self.table = self.table, None
        if discard:
            table.abandon()
            return
        try:
            table.finish()
        except (sqlite3.Error, RuntimeError) as exc:  # RuntimeError: GDAL's
            table.abandon()
            self._error = str(exc)
            self._raise()


#: Geometry types (flat, single) and field types (QMetaType ids: bool, int, uint, int64,
#: uint64, double, string) of the outputs written directly into a GeoPackage.
_DIRECT_GEOMETRIES = frozenset((QgsWkbTypes.Type.Point, QgsWkbTypes.Type.LineString,
                                QgsWkbTypes.Type.Polygon))
_DIRECT_FIELD_TYPES = frozenset((1, 2, 3, 4, 5, 6, 10))

#: Value types a GeoPackage row takes as they are.
_PLAIN = frozenset((str, int, float, bool, type(None)))


def _plain(value):
    """An input attribute value as a GeoPackage row takes it: NULL (QVariant) as None."""
    if is_null(value):
        return None
    if hasattr(value, "value"):  # a QVariant holding a plain value
        value = value.value()
    value = native(value)
    if value.__class__ not in _PLAIN:
        raise TypeError(f"a value of type {type(value).__name__} ({value!r})")
    return value


class Background:
    """A function run on a worker thread; ``wait()`` returns the error it raised (or None) and
    ``value`` holds its result."""

    def __init__(self, fn):
        self.value, self.error = None, None
        self._thread = threading.Thread(target=self._run, args=(fn,), daemon=True)
        self._thread.start()

    def _run(self, fn):
        try:
            self.value = fn()
        except BaseException as exc:  # handed to the algorithm's thread by wait()
            self.error = exc

    def done(self, timeout):
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def wait(self):
        self._thread.join()
        return self.error

    def result(self, feedback):
        """Its value once it is done, polling the run's cancel meanwhile; the error it raised is
        raised here. The value is handed over once (this object lets it go: its caller decides
        how long it lives)."""
        while not self.done(0.2):
            stop_if_cancelled(feedback)
        if self.error is not None:
            raise self.error
        value, self.value = self.value, None
        return value


class Outputs:
    """The outputs of one run. Each sink, file and folder is registered when it is made, so that
    :meth:`discard` (a cancel) deletes everything written so far; a finished file output is
    closed on a worker thread beside the later work when no other output goes to that file, and
    :meth:`settle` waits for those closes."""

    def __init__(self, alg, parameters, context, feedback):
        self.alg, self.parameters, self.context, self.feedback = alg, parameters, context, feedback
        self.dests = {}  # output name -> destination id or path (None: not asked for)
        self.styles = []  # (destination, style kind, values) stored in GeoPackages after the run
        self._folders, self._open, self._closing, self._jobs = [], [], [], []
        self._files = None

    # -- making
    def sink(self, name, fields, wkb_type, crs, threaded=True):
        """A writer of records (:func:`records_of`) for output `name`; None for an optional
        output not asked for. A plain local GeoPackage that no other output writes to is
        created by QGIS and filled directly (:class:`GeoPackageSink`); every other destination
        gets a QGIS feature sink."""
        self._refuse_input_file(name)
        direct = self._direct_gpkg(name, fields, wkb_type)
        sink, dest = self.alg.parameterAsSink(self.parameters, name, self.context, fields,
                                              wkb_type, crs)
        if sink is None:
            optional = (self.alg.parameterDefinition(name).flags()
                        & QgsProcessingParameterDefinition.Flag.FlagOptional)
            if optional and not asked(self.parameters.get(name)):
                self.dests[name] = None
                return None
            raise QgsProcessingException(self.alg.invalidSinkError(self.parameters, name))
        self.dests[name] = dest
        out = None
        if direct is not None:
            from . import gpkg

            compat.finish_sink(sink)
            sink = None  # destroyed: the empty table is committed (QGIS 3.40 commits then)
            try:
                out = GeoPackageSink(gpkg.Table(direct, fields.names()), dest)
            except gpkg.Unusable:  # made otherwise than expected: QGIS writes it again
                sink, dest = self.alg.parameterAsSink(self.parameters, name, self.context,
                                                      fields, wkb_type, crs)
                if sink is None:
                    raise QgsProcessingException(
                        self.alg.invalidSinkError(self.parameters, name)) from None
        if out is None:
            out = Sink(sink, dest, fields, threaded)
        self._open.append(out)
        return out

    def _refuse_input_file(self, name):
        """Refuses output `name` when its file is the file of an input layer: writing it would
        delete the input while the run reads it (on Windows the file is locked)."""
        path = file_of(self._destination(name))
        if path is None:
            return
        for p in self.alg.parameterDefinitions():
            if p.isDestination() or not self.parameters.get(p.name()):
                continue
            for layer in self._input_layers(p):
                if layer is not None and file_of(layer.source()) == path:
                    raise QgsProcessingException(tr(
                        "The output '{output}' would be written to {path}, the file of the input "
                        "'{input}': choose another file for the output (writing it would delete "
                        "the input while it is read).").format(
                        output=self.alg.parameterDefinition(name).description(), path=path,
                        input=p.description()))

    def _input_layers(self, p):
        """The layers of input parameter `p` (none for a parameter of another kind, or one QGIS
        cannot resolve to layers here)."""
        try:
            if p.type() in ("source", "vector"):
                return [self.alg.parameterAsVectorLayer(self.parameters, p.name(), self.context)]
            if p.type() == "multilayer":
                return self.alg.parameterAsLayerList(self.parameters, p.name(), self.context)
        except Exception:  # e.g. an iterated source: no file to compare
            return []
        return []

    def _direct_gpkg(self, name, fields, wkb_type):
        """The path of output `name` when it is written directly: a plain local .gpkg file no
        other output writes to, new rows of plain field types (text, integers, reals, booleans)
        and a geometry of points, lines or polygons without M values, with a Python whose
        SQLite has the R*Tree module; else None. ``MINE_CLUSTERS_QGIS_SINKS=1`` in the
        environment writes every output through QGIS sinks."""
        if os.environ.get("MINE_CLUSTERS_QGIS_SINKS", "") not in ("", "0"):
            return None
        if getattr(self.parameters.get(name), "useRemapping", lambda: False)():
            return None
        flat = QgsWkbTypes.flatType(QgsWkbTypes.singleType(wkb_type))
        if flat not in _DIRECT_GEOMETRIES or QgsWkbTypes.hasM(wkb_type):
            return None
        if any(compat.field_type_id(f) not in _DIRECT_FIELD_TYPES for f in fields):
            return None
        path = self._plain_file(name, ".gpkg")
        files = self._shared_files()
        if path is None or None in files or files.count(file_of(path)) != 1:
            return None
        from . import gpkg

        return path if gpkg.has_rtree() else None

    def write(self, name, fields, wkb_type, crs, records, total=0, progress=None):
        """Streams `records` (:func:`records_of`) into output `name`: see :meth:`feed`. Its
        destination, None when the optional output was not asked for."""
        sink = self.sink(name, fields, wkb_type, crs, threaded=threaded(total))
        if sink is None:
            return None
        return self.feed(sink, records, total, progress)

    def feed(self, sink, records, total=0, progress=None):
        """`records` into `sink` in batches, polling cancel and reporting progress (0..100 over
        `total` records), then the sink closed; its destination."""
        size = max(1, min(BATCH, total // 100)) if total else BATCH
        batch, done = [], 0
        for record in records:
            batch.append(record)
            if len(batch) >= size:
                stop_if_cancelled(self.feedback)
                sink.add(batch)
                done += len(batch)
                batch = []
                if progress is not None and total:
                    progress(100.0 * done / total)
        stop_if_cancelled(self.feedback)
        sink.add(batch)
        self.close(sink)
        return sink.dest

    def feed_columns(self, sink, batches, total=0, progress=None):
        """Batches of rows as columns, (columns, geometries) with one list of values per field,
        or (columns, geometries, boxes) with the geometries' boxes (an array of minx, miny, maxx,
        maxy rows) where they are known, into `sink` as :meth:`feed` feeds records (a GeoPackage
        written directly takes them without a Python step per row); its destination."""
        size = max(1, min(BATCH, total // 100)) if total else BATCH
        done = 0
        for columns, geometries, *boxes in batches:
            boxes = boxes[0] if boxes else None
            for a in range(0, len(geometries), size):   # cancel and progress as often as feed's
                stop_if_cancelled(self.feedback)
                piece = geometries[a:a + size]
                sink.add_columns([c[a:a + size] for c in columns], piece,
                                 None if boxes is None else boxes[a:a + size])
                done += len(piece)
                if progress is not None and total:
                    progress(100.0 * done / total)
        stop_if_cancelled(self.feedback)
        self.close(sink)
        return sink.dest

    def table(self, name, schema, rows, progress=None, plain=False):
        """Rows (dicts or value lists) into the no-geometry output `name` with the schema's
        fields; its destination (None when not asked for). A plain local .csv file is written
        directly (:func:`write_csv`; `plain`: the rows are value lists of plain Python values,
        NULL as None, as :func:`rows_of` gives them), every other destination through a QGIS
        sink."""
        fields = compat.fields_from_schema(schema)
        rows = list(rows)
        path = self.csv_file(name)
        if path is not None:
            self.dests[name] = path          # registered first: a cancel deletes it
            return write_csv(path, schema, rows, self.feedback, progress, plain)
        return self.write(name, fields, QgsWkbTypes.Type.NoGeometry,
                          QgsCoordinateReferenceSystem(), records_of(schema, rows),
                          total=len(rows), progress=progress)

    def csv_file(self, name):
        """The path of sink output `name` when it is a plain local CSV file (a path ending in
        .csv, no layer options), else None. The path is taken as QGIS takes it (so the file is
        still loaded on completion when the dialog asks for that)."""
        path = self._plain_file(name, ".csv")
        if path is None:
            return None
        folder = os.path.dirname(path)
        if folder:
            os.makedirs(folder, exist_ok=True)
        return path

    def _destination(self, name):
        """Sink output `name`'s destination as QGIS takes it (a path, a URI, 'memory:...');
        None when it is not asked for or QGIS cannot make it out (its sink says why)."""
        if not asked(self.parameters.get(name)):
            return None
        try:
            return self.alg.parameterAsOutputLayer(self.parameters, name, self.context) or None
        except Exception:  # an odd destination value: treated as unknown
            return None

    def _plain_file(self, name, extension):
        """The path of sink output `name` when it is a plain local file ending in `extension`
        (no OGR URI, layer option or memory layer), else None."""
        path = self._destination(name)
        if not isinstance(path, str) or not path.lower().endswith(extension) or "|" in path \
                or path.startswith(("ogr:", "memory:")) or file_of(path) is None:
            return None
        return path

    def file(self, name):
        """The path of file output `name` (its folder made), None when the user skipped it."""
        value = self.parameters.get(name)
        path = None
        if asked(value):
            path = self.alg.parameterAsFileOutput(self.parameters, name, self.context) or None
        if path:
            folder = os.path.dirname(path)
            if folder:
                os.makedirs(folder, exist_ok=True)
        self.dests[name] = path
        return path

    def folder(self, path):
        """A folder of side files (made now), deleted by :meth:`discard`."""
        os.makedirs(path, exist_ok=True)
        self._folders.append(path)
        return path

    def style(self, name, kind, values=None):
        """Style output `name` by `kind` (see styles.py) when QGIS loads it, and store the style
        in a GeoPackage output after the run (`values`, optional: the values it categorises, as
        written; else they are read from the file)."""
        from . import styles

        dest = self.dests.get(name)
        if dest:
            styles.attach(self.context, dest, kind)
            self.styles.append((dest, kind, values))

    def background(self, fn):
        """`fn` on a worker thread (its errors re-raised by :meth:`settle`)."""
        job = Background(fn)
        self._jobs.append(job)
        return job

    # -- closing
    def _shared_files(self):
        """The files of the asked-for sink outputs (None where one cannot be told; memory
        layers left out)."""
        if self._files is None:
            self._files = []
            for p in self.alg.destinationParameterDefinitions():
                if isinstance(p, QgsProcessingParameterFeatureSink) and \
                        asked(self.parameters.get(p.name())):
                    dest = self._destination(p.name())
                    if isinstance(dest, str) and dest.startswith("memory:"):
                        continue  # a temporary (memory) layer shares no file
                    self._files.append(file_of(dest))
        return self._files

    def close(self, sink):
        """Closes `sink`; a file no other output writes to is closed beside the later work."""
        self._open.remove(sink)
        path = file_of(sink.dest)
        files = self._shared_files()
        if path is None or not os.path.isfile(path) or None in files or files.count(path) > 1:
            sink.close()
        else:
            self._closing.append(Background(sink.close))

    def settle(self):
        """Waits for the work beside writing; re-raises its first error (a cancel excepted)."""
        from ..core.errors import Cancelled

        jobs, self._closing, self._jobs = self._closing + self._jobs, [], []
        errors = [job.wait() for job in jobs]
        for error in errors:
            if error is not None and not isinstance(error, Cancelled):
                raise error

    def abandon(self):
        """After an error: the open sinks dropped unfinished, the work beside them awaited."""
        for sink in self._open:
            sink.close(discard=True)
        self._open.clear()
        with contextlib.suppress(Exception):  # the first error is the one to report
            self.settle()

    def discard(self):
        """After a cancel: everything written so far deleted; the empty result of a cancelled
        run, with one log sentence."""
        self.abandon()
        written = [d for d in self.dests.values() if isinstance(d, str)] + self._folders
        if not written:
            self.feedback.pushInfo(tr("Cancelled; no output was written."))
            return {}
        left = []
        for folder in self._folders:
            shutil.rmtree(folder, ignore_errors=True)
        for dest in self.dests.values():
            path = file_of(dest)
            if path is None:
                continue
            for p in (path, path + "-wal", path + "-shm", path + "-journal"):
                if os.path.isfile(p):
                    try:
                        os.remove(p)
                    except OSError:
                        left.append(p)
        self.feedback.pushInfo(
            tr("Cancelled while writing; the outputs written so far were deleted.")
            + (tr(" Delete by hand: {files}.").format(files=", ".join(left)) if left else ""))
        return {}


# ----------------------------------------------------------------------------- CSV tables

def _csv_value(value):
    """A core value as its CSV text: empty for NULL (None, NaN), shortest exact digits for a
    float (read back bit for bit), as is otherwise."""
    value = native(value)
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return value


def write_csv(path, schema, rows, feedback=None, progress=None, plain=False):
    """Rows (dicts by the schema's names, or value lists in its order) as a CSV file: a header of
    the schema's names, comma-separated, UTF-8, NULL as an empty value, as QGIS's CSV writer lays
    a table out; written by Python's csv module, several times faster than a feature sink for
    wide tables (the concordance: 261,282 rows x 43 fields in ~2 s instead of ~8 s). Polls
    cancel (raises Cancelled) and reports `progress` (0..100) every 10,000 rows; a cancel or a
    failure deletes the partial file. `plain`: the rows are lists of str, int, float (not NaN) and
    None only, written as they are (Python's csv writes None as an empty value and a float by
    repr); otherwise each value goes through :func:`_csv_value`."""
    names = [n for n, _kind in schema]
    total = len(rows)
    try:
        with open(path, "w", newline="", encoding="utf-8") as fh:
            out = csv.writer(fh, lineterminator="\n")
            out.writerow(names)
            for start in range(0, total, 10000):
                if feedback is not None:
                    stop_if_cancelled(feedback)
                chunk = rows[start:start + 10000]
                out.writerows(chunk if plain else (
                    [_csv_value(row.get(n)) for n in names] if isinstance(row, dict)
                    else [_csv_value(v) for v in row] for row in chunk))
                if progress is not None and total:
                    progress(100.0 * min(total, start + 10000) / total)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.remove(path)
        raise QgsProcessingException(tr("Could not write {dest}: {error}").format(
            dest=path, error=exc)) from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(path)
        raise
    return path


# ----------------------------------------------------------------------------- rasters

#: GeoTIFF creation options of :func:`write_geotiff`: DEFLATE, 256 x 256 tiles, one band after
#: the other (a reader of one commodity reads only its band's tiles), BigTIFF past 4 GB.
GEOTIFF_OPTIONS = ("COMPRESS=DEFLATE", "TILED=YES", "BLOCKXSIZE=256", "BLOCKYSIZE=256",
                   "INTERLEAVE=BAND", "BIGTIFF=IF_SAFER")
GEOTIFF_TILE = 256


def write_geotiff(path, array, geotransform, band_names, feedback=None, progress=None,
                  nodata=0.0, crs=WGS84, unit="", metadata=None):
    """Writes `array` as a GeoTIFF at `path` with GDAL: the `geotransform` (GDAL order), the CRS
    (EPSG:4326 by default), band descriptions `band_names`, `nodata` on every band, the `unit` of
    the values, `metadata` (str -> str) on the dataset and :data:`GEOTIFF_OPTIONS`.

    `array` is a numpy array (bands, rows, cols; north-up, float64 or float32), written in strips
    of one tile row; or a sparse raster with ``shape``, ``dtype``, ``n_blocks(size)`` and
    ``blocks(size)`` yielding (band, row, col, 2-D block) of the tiles that hold data (the
    core's ``CommodityRaster``): only those are written, GDAL fills the others with `nodata` when
    it closes the file, so memory stays at one tile whatever the raster's size.
    Polls the feedback's cancel (raises ``Cancelled``) and reports `progress` (0..100) per strip
    or tile. A cancel or a failure deletes the partial file; a failure is one sentence naming
    the file."""
    import numpy as np
    from osgeo import gdal, osr

    n_bands, rows, cols = array.shape
    if n_bands != len(band_names):
        raise ValueError(f"{n_bands} bands but {len(band_names)} band names")
    dtype = {np.dtype("float64"): gdal.GDT_Float64,
             np.dtype("float32"): gdal.GDT_Float32}[np.dtype(array.dtype)]

    def fail(what):
        return QgsProcessingException(
            tr("Could not write the raster {path}: {what} ({error}); check that its folder "
               "exists and is writable and that the disk has room.").format(
                path=path, what=what, error=gdal.GetLastErrorMsg() or tr("no GDAL message")))

    if hasattr(array, "blocks"):
        total, pieces = array.n_blocks(GEOTIFF_TILE), array.blocks(GEOTIFF_TILE)
    else:
        array = np.asarray(array)
        total = n_bands * -(-rows // GEOTIFF_TILE)
        pieces = ((b, r0, 0, array[b, r0:r0 + GEOTIFF_TILE])
                  for b in range(n_bands) for r0 in range(0, rows, GEOTIFF_TILE))
    folder = os.path.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    ds = None
    gdal.ErrorReset()
    try:
        ds = gdal.GetDriverByName("GTiff").Create(path, cols, rows, n_bands, dtype,
                                                  list(GEOTIFF_OPTIONS))
        if ds is None:
            raise fail(tr("GDAL could not create it"))
        srs = osr.SpatialReference()
        srs.SetFromUserInput(crs)
        ds.SetProjection(srs.ExportToWkt())
        ds.SetGeoTransform([float(v) for v in geotransform])
        if metadata:
            ds.SetMetadata({str(k): str(v) for k, v in metadata.items()})
        for b in range(n_bands):
            band = ds.GetRasterBand(b + 1)
            band.SetDescription(str(band_names[b]))
            band.SetNoDataValue(float(nodata))
            if unit:
                band.SetUnitType(unit)
        for done, (b, r0, c0, block) in enumerate(pieces, 1):
            if feedback is not None:
                stop_if_cancelled(feedback)
            if ds.GetRasterBand(b + 1).WriteArray(block, c0, r0) != 0:
                raise fail(tr("band {band} could not be written").format(band=b + 1))
            if progress is not None:
                progress(100.0 * done / max(total, 1))
        if feedback is not None:
            stop_if_cancelled(feedback)
        ds.FlushCache()
        ds = None  # closes the file: the last tiles are compressed, the empty ones filled
        if gdal.GetLastErrorType() >= gdal.CE_Failure:
            raise fail(tr("GDAL could not finish it"))
    except BaseException:
        ds = None
        for p in (path, path + ".aux.xml"):
            with contextlib.suppress(OSError):
                os.remove(p)
        raise
    return path
