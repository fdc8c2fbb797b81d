"""Processing conventions every algorithm keeps: search tags, a help link into the README, a
tooltip on every parameter, number widgets with sensible decimals, translatable texts, the
missing-package sentence in the help, and a start-up that imports no science module."""
import ast
import os
import re
import subprocess
import sys

import pytest
from qgis.core import (
    QgsApplication,
    QgsProcessingParameterDistance,
    QgsProcessingParameterNumber,
)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ALGORITHMS = ["mineclusters:clusterlocaloptimum", "mineclusters:harmonisepolygons",
              "mineclusters:harmonisepoints", "mineclusters:footprintsummary",
              "mineclusters:validate"]


def _readme_anchors():
    """GitHub's anchors of the README's headings."""
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        heads = [line.lstrip("#").strip() for line in f if line.startswith("#")]
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in heads}


@pytest.fixture(scope="module")
def algorithms(provider):
    reg = QgsApplication.processingRegistry()
    algs = [reg.algorithmById(a) for a in ALGORITHMS]
    assert all(algs), ALGORITHMS
    return algs


def test_tags_find_the_algorithms_by_the_papers_words(algorithms):
    words = {a.id(): {t.strip().lower() for t in a.tags()} for a in algorithms}
    assert all(len(w) >= 4 and "" not in w for w in words.values()), words
    cluster = words["mineclusters:clusterlocaloptimum"]
    assert {"pareto", "single linkage", "commodity"} <= cluster
    assert "mining" in set.intersection(*words.values())


def test_help_url_points_at_a_readme_section(algorithms):
    anchors = _readme_anchors()
    for alg in algorithms:
        url = alg.helpUrl()
        assert url.startswith("https://github.com/mine-clusters/mine_clusters/blob/main/README.md#"), url
        assert url.split("#", 1)[1] in anchors, (alg.id(), url)


def test_every_parameter_has_a_tooltip_and_numbers_have_decimals(algorithms):
    for alg in algorithms:
        for p in alg.parameterDefinitions():
            assert len(p.help().strip()) >= 20, (alg.id(), p.name(), p.help())
            assert p.help() != p.description(), (alg.id(), p.name())
            if isinstance(p, (QgsProcessingParameterNumber, QgsProcessingParameterDistance)):
                if p.dataType() == QgsProcessingParameterNumber.Type.Double:
                    decimals = p.metadata().get("widget_wrapper", {}).get("decimals")
                    assert isinstance(decimals, int) and 0 <= decimals <= 3, \
                        (alg.id(), p.name(), decimals)


def test_every_default_is_in_the_tooltip(algorithms):
    """qgis_process help prints each parameter's tooltip but not its default (issue 15, point
    8): the tooltip ends with it, in the form to type on the command line."""
    from qgis.core import QgsProcessingParameterEnum

    seen = 0
    for alg in algorithms:
        for p in alg.parameterDefinitions():
            value = p.defaultValue()
            if p.isDestination() or value in (None, "", []):
                assert "Default:" not in p.help(), (alg.id(), p.name())
                continue
            seen += 1
            if isinstance(p, QgsProcessingParameterEnum):
                shown = f"{value} ({p.options()[value]})"
            elif isinstance(value, bool):
                shown = str(value).lower()
            elif isinstance(value, float):
                shown = f"{value:g}"
            else:
                shown = str(value)
            assert p.help().endswith(f" Default: {shown}."), (alg.id(), p.name(), p.help())
    assert seen >= 15
    cluster = QgsApplication.processingRegistry().algorithmById(ALGORITHMS[0])
    assert cluster.parameterDefinition("H_LIMIT").help().endswith("Default: 20000.")
    assert cluster.parameterDefinition("METHOD").help().endswith(
        "Default: 0 (Local optimum per processing group).")


def test_help_names_a_missing_package_before_anything_runs(algorithms, monkeypatch):
    from mine_clusters.algorithms.deps_loader import deps

    real = deps.REQUIREMENTS
    monkeypatch.setattr(deps, "REQUIREMENTS",
                        real + (("no_such_module_xyz", "no-such-pkg", "1.0"),))
    for alg in algorithms:
        text = alg.shortHelpString()
        assert "no-such-pkg>=1.0 (not installed)" in text, alg.id()
        assert "install them with:" in text
        assert "no-such-pkg" in alg.shortDescription()  # the toolbox's tooltip
        ok, message = alg.canExecute()
        assert not ok and "no-such-pkg" in message
    monkeypatch.undo()
    for alg in algorithms:
        assert "not installed" not in alg.shortHelpString()
        assert "not installed" not in alg.shortDescription()
        assert alg.canExecute()[0]


# ---- static: every user-facing text goes through tr() ----------------------------------------

USER_FACING = {"QgsProcessingException", "pushInfo", "pushWarning", "reportError",
               "displayName", "group"}


