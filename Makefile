# Two commands a newcomer needs: `make run` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint bench bench-tls bench-micro clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(PY) -m smsc.demo

test: $(STAMP)
	$(PY) -m pytest

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m mypy encoding config routing esme smsc bench tests

bench-micro: $(STAMP)
	$(PY) -m bench.micro

BENCH_STAMP := $(VENV)/.installed-bench

$(BENCH_STAMP): $(STAMP)
	$(PY) -m pip install -q -e '.[test,bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(PY) -m bench.load --standard --out bench-result.json --plot bench-result.png

# make bench's two loads, plain and TLS phases in interleaved pairs (BENCHMARKS.md, issue 13)
bench-tls: $(BENCH_STAMP)
	$(PY) -m bench.load --tls-compare --standard --pairs 5 --tls-checks --out bench-tls.json

clean:
	rm -rf $(VENV) build *.egg-info var
