#!/usr/bin/env python3
"""Static Qt6 / QGIS 4 portability check for code that must run unchanged on QGIS 3.22 (PyQt5)
through QGIS 4.x (PyQt6), run where no Qt6 QGIS can be installed.

    check_qt6.py [--qgis-python PY] [--qt6-python PY] PATH...     (files or folders of .py files)

Prints one line per finding, ``path:line:col: CODE message``, and exits 1 when there is one
(2 when a probe interpreter is missing). ``# noqa: QT6xxx`` on the line silences that code.

The rules are those of the QGIS project's migration checker (QGIS scripts/pyqt5_to_pyqt6/
pyqt5_to_pyqt6.py, which plugins.qgis.org runs in its Qt6 QGIS image for the "Qt6 compatible"
status), checked against the real bindings instead of a fixed list:

* every ``Name.attr...`` chain rooted at a name imported from ``qgis.*`` / ``qgis.PyQt.*`` /
  ``PyQt5.*`` is resolved in a QGIS 3.22 interpreter (QGIS_PYTHON, default /usr/bin/python3:
  the plugin's qgisMinimumVersion) and, for Qt names, in PyQt6 (QT6_PYTHON, default this
  interpreter; PyQt6 from PyPI imports offscreen);
* PyQt6 has no unscoped enum access at all, so ``Qt.AlignLeft`` / ``QSettings.IniFormat`` fail
  there; the fix offered is the scoped form found in PyQt6 and verified on QGIS 3.22;
* QGIS 4 keeps unscoped aliases for QGIS enums (its PyQt6 auto_additions monkey-patch them), but
  the migration checker still rewrites them, so ``QgsFeatureSink.FastInsert`` is reported with
  the scoped ``QgsFeatureSink.Flag.FastInsert``, verified on 3.22.

Codes: QT6001 exec_(); QT6002 PyQt imported directly; QT6003 name removed in Qt6; QT6004 call
removed or changed in Qt6; QT6005 class moved to another Qt module; QT6010 attribute missing in
PyQt6; QT6011 unscoped QGIS enum; QT6012 missing on QGIS 3.22 outside a version branch;
QT6013 QVariant type enums.
"""
import argparse
import ast
import json
import os
import re
import subprocess
import sys

QGIS_MODULES = ("qgis.core", "qgis.gui", "qgis.analysis", "qgis._3d", "qgis.processing",
                "qgis.server", "qgis.utils")
QT_PREFIXES = ("qgis.PyQt.", "PyQt5.", "PyQt6.")

REMOVED_NAMES = {
    "QRegExp": "QRegExp is removed in Qt6: use QRegularExpression (also in Qt 5)",
    "QRegExpValidator": "removed in Qt6: use QRegularExpressionValidator (also in Qt 5)",
    "QDesktopWidget": "removed in Qt6: use QScreen (QGuiApplication.primaryScreen(), screens())",
    "qApp": "removed in Qt6: use QApplication.instance() (or QgsApplication.instance())",
    "QGLWidget": "removed in Qt6: use QOpenGLWidget",
    "QMatrix": "removed in Qt6: use QTransform",
    "QTextCodec": "moved to Qt5Compat in Qt6: encode/decode with Python str",
    "QStringRef": "removed in Qt6: use Python str",
    "QLinkedList": "removed in Qt6: use a Python list",
}
REMOVED_MODULES = {"QtWebKit", "QtWebKitWidgets", "QtScript", "QtScriptTools", "QtXmlPatterns"}
# Qt5 names that PyQt6 renamed (from the QGIS checker's deprecated_renamed_enums)
RENAMED = {("Qt", "MidButton"): "Qt.MouseButton.MiddleButton",
           ("Qt", "TextColorRole"): "Qt.ItemDataRole.ForegroundRole",
           ("Qt", "BackgroundColorRole"): "Qt.ItemDataRole.BackgroundRole",
           ("QPainter", "HighQualityAntialiasing"): "QPainter.RenderHint.Antialiasing"}
