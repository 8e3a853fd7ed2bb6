#!/usr/bin/env bash
# Printed at the end of `make demo`: what runs where.
source "$(dirname "$0")/running-stack-env.sh"
api="http://127.0.0.1:${PLANTOPS_API_PORT}"
cat <<TXT

PlantOps is running on this machine (stop everything with: make down)

  webapp          http://127.0.0.1:${PLANTOPS_WEBAPP_PORT}/          upload a plant photo
  inference API   ${api}/docs      curl -F file=@photo.jpg ${api}/v1/predict
  MLflow          ${PLANTOPS_MLFLOW_TRACKING_URI}          experiment 'plantops', model 'plantops-classifier'
  S3 (SeaweedFS)  http://${PLANTOPS_S3_ENDPOINT}          bucket ${PLANTOPS_S3_BUCKET}: raw/ fmt/ agg/
  MySQL           ${PLANTOPS_MYSQL_HOST}:${PLANTOPS_MYSQL_PORT}/${PLANTOPS_MYSQL_DATABASE}   table plants_data
  image mirror    ${PLANTOPS_MIRROR_BASE_URL:-none (canonical URLs)}

Logs: ${PLANTOPS_STATE_DIR}/logs/   Status: make status
TXT
