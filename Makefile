# The two commands: `make demo` (the main job on samples/) and `make test`. Both set themselves up.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test test-random lint bench lock clean-workspace

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $(STAMP)

# constraints.txt from a fresh resolve of pyproject.toml (after changing dependencies)
lock:
	rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock
	.venv-lock/bin/pip install --quiet --disable-pip-version-check -e '.[dev]'
	{ sed -n '1,3p' constraints.txt; .venv-lock/bin/pip freeze --exclude-editable; } > constraints.new
	mv constraints.new constraints.txt && rm -rf .venv-lock

# the retraining flow with params.yaml's recipe; the production loop on the staged model (batch inference
# over the drop into the prediction log, drift monitoring of that window); then every pretraining recipe
# on the same dataset (not registered, so the flow's foundation model stays the current one): each prints
# its linear-probe score
RECIPES := $(sort $(basename $(notdir $(wildcard schemas/recipes/*.yaml))))
demo: $(STAMP)
	$(BIN)/ecgops run --drop samples
	$(BIN)/ecgops predict samples --model ptbxl-superdiagnostic@staging
	$(BIN)/ecgops predictions --limit 5
	$(BIN)/ecgops monitor ptbxl-superdiagnostic --stage staging
	$(BIN)/ecgops recipes
	for recipe in $(RECIPES); do $(BIN)/ecgops pretrain --recipe $$recipe --no-register || exit 1; done

# two pytest-xdist workers, each taking whole test files (module fixtures stay in one process) in
# collection order, which puts the longest files first (tests/conftest.py LONGEST_FILES; xdist's own
# reorder, by number of tests, would leave them for last); TEST_WORKERS=0 runs in this process. ruff runs
# first; mypy (~90 s cold, one core) runs beside the tests and its report follows theirs: either failing
# fails the target
TEST_WORKERS ?= 2
test: $(STAMP)
	$(BIN)/ruff check .
	@report=$$(mktemp); $(BIN)/mypy > $$report 2>&1 & mypy=$$!; \
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS); tests=$$?; \
	wait $$mypy; typed=$$?; echo "mypy:"; cat $$report; rm -f $$report; \
	test $$tests -eq 0 && test $$typed -eq 0

# the suite in a random order (pytest-randomly); SEED=N repeats an order, the seed is printed at the top
test-random: $(STAMP)
	$(BIN)/pytest -p randomly $(if $(SEED),--randomly-seed=$(SEED))

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python benchmarks/ingest.py

clean-workspace:
	rm -rf .ecgops data
