# The README's two commands: `make demo` (set up + main job) and `make test` (set up + tests).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup demo test test-all lint docs bench clean browser-test gpu-data

setup: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "deepres needs Python >= 3.11 (PYTHON=$(PYTHON))"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# This exact pair installs from local disk on the project's machines (see README).
	$(PY) -m pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/deepres train

# One pytest-xdist worker per core of the project's 2-core machines (tests/conftest.py gives
# each worker, and the commands it starts, one thread).
test: $(STAMP)
	$(PY) -m pytest -q -n 2 --durations=25

test-all: $(STAMP)
	$(PY) -m pytest -q -m ''

# The documentation site (MkDocs, Material): docs/ into site/; --strict fails on any broken
# link or reference. The command-line page is generated from the parser (docs/hooks.py).
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks docs reports

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache

# The web page of `deepres serve` in a real browser: Debian's Chromium and its driver, and
# selenium; the test skips (saying so) where they are missing.
browser-test: $(STAMP)
	sudo apt-get install -y chromium chromium-driver || apt-get install -y chromium chromium-driver
	$(PY) -m pip install -q selenium
	$(PY) -m pytest -q tests/serve/test_serve.py -k browser

# The one-shot GPU check needs the CIFAR-10 archive inside the repository when only the
# repository travels to the GPU machine: copied into gpu-data/ (ignored by git), then there
# `bash benchmarks/device_check.sh gpu-data/cifar10-jpg.tar.gz device-check.json`.
CIFAR_ARCHIVE ?= ../shared/datasets/cifar10-jpg.tar.gz
gpu-data:
	mkdir -p gpu-data
	cp $(CIFAR_ARCHIVE) gpu-data/cifar10-jpg.tar.gz
