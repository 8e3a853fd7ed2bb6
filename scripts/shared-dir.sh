#!/usr/bin/env bash
# Prints the shared/ folder that holds the datasets (the 400 plant photos, the field
# check): beside this checkout, else beside the repository a local clone was made from
# (`git clone /path/to/plantops "$(mktemp -d)"` has no shared/ beside it). Prints
# nothing when neither has one; the tests then say which variable to set.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
origin="$(git -C "$root" config --get remote.origin.url 2>/dev/null || true)"
for base in "$root/.." "${origin:-/nonexistent}/.."; do
  if [[ -d "$base/shared/datasets" ]]; then
    cd "$base/shared" && pwd
    exit 0
  fi
done
