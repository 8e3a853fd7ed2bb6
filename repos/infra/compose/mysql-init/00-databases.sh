#!/bin/bash
# First start of the MySQL container only (docker-entrypoint-initdb.d): the MLflow and
# Airflow metadata databases beside plants_data, owned by the application account.
set -euo pipefail
mysql --user=root --password="${MYSQL_ROOT_PASSWORD}" <<SQL
CREATE DATABASE IF NOT EXISTS \`${PLANTOPS_MLFLOW_DATABASE}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
CREATE DATABASE IF NOT EXISTS \`${PLANTOPS_AIRFLOW_DATABASE}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
GRANT ALL PRIVILEGES ON \`${PLANTOPS_MLFLOW_DATABASE}\`.* TO '${MYSQL_USER}'@'%';
GRANT ALL PRIVILEGES ON \`${PLANTOPS_AIRFLOW_DATABASE}\`.* TO '${MYSQL_USER}'@'%';
FLUSH PRIVILEGES;
SQL
