#!/usr/bin/env bash
# ppl train --init-from (a new run from another run's checkpoint, with
# changed options) and --profile (an operator trace of a window of steps).
set -euo pipefail
ppl=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat > "$work/small.json" <<'JSON'
{"rnn_hidden": 16, "encoder_hidden": 16, "decoder_hidden": 16, "predict_hidden": 16,
 "baseline_hidden": 16, "z_what_size": 4, "window_size": 8, "batch_size": 8}
JSON
common=(--data multi-mnist --n-train 32 --eval-every 0 --seed 3)

# expect_error PATTERN COMMAND...: exits with 2, prints one line matching PATTERN.
expect_error() {
  local pattern=$1
  shift
  set +e
  "$@" > /dev/null 2> "$work/err"
  local rc=$?
  set -e
  if [ $rc -ne 2 ] || ! grep -q -- "$pattern" "$work/err" || [ "$(wc -l < "$work/err")" -ne 1 ]; then
    echo "expected exit 2 and one line matching '$pattern' from: $*"
    echo "got exit $rc:"
    cat "$work/err"
    exit 1
  fi
}

"$ppl" train air "${common[@]}" --config "$work/small.json" --steps 4 --out "$work/a" > /dev/null 2>&1
before=$(cat "$work/a/config.json" "$work/a/checkpoint.bin" "$work/a/metrics.jsonl" | cksum)

# A new run from a's step 4 with one option changed: a's options otherwise,
# its four records first, then steps 5 and 6.
echo '{"z_pres_prior": 0.05}' > "$work/change.json"
"$ppl" train air "${common[@]}" --init-from "$work/a" --config "$work/change.json" --steps 6 --out "$work/b" \
  > /dev/null 2> "$work/b.err"
grep -q "starting $work/b from $work/a at step 4" "$work/b.err"
grep -q '"z_pres_prior": 0.05' "$work/b/config.json"
grep -q '"rnn_hidden": 16' "$work/b/config.json"
init_from=$(grep -A 3 '"init_from"' "$work/b/config.json")
grep -q '"step": 4' <<< "$init_from"
steps=$(grep -o '"step":[0-9]*' "$work/b/metrics.jsonl" | cut -d: -f2 | tr '\n' ' ')
[ "$steps" = "1 2 3 4 5 6 " ] || { echo "metrics steps of b: $steps"; exit 1; }
[ "$(cat "$work/a/config.json" "$work/a/checkpoint.bin" "$work/a/metrics.jsonl" | cksum)" = "$before" ] ||
  { echo "--init-from changed the source run"; exit 1; }
# Exported, b names its source as runs/NAME, not as a path of this machine.
"$ppl" export "$work/b" --out "$work/model" > /dev/null
grep -q '"run": "runs/a"' "$work/model/config.json" ||
  { echo "export kept init_from.run as $(grep '"run"' "$work/model/config.json")"; exit 1; }
# b resumes like any run.
"$ppl" train air --resume --steps 7 --out "$work/b" > /dev/null 2>&1
[ "$(tail -1 "$work/b/metrics.jsonl" | grep -o '"step":[0-9]*')" = '"step":7' ]

# --reinit: the prediction network starts afresh, everything else from a's step 4.
"$ppl" train air "${common[@]}" --init-from "$work/a" --reinit air.predict --steps 5 --out "$work/r" \
  > /dev/null 2> "$work/r.err"
grep -q "starting $work/r from $work/a at step 4; [0-9]* parameters start afresh (air.predict)" "$work/r.err" ||
  { echo "--reinit said:"; cat "$work/r.err"; exit 1; }
init_r=$(grep -A 6 '"init_from"' "$work/r/config.json")
grep -q '"reinit"' <<< "$init_r"
grep -q '"air.predict"' <<< "$init_r"
# From a released model (no optimiser state) too, saying so.
"$ppl" train air "${common[@]}" --init-from "$work/model" --reinit air.predict --steps 8 --out "$work/rm" \
  > /dev/null 2> "$work/rm.err"
grep -q "holds a released model.*; [0-9]* parameters start afresh (air.predict)" "$work/rm.err" ||
  { echo "--reinit from a released model said:"; cat "$work/rm.err"; exit 1; }
[ "$(tail -1 "$work/r/metrics.jsonl" | grep -o '"step":[0-9]*')" = '"step":5' ]
expect_error "no parameter of $work/a/checkpoint.bin starts with \"air.nothing\"; its parameters start with .*air.rnn" \
  "$ppl" train air "${common[@]}" --init-from "$work/a" --reinit air.nothing --steps 5 --out "$work/c"
expect_error "reinit air.predict chooses which parameters of an --init-from run start afresh" \
  "$ppl" train air "${common[@]}" --reinit air.predict --steps 5 --out "$work/c"

expect_error "init-from needs a run in $work/none" \
  "$ppl" train air "${common[@]}" --init-from "$work/none" --steps 6 --out "$work/c"
expect_error "holds a run of \"air\", not \"dood\"" \
  "$ppl" train dood "${common[@]}" --init-from "$work/a" --steps 6 --out "$work/c"
expect_error "is at step 4, so --steps 4 leaves nothing to train" \
  "$ppl" train air "${common[@]}" --init-from "$work/a" --steps 4 --out "$work/c"
expect_error "pass one of them" "$ppl" train air --init-from "$work/a" --resume --out "$work/b"
echo '{"rnn_hidden": 24}' > "$work/wider.json"
expect_error "init-from $work/a: its networks do not fit these options: .*air.h_init" \
  "$ppl" train air "${common[@]}" --init-from "$work/a" --config "$work/wider.json" --steps 6 --out "$work/c"

# --profile: steps 3 to 4 recorded, a Chrome trace and the table.
"$ppl" train air "${common[@]}" --config "$work/small.json" --steps 5 --out "$work/p" --profile "$work/trace.json" \
  --profile-after 2 --profile-steps 2 > /dev/null 2> "$work/p.err"
grep -q "profiled steps 3 to 4" "$work/p.err"
grep -q "operator .*calls/step .*self ms/step" "$work/p.err"
grep -q '"name": "aten::' "$work/trace.json"
grep -q '"ph": "X"' "$work/trace.json"
expect_error "--profile-steps is 0" \
  "$ppl" train air "${common[@]}" --steps 5 --out "$work/q" --profile "$work/t2.json" --profile-steps 0
echo "init from, profile: ok"
