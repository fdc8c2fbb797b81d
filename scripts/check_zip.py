#!/usr/bin/env python3
"""Check a built plugin zip the way plugins.qgis.org does on upload.

    check_zip.py ZIP [--allow-binary GLOB]... [--check-urls] [--new]

Prints one line per problem, ``LEVEL: path[:line]: rule: message``, and exits 1 if any line is
ERROR, BLOCK or WARN (NOTE lines are information only):

ERROR  the upload form rejects the zip (qgis-app/plugins/validator.py of qgis/QGIS-Plugins-Website)
BLOCK  the security scan that runs after upload marks the version "blocked" (not downloadable,
       not approvable): any finding of an enabled Bandit or detect-secrets rule fails a check of
       severity "critical" (plugins/security_scanner.py, tasks/run_security_scan.py). Rules the
       site rates "warning" can be skipped by ticking them at upload; the line says which.
WARN   shown by the site as a warning (file analysis, config files in the zip), or a binary that
       is not on the allowed list (the site's rule table has FILE_BINARY, warning)
NOTE   information: allowed binaries, size, URLs not checked offline

Bandit and detect-secrets are run as the site runs them: ``bandit -r DIR -f json -q -t RULES``
with the rules its rule table enables (every severity, no -ll), and ``detect-secrets scan
--all-files --exclude-files metadata\\.txt --disable-plugin IPPublicDetector .`` in the extracted
folder. Both must be importable by this interpreter (pinned by scripts/check_plugin.sh).
"""
import argparse
import codecs
import configparser
import fnmatch
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from urllib.parse import urlparse

MAX_SIZE = 25_000_000  # PLUGIN_MAX_UPLOAD_SIZE
REQUIRED = ("name", "description", "version", "qgisMinimumVersion", "author", "email", "about",
            "tracker", "repository")
BOOLEAN = ("experimental", "deprecated", "server", "supportsQt6")
FORBIDDEN_URLS = {"tracker": "http://bugs", "repository": "http://repo",
                  "homepage": "http://homepage"}
# management/commands/data/bandit_rules.json: (code, site severity) of the enabled rules
BANDIT_RULES = {
    "critical": "B102 B103 B105 B106 B107 B111 B201 B202 B301 B302 B304 B305 B306 B307 B312 "
                "B321 B323 B401 B402 B412 B413 B501 B502 B503 B505 B506 B507 B601 B602 B604 "
                "B605 B609 B610 B611 B612 B613 B615 B701".split(),
    "warning": "B101 B104 B108 B110 B112 B113 B303 B308 B310 B311 B313 B314 B315 B316 B317 B318 "
               "B319 B320 B324 B403 B405 B406 B407 B408 B409 B504 B508 B509 B603 B606 B607 "
               "B608 B614 B702 B703 B704".split(),
}
# secrets_rules.json: disabled plugins, and the ones rated warning (the rest are critical)
SECRETS_DISABLED = ["IPPublicDetector"]
SECRETS_WARNING = {"Base64 High Entropy String", "Hex High Entropy String", "Secret Keyword"}
SUSPICIOUS_EXT = (".exe", ".dll", ".so", ".dylib", ".bat", ".sh", ".ps1", ".cmd")
CONFIG_FILES = (".bandit", ".secrets.baseline", ".flake8")
HIDDEN_OK = (".gitignore", ".gitattributes") + CONFIG_FILES
# binaries that need no --allow-binary: images (icon, screenshot, docs) and Qt translations
BINARY_OK_EXT = (".png", ".jpg", ".jpeg", ".gif", ".ico", ".bmp", ".webp", ".svg", ".qm")


class Report:
    def __init__(self):
        self.lines = []

    def add(self, level, where, rule, msg):
        self.lines.append((level, where, rule, msg))

    def failed(self):
        return any(level in ("ERROR", "BLOCK", "WARN") for level, *_ in self.lines)

    def print(self):
        order = {"ERROR": 0, "BLOCK": 1, "WARN": 2, "NOTE": 3}
        for level, where, rule, msg in sorted(self.lines, key=lambda x: (order[x[0]], x[1])):
            print(f"{level}: {where}: {rule}: {msg}")


