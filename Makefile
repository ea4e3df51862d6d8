# The two commands of README.md, and the steps they are made of.
PY := .venv/bin/python
SMLOCAL := .venv/bin/smlocal
# Where CoLA comes from: the official address by default, or a local copy of the zip.
COLA ?= https://nyu-mll.github.io/CoLA/cola_public_1.1.zip

.PHONY: bootstrap test lint demo image

bootstrap:
	./scripts/bootstrap.sh

lint: bootstrap
	.venv/bin/ruff check .
	.venv/bin/mypy

# The smlocal image, offline: the debootstrap base and the wheelhouse are made once, then reused;
# an unchanged tree rebuilds from docker's layer cache in seconds.
image: bootstrap
	$(SMLOCAL) image build

# Everything CI runs: lint, the image, then the whole test suite (Docker and SDK tests included):
# SDK 2.x's tests in .venv, then tests/sdk3 in .venv-sdk3 (SDK 3.x; the two cannot share one).
# The image is built here rather than on first use inside pytest, so its build log stays readable
# and a broken build stops CI before the tests. The reference image (the AWS serving stack, for
# the differential contract tests: docs/fidelity.md) is built, and cached, the same way.
test: bootstrap
	.venv/bin/ruff check .
	.venv/bin/mypy
	if [ "$${SMLOCAL_NO_DOCKER:-0}" != 1 ]; then $(SMLOCAL) image build $(if $(filter true 1,$(CI)),--verbose); fi
	if [ "$${SMLOCAL_NO_DOCKER:-0}" != 1 ]; then $(SMLOCAL) image build --reference $(if $(filter true 1,$(CI)),--verbose); fi
	.venv/bin/pytest --ignore=tests/sdk3
	.venv-sdk3/bin/pytest tests/sdk3

# The main job: CoLA -> train the embedded BERT -> serve it with docker compose -> invoke ->
# contract-test -> down (scripts/demo.sh).
demo: bootstrap
	./scripts/demo.sh "$(COLA)"
