# The two commands of README.md, and the steps they are made of.
PY := .venv/bin/python
SMLOCAL := .venv/bin/smlocal
# Where CoLA comes from: the official address by default, or a local copy of the zip.
COLA ?= https://nyu-mll.github.io/CoLA/cola_public_1.1.zip

.PHONY: bootstrap test lint demo

bootstrap:
	./scripts/bootstrap.sh

lint: bootstrap
	.venv/bin/ruff check .
	.venv/bin/mypy

# Everything CI runs: lint, then the whole test suite (Docker and SDK tests included).
test: bootstrap
	.venv/bin/ruff check .
	.venv/bin/mypy
	.venv/bin/pytest

# The main job: prepare CoLA, train the embedded BERT, serve it, invoke it.
demo: bootstrap
	$(SMLOCAL) data cola --source "$(COLA)" --out .smlocal/data/cola
	$(SMLOCAL) train --data .smlocal/data/cola --work-dir .smlocal/jobs/demo --model-out .smlocal/model