def validate(path, zf, rep, is_new, check_urls):
    """validator() of plugins.qgis.org, in its order; returns (package_name, metadata) or None."""
    size = os.path.getsize(path)
    if size > MAX_SIZE:
        rep.add("ERROR", path, "size", f"{size} bytes: the site's limit is {MAX_SIZE} (25 MB)")
    else:
        rep.add("NOTE", path, "size", f"{size} bytes (limit {MAX_SIZE})")
    names = zf.namelist()
    for n in names:
        if ".." in n or n.startswith(os.path.sep):
            rep.add("ERROR", n, "path", "zip member with path information ('..' or absolute)")
        if ".pyc" in n:
            rep.add("ERROR", n, "pyc", "zip cannot contain .pyc files")
        parts = n.split("/")
        for d in ("__MACOSX", ".git", "__pycache__"):
            if d in parts:
                rep.add("ERROR", n, "forbidden-dir", f"zip cannot contain a '{d}' directory")
    bad = zf.testzip()
    if bad:
        rep.add("ERROR", bad, "crc", "bad zip member (CRC error)")
        return None
    tops = sorted({n.split("/")[0] for n in names})
    if len(tops) > 1:
        rep.add("WARN", path, "multiple_parent_folders", "more than one top-level entry: "
                + ", ".join(tops) + " (the site warns; QGIS installs only the first folder)")
    if not names or "/" not in names[0]:
        rep.add("ERROR", path, "folder", "cannot find a folder inside the zip: the first member "
                "must be inside the plugin folder")
        return None
    pkg = names[0][:names[0].index("/")]
    if is_new and not pkg.isidentifier():
        rep.add("ERROR", pkg, "package_name", "a new plugin's folder must be a Python identifier")
    init, meta = pkg + "/__init__.py", pkg + "/metadata.txt"
    if init not in names:
        rep.add("ERROR", init, "init", "cannot find __init__.py in the plugin folder")
    if meta not in names:
        rep.add("ERROR", meta, "metadata", "no metadata.txt (metadata in __init__.py is legacy)")
        return None
    try:
        parser = configparser.ConfigParser()
        parser.optionxform = str
        parser.read_file(io.StringIO(codecs.decode(zf.read(meta), "utf8")))
    except Exception as e:
        rep.add("ERROR", meta, "metadata", f"cannot parse: {e}")
        return None
    if not parser.has_section("general"):
        rep.add("ERROR", meta, "metadata", "no [general] section")
        return None
    md = dict(parser.items("general"))
    missing = [k for k in REQUIRED if k not in md]
    if missing:
        rep.add("ERROR", meta, "required", "missing " + ", ".join(missing))
    for k in REQUIRED:
        if k in md and not md[k].strip():
            rep.add("ERROR", meta, "required", f"{k} is empty")
    icon = md.get("icon", "").strip()
    if icon.startswith("./"):
        icon = icon[2:]
    if not icon:
        rep.add("WARN", meta, "icon", "no icon= (the site shows a default icon)")
    elif f"{pkg}/{icon}" not in names:
        rep.add("WARN", meta, "icon", f"icon={icon} is not in the zip (the site ignores it)")
    shot = md.get("screenshot", "").strip()
    if shot:
        shot = shot[2:] if shot.startswith("./") else shot
        member = f"{pkg}/{shot}"
        if member in names:
            if zf.getinfo(member).file_size > 2 * 1024 * 1024:
                rep.add("ERROR", member, "screenshot", "larger than 2 MB")
            if not shot.lower().endswith((".png", ".jpg", ".jpeg", ".gif")):
                rep.add("ERROR", member, "screenshot", "must be png, jpg, jpeg or gif")
    for k in BOOLEAN:
        if k in md and md[k].strip().lower() not in ("true", "false", "1", "0", "yes", "no"):
            rep.add("WARN", meta, "boolean", f"{k}={md[k]}: the site reads only 'true'/'1' as true")
    if not re.match(r"^[A-Za-z][A-Za-z0-9-_]+$", pkg):
        rep.add("ERROR", pkg, "package_name", "folder name must start with an ASCII letter and "
                "contain only ASCII letters, digits, '-' and '_'")
    for k in ("qgisMinimumVersion", "qgisMaximumVersion"):
        if k in md and not re.match(r"^\d+\.\d+(\.\d+)?$", md[k].strip()):
            rep.add("WARN", meta, k, f"{md[k]!r} is not a version like 3.22")
    if "version" in md and not re.match(r"^[0-9A-Za-z.\-_ ]+$", md["version"].strip()):
        rep.add("WARN", meta, "version", f"{md['version']!r}: unusual characters")
    for k, forbidden in FORBIDDEN_URLS.items():
        url = md.get(k)
        if url is None:
            continue  # homepage is optional; tracker/repository are reported as missing
        u = urlparse(url.strip())
        if url.strip() == forbidden or not (u.scheme and u.netloc):
            rep.add("ERROR", meta, k, f"{url!r} is not a valid URL")
        elif check_urls:
            reach(url.strip(), k, meta, rep)
    if not check_urls:
        rep.add("NOTE", meta, "urls", "tracker/repository/homepage reachability not checked "
                "(offline; the site HEAD-requests each with a 10 s timeout and rejects the upload "
                "if one fails or answers >= 400): " + ", ".join(
                    md.get(k, "") for k in FORBIDDEN_URLS if md.get(k)))
    if f"{pkg}/LICENSE" not in names:
        rep.add("ERROR", f"{pkg}/LICENSE", "license", "no LICENSE file in the plugin folder "
                "(required since June 2024; exactly 'LICENSE', no extension)")
    if "author" in md and not re.match(r"^[^/]+$", md["author"]):
        rep.add("ERROR", meta, "author", "author cannot contain slashes")
    if "email" in md and not re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", md["email"].strip()):
        rep.add("WARN", meta, "email", f"{md['email']!r} does not look like an e-mail address")
    return pkg, md


