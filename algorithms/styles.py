"""Styles for the outputs: categorised by primary commodity; unassigned grey; multiple dark and
hatched. Applied when QGIS loads an output (post-processor) and saved as the default style inside
GeoPackage outputs, so the files open styled later too."""
from qgis.core import (
    QgsCategorizedSymbolRenderer,
    QgsFillSymbol,
    QgsLinePatternFillSymbolLayer,
    QgsLineSymbol,
    QgsMarkerSymbol,
    QgsProcessingLayerPostProcessorInterface,
    QgsRendererCategory,
    QgsSingleSymbolRenderer,
    QgsVectorLayer,
)

from ..core.colours import LINK_COLOUR, MULTIPLE_COLOUR, UNASSIGNED_COLOUR, commodity_colour

FIELD = "primary_commodities"
GRID_FIELD = "dominant"
UNASSIGNED = UNASSIGNED_COLOUR
MULTIPLE = MULTIPLE_COLOUR


def _symbol(kind, colour, hatched=False):
    if kind == "points":
        return QgsMarkerSymbol.createSimple({"name": "circle", "color": colour, "size": "2.4",
                                             "outline_color": "#ffffff",
                                             "outline_width": "0.3"})
    sym = QgsFillSymbol.createSimple({"color": colour, "outline_color": "#303030",
                                      "outline_width": "0.15"})
    if hatched:
        hatch = QgsLinePatternFillSymbolLayer()
        hatch.setLineAngle(45)
        hatch.setDistance(1.2)
        hatch.setSubSymbol(QgsLineSymbol.createSimple({"color": "#e0e0e0", "width": "0.2"}))
        sym.appendSymbolLayer(hatch)
    return sym


def make_renderer(layer, kind, values=None):
    """A categorised renderer over the layer's `primary_commodities` values (the field of that
    name the plugin wrote: ``mc_primary_commodities`` beside an input field of the name);
    `values`, optional: those values as written (else they are read from the layer)."""
    from ..core.schema import input_name

    field = input_name(FIELD, layer.fields().names()) or FIELD
    idx = layer.fields().lookupField(field)
    if idx < 0:
        values = ()
    elif values is None:
        values = layer.uniqueValues(idx)
    values = {str(v) for v in values
              if not (v is None or (hasattr(v, "isNull") and v.isNull()) or str(v) == "")}
    categories = []
    for value in sorted(values, key=lambda v: ("," in v, v)):
        multiple = "," in value
        colour = MULTIPLE if multiple else commodity_colour(value)
        label = f"Multiple: {value}" if multiple else value
        categories.append(QgsRendererCategory(value, _symbol(kind, colour, hatched=multiple),
                                              label))
    categories.append(QgsRendererCategory(None, _symbol(kind, UNASSIGNED), "Unassigned"))
    return QgsCategorizedSymbolRenderer(field, categories)


def grid_renderer(values):
    """The grid by dominant commodity, coloured as in the plots (Unknown last)."""
    from ..core.footprint import UNKNOWN
    from ..core.footprint_plots import colour_for

    cats = []
    for v in sorted(values, key=lambda v: (v == UNKNOWN, v)):
        sym = QgsFillSymbol.createSimple({"color": colour_for(v), "outline_style": "no"})
        cats.append(QgsRendererCategory(v, sym, v))
    return QgsCategorizedSymbolRenderer(GRID_FIELD, cats)


def style_layer(layer, kind, values=None):
    """Styles `layer` as a `kind` output: "polygons", "points" or "clusters" by primary
    commodity (`values`, optional: the values written, see :func:`make_renderer`), "grid" by
    dominant commodity, "links" as thin dark lines (the single-linkage links drawn over the
    polygons)."""
    if kind == "links":
        layer.setRenderer(QgsSingleSymbolRenderer(QgsLineSymbol.createSimple(
            {"color": LINK_COLOUR, "width": "0.3", "capstyle": "round"})))
    elif kind == "grid":
        idx = layer.fields().lookupField(GRID_FIELD)
        if idx < 0:
            return
        values = {str(v) for v in layer.uniqueValues(idx)
                  if v is not None and not (hasattr(v, "isNull") and v.isNull())}
        layer.setRenderer(grid_renderer(values))
    else:
        layer.setRenderer(make_renderer(layer, kind, values))
    layer.triggerRepaint()


class _Styler(QgsProcessingLayerPostProcessorInterface):
    def __init__(self, kind):
        super().__init__()
        self.kind = kind

    def postProcessLayer(self, layer, context, feedback):  # noqa: N802
        if isinstance(layer, QgsVectorLayer) and layer.isValid():
            style_layer(layer, self.kind)


_KEEP = []  # post-processors must outlive the algorithm run (they are not owned by QGIS)


def attach(context, dest_id, kind):
    """Style the output `dest_id` when QGIS loads it at the end of the run."""
    if dest_id and context.willLoadLayerOnCompletion(dest_id):
        styler = _Styler(kind)
        _KEEP.append(styler)
        context.layerToLoadOnCompletionDetails(dest_id).setPostProcessor(styler)


def save_default_style(dest_id, kind, values=None):
    """For a GeoPackage output, store the style as the layer's default inside the file
    (`values`: see :func:`style_layer`)."""
    if not isinstance(dest_id, str) or ".gpkg" not in dest_id.lower():
        return False
    layer = QgsVectorLayer(dest_id, "output", "ogr")
    if not layer.isValid():
        return False
    style_layer(layer, kind, values)
    error = layer.saveStyleToDatabase("mine_clusters", "Mine Clusters default style", True, "")
    return not error
