# Source me: exports the local stack's settings for `make` recipes.
#
# Precedence: a variable already set in the environment wins, then
# repos/infra/local/stack.local.env (git-ignored, yours), then the documented
# defaults in repos/infra/local/stack.env.
_plantops_load_env_file() {
  local file=$1 line key
  [[ -f $file ]] || return 0
  while IFS= read -r line || [[ -n $line ]]; do
    [[ $line =~ ^[[:space:]]*(#|$) ]] && continue
    key=${line%%=*}
    [[ -v $key ]] || export "$key=${line#*=}"
  done <"$file"
}
_plantops_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
_plantops_load_env_file "$_plantops_root/repos/infra/local/stack.local.env"
_plantops_load_env_file "$_plantops_root/repos/infra/local/stack.env"
export PLANTOPS_STATE_DIR=${PLANTOPS_STATE_DIR:-$_plantops_root/.stack}
unset -f _plantops_load_env_file