# QVariant.Type member -> QMetaType.Type member (from the QGIS checker's qmetatype_mapping)
QMETATYPE = {"String": "QString", "StringList": "QStringList", "ByteArray": "QByteArray",
             "Date": "QDate", "DateTime": "QDateTime", "Time": "QTime", "Map": "QVariantMap",
             "List": "QVariantList", "Color": "QColor", "Invalid": "UnknownType",
             "Point": "QPoint", "PointF": "QPointF", "Rect": "QRect", "RectF": "QRectF",
             "Size": "QSize", "SizeF": "QSizeF", "Url": "QUrl", "Char": "QChar",
             "Hash": "QVariantHash"}
GUARD_WORDS = ("QGIS_VERSION_INT", "versionInt", "hasattr(", "QT_VERSION", "PYQT_VERSION")

# Runs inside the probe interpreters: resolves chains and finds scoped spellings.
PROBE = r'''
import enum, importlib, json, os, sys
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
mode = sys.argv[1]
reqs = json.load(sys.stdin)
QT6 = ["QtCore", "QtGui", "QtWidgets", "QtNetwork", "QtXml", "QtSvg", "QtSql", "QtPrintSupport",
       "QtTest"]
cache = {}
def load(m):
    if m not in cache:
        try:
            cache[m] = importlib.import_module(m)
        except Exception as e:
            cache[m] = e
    return cache[m]
def modname(m):
    if mode == "qt6":
        for p in ("qgis.PyQt.", "PyQt5.", "PyQt6."):
            if m.startswith(p):
                return "PyQt6." + m[len(p):]
        return None
    return m
def is_enum_type(t):
    return isinstance(t, enum.EnumMeta) or type(t).__name__ == "enumtype"
def is_member(v):
    return isinstance(v, enum.Enum) or is_enum_type(type(v))
def scoped(owner, member):
    """Names E on owner with owner.E an enum type that has `member`."""
    out = []
    for n in sorted(dir(owner)):
        try:
            v = getattr(owner, n)
        except Exception:
            continue
        if is_enum_type(v) and n != member:
            try:
                getattr(v, member)
                out.append(n)
            except Exception:
                pass
    return out
res_all = []
for r in reqs:
    res = {"ok": False}
    m = modname(r["module"])
    mod = load(m) if m else None
    if m is None or isinstance(mod, Exception):
        res["error"] = "cannot import %s: %s" % (m, mod)
        res_all.append(res)
        continue
    try:
        obj = getattr(mod, r["name"])
    except Exception:
        res["missing_name"] = True
        if mode == "qt6":
            for q in QT6:
                mm = load("PyQt6." + q)
                if not isinstance(mm, Exception) and hasattr(mm, r["name"]):
                    res["moved_to"] = "PyQt6." + q
                    break
        res_all.append(res)
        continue
    cur, depth = obj, 0
    unscoped = None
    for a in r["attrs"]:
        try:
            nxt = getattr(cur, a)
        except Exception:
            break
        if (unscoped is None and isinstance(cur, type) and not is_enum_type(cur)
                and is_member(nxt) and not is_enum_type(nxt)):
            aliases = [n for n in sorted(dir(cur)) if n != a and getattr(cur, n, None) is type(nxt)]
            unscoped = {"depth": depth, "aliases": aliases}
        cur, depth = nxt, depth + 1
    res["depth"] = depth
    res["ok"] = depth == len(r["attrs"])
    if unscoped:
        res["unscoped"] = unscoped
    if not res["ok"] and isinstance(cur, type):
        res["scoped"] = scoped(cur, r["attrs"][depth])
    res_all.append(res)
json.dump(res_all, sys.stdout)
'''


def run_probe(python, mode, reqs):
    if not reqs:
        return []
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONDONTWRITEBYTECODE="1")
    p = subprocess.run([python, "-c", PROBE, mode], input=json.dumps(reqs), capture_output=True,
                       text=True, env=env, timeout=300)
    if p.returncode != 0:
        raise RuntimeError(f"{python} probe ({mode}) failed: {p.stderr.strip()[-2000:]}")
    return json.loads(p.stdout)


