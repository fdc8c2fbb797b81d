"""Commodity colours shared by the map styles and every plot: one colour per commodity everywhere."""
import hashlib

#: Colours of common commodities; other names get a stable colour from a hash of the name.
COLOURS = {
    "Coal": "#7f5a2b", "Iron": "#d62728", "Copper": "#e6750d", "Gold": "#f2c500",
    "Aluminium": "#9467bd", "Zinc": "#17becf", "Lead": "#5d6d7e", "Nickel": "#2ca02c",
    "Chromite": "#1b9e77", "Chromium": "#1b9e77", "Manganese": "#e377c2", "Silver": "#a6cee3",
    "Tin": "#bcbd22", "Platinum Group Elements": "#8c564b", "Lithium": "#ff9896",
    "Uranium": "#98df8a", "Titanium": "#c5b0d5", "Rare Earth": "#f7b6d2", "Cobalt": "#1f77b4",
    "Diamonds": "#aec7e8", "Molybdenum": "#c49c94", "Tungsten": "#dbdb8d",
}


#: Land with no commodity (unassigned clusters, the tables' and the grid's "Unknown"): the one grey
#: of the map styles, every plot, the grid layer and the reports.
UNASSIGNED_COLOUR = "#b4b4b4"
#: Land with several primary commodities on the maps (drawn hatched).
MULTIPLE_COLOUR = "#2b2b2b"
#: The single-linkage links that hold a cluster together (drawn thin over the land).
LINK_COLOUR = "#202020"


def commodity_colour(name: str) -> str:
    """The colour of a commodity name (hex)."""
    if name in COLOURS:
        return COLOURS[name]
    # a colour, not a secret: usedforsecurity=False (Python 3.9+) keeps the colours of every
    # earlier release and tells security scanners so
    return "#" + hashlib.sha1(name.encode("utf-8"), usedforsecurity=False).hexdigest()[:6]
