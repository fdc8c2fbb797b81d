"""Exceptions the core raises; wrappers turn them into QGIS messages."""


class InputError(ValueError):
    """Bad input, described in one sentence that names the layer, feature and value."""


class Cancelled(Exception):
    """The caller's ``should_stop`` callback asked the computation to stop."""