def source_of(node, text):
    return ast.get_source_segment(text, node) or ""


class FileScan:
    """Everything found in one file, before the probes answer."""

    def __init__(self, path, text):
        self.path, self.text = path, text
        self.lines = text.splitlines()
        self.tree = ast.parse(text, filename=path)
        self.findings = []      # (line, col, code, message)
        self.imports = {}       # local name -> (module, original name)
        self.chains = []        # (node, root, attrs)
        self.import_names = []  # (node, local name)
        self.guarded = set()    # line numbers inside a version/feature branch
        self.parents = {}
        for parent in ast.walk(self.tree):
            for child in ast.iter_child_nodes(parent):
                self.parents[child] = parent
        self._guards()
        self._walk()

    def add(self, node, code, msg):
        self.findings.append((node.lineno, node.col_offset + 1, code, msg))

    def _guards(self):
        for node in ast.walk(self.tree):
            if isinstance(node, ast.If) and any(w in source_of(node.test, self.text)
                                                for w in GUARD_WORDS):
                for stmt in node.body + node.orelse:
                    self.guarded.update(range(stmt.lineno, stmt.end_lineno + 1))
                if node.body and isinstance(node.body[-1], (ast.Return, ast.Raise)):
                    # early return: the rest of the enclosing block is the other branch
                    parent = self.parents.get(node)
                    for field in ("body", "orelse", "finalbody"):
                        block = getattr(parent, field, None) or []
                        if node in block:
                            for stmt in block[block.index(node) + 1:]:
                                self.guarded.update(range(stmt.lineno, stmt.end_lineno + 1))
            if isinstance(node, ast.Try):
                caught = " ".join(source_of(h.type, self.text) for h in node.handlers if h.type)
                if any(e in caught for e in ("AttributeError", "ImportError", "NameError")):
                    for stmt in node.body:
                        self.guarded.update(range(stmt.lineno, stmt.end_lineno + 1))

    def _walk(self):
        for node in ast.walk(self.tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                mod = node.module
                top = mod.split(".")
                if top[0] in ("PyQt5", "PyQt6"):
                    self.add(node, "QT6002", f"from {mod} import: use qgis.PyQt.{'.'.join(top[1:])}"
                             " (the same code then runs on PyQt5 and PyQt6)")
                if mod == "qgis.PyQt.Qt":
                    self.add(node, "QT6002", "qgis.PyQt.Qt is Qt5-only: import Qt from "
                             "qgis.PyQt.QtCore")
                if len(top) > 1 and top[-1] in REMOVED_MODULES:
                    self.add(node, "QT6003", f"{top[-1]} does not exist in Qt6")
                for a in node.names:
                    if a.name == "resources_rc":
                        self.add(node, "QT6003", "compiled resources (resources_rc) are not "
                                 "supported in Qt6: load icons and .ui files by file path")
                    if a.name in REMOVED_NAMES:
                        self.add(node, "QT6003", REMOVED_NAMES[a.name])
                    if mod.startswith(QT_PREFIXES) or mod in QGIS_MODULES:
                        if a.name != "*":
                            self.imports[a.asname or a.name] = (mod, a.name)
                            self.import_names.append((node, a.asname or a.name))
            elif isinstance(node, ast.Import):
                for a in node.names:
                    top = a.name.split(".")
                    if top[0] in ("PyQt5", "PyQt6"):
                        self.add(node, "QT6002", f"import {a.name}: use qgis.PyQt")
                    if top[-1] in REMOVED_MODULES:
                        self.add(node, "QT6003", f"{top[-1]} does not exist in Qt6")
            elif isinstance(node, ast.Attribute):
                if node.attr == "exec_":
                    self.add(node, "QT6001", "exec_() does not exist in PyQt6: use exec()"
                             " (PyQt5 5.15 has exec() too)")
                parent = self.parents.get(node)
                if isinstance(parent, ast.Attribute) and parent.value is node:
                    continue  # not the whole chain
                attrs, cur = [], node
                while isinstance(cur, ast.Attribute):
                    attrs.insert(0, cur.attr)
                    cur = cur.value
                if isinstance(cur, ast.Name):
                    self.chains.append((node, cur.id, attrs))
            elif isinstance(node, ast.FunctionDef) and node.name == "exec_":
                self.add(node, "QT6001", "a method named exec_ overrides the PyQt5-only name: "
                         "name it exec")
            elif isinstance(node, ast.Name) and node.id == "qApp":
                self.add(node, "QT6003", REMOVED_NAMES["qApp"])
            if isinstance(node, ast.Call):
                self._call(node)
            if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute) \
                    and node.value.attr == "activated" and isinstance(node.slice, ast.Name) \
                    and node.slice.id == "str":
                self.add(node, "QT6004", "activated[str] is removed in Qt6: use textActivated"
                         " (Qt >= 5.14) or activated (index)")

    def _call(self, node):
        f = node.func
        if isinstance(f, ast.Attribute):
            if f.attr == "desktop" and not node.args:
                self.add(node, "QT6004", "QApplication.desktop() (QDesktopWidget) is removed in"
                         " Qt6: use QScreen")
            if f.attr == "width" and isinstance(f.value, ast.Call) and (
                    (isinstance(f.value.func, ast.Attribute) and f.value.func.attr == "fontMetrics")
                    or (isinstance(f.value.func, ast.Name)
                        and f.value.func.id in ("QFontMetrics", "QFontMetricsF"))):
                self.add(node, "QT6004", "QFontMetrics.width() is removed in Qt6: use"
                         " horizontalAdvance() (Qt >= 5.11)")
            if f.attr == "addAction" and len(node.args) >= 4:
                self.add(node, "QT6004", "addAction(icon, text, receiver, slot) is fragile in Qt6:"
                         " create the QAction, then addAction(action)")
        elif isinstance(f, ast.Name):
            if f.id == "QDateTime" and len(node.args) == 8:
                self.add(node, "QT6004", "QDateTime(y, m, d, h, min, s, ms, spec) is gone in Qt6:"
                         " use QDateTime(QDate(...), QTime(...), spec)")
            if f.id == "QVariant" and not node.args and "QVariant" in self.imports:
                self.add(node, "QT6013", "QVariant() as NULL: use NULL from qgis.core")

    def noqa(self, line, code):
        if 0 < line <= len(self.lines):
            m = re.search(r"#\s*noqa:([^#]*)", self.lines[line - 1])
            if m:
                codes = {c.strip() for c in m.group(1).replace(",", " ").split()}
                return code in codes or "QT6" in codes
        return False


