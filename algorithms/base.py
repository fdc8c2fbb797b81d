"""What every Mine Clusters algorithm shares: its icon, the Python-package check, new instances."""
import os

from qgis.core import QgsProcessingAlgorithm, QgsProcessingException
from qgis.PyQt.QtGui import QIcon

from .deps_loader import deps

PLUGIN_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ICON = os.path.join(PLUGIN_DIR, "resources", "icon.svg")


class MineClustersAlgorithm(QgsProcessingAlgorithm):
    """Base of the plugin's algorithms (subclasses need a constructor without arguments)."""

    def icon(self):
        return QIcon(ICON)

    def createInstance(self):  # noqa: N802
        return type(self)()

    def canExecute(self):  # noqa: N802
        message = deps.missing_message()
        return (not message, message)

    @staticmethod
    def require_packages():
        """Raise the install advice when a package is missing: qgis_process never calls
        canExecute(), so processAlgorithm() checks again."""
        message = deps.missing_message()
        if message:
            raise QgsProcessingException(message)
