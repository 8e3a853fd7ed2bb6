#!/bin/bash
# Usage: release.sh COMPONENT VERSION  (run from the umbrella root or repos/infra)
# Bump one component's semantic version: pyproject.toml, a CHANGELOG.md section made from
# its "Unreleased" notes, one commit of that component's folder, and the tag
# <component>-v<VERSION>. Refuses a malformed or non-increasing version and a component
# with uncommitted changes, so a release always names exactly what was tested.
set -euo pipefail
component="${1:?usage: release.sh COMPONENT VERSION}"
version="${2:?usage: release.sh COMPONENT VERSION}"
root="$(git -C "$(dirname "$0")" rev-parse --show-toplevel)"
folder="$root/repos/$component"
[[ -f "$folder/pyproject.toml" ]] || { echo "no component $component (repos/$component/pyproject.toml)" >&2; exit 2; }
[[ "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || { echo "version $version is not MAJOR.MINOR.PATCH" >&2; exit 2; }
current="$(sed -n 's/^version = "\(.*\)"$/\1/p' "$folder/pyproject.toml" | head -1)"
newest="$(printf '%s\n%s\n' "$current" "$version" | sort -V | tail -1)"
if [[ "$version" == "$current" || "$newest" != "$version" ]]; then
    echo "version $version must be above the current $current" >&2; exit 2
fi
if [[ -n "$(git -C "$root" status --porcelain -- "repos/$component")" ]]; then
    echo "repos/$component has uncommitted changes: commit them first" >&2; exit 2
fi
sed -i "s/^version = \"$current\"$/version = \"$version\"/" "$folder/pyproject.toml"
changelog="$folder/CHANGELOG.md"
[[ -f "$changelog" ]] || printf '# Changelog\n\n## Unreleased\n\n' > "$changelog"
grep -q '^## Unreleased' "$changelog" || sed -i '0,/^# Changelog/s//# Changelog\n\n## Unreleased\n/' "$changelog"
sed -i "s/^## Unreleased$/## Unreleased\n\n## $version - $(date -u +%Y-%m-%d)/" "$changelog"
git -C "$root" add "repos/$component/pyproject.toml" "repos/$component/CHANGELOG.md"
git -C "$root" commit -q -m "$component $version" -- "repos/$component/pyproject.toml" "repos/$component/CHANGELOG.md"
git -C "$root" tag "$component-v$version"
echo "released $component $version (tag $component-v$version); push with: git push --follow-tags"