def chain_text(root, attrs):
    return ".".join([root] + attrs)


def analyse(scans, qgis_python, qt6_python):
    """Resolve every chain on QGIS 3.22 and (Qt names) on PyQt6; add findings to the scans."""
    qgis_reqs, qt6_reqs, where = [], [], []
    for s in scans:
        items = [(node, name, []) for node, name in s.import_names] + \
                [(node, root, attrs) for node, root, attrs in s.chains if root in s.imports]
        for node, root, attrs in items:
            mod, orig = s.imports[root]
            req = {"module": mod, "name": orig, "attrs": attrs}
            qt = mod.startswith(QT_PREFIXES)
            where.append((s, node, root, attrs, qt, len(qgis_reqs), len(qt6_reqs) if qt else None))
            qgis_reqs.append(req)
            if qt:
                qt6_reqs.append(req)
    q = run_probe(qgis_python, "qgis", qgis_reqs)
    p6 = run_probe(qt6_python, "qt6", qt6_reqs) if qt6_python else [None] * len(qt6_reqs)

    # second round: verify the suggested spellings on both sides
    suggestions = []  # (index into where, text, req)
    verify_q, verify_6 = [], []
    pending = []
    for i, (s, node, root, attrs, qt, iq, i6) in enumerate(where):
        rq = q[iq]
        r6 = p6[i6] if qt else None
        pending.append((i, s, node, root, attrs, qt, rq, r6))
        mod, orig = s.imports[root]
        cands = []
        if qt and r6 and not r6.get("ok") and "depth" in r6:
            d = r6["depth"]
            for e in r6.get("scoped", []):
                cands.append(attrs[:d] + [e] + attrs[d:])
        if qt and root == "QVariant" and attrs[:1] == ["Type"] and len(attrs) >= 2:
            cands.append(attrs[1:2])
        if rq.get("unscoped"):
            d = rq["unscoped"]["depth"]
            for e in rq["unscoped"]["aliases"]:
                cands.append(attrs[:d] + [e] + attrs[d:])
        for c in cands:
            req = {"module": mod, "name": orig, "attrs": c}
            suggestions.append((i, c, len(verify_q), len(verify_6) if qt else None))
            verify_q.append(req)
            if qt:
                verify_6.append(req)
    vq = run_probe(qgis_python, "qgis", verify_q)
    v6 = run_probe(qt6_python, "qt6", verify_6) if qt6_python else [None] * len(verify_6)
    by_item = {}
    for i, c, iq, i6 in suggestions:
        ok_q = vq[iq]["ok"]
        ok_6 = None if i6 is None else (v6[i6]["ok"] if v6[i6] else None)
        by_item.setdefault(i, []).append((c, ok_q, ok_6))

    for i, s, node, root, attrs, qt, rq, r6 in pending:
        text = chain_text(root, attrs)
        line = node.lineno
        guarded = line in s.guarded
        sugg = by_item.get(i, [])
        portable = list(dict.fromkeys(chain_text(root, c) for c, ok_q, ok_6 in sugg
                                      if ok_q and ok_6 is not False))
        if root == "QVariant" and qt:
            if attrs[:1] == ["Type"] and len(attrs) >= 2:
                ok = any(c == attrs[1:2] and ok_q for c, ok_q, _ in sugg)
                s.add(node, "QT6013", f"{text}: PyQt6 has no QVariant.Type (the QGIS migration "
                      "checker rewrites it): in a QGIS < 3.38 branch write QVariant."
                      f"{attrs[1]} ({'verified' if ok else 'NOT available'} on QGIS 3.22), "
                      f"else QMetaType.Type.{QMETATYPE.get(attrs[1], attrs[1])}")
                continue
            if rq.get("unscoped"):
                if not guarded:
                    s.add(node, "QT6013", f"{text} does not exist in PyQt6: QgsField takes "
                          f"QMetaType.Type.{QMETATYPE.get(attrs[0], attrs[0])} from QGIS 3.38; "
                          f"keep {text} only in a QGIS < 3.38 branch")
                continue
        if rq.get("error"):
            s.add(node, "QT6012", f"{text}: {rq['error']} on QGIS 3.22")
            continue
        if rq.get("missing_name") or not rq.get("ok"):
            if not guarded:
                what = s.imports[root][1] if rq.get("missing_name") else text
                s.add(node, "QT6012", f"{what} does not exist on QGIS 3.22 (qgisMinimumVersion):"
                      " use the 3.22 spelling, or put it in a QGIS-version branch")
            continue
        if qt and r6 is not None:
            if r6.get("error"):
                s.add(node, "QT6010", f"{text}: {r6['error']}")
                continue
            if r6.get("missing_name"):
                name = s.imports[root][1]
                if name in REMOVED_NAMES:
                    continue  # reported at the import
                if r6.get("moved_to"):
                    s.add(node, "QT6005", f"{name} is in {r6['moved_to']} in Qt6, not in "
                          f"{s.imports[root][0]}: import it where both exist (e.g. in a try/except"
                          " ImportError)")
                else:
                    s.add(node, "QT6003", f"{name} does not exist in PyQt6")
                continue
            if not r6.get("ok"):
                renamed = RENAMED.get((root, attrs[0])) if attrs else None
                if renamed:
                    fix = f"use {renamed}"
                elif portable:
                    fix = f"use {' or '.join(portable)} (verified on PyQt6 and QGIS 3.22's PyQt5)"
                elif sugg:
                    fix = ("no portable spelling: " + ", ".join(
                        f"{chain_text(root, c)} ({'ok' if ok_q else 'missing'} on 3.22, "
                        f"{'ok' if ok_6 else 'missing'} on PyQt6)" for c, ok_q, ok_6 in sugg))
                else:
                    fix = "no scoped spelling found in PyQt6"
                s.add(node, "QT6010", f"{text} does not exist in PyQt6: {fix}")
                continue
        if rq.get("unscoped") and not qt:
            if portable:
                fix = f"use {' or '.join(portable)} (verified on QGIS 3.22)"
            else:
                fix = "no scoped spelling exists on QGIS 3.22"
            s.add(node, "QT6011", f"unscoped QGIS enum {text}: {fix}; QGIS 4 keeps an alias, "
                  "but the QGIS migration checker (the plugin site's Qt6 check) flags it")
        elif rq.get("unscoped") and qt and r6 is None:
            fix = f"use {' or '.join(portable)}" if portable else "no scoped spelling found"
            s.add(node, "QT6010", f"unscoped Qt enum {text} fails in PyQt6: {fix} "
                  "(PyQt6 not installed: not verified on PyQt6)")