def reach(url, key, meta, rep):
    import urllib.request
    try:
        req = urllib.request.Request(url, method="HEAD", headers={"User-Agent": "Mozilla/5.0"})
        with urllib.request.urlopen(req, timeout=10) as r:  # nosec B310 (http(s) URL from metadata)
            code = r.status
    except Exception as e:
        code = getattr(e, "code", None)
        if code is None:
            rep.add("ERROR", meta, key, f"{url}: unreachable ({e})")
            return
    if code >= 400:
        rep.add("ERROR", meta, key, f"{url}: HTTP {code}")


def is_binary(data):
    if b"\0" in data[:8192]:
        return True
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def files(zf, rep, pkg, allow):
    for info in zf.infolist():
        n = info.filename
        if n.endswith("/"):
            continue
        rel = n[len(pkg) + 1:] if n.startswith(pkg + "/") else n
        base = os.path.basename(n)
        mode = info.external_attr >> 16
        if mode & 0o111 and n.endswith(".py"):
            rep.add("WARN", n, "FILE_EXECUTABLE", "Python file with the executable bit")
        if base.startswith(".") and base not in HIDDEN_OK:
            rep.add("WARN", n, "FILE_HIDDEN", "hidden file")
        if base in CONFIG_FILES:
            rep.add("WARN", n, "config-file", f"{base} in the zip: the site's scan reads it and "
                    "the version gets 'Validated (configured)'; export-ignore it in .gitattributes")
        if n.lower().endswith(SUSPICIOUS_EXT):
            rep.add("WARN", n, "FILE_SUSPICIOUS", "executable or binary file type (the site's rule"
                    " table rates it critical)")
        data = zf.read(n)
        if is_binary(data):
            if rel.lower().endswith(BINARY_OK_EXT):
                continue
            if any(fnmatch.fnmatch(rel, g) for g in allow):
                rep.add("NOTE", n, "FILE_BINARY", f"allowed binary data file ({len(data)} bytes)")
            else:
                rep.add("WARN", n, "FILE_BINARY", "binary file not on the allowed list")