def _literal_texts(node):
    """The string literals (and f-strings) passed directly, not through tr()/translate()."""
    out = []
    for arg in list(node.args) + [k.value for k in node.keywords]:
        for sub in ast.walk(arg):
            if isinstance(sub, ast.Call) and getattr(sub.func, "attr", getattr(sub.func, "id", "")) \
                    in ("tr", "_tr", "translate"):
                break
        else:
            if isinstance(arg, (ast.Constant, ast.JoinedStr, ast.BinOp)) and \
                    (not isinstance(arg, ast.Constant) or isinstance(arg.value, str)):
                out.append(ast.unparse(arg)[:60])
    return out


@pytest.mark.parametrize("name", ["cluster.py", "harmonise.py", "footprint.py", "validate.py",
                                  "base.py", "layer_io.py", "styles.py", "provenance.py"])
def test_messages_and_labels_are_translatable(name):
    path = os.path.join(ROOT, "algorithms", name)
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read())
    bare = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            fname = getattr(node.func, "attr", getattr(node.func, "id", ""))
            if fname in USER_FACING:
                bare += [(node.lineno, t) for t in _literal_texts(node)]
            if fname.startswith("QgsProcessingParameter") or fname.startswith("QgsProcessingOutput"):
                # the description: the second positional argument
                if len(node.args) >= 2 and not isinstance(node.args[1], ast.Call):
                    bare.append((node.lineno, ast.unparse(node.args[1])[:60]))
        if isinstance(node, ast.FunctionDef) and node.name in ("displayName", "group",
                                                               "help_html", "shortDescription"):
            for ret in ast.walk(node):
                if isinstance(ret, ast.Return) and isinstance(ret.value, (ast.Constant,
                                                                          ast.JoinedStr)) \
                        and getattr(ret.value, "value", None) != "":
                    bare.append((ret.lineno, ast.unparse(ret.value)[:60]))
    assert not bare, f"{name}: texts not passed through tr(): {bare}"


# ---- start-up --------------------------------------------------------------------------------

def test_loading_the_plugin_imports_no_science_module(tmp_path):
    """QGIS loads the provider (and every algorithm's initAlgorithm) at start-up: none of numpy,
    scipy, shapely, matplotlib or the core's science modules may load then."""
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    os.symlink(ROOT, plugins / "mine_clusters")
    code = f"""
import sys
sys.path.insert(0, {str(plugins)!r})
from qgis.core import QgsApplication
app = QgsApplication([], False)
app.initQgis()
before = set(sys.modules)
import mine_clusters
plugin = mine_clusters.classFactory(None)
plugin.initProcessing()
prov = QgsApplication.processingRegistry().providerById("mineclusters")
assert prov is not None and len(prov.algorithms()) == 5
for alg in prov.algorithms():
    alg.parameterDefinitions(); alg.tags(); alg.helpUrl(); alg.shortHelpString()
new = sorted(m for m in set(sys.modules) - before
             if m.split(".")[0] in ("numpy", "scipy", "shapely", "matplotlib", "fastcluster")
             or (m.startswith("mine_clusters.core.")
                 and m not in ("mine_clusters.core.colours",)))
print("IMPORTED:" + ",".join(new))
"""
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    line = [x for x in out.stdout.splitlines() if x.startswith("IMPORTED:")]
    assert line == ["IMPORTED:"], line or out.stdout[-2000:]


def test_a_translation_is_found_under_the_class_that_holds_the_text(algorithms):
    """pylupdate files ``self.tr`` texts under the class they are written in: "Data preparation"
    under _HarmoniseBase (shared by both harmonise algorithms), "Footprint" under each class."""
    from qgis.PyQt.QtCore import QCoreApplication, QTranslator

    class Fake(QTranslator):
        table = {("_HarmoniseBase", "Data preparation"): "Datenaufbereitung",
                 ("FootprintSummaryAlgorithm", "Footprint summary"): "Flächenbilanz"}

        def translate(self, context, text, disambiguation=None, n=-1):
            return self.table.get((context, text))  # None: a null QString, "not here"

        def isEmpty(self):  # noqa: N802 (Qt API): an empty translator is not installed
            return False

    fake = Fake()
    assert QCoreApplication.installTranslator(fake)
    try:
        by_id = {a.id(): a for a in algorithms}
        assert by_id["mineclusters:harmonisepolygons"].group() == "Datenaufbereitung"
        assert by_id["mineclusters:harmonisepoints"].group() == "Datenaufbereitung"
        assert by_id["mineclusters:footprintsummary"].displayName() == "Flächenbilanz"
        assert by_id["mineclusters:validate"].displayName() == "Validate against reference polygons"
    finally:
        QCoreApplication.removeTranslator(fake)
    assert by_id["mineclusters:harmonisepoints"].group() == "Data preparation"
