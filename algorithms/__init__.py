"""QGIS Processing wrappers around core (thin: read parameters, convert, call core, write)."""
