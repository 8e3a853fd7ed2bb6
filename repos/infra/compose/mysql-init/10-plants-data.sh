#!/bin/bash
# First start of the MySQL container only: the plants_data schema and seed, applied from
# repos/orchestration/sql (mounted at /plantops-sql) in file-name order, so the
# orchestration component stays the one owner of its schema.
set -euo pipefail
shopt -s nullglob
for sql_file in /plantops-sql/*.sql; do
    echo "plantops: applying ${sql_file}"
    mysql --user=root --password="${MYSQL_ROOT_PASSWORD}" "${MYSQL_DATABASE}" < "${sql_file}"
done
