#!/usr/bin/env bash
# Sourced by podman-setup.sh and `engine`: which container engine PlantOps uses here, and
# podman's settings. Docker where a daemon answers, else podman with the settings that
# podman-setup.sh writes under PLANTOPS_PODMAN_HOME (default: a folder of this user's,
# outside the checkout, so builds stay cached between clones on the same machine).
if [[ -z "${PLANTOPS_ENGINE:-}" ]]; then
  if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
    PLANTOPS_ENGINE=docker
  else
    PLANTOPS_ENGINE=podman
  fi
fi
export PLANTOPS_ENGINE
export PLANTOPS_PODMAN_HOME="${PLANTOPS_PODMAN_HOME:-${XDG_DATA_HOME:-$HOME/.local/share}/plantops/podman}"
if [[ "$PLANTOPS_ENGINE" == podman ]]; then
  export CONTAINERS_CONF="$PLANTOPS_PODMAN_HOME/containers.conf"
  export CONTAINERS_STORAGE_CONF="$PLANTOPS_PODMAN_HOME/storage.conf"
  # Podman's Dockerfile builds drop HEALTHCHECK unless the image format is Docker's.
  export BUILDAH_FORMAT=docker
fi
export PLANTOPS_DEBIAN_IMAGE=localhost/debian:bookworm-min
export PLANTOPS_PYTHON_IMAGE=localhost/plantops/python:3.11-bookworm
# The FROM names in repos/*/Dockerfile and images/*/Dockerfile.
export PLANTOPS_PYTHON_FROM_NAMES="docker.io/library/python:3.11.7-slim-bookworm docker.io/library/python:3.11.11-slim-bookworm"
