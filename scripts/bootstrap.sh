#!/usr/bin/env bash
# Make a fresh machine ready for smlocal: the project's virtual environment and, unless
# SMLOCAL_NO_DOCKER=1, a running Docker engine (environment.md E1). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "bootstrap: creating .venv"
  "$PYTHON" -m venv .venv
fi
# torch==2.13.0 resolves to the CPU wheel on these machines (E7); the pin keeps resolvers away
# from the multi-GB CUDA build.
# find_spec, not import: importing the SDK is slow and chatty.
if ! .venv/bin/python -c "import importlib.util as u, sys; sys.exit(any(u.find_spec(m) is None
    for m in ('container', 'harness', 'torch', 'sagemaker', 'pytest', 'watchfiles')))" \
   || [ pyproject.toml -nt .venv/.installed ]; then
  echo "bootstrap: installing smlocal[dev] into .venv"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
  touch .venv/.installed
fi
# SDK 3.x (ModelTrainer, ModelBuilder) cannot share .venv with 2.x: a second environment for
# tests/sdk3 and 3.x users (README "SDK 2.x and 3.x"); `make test` runs tests/sdk3 with it.
if [ ! -x .venv-sdk3/bin/python ]; then
  echo "bootstrap: creating .venv-sdk3"
  "$PYTHON" -m venv .venv-sdk3
fi
# The installed distribution's version, not an import of the SDK (slow, and chatty).
if ! .venv-sdk3/bin/python -c "import importlib.metadata as m, importlib.util as u, sys
sys.exit(m.version('sagemaker').split('.')[0] != '3'
         or any(u.find_spec(n) is None for n in ('harness', 'torch', 'pytest')))" 2>/dev/null \
   || [ pyproject.toml -nt .venv-sdk3/.installed ]; then
  echo "bootstrap: installing smlocal[sdk3] (SageMaker SDK 3.x) into .venv-sdk3"
  .venv-sdk3/bin/python -m pip install --quiet --disable-pip-version-check -e '.[sdk3]'
  touch .venv-sdk3/.installed
fi

if [ "${SMLOCAL_NO_DOCKER:-0}" = "1" ]; then
  exit 0
fi
# curl: one of the clients the tests send an over-limit body with (S4).
if ! command -v dockerd >/dev/null 2>&1 || ! command -v debootstrap >/dev/null 2>&1 \
   || ! command -v docker-compose >/dev/null 2>&1 || ! command -v curl >/dev/null 2>&1; then
  echo "bootstrap: installing the Docker engine, docker-compose, debootstrap and curl (apt)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io docker-compose debootstrap curl \
    >/dev/null
fi
if ! docker info >/dev/null 2>&1; then
  echo "bootstrap: starting dockerd (log: /tmp/smlocal-dockerd.log)"
  nohup dockerd >/tmp/smlocal-dockerd.log 2>&1 &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 1
  done
  docker info >/dev/null 2>&1 || { echo "bootstrap: dockerd did not start; see /tmp/smlocal-dockerd.log" >&2; exit 1; }
fi
