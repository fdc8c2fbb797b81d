# Mine Clusters: set-up, demo, tests and the plugin zip on Debian 12 (QGIS 3.22) or newer.
# `make setup demo` then `make test`. Run as root or as a user with sudo.
SHELL := /bin/bash
SYSPY := /usr/bin/python3
VENV ?= .venv
PY := $(VENV)/bin/python
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# looked up when a recipe runs (QGIS may be installed by `setup` in the same make call)
QGIS_PROCESS = $$(command -v qgis_process.bin || command -v qgis_process)
PROFILE_DIR ?= $(HOME)/.local/share/QGIS/QGIS3/profiles/default
PLUGINS_DIR := $(PROFILE_DIR)/python/plugins
OUT ?= $(CURDIR)/out/demo
# Debian's numpy 1.x stack (scipy, matplotlib, QGIS) must keep working: never numpy 2. shapely 2.0.x
# bundles GEOS 3.11, the GEOS that Debian 12's QGIS loads into qgis_process (2.1+ expects 3.12+).
PIP_PACKAGES := "numpy<2" "shapely>=2,<2.1" "fastcluster<1.3" pytest hypothesis
export QT_QPA_PLATFORM ?= offscreen
export XDG_RUNTIME_DIR ?= /tmp/runtime-$(shell id -u)

.PHONY: setup system venv plugin demo test lint test-core test-fuzz test-qgis test-e2e test-qgis344 test-qgis340 zip sample-data model clean

setup: system venv plugin

system:
	$(SUDO) apt-get update
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y qgis python3-qgis python3-venv python3-pip

venv:
	test -x $(PY) || $(SYSPY) -m venv --system-site-packages $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q $(PIP_PACKAGES)
	$(PY) -c "import numpy, scipy, shapely, fastcluster, qgis.core; print('venv ok: numpy', numpy.__version__, 'shapely', shapely.__version__)"

plugin:
	mkdir -p $(PLUGINS_DIR)
	ln -sfn $(CURDIR) $(PLUGINS_DIR)/mine_clusters
	-$(QGIS_PROCESS) plugins enable mine_clusters >/dev/null 2>&1  # exits 1 if already enabled
	$(SYSPY) scripts/configure_profile.py $(PROFILE_DIR) "$$($(PY) -c 'import site; print(site.getsitepackages()[0])')"
	@echo "plugin: $(PLUGINS_DIR)/mine_clusters -> $(CURDIR) (enabled in the default QGIS profile)"

demo: | $(XDG_RUNTIME_DIR)
	mkdir -p $(OUT)
	rm -f $(OUT)/*.gpkg
	PYTHONPATH="$$($(PY) -c 'import site, os; print(os.pathsep.join(site.getsitepackages()))')" \
	$(QGIS_PROCESS) --json run mineclusters:clusterlocaloptimum -- \
	  POLYGONS=$(CURDIR)/resources/sample/mine_polygons.gpkg \
	  POINTS=$(CURDIR)/resources/sample/mine_points.gpkg \
	  PRIMARY_FIELD=primary_commodity COMMODITIES_FIELD=commodities \
	  OUTPUT_POLYGONS=$(OUT)/clustered_polygons.gpkg OUTPUT_POINTS=$(OUT)/clustered_points.gpkg \
	  OUTPUT_CLUSTERS=$(OUT)/clusters.gpkg OUTPUT_SENSITIVITY=$(OUT)/sensitivity.csv \
	  OUTPUT_PLOT=$(OUT)/pareto.png OUTPUT_HISTOGRAM=$(OUT)/thresholds.png OUTPUT_REPORT=$(OUT)/report.html \
	  > $(OUT)/result.json 2> $(OUT)/qgis_process.log \
	  || { cat $(OUT)/qgis_process.log; exit 1; }
	@$(SYSPY) -c "import json, sys; r = json.load(open(sys.argv[1]))['results']; \
	print('Mine Clusters demo (real sample data, eastern India):'); \
	[print(f'  {k:20s} {v}') for k, v in sorted(r.items())]; \
	print('Open the .gpkg files in QGIS (styled by primary commodity); the report (numbers and plots) is', r['OUTPUT_REPORT'])" $(OUT)/result.json

test: lint test-core test-fuzz test-qgis test-e2e

# The plugin repository's checks on the zip of the work tree: flake8 + flake8-qgis, the Qt6 rules,
# plugins.qgis.org's validator with bandit and detect-secrets (scripts/check_plugin.sh says more).
lint:
	bash scripts/check_plugin.sh

$(XDG_RUNTIME_DIR):
	mkdir -p -m 700 $@

# Each layer must collect and pass tests: pytest exits 5 when it collected none, which fails here.
test-core:
	$(PY) -m pytest -q -p no:cacheprovider tests/core
test-fuzz:
	$(PY) -m pytest -q -p no:cacheprovider tests/fuzz
test-qgis: | $(XDG_RUNTIME_DIR)
	$(PY) -m pytest -q -p no:cacheprovider tests/qgis
test-e2e: | $(XDG_RUNTIME_DIR)
	$(PY) -m pytest -q -p no:cacheprovider tests/e2e

# tests/qgis and tests/e2e under other QGIS versions, in a Debian chroot (root or sudo; the chroot is
# built once under /var/tmp and reused; the committed HEAD is tested): 3.44 LTR (Debian forky; also
# the core and fuzz suites there, on numpy 2, shapely 2.2 and Python 3.14), 3.40 (Debian 13).
CHROOT_ENV = env QGIS_CHROOT_ALLOW_NO_SHARED_DATA=$(QGIS_CHROOT_ALLOW_NO_SHARED_DATA)
test-qgis344:
	$(SUDO) $(CHROOT_ENV) bash scripts/qgis_chroot.sh forky
	$(SUDO) $(CHROOT_ENV) bash scripts/qgis_chroot.sh forky tests/core tests/fuzz
test-qgis340:
	$(SUDO) $(CHROOT_ENV) bash scripts/qgis340_chroot.sh

zip:
	mkdir -p build
	git archive --format=zip --prefix=mine_clusters/ -o build/mine_clusters.zip HEAD
	@echo "plugin zip: $(CURDIR)/build/mine_clusters.zip"

sample-data:
	$(PY) scripts/make_sample_data.py

model:
	$(PY) scripts/make_model.py

clean:
	rm -rf build out
