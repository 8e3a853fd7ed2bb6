#!/usr/bin/env bash
# Makes podman build and run the PlantOps images on a machine without a Docker engine
# (Debian 12, root, no image registry reachable: see shared/docs/ENVIRONMENT.md, "Containers").
# Idempotent: each step is skipped when its result is already there (a second run takes
# about a second). It says what it installs. Steps:
#   1. Debian packages podman buildah runc debootstrap, when missing (root).
#   2. $PLANTOPS_PODMAN_HOME/containers.conf and storage.conf: runc, cgroupfs, file events,
#      ulimits the sandbox allows, and a storage of our own (never the machine's default one).
#   3. localhost/debian:bookworm-min from debootstrap (no registry can serve a base image).
#   4. The python base from it (Debian's python3 + venv + pip + this machine's CA
#      certificates, which the registry proxy needs), tagged with every FROM name our
#      Dockerfiles use. Rebuilt when the CA certificates change.
# Where a Docker daemon answers, nothing is done: Docker pulls the real python images.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=engine-env.sh
source "$here/engine-env.sh"

say() { echo "podman-setup: $*" >&2; }

if [[ "$PLANTOPS_ENGINE" == docker ]]; then
  say "a Docker daemon answers: using docker, nothing to set up"
  exit 0
fi

# ------------------------------------------------------------------ 1. packages
wanted=(podman buildah runc debootstrap)
missing=()
for pkg in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [[ ${#missing[@]} -gt 0 ]]; then
  if [[ $(id -u) -ne 0 ]]; then
    say "missing Debian packages: ${missing[*]} (sudo apt-get install -y ${missing[*]})"
    exit 1
  fi
  say "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq "${missing[@]}" >/dev/null \
    || { apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null; }
fi

# ------------------------------------------------------------------ 2. settings
mkdir -p "$PLANTOPS_PODMAN_HOME"
write_if_changed() { # path, content: rewritten only when different, so the step is silent
  if [[ ! -f "$1" ]] || [[ "$(cat "$1")" != "$2" ]]; then
    say "writing $1"
    printf '%s\n' "$2" >"$1"
  fi
}
write_if_changed "$CONTAINERS_CONF" "# Written by repos/infra/scripts/podman-setup.sh.
[containers]
# The sandbox refuses raising RLIMIT_NOFILE above its own hard limit.
default_ulimits = [\"nofile=20000:20000\", \"nproc=32768:32768\"]

[engine]
# crun refuses the hybrid cgroup layout here; no systemd to log events to.
runtime = \"runc\"
cgroup_manager = \"cgroupfs\"
events_logger = \"file\""
write_if_changed "$CONTAINERS_STORAGE_CONF" "# Written by repos/infra/scripts/podman-setup.sh: a storage of PlantOps' own.
[storage]
driver = \"overlay\"
graphroot = \"$PLANTOPS_PODMAN_HOME/storage\"
runroot = \"$PLANTOPS_PODMAN_HOME/run\""

# ------------------------------------------------------------------ 3. Debian base
# Bump when the recipe below changes: a base made by an older recipe is then remade.
recipe=2
label() { podman image inspect --format "{{ index .Labels \"$2\" }}" "$1" 2>/dev/null || true; }
if [[ "$(label "$PLANTOPS_DEBIAN_IMAGE" org.plantops.recipe)" != "$recipe" ]]; then
  rootfs="$PLANTOPS_PODMAN_HOME/rootfs-bookworm"
  say "debootstrap --variant=minbase bookworm (about 30 s) -> $PLANTOPS_DEBIAN_IMAGE"
  rm -rf "$rootfs"
  debootstrap --variant=minbase bookworm "$rootfs" "${PLANTOPS_DEBIAN_MIRROR:-http://deb.debian.org/debian}" >/dev/null
  # debootstrap leaves its .deb files and package lists behind (about 80 MB): every image
  # would carry them.
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/lib/apt/lists/*
  tar -C "$rootfs" -c . | podman import --quiet --change "LABEL org.plantops.recipe=$recipe" \
    - "$PLANTOPS_DEBIAN_IMAGE" >/dev/null
  rm -rf "$rootfs"
fi

# ------------------------------------------------------------------ 4. python base
# Remade when the CA certificates or the Debian base change.
ca_sum="$(cat /usr/local/share/ca-certificates/*.crt 2>/dev/null | sha256sum | cut -c1-16)"
base_id="$(podman image inspect --format '{{.Id}}' "$PLANTOPS_DEBIAN_IMAGE" | cut -c1-16)"
wanted_sum="$ca_sum-$base_id"
if [[ "$(label "$PLANTOPS_PYTHON_IMAGE" org.plantops.base)" != "$wanted_sum" ]]; then
  say "building $PLANTOPS_PYTHON_IMAGE (Debian python3, venv, pip, this machine's CA certificates)"
  context="$(mktemp -d)"
  trap 'rm -rf "$context"' EXIT
  mkdir -p "$context/ca"
  cp /usr/local/share/ca-certificates/*.crt "$context/ca/" 2>/dev/null || true
  cat >"$context/Dockerfile" <<EOF
FROM $PLANTOPS_DEBIAN_IMAGE
RUN apt-get update \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \\
      python3 python3-venv python3-pip ca-certificates \\
 && apt-get clean && rm -rf /var/lib/apt/lists/* /usr/share/doc/* /usr/share/man/* \\
 && ln -sf /usr/bin/python3 /usr/local/bin/python \\
 && rm -f /usr/lib/python3.*/EXTERNALLY-MANAGED
COPY ca/ /usr/local/share/ca-certificates/
RUN update-ca-certificates >/dev/null
ENV LANG=C.UTF-8
LABEL org.plantops.base="$wanted_sum"
EOF
  podman build --quiet --format docker -t "$PLANTOPS_PYTHON_IMAGE" "$context" >/dev/null
fi
# Every FROM name of our Dockerfiles points at the local base (a tag is only a name).
for name in $PLANTOPS_PYTHON_FROM_NAMES; do
  if [[ "$(podman image inspect --format '{{.Id}}' "$name" 2>/dev/null || true)" != \
        "$(podman image inspect --format '{{.Id}}' "$PLANTOPS_PYTHON_IMAGE")" ]]; then
    say "tagging $name -> $PLANTOPS_PYTHON_IMAGE"
    podman tag "$PLANTOPS_PYTHON_IMAGE" "$name"
  fi
done
