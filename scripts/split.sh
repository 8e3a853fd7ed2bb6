#!/usr/bin/env bash
# Publish the multi-repo form of this monorepo into DEST:
#   DEST/plantops-<component>.git  one bare repo per component (git subtree split,
#                                  so each keeps its own history)
#   DEST/plantops.git              the umbrella, whose repos/* are real submodules
#                                  pinned to those commits, with the relative URLs
#                                  of .gitmodules
# Works from the committed HEAD; uncommitted changes are not published.
set -euo pipefail

dest=${1:?usage: split.sh DEST}
mkdir -p "$dest"
dest=$(cd "$dest" && pwd)
root=$(git rev-parse --show-toplevel)
cd "$root"
components=$(git config -f .gitmodules --get-regexp '^submodule\..*\.path$' | awk '{print $2}')

if [[ -n $(ls -A "$dest") ]]; then
  echo "split: $dest is not empty; give an empty folder" >&2
  exit 1
fi

declare -A pinned
for path in $components; do
  name=$(basename "$path")
  url=$(git config -f .gitmodules "submodule.$path.url")
  bare="$dest/$(basename "$url")"
  commit=$(git subtree split --prefix="$path" HEAD 2>/dev/null)
  git init -q --bare "$bare"
  git push -q "$bare" "$commit:refs/heads/main"
  git -C "$bare" symbolic-ref HEAD refs/heads/main
  pinned[$path]=$commit
  echo "split: $path -> $bare @ ${commit:0:12}"
done

# The umbrella: every tracked file outside the component folders, plus gitlinks.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git archive HEAD | tar -x -C "$work"
for path in $components; do rm -rf "${work:?}/$path"; done
cd "$work"
git init -q -b main
git add -A
for path in $components; do
  git update-index --add --cacheinfo "160000,${pinned[$path]},$path"
done
git -c user.name="PlantOps split" -c user.email="split@plantops.invalid" \
  commit -q -m "PlantOps umbrella pinned to its five components"
git init -q --bare "$dest/plantops.git"
git push -q "$dest/plantops.git" main:refs/heads/main
git -C "$dest/plantops.git" symbolic-ref HEAD refs/heads/main
echo "split: umbrella -> $dest/plantops.git"
echo "clone it with: git -c protocol.file.allow=always clone --recurse-submodules $dest/plantops.git"
