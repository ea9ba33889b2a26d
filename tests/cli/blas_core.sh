#!/usr/bin/env bash
# `ppl --version` names the OpenBLAS kernels in use and OpenMP's wait
# policy. On a CPU with AVX,
# OpenBLAS's Prescott (SSE3) fallback must have been replaced by a rerun,
# unless the user chose the kernels with OPENBLAS_CORETYPE.
set -euo pipefail
ppl=$1
# OpenMP's workers sleep between parallel regions unless the user says
# otherwise (the rerun sets OMP_WAIT_POLICY=passive; runtime.md says why).
grep -q "OMP_WAIT_POLICY=passive" <<<"$(env -u OMP_WAIT_POLICY "$ppl" --version)" ||
  { echo "blas core: no OMP_WAIT_POLICY=passive after the rerun" >&2; exit 1; }
grep -q "OMP_WAIT_POLICY=active" <<<"$(OMP_WAIT_POLICY=active "$ppl" --version)" ||
  { echo "blas core: the user's OMP_WAIT_POLICY was not kept" >&2; exit 1; }
version=$(env -u OPENBLAS_CORETYPE "$ppl" --version)
echo "$version"
case "$version" in
  *"OpenBLAS kernels"*) ;;
  *) echo "blas core: no OpenBLAS in this build; nothing to check"; exit 77 ;;
esac
if grep -qw avx /proc/cpuinfo 2>/dev/null && [[ "$(uname -m)" == x86_64 ]]; then
  if [[ "$version" == *"kernels Prescott"* ]]; then
    echo "blas core: still on the Prescott kernels on a CPU with AVX" >&2
    exit 1
  fi
fi
chosen=$(OPENBLAS_CORETYPE=Prescott "$ppl" --version)
echo "$chosen"
if [[ "$chosen" != *"kernels Prescott"* ]]; then
  echo "blas core: OPENBLAS_CORETYPE=Prescott was not kept" >&2
  exit 1
fi
echo "blas core: ok"
