#!/usr/bin/env bash
# The main job, end to end: CoLA -> train the embedded BERT (the image's training runtime, on the
# host) -> serve it in the smlocal image with `docker compose up` -> invoke -> contract-test ->
# down. Usage: scripts/demo.sh [PATH_OR_URL_OF_cola_public_1.1.zip]
set -euo pipefail
cd "$(dirname "$0")/.."
COLA=${1:-https://nyu-mll.github.io/CoLA/cola_public_1.1.zip}
SMLOCAL=.venv/bin/smlocal
export SMLOCAL_MODEL_DIR=${SMLOCAL_MODEL_DIR:-./.smlocal/model}

if docker compose version >/dev/null 2>&1; then COMPOSE=(docker compose); else COMPOSE=(docker-compose); fi

step() { printf '\n== %s\n' "$*"; }

step "CoLA from $COLA"
$SMLOCAL data cola --source "$COLA" --out .smlocal/data/cola

step "train (the recipe's defaults; figures in metrics.json)"
$SMLOCAL train --data .smlocal/data/cola --model-out "$SMLOCAL_MODEL_DIR"

step "the image (offline; cached after the first build)"
$SMLOCAL image build

step "serve: ${COMPOSE[*]} up"
# On a failure, take the endpoint down; on success it stays up for you to play with.
trap '"${COMPOSE[@]}" down --timeout 5 >/dev/null 2>&1 || true' ERR
"${COMPOSE[@]}" up -d serve

step "wait for /ping 200 (the model loads in the background, S2)"
.venv/bin/python - <<'PY'
import sys, time, urllib.error, urllib.request
deadline = time.monotonic() + 240
while True:
    try:
        with urllib.request.urlopen("http://127.0.0.1:8080/ping", timeout=2) as reply:
            print(f"/ping {reply.status}")
            break
    except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
        if time.monotonic() > deadline:
            sys.exit(f"demo: the endpoint never became healthy: {exc}")
        time.sleep(1)
PY

step "invoke"
$SMLOCAL invoke "Somebody just left - guess who."
$SMLOCAL invoke "The more you eat, the more you want."
$SMLOCAL invoke "Gave to book the Mary John."

step "contract tests against the container"
$SMLOCAL contract --target http://127.0.0.1:8080 --cases handlers/contract.yaml --wait 240

step "done: the endpoint is still up on http://127.0.0.1:8080 (stop it: ${COMPOSE[*]} down)"
