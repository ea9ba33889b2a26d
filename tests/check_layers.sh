#!/usr/bin/env bash
# Fails when a file includes a header from a layer above its own:
# runtime <- ppl (core) <- inference <- programs <- cli.
set -u
root=${1:-.}
status=0
# layer folder : include patterns it must not use
check() {
  local dir=$1 pattern=$2
  [ -d "$root/$dir" ] || return 0
  local hits
  hits=$(grep -rnE "#include[[:space:]]*[<\"]($pattern)" "$root/$dir" \
           --include='*.hpp' --include='*.cpp' --include='*.cu' --include='*.cuh' || true)
  if [ -n "$hits" ]; then
    echo "layering: $dir/ includes from a layer above it:"
    echo "$hits"
    status=1
  fi
}
above_runtime='ppl/(ppl|dist|core|infer|inference|programs)|programs/'
check runtime "$above_runtime"
check ppl 'ppl/(infer|inference|programs)|programs/'
check inference 'ppl/programs|programs/'
check programs 'apps/|cli/'
[ $status -eq 0 ] && echo "layering: ok"
exit $status
