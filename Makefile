# Everything a fresh clone needs: `make demo` and `make test` set themselves up.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: setup demo test serve lint bench fuzz load eval

# A Python below 3.11 (macOS's /usr/bin/python3 is 3.9) would make the venv, then fail in pip on "No matching distribution".
$(STAMP): requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "bgremove needs Python 3.11 or newer; $(PYTHON) is %s. Run make PYTHON=python3.12 (or another 3.11+)" % sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

setup: $(STAMP)  ## create .venv with the pinned dependencies and verify the model
	$(PY) scripts/fetch_model.py

demo: setup  ## cut out the example photos into demo-output/
	$(PY) -m handler examples/ -o demo-output/
	@echo "cut-outs written to demo-output/"

test: setup  ## run the whole test suite
	$(PY) -m pytest

serve: setup  ## the API on http://127.0.0.1:3000 like `sam local start-api`, with an S3 server in-process holding examples/ (PORT=..., SERVE_ARGS=--http-api)
	$(PY) scripts/serve.py --local-s3 --port $(or $(PORT),3000) $(SERVE_ARGS)

lint: $(STAMP)  ## ruff, hadolint on the Dockerfile, cfn-lint on template.yaml as written and as SAM expands it
	$(VENV)/bin/ruff check .
	$(VENV)/bin/hadolint Dockerfile
	$(PY) scripts/lint_template.py template.yaml

eval: setup  ## mask quality (MAE, maxFβ, boundary F), grain and detail robustness, eval-results/edges.png; EVAL_PHOTOS=dir for other photos
	$(PY) scripts/eval.py $(EVAL_PHOTOS) $(EVAL_ARGS)

bench: setup  ## ours vs rembg (installed into .bench-venv/ on first use) on the same photos: table + bench-results/bench.json; then cut-out URLs, first GET vs stored: bench-results/cutouts.json (Linux x86_64: reads /proc)
	$(PY) scripts/bench.py $(BENCH_ARGS)
	$(PY) scripts/bench_cutouts.py

fuzz: setup  ## atheris on the decode path for FUZZ_SECONDS (default 60), seeded from tests/corpus; findings in fuzz-findings/ (Linux x86_64, Python 3.11-3.13)
	$(PY) scripts/fuzz_decode.py --seconds $(or $(FUZZ_SECONDS),60)

load: setup  ## LOAD_REQUESTS (default 300) concurrent mixed requests to scripts/serve.py on 127.0.0.1: throughput, latency, statuses, RSS (Linux: reads /proc)
	$(PY) scripts/load.py --requests $(or $(LOAD_REQUESTS),300) $(LOAD_ARGS)

.PHONY: cost
cost: setup  ## per Lambda memory size: median time, GB-s and $ per 1,000 images inside that size's CPU quota (root; COST_ARGS="--repeats 5")
	$(PY) scripts/cost.py --json bench-results/cost.json $(COST_ARGS)
