#!/bin/bash
# Usage: make-secrets.sh EXAMPLE OUT. Write OUT from EXAMPLE (an env file), replacing every CHANGE-ME value with a fresh
# random one (and a real Fernet key for Airflow), so no two installs share a secret;
# DOCKER_GID becomes this host's docker group, when there is one.
set -euo pipefail
example="$1"
out="$2"
if [[ -f "$out" ]]; then
    echo "$out exists; leaving it as it is"
    exit 0
fi
random() { python3 -c 'import secrets; print(secrets.token_urlsafe(24))'; }
fernet() { python3 -c 'import base64, os; print(base64.urlsafe_b64encode(os.urandom(32)).decode())'; }
while IFS= read -r line; do
    if [[ "$line" == AIRFLOW_FERNET_KEY=* ]]; then
        echo "AIRFLOW_FERNET_KEY=$(fernet)"
    elif [[ "$line" == DOCKER_GID=* ]] && docker_gid=$(getent group docker | cut -d: -f3) \
        && [[ -n "$docker_gid" ]]; then
        echo "DOCKER_GID=$docker_gid"  # this host's group of /var/run/docker.sock
    elif [[ "$line" =~ ^([A-Z0-9_]+)=CHANGE-ME ]]; then
        echo "${BASH_REMATCH[1]}=$(random)"
    else
        echo "$line"
    fi
done < "$example" > "$out"
chmod 600 "$out"
echo "wrote $out with fresh secrets"
