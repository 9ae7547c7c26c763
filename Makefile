# Two entry points for a fresh machine (README.md): `make report` and `make test`.
# Both create .venv with a Python >= 3.12 found by tools/find_python.sh and install the project
# with the versions in constraints.txt (those the committed reports/ were made with).
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: report test test-slow test-all install lint docs bench sbc clean-venv

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || "$$(tools/find_python.sh)" -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e ".[dev]"
	@touch $(STAMP)

install: $(STAMP)

report: $(STAMP)
	$(VENV)/bin/rebayes report --data ivig_secondary_review --output reports/ivig_secondary_review
	$(VENV)/bin/rebayes report --data ivig_rsa --output reports

test: $(STAMP)
	$(PY) -m pytest -m "not slow"

test-slow: $(STAMP)
	$(PY) -m pytest -m slow

test-all: $(STAMP)
	$(PY) -m pytest

# The documentation site (docs/, API reference from the docstrings) into site/; warnings fail it.
DOCS_STAMP := $(VENV)/.installed-docs
$(DOCS_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -c constraints.txt -e ".[dev,docs]"
	@touch $(DOCS_STAMP)

docs: $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/mypy src/rebayes

bench: $(STAMP)
	$(PY) benchmarks/bench_fit.py
	$(PY) benchmarks/bench_speed.py
	$(PY) benchmarks/bench_report.py
	$(PY) benchmarks/bench_bias.py

sbc: $(STAMP)
	$(PY) benchmarks/sbc.py --sims 200 --seed 20230113

clean-venv:
	rm -rf $(VENV)
