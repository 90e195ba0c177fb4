#!/usr/bin/env bash
# Start the MLflow tracking server and model registry on loopback (127.0.0.1 only).
#
#   mlflow/server.sh                                   # SQLite ./mlflow.db, artifacts in ./mlartifacts, port 5000
#   MLFLOW_PORT=5001 mlflow/server.sh
#   MLFLOW_BACKEND_STORE_URI=sqlite:///runs/quick/mlflow.db mlflow/server.sh   # browse the quick profile's store
#   MLFLOW_BACKEND_STORE_URI=postgresql://user@127.0.0.1/mlflow mlflow/server.sh
#   MLFLOW_ARTIFACTS=s3://bucket/mlflow MLFLOW_S3_ENDPOINT_URL=http://127.0.0.1:8333 \
#     AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=... mlflow/server.sh
#
# The server proxies artifacts (`--artifacts-destination`), so clients need no S3 credentials: point them at it
# with MLFLOW_TRACKING_URI=http://127.0.0.1:${MLFLOW_PORT:-5000}. Relative paths are relative to the repository
# root, where the embedded (serverless) default also keeps mlflow.db. See mlflow/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."

backend="${MLFLOW_BACKEND_STORE_URI:-sqlite:///mlflow.db}"
artifacts="${MLFLOW_ARTIFACTS:-./mlartifacts}"
port="${MLFLOW_PORT:-5000}"

if [[ "$artifacts" == s3://* ]]; then
  : "${MLFLOW_S3_ENDPOINT_URL:?s3:// artifacts need MLFLOW_S3_ENDPOINT_URL (the S3 server to use)}"
  : "${AWS_ACCESS_KEY_ID:?s3:// artifacts need AWS_ACCESS_KEY_ID in the environment}"
  : "${AWS_SECRET_ACCESS_KEY:?s3:// artifacts need AWS_SECRET_ACCESS_KEY in the environment}"
  # Credentials come from the environment only, never from ~/.aws files.
  export AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_CONFIG_FILE=/dev/null
fi

exec mlflow server --backend-store-uri "$backend" --artifacts-destination "$artifacts" \
  --host 127.0.0.1 --port "$port"
