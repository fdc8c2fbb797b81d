"""Exceptions the core raises; wrappers turn them into QGIS messages."""

#: The one wording of a stop asked by the caller (``Cancelled``'s message, from every loop).
CANCELLED_MESSAGE = "Cancelled by the user."


class InputError(ValueError):
    """Bad input, described in one sentence that names the layer, feature and value."""


class Cancelled(Exception):
    """The caller's ``should_stop`` callback asked the computation to stop."""

    def __init__(self, message: str = CANCELLED_MESSAGE):
        super().__init__(message)
