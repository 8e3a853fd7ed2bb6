# Source me: the environment of the running stack (written by `make up`), for the
# commands that talk to it (ingest, train, the API and the webapp).
source "$(dirname "${BASH_SOURCE[0]}")/stack-env.sh"
if [[ ! -f $PLANTOPS_STATE_DIR/env ]]; then
  echo "The local stack is not running: run 'make up' first." >&2
  return 1
fi
source "$PLANTOPS_STATE_DIR/env"
