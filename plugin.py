"""Plugin entry: registers the "Mine clusters" Processing provider (also under qgis_process)."""
import os

from qgis.core import QgsApplication
from qgis.PyQt.QtCore import QCoreApplication, QSettings, QTranslator

I18N_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "i18n")


class MineClustersPlugin:
    def __init__(self):
        # no iface: the plugin adds only a Processing provider (no menus, no toolbar)
        self.provider = None
        self.translator = None
        # The texts the algorithms pass through tr(), in the user's QGIS language when the plugin
        # ships a translation for it (i18n/mine_clusters_<language>.qm); English otherwise.
        locale = str(QSettings().value("locale/userLocale", "") or "")[:2]
        path = os.path.join(I18N_DIR, f"mine_clusters_{locale}.qm")
        if locale and os.path.exists(path):
            self.translator = QTranslator()
            if self.translator.load(path):
                QCoreApplication.installTranslator(self.translator)

    def initProcessing(self):  # noqa: N802 (QGIS API name); no GUI code: qgis_process calls it
        from .algorithms.provider import MineClustersProvider

        if self.provider is None:
            self.provider = MineClustersProvider()  # keep the reference: see STYLE.md §1
            QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self):  # noqa: N802
        self.initProcessing()

    def unload(self):
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
        if self.translator is not None:
            QCoreApplication.removeTranslator(self.translator)
            self.translator = None
