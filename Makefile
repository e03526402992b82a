# The two commands a newcomer needs: `make run` (the local stack) and `make test` (every test).
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test install lint bench bench-load bench-scale sample-build clean

$(STAMP): requirements.txt requirements-dev.txt package.json pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps -e .
	npm install --no-audit --no-fund --silent
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(PY) -m local $(if $(AUTH),--auth $(AUTH))

# Types first (seconds), then every test on parallel workers, a module per worker in the order
# collected (the slowest end-to-end modules first). End-to-end tests mostly wait on the local
# stack, so three workers pay off even on two cores.
WORKERS ?= $(shell $(PYTHON) -c 'import os; print(max(3, os.cpu_count() or 1))')
test: $(STAMP)
	$(VENV)/bin/mypy
	$(PY) -m pytest -n $(WORKERS) --dist loadfile --no-loadscope-reorder

lint: $(STAMP)
	$(VENV)/bin/ruff check .

bench: $(STAMP)
	$(PY) -m bench.release_flow
	$(PY) -m bench.scheduler_tick

bench-load: $(STAMP)
	$(PY) -m bench.load --releases 200

bench-scale: $(STAMP)
	$(PY) -m bench.scale --sizes 10,1000,10000

# Build the sample web app as VERSION and tell the running local stack about it.
sample-build: $(STAMP)
	$(PY) examples/build.py --version $(VERSION) $(ARGS)

clean:
	rm -rf $(VENV) node_modules .slipway
