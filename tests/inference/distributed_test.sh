#!/usr/bin/env bash
# Data-parallel SVI over Gloo on loopback (distributed_probe.cpp):
# - two ranks with 4 points each take the same 5 steps as one process with
#   all 8 (a MAP fit: deterministic gradients), to float tolerance;
# - two ranks fitting a score-function site keep one set of baseline
#   statistics, bit for bit;
# - a rank that never joins, and a port that is taken, are one-line errors
#   within the rendezvous timeout, not hangs.
set -euo pipefail
probe=$1
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

ranks() {  # ranks MODE: two ranks in the background, then wait for both
  local port
  port=$("$probe" port)
  for r in 0 1; do
    MASTER_ADDR=127.0.0.1 MASTER_PORT=$port WORLD_SIZE=2 RANK=$r "$probe" train "$1" "$work/$1-rank$r.bin" &
  done
  wait
}

"$probe" train map "$work/map-alone.bin"
ranks map
"$probe" compare "$work/map-rank0.bin" "$work/map-rank1.bin" 0
"$probe" compare "$work/map-alone.bin" "$work/map-rank0.bin" 1e-9
# The same through Gloo's sockets instead of shared memory.
mv "$work/map-rank0.bin" "$work/map-shm.bin"
PPL_SHARED_MEMORY=0 ranks map
"$probe" compare "$work/map-rank0.bin" "$work/map-rank1.bin" 0
"$probe" compare "$work/map-shm.bin" "$work/map-rank0.bin" 1e-12

# All-reduces checked against sums computed by each rank, both ways.
for shm in 1 0; do
  port=$("$probe" port)
  for r in 0 1; do
    MASTER_ADDR=127.0.0.1 MASTER_PORT=$port WORLD_SIZE=2 RANK=$r PPL_SHARED_MEMORY=$shm "$probe" reduce \
      > "$work/reduce-$shm-$r.txt" &
  done
  wait
  on=$([ $shm = 1 ] && echo on || echo off)
  for r in 0 1; do
    grep -q "rank $r: sums agree (shared memory $on)" "$work/reduce-$shm-$r.txt" ||
      { echo "reduce, shared memory $on, rank $r:"; cat "$work/reduce-$shm-$r.txt"; exit 1; }
  done
done

ranks score
"$probe" compare "$work/score-rank0.bin" "$work/score-rank1.bin" 0

# A group of two whose second rank never comes: an error after the 3 s timeout.
port=$("$probe" port)
set +e
start=$SECONDS
MASTER_ADDR=127.0.0.1 MASTER_PORT=$port WORLD_SIZE=2 RANK=0 timeout 60 "$probe" join 2> "$work/err1"; rc1=$?
elapsed=$((SECONDS - start))
set -e
[ $rc1 -eq 2 ] && grep -q "rank 0: only 1 of 2 ranks joined the rendezvous at 127.0.0.1:$port within 3 s" "$work/err1" &&
  [ "$(wc -l < "$work/err1")" -eq 1 ] && [ $elapsed -lt 30 ] ||
  { echo "a missing rank gave exit $rc1 after $elapsed s:"; cat "$work/err1"; exit 1; }

# Two rank-0 processes on one port: the second cannot serve it.
port=$("$probe" port)
MASTER_ADDR=127.0.0.1 MASTER_PORT=$port WORLD_SIZE=2 RANK=0 timeout 60 "$probe" join 2> /dev/null &
sleep 1
set +e
MASTER_ADDR=127.0.0.1 MASTER_PORT=$port WORLD_SIZE=2 RANK=0 timeout 60 "$probe" join 2> "$work/err2"; rc2=$?
set -e
[ $rc2 -eq 2 ] && grep -q "could not serve the rendezvous at 127.0.0.1:$port" "$work/err2" ||
  { echo "a taken port gave exit $rc2:"; cat "$work/err2"; exit 1; }
wait || true
echo "distributed: ok"
