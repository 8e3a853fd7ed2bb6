#!/usr/bin/env bash
# Exit 0 when the MLflow registry of the running stack has a `champion` for the
# registered model, 1 when it has none (`make demo` then trains one).
source "$(dirname "$0")/running-stack-env.sh"
model=${PLANTOPS_MODEL_NAME:-plantops-classifier}
url="${PLANTOPS_MLFLOW_TRACKING_URI}/api/2.0/mlflow/registered-models/alias?name=${model}&alias=champion"
version=$(curl -fsS "$url" 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["model_version"]["version"])' 2>/dev/null) || exit 1
echo "champion: ${model} version ${version}"
