#!/usr/bin/env bash
# The main job, end to end: CoLA -> train the embedded BERT (the image's training runtime, on the
# host) -> serve it in the smlocal image with `docker compose up` -> invoke -> contract-test ->
# down. Usage: scripts/demo.sh [PATH_OR_URL_OF_cola_public_1.1.zip]
#
# Knobs (environment), for a quick run or one beside another endpoint:
#   SMLOCAL_DEMO_HYPERPARAMETERS  KEY=VALUE pairs for the training, e.g. "epochs=1
#                                 max-train-samples=256" (default: the recipe's defaults)
#   SMLOCAL_DEMO_CASES            the contract file (default handlers/contract.yaml, whose class
#                                 cases need the fully trained model)
#   SMLOCAL_DATA_DIR, SMLOCAL_MODEL_DIR, SMLOCAL_PORT, COMPOSE_PROJECT_NAME: as in
#                                 docker-compose.yml (where data and model go, the port)
set -euo pipefail
cd "$(dirname "$0")/.."
COLA=${1:-https://nyu-mll.github.io/CoLA/cola_public_1.1.zip}
SMLOCAL=.venv/bin/smlocal
export SMLOCAL_MODEL_DIR=${SMLOCAL_MODEL_DIR:-./.smlocal/model}
export SMLOCAL_DATA_DIR=${SMLOCAL_DATA_DIR:-./.smlocal/data/cola}
export SMLOCAL_PORT=${SMLOCAL_PORT:-8080}
URL=http://127.0.0.1:$SMLOCAL_PORT
HYPERPARAMETERS=()
for pair in ${SMLOCAL_DEMO_HYPERPARAMETERS:-}; do HYPERPARAMETERS+=(-H "$pair"); done

if docker compose version >/dev/null 2>&1; then COMPOSE=(docker compose); else COMPOSE=(docker-compose); fi

step() { printf '\n== %s\n' "$*"; }

step "CoLA from $COLA"
$SMLOCAL data cola --source "$COLA" --out "$SMLOCAL_DATA_DIR"

step "train (the recipe's defaults${SMLOCAL_DEMO_HYPERPARAMETERS:+, with $SMLOCAL_DEMO_HYPERPARAMETERS}; figures in metrics.json)"
$SMLOCAL train --data "$SMLOCAL_DATA_DIR" --model-out "$SMLOCAL_MODEL_DIR" ${HYPERPARAMETERS[@]+"${HYPERPARAMETERS[@]}"}

step "the image (offline; cached after the first build)"
$SMLOCAL image build

step "serve: ${COMPOSE[*]} up"
# On a failure, take the endpoint down; on success it stays up for you to play with.
trap '"${COMPOSE[@]}" down --timeout 5 >/dev/null 2>&1 || true' ERR
"${COMPOSE[@]}" up -d serve

step "wait for /ping 200 (the model loads in the background, S2)"
.venv/bin/python - "$URL" <<'PY'
import sys, time, urllib.error, urllib.request
deadline = time.monotonic() + 240
while True:
    try:
        with urllib.request.urlopen(f"{sys.argv[1]}/ping", timeout=2) as reply:
            print(f"/ping {reply.status}")
            break
    except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
        if time.monotonic() > deadline:
            sys.exit(f"demo: the endpoint never became healthy: {exc}")
        time.sleep(1)
PY

step "invoke"
$SMLOCAL invoke --url "$URL" "Somebody just left - guess who."
$SMLOCAL invoke --url "$URL" "The more you eat, the more you want."
$SMLOCAL invoke --url "$URL" "Gave to book the Mary John."

step "contract tests against the container"
$SMLOCAL contract --target "$URL" --cases "${SMLOCAL_DEMO_CASES:-handlers/contract.yaml}" --wait 240

step "done: the endpoint is still up on $URL (stop it: ${COMPOSE[*]} down)"
