# peerprobe: `make run` and `make test` each set up everything they need on a fresh machine.
VENV    := .venv
PYTHON  ?= python3
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed-stamp

.PHONY: run predict test setup system-deps ui-deps lint typecheck pytest bench bench-lab bench-flow clean

# The experiment on the embedded lab: a local Prefect server with its UI and `peerprobe serve` are started
# (or reused) and left running; reports go to out/.
run: setup
	$(BIN)/peerprobe serve --background
	@mkdir -p out
	$(BIN)/peerprobe run --json out/report.json --junit out/junit.xml --markdown out/report.md --html out/report.html

predict: setup
	$(BIN)/peerprobe predict

test: setup ui-deps lint typecheck pytest

setup: $(STAMP) system-deps

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --editable '.[dev]'
	touch $(STAMP)

# The lab needs iproute2 and iptables from Debian, the HTML report graphviz; installed when missing (CI and
# developers are root).
system-deps:
	@scripts/system-deps.sh

# The UI check (tests/ui) drives Debian's Chromium, headless: `make test` installs it so the check runs in CI.
ui-deps:
	@scripts/system-deps.sh --with-chromium

lint:
	$(BIN)/ruff format --check peerprobe flows tasks tests bench
	$(BIN)/ruff check peerprobe flows tasks tests bench
	$(BIN)/lint-imports

typecheck:
	$(BIN)/mypy

# Four workers on two cores: most lab tests wait on probes, processes and servers. loadscope keeps a module (or
# class) on one worker, as its module-scoped labs and their names are its own.
pytest:
	$(BIN)/pytest -n 4 --dist loadscope

bench: setup
	$(BIN)/python bench/predict.py

bench-lab: setup
	$(BIN)/python bench/lab.py

bench-flow: setup
	$(BIN)/python bench/flow.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