def collect(paths):
    files = []
    for p in paths:
        if os.path.isdir(p):
            for root, dirs, names in os.walk(p):
                dirs[:] = sorted(d for d in dirs if d not in ("__pycache__", ".git", ".venv"))
                files += [os.path.join(root, n) for n in sorted(names) if n.endswith(".py")]
        else:
            files.append(p)
    return files


def default_qgis_python():
    for cand in ("/usr/bin/python3", sys.executable):
        if os.path.exists(cand) and subprocess.run(
                [cand, "-c", "import qgis.core"], capture_output=True,
                env=dict(os.environ, QT_QPA_PLATFORM="offscreen")).returncode == 0:
            return cand
    return None


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("paths", nargs="+")
    ap.add_argument("--qgis-python", default=os.environ.get("QGIS_PYTHON"),
                    help="interpreter with QGIS 3.22's qgis module (default /usr/bin/python3)")
    ap.add_argument("--qt6-python", default=os.environ.get("QT6_PYTHON", sys.executable),
                    help="interpreter with PyQt6 (default: this one)")
    ap.add_argument("--strip-prefix", default="", help="leave this prefix out of printed paths")
    a = ap.parse_args(argv)
    qgis_python = a.qgis_python or default_qgis_python()
    if not qgis_python:
        print("check_qt6: no Python with QGIS (qgis.core) found: set QGIS_PYTHON", file=sys.stderr)
        return 2
    qt6 = a.qt6_python
    if subprocess.run([qt6, "-c", "import PyQt6.QtCore"], capture_output=True).returncode != 0:
        print(f"check_qt6: PyQt6 not importable by {qt6}: Qt names are checked for unscoped enums"
              " only, not against PyQt6", file=sys.stderr)
        qt6 = None
    scans, bad = [], 0
    for f in collect(a.paths):
        with open(f, encoding="utf-8") as fh:
            text = fh.read()
        try:
            scans.append(FileScan(f, text))
        except SyntaxError as e:
            print(f"{f}:{e.lineno}:{e.offset}: QT6000 syntax error: {e.msg}")
            bad += 1
    analyse(scans, qgis_python, qt6)
    for s in scans:
        shown = s.path[len(a.strip_prefix):] if a.strip_prefix and s.path.startswith(
            a.strip_prefix) else s.path
        for line, col, code, msg in sorted(set(s.findings)):
            if not s.noqa(line, code):
                print(f"{shown}:{line}:{col}: {code} {msg}")
                bad += 1
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
