"""The README's Python API example runs as written, from any working directory."""
import os
import re
import sqlite3
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def readme_example():
    text = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) == 1, "the README should hold exactly one Python example"
    return blocks[0]


def test_readme_python_example_runs_from_anywhere(tmp_path, plugins_dir):
    script = tmp_path / "example.py"
    script.write_text(readme_example(), encoding="utf-8")
    env = dict(os.environ, PYTHONPATH=plugins_dir)  # the folder holding `mine_clusters`
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    headline = re.search(r"H\*_max = (\d+) m, global optimum (\d+) m, (\d+) clusters, "
                         r"unassigned ([\d.]+) %, multiple ([\d.]+) %", proc.stdout)
    assert headline, proc.stdout
    h_max, h_global, n_clusters = (int(headline.group(k)) for k in (1, 2, 3))
    assert 1000 <= h_global <= 20000 and 1000 <= h_max <= 20000 and n_clusters > 0
    assert 0.0 <= float(headline.group(4)) <= 100.0

    # five polygon rows: ids of the bundled sample (read here with sqlite), valid statuses
    con = sqlite3.connect(os.path.join(ROOT, "resources", "sample", "mine_polygons.gpkg"))
    fids = {r[0] for r in con.execute('SELECT fid FROM "mine_polygons"')}
    rows = [line.split(" ", 4) for line in lines[-5:]]
    assert len(rows) == 5
    for fid, cid, h, _prim, status in rows:
        assert int(fid) in fids
        assert int(cid) >= 1 and 1000.0 <= float(h) <= 20000.0
        assert status.rsplit(" ", 1)[-1] in ("assigned", "unassigned", "multiple")
