# Two entry points for a fresh machine with Python 3.11+: `make demo` and `make test`.
# Both bootstrap .venv from the pinned requirements.lock by themselves.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint bench clean venv browser calibrate validate numbers

venv: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required, found " + sys.version.split()[0])'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/defection run --report report.html

# The browser tests (and PNG export) drive Debian's chromium, /usr/bin/chromium. Installed here when it is
# missing and we may (root with apt-get, as in CI); otherwise those tests are skipped outside CI.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian's chromium for the browser tests"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "chromium not found: 'apt-get install chromium' to run the browser tests (skipped outside CI)"; \
	  fi; }

# The suite runs in TEST_WORKERS processes (pytest-xdist; work stealing evens out the few long tests): on the 2-core
# machine it kept about one core busy when run in one process (docs/performance.md, "The test suite").
# While `make lint` runs (mypy keeps one core busy for a minute), a one-day run on the other core compiles the Numba
# kernels into their cache, so that the workers load them instead of each compiling them on a fresh clone.
TEST_WORKERS ?= 2
test: $(STAMP) browser
	@$(BIN)/python -c 'from defection.explore.points import prime; prime()' & warm=$$!; \
	  $(MAKE) --no-print-directory lint || { kill $$warm 2>/dev/null; exit 1; }; \
	  wait $$warm || echo "compiling the kernels ahead of the tests failed; the tests compile them"
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist worksteal

# Style, formatting, types and the layer rules (pyproject.toml [tool.importlinter]); `make test` runs it first.
lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/ruff format --check src tests benchmarks examples
	$(BIN)/mypy
	$(BIN)/lint-imports

# Every figure README.md and docs/ quote: `defection claims` at its defaults (docs/validation/claims.json), the worked
# examples' `defection optimize` runs (docs/validation/optimize-*.json), then the
# worlds of docs/numbers.toml (shipped posterior, fixed seed); all stored in numbers.duckdb; write
# docs/validation/numbers.json and rewrite the marked figures (<!-- n:KEY -->...<!-- /n -->). About 5 minutes on a
# 2-core machine. tests/test_numbers.py checks them.
numbers: $(STAMP)
	$(BIN)/defection claims --json --db numbers.duckdb > docs/validation/claims.json.tmp
	mv docs/validation/claims.json.tmp docs/validation/claims.json
	$(BIN)/python -m defection.report.numbers --db numbers.duckdb

bench: $(STAMP)
	$(BIN)/defection bench --agents 1000000 --days 100

# The calibrated model the commands use by default (docs/calibration.md, "The shipped posterior"); a fixed seed.
# Run it on a committed tree: the posterior records the code version and the case library's hash.
calibrate: $(STAMP)
	@mkdir -p src/defection/data/posterior
	$(BIN)/defection calibrate --seed 1 --particles 96 --generations 8 --temperature-schedule ess --max-minutes 68 --workers 2 --db calibration.duckdb --output src/defection/data/posterior/default.json.tmp --report calibration.html --json > docs/validation/calibration.json.tmp
	mv src/defection/data/posterior/default.json.tmp src/defection/data/posterior/default.json
	mv docs/validation/calibration.json.tmp docs/validation/calibration.json
	@echo "wrote src/defection/data/posterior/default.json, calibration.html and docs/validation/calibration.json"

# The backtest of the whole case library (a fixed seed): 4-fold cross-validation with cases held out in groups
# (leave-one-case-out, the command's default, needs 17 calibrations: about 3 hours on a 2-core machine); the
# validation report (validation.html), the PNG and the JSON summary (docs/calibration.md, "How the backtest is
# scored"), and the few fields of it the package ships for `defection brief` (src/defection/data/backtest-summary.json). About 45 minutes on a 2-core machine (each fold: the prior and one or two generations).
validate: $(STAMP)
	@mkdir -p docs/validation
	$(BIN)/defection backtest --seed 1 --folds 4 --particles 32 --generations 5 --max-minutes 14 --report docs/validation/validation.html --plot backtest.png --json > docs/validation/backtest.json.tmp
	mv docs/validation/backtest.json.tmp docs/validation/backtest.json
	$(BIN)/python -m defection.report.backtest_summary
	@echo "wrote docs/validation/validation.html, backtest.png, docs/validation/backtest.json and its packaged summary"

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .ruff_cache
