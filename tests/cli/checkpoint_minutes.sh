#!/usr/bin/env bash
# ppl train --checkpoint-minutes: validated with a one-line error, recorded in
# config.json, changeable on resume, and a checkpoint by the clock long before
# --checkpoint-every's; and, stderr not being a terminal, a progress line by the
# clock (PPL_PROGRESS_SECONDS) long before the first 5 % of the steps.
set -euo pipefail
ppl=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat > "$work/small.json" <<'JSON'
{"rnn_hidden": 32, "encoder_hidden": 32, "decoder_hidden": 32, "predict_hidden": 32,
 "baseline_hidden": 32, "z_what_size": 8, "window_size": 12, "batch_size": 8}
JSON
common=(--data multi-mnist --config "$work/small.json" --eval-every 0 --seed 5)

"$ppl" train air "${common[@]}" --steps 4 --checkpoint-every 2 --out "$work/half" > /dev/null 2>&1
# --checkpoint-minutes: recorded, validated, and a checkpoint by the clock
# long before --checkpoint-every's.
set +e
"$ppl" train air "${common[@]}" --steps 2 --checkpoint-minutes -1 --out "$work/bad" 2> "$work/err3"; rc3=$?
set -e
[ $rc3 -eq 2 ] && grep -q -- "--checkpoint-minutes is -1, but must be" "$work/err3" && [ "$(wc -l < "$work/err3")" -eq 1 ]
PPL_PROGRESS_SECONDS=0.2 "$ppl" train air "${common[@]}" --steps 1000000 --checkpoint-every 1000000 \
  --checkpoint-minutes 0.005 --out "$work/clock" > /dev/null 2> "$work/clock.err" &
pid=$!
progress='^train air [0-9]+/1000000 \(0%\)  [0-9.]+ it/s  ETA '
for _ in $(seq 1 600); do
  [ -e "$work/clock/checkpoint.bin" ] && [ "$(grep -Ec "$progress" "$work/clock.err" || true)" -ge 2 ] && break
  sleep 0.2
done
kill -KILL $pid; wait $pid 2> /dev/null || true
[ -e "$work/clock/checkpoint.bin" ] || { echo "no checkpoint by the clock"; exit 1; }
lines=$(grep -Ec "$progress" "$work/clock.err" || true)
[ "$lines" -ge 2 ] || { echo "$lines progress lines by the clock, not 2"; cat "$work/clock.err"; exit 1; }
# A bad PPL_PROGRESS_SECONDS is named, and the default used.
PPL_PROGRESS_SECONDS=soon "$ppl" train air "${common[@]}" --steps 1 --out "$work/soon" > /dev/null 2> "$work/err4"
grep -q 'PPL_PROGRESS_SECONDS is "soon", but must be a number of seconds' "$work/err4"
grep -q '"checkpoint_minutes": 0.005' "$work/clock/config.json"
# Ten minutes by default; a resume may change it (the finished run in half:
# nothing more to train).
grep -q '"checkpoint_minutes": 10' "$work/half/config.json"
"$ppl" train air --steps 4 --out "$work/half" --resume --checkpoint-minutes 0.5 > /dev/null 2>&1
grep -q '"checkpoint_minutes": 0.5' "$work/half/config.json"
echo "checkpoint minutes: ok"