def bandit(tree, rep, extracted):
    rules = {c: sev for sev, codes in BANDIT_RULES.items() for c in codes}
    cmd = [sys.executable, "-m", "bandit", "-r", tree, "-f", "json", "-q",
           "-t", ",".join(sorted(rules))]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    try:
        out = json.loads(p.stdout)
    except json.JSONDecodeError:
        rep.add("ERROR", tree, "bandit", f"bandit did not run: {p.stderr.strip()[-500:]}")
        return
    for e in out.get("errors", []):
        rep.add("BLOCK", rel_of(e.get("filename", ""), extracted), "bandit", e.get("reason", ""))
    for r in out.get("results", []):
        sev = rules.get(r["test_id"], "?")
        skip = "skippable at upload" if sev == "warning" else "not skippable"
        rep.add("BLOCK", f"{rel_of(r['filename'], extracted)}:{r['line_number']}",
                f"{r['test_id']} ({r['test_name']})",
                f"{r['issue_text']} [bandit {r['issue_severity']}/{r['issue_confidence']}; "
                f"site: {sev}, {skip}]")


def secrets(extracted, rep):
    cmd = [sys.executable, "-m", "detect_secrets", "scan", "--all-files", "--exclude-files",
           r"metadata\.txt"]
    for p in SECRETS_DISABLED:
        cmd += ["--disable-plugin", p]
    p = subprocess.run(cmd + ["."], cwd=extracted, capture_output=True, text=True, timeout=300)
    try:
        out = json.loads(p.stdout)
    except json.JSONDecodeError:
        rep.add("ERROR", extracted, "detect-secrets", f"did not run: {p.stderr.strip()[-500:]}")
        return
    for f, found in out.get("results", {}).items():
        for s in found:
            sev = "warning" if s["type"] in SECRETS_WARNING else "critical"
            skip = "skippable at upload" if sev == "warning" else "not skippable"
            rep.add("BLOCK", f"{f}:{s['line_number']}", "detect-secrets",
                    f"potential {s['type']} [site: {sev}, {skip}]")


def site_flake8(tree, rep, extracted):
    """The site's informational flake8 run (check severity 'info': never blocks)."""
    enabled = ("E101,E711,E712,E713,E714,E721,E722,E731,E741,E742,E743,E901,E902,E999,W605,"
               "F402,F403,F404,F405,F811,F821,F822,F823,F831,F901,C901")
    pys = [os.path.join(r, n) for r, _, ns in os.walk(tree) for n in ns if n.endswith(".py")]
    if not pys:
        return
    p = subprocess.run([sys.executable, "-m", "flake8", "--isolated", "--max-line-length=120",
                        "--select", enabled] + sorted(pys), capture_output=True, text=True,
                       timeout=300)
    for line in p.stdout.splitlines():
        rep.add("NOTE", rel_of(line.split(": ")[0], extracted), "site-flake8",
                line.split(": ", 1)[-1] + " (shown by the site, not blocking)")


def rel_of(p, extracted):
    p = os.path.normpath(p)
    root = os.path.normpath(extracted) + os.sep
    return p[len(root):] if p.startswith(root) else p


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("zip")
    ap.add_argument("--allow-binary", action="append", default=[], metavar="GLOB",
                    help="binary file allowed in the zip, relative to the plugin folder")
    ap.add_argument("--check-urls", action="store_true", help="HEAD-request the metadata URLs")
    ap.add_argument("--new", action="store_true", help="first upload of a new plugin")
    a = ap.parse_args(argv)
    rep = Report()
    try:
        zf = zipfile.ZipFile(a.zip)
    except (OSError, zipfile.BadZipFile) as e:
        print(f"ERROR: {a.zip}: zip: could not unzip file ({e})")
        return 1
    with zf:
        got = validate(a.zip, zf, rep, a.new, a.check_urls)
        if got:
            pkg, _ = got
            files(zf, rep, pkg, a.allow_binary)
            tmp = tempfile.mkdtemp(prefix="check_zip_")
            try:
                zf.extractall(tmp)
                bandit(tmp, rep, tmp)  # the site scans the whole extraction folder
                secrets(tmp, rep)
                site_flake8(tmp, rep, tmp)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    rep.print()
    n = sum(1 for level, *_ in rep.lines if level != "NOTE")
    print(f"check_zip: {n} problem(s) in {a.zip}" if n else f"check_zip: {a.zip} passes")
    return 1 if rep.failed() else 0


if __name__ == "__main__":
    sys.exit(main())
