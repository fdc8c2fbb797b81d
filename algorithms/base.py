"""What every Mine Clusters algorithm shares: its icon, help link, translation, parameter help, the
Python-package check and new instances.

Nothing here imports the science stack: QGIS loads the provider (and calls ``initAlgorithm`` of
every algorithm) at start-up, and numpy, scipy, shapely and matplotlib load only when an algorithm
runs or the dialog checks its dependencies (``canExecute``).
"""
import os

from qgis.core import (
    QgsProcessingAlgorithm,
    QgsProcessingException,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
)
from qgis.PyQt.QtCore import QCoreApplication
from qgis.PyQt.QtGui import QIcon

from . import layer_io, provenance
from .deps_loader import deps

PLUGIN_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ICON = os.path.join(PLUGIN_DIR, "resources", "icon.svg")
#: The README on the project's home page; each algorithm links to its own section.
HELP_URL = "https://github.com/mine-clusters/mine_clusters/blob/main/README.md"


class MineClustersAlgorithm(QgsProcessingAlgorithm):
    """Base of the plugin's algorithms (subclasses need a constructor without arguments).

    A subclass implements ``help_html()`` (its help text) instead of ``shortHelpString()``, which
    adds the missing-package sentence in front when a package is missing, and sets
    ``HELP_ANCHOR`` to its README section."""

    HELP_ANCHOR = ""

    def tr(self, text):
        """`text` translated in the context of the class that holds the call: pylupdate files a
        ``self.tr`` text under the class it is written in, which may be a base class shared by two
        algorithms (``_HarmoniseBase``), so each class of the MRO is tried, nearest first."""
        for cls in type(self).__mro__:
            if cls is MineClustersAlgorithm:
                break
            translated = QCoreApplication.translate(cls.__name__, text)
            if translated != text:
                return translated
        return text

    def icon(self):
        return QIcon(ICON)

    def createInstance(self):  # noqa: N802
        return type(self)()

    def helpUrl(self):  # noqa: N802
        return HELP_URL + (f"#{self.HELP_ANCHOR}" if self.HELP_ANCHOR else "")

    def help_html(self):
        return ""

    def summary(self):
        """One sentence on what the algorithm does (the toolbox's tooltip)."""
        return ""

    def shortDescription(self):  # noqa: N802
        # The toolbox's tooltip: a missing package is named there before the dialog opens.
        return deps.missing_message(quick=True) or self.summary()

    def shortHelpString(self):  # noqa: N802
        # The quick check (no import): shown in the dialog's help panel before anything runs.
        missing = deps.missing_message(quick=True)
        warning = f"<p><b>{missing}</b></p>" if missing else ""
        return warning + self.help_html()

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        """Checks the packages and runs :meth:`compute` with the run's :class:`layer_io.Outputs`:
        a cancel anywhere deletes what was written and logs one sentence, and the core's input
        errors become QGIS's."""
        try:
            return self._process(parameters, context, feedback)
        except Exception as exc:  # noqa: B902  (re-raised: QGIS reports it as the run's error)
            # qgis_process --json prints nothing for a failed run: the failure's own JSON
            provenance.report_failure(self, parameters, context, exc)
            raise

    def _process(self, parameters, context, feedback):
        self.require_packages()
        from ..core.errors import Cancelled, InputError

        outputs = self._outputs = layer_io.Outputs(self, parameters, context, feedback)
        try:
            results = self.compute(parameters, context, feedback, outputs)
            outputs.settle()
        except Cancelled:
            return outputs.discard()
        except InputError as exc:
            outputs.abandon()
            raise QgsProcessingException(str(exc)) from None
        except BaseException:
            outputs.abandon()
            raise
        if feedback.isCanceled():
            return outputs.discard()
        return results

    def compute(self, parameters, context, feedback, outputs):
        """The algorithm: read the inputs (layer_io.read), call the core, write through
        `outputs`; returns the results."""
        raise NotImplementedError

    def postProcessAlgorithm(self, context, feedback):  # noqa: N802
        # The outputs are closed now: their default styles and the run's provenance go into
        # the GeoPackages.
        from . import styles

        outputs = getattr(self, "_outputs", None)
        for dest, kind, values in (outputs.styles if outputs is not None else ()):
            try:
                styles.save_default_style(dest, kind, values)
            except Exception as exc:  # a style is a convenience: never fail the run for it
                feedback.pushWarning(self.tr("Could not store the default style in {dest}: "
                                             "{error}").format(dest=dest, error=exc))
        provenance.save_metadata(self, feedback)
        return {}

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

    def _default_text(self, parameter):
        """" Default: <value>." for the tooltip of a parameter that has a default: qgis_process
        help prints the tooltip but not the default (QGIS 3.22), and the value to type there is
        the one shown (an enum's index, with its option)."""
        value = parameter.defaultValue()
        if parameter.isDestination() or value is None or value == "" or value == []:
            return ""
        if isinstance(parameter, QgsProcessingParameterEnum):
            options = parameter.options()
            if isinstance(value, int) and 0 <= value < len(options):
                value = f"{value} ({options[value]})"
        elif isinstance(parameter, QgsProcessingParameterBoolean):
            value = "true" if value else "false"
        elif isinstance(value, float):
            value = f"{value:g}"
        return " " + self.tr("Default: {value}.").format(value=value)

    def add_parameter(self, parameter, help_text, advanced=False, decimals=None):
        """Adds `parameter` with its tooltip (`help_text`, shown by the dialog and by
        ``qgis_process help``), as an advanced parameter if asked, and with `decimals` shown by
        a number widget."""
        parameter.setHelp(help_text + self._default_text(parameter))
        if advanced:
            parameter.setFlags(parameter.flags() | QgsProcessingParameterDefinition.Flag.FlagAdvanced)
        if decimals is not None:
            metadata = dict(parameter.metadata() or {})
            wrapper = dict(metadata.get("widget_wrapper") or {})
            wrapper["decimals"] = decimals
            metadata["widget_wrapper"] = wrapper
            parameter.setMetadata(metadata)
        return self.addParameter(parameter)
