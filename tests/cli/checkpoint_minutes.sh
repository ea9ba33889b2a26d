#!/usr/bin/env bash
# ppl train --checkpoint-minutes: validated with a one-line error, recorded in
# config.json, changeable on resume, and a checkpoint by the clock long before
# --checkpoint-every's; and, stderr not being a terminal, a progress line by the
# clock (PPL_PROGRESS_SECONDS) long before the first 5 % of the steps; and
# --max-minutes, a budget of training time over a run's resumes (and a released
# model's copy).
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
# --max-minutes: the run stops with a checkpoint once it has trained that
# long in all, over its resumes; metrics.jsonl's train_seconds counts on
# across them.
"$ppl" train air "${common[@]}" --steps 1000000 --max-minutes 0.02 --out "$work/budget" > /dev/null \
  2> "$work/budget.err"
grep -q -- "--max-minutes 0.02: the run has trained [0-9.]* minutes in all; stopped at step [0-9]*, checkpoint saved" \
  "$work/budget.err" || { echo "no --max-minutes stop"; cat "$work/budget.err"; exit 1; }
"$ppl" train air --steps 1000000 --out "$work/budget" --resume --max-minutes 0.04 > /dev/null 2> "$work/budget2.err"
grep -q -- "--max-minutes 0.04: .* stopped at step" "$work/budget2.err"
python3 - "$work/budget/metrics.jsonl" <<'PY' || exit 1
import json, sys
records = [json.loads(line) for line in open(sys.argv[1])]
seconds = [r["train_seconds"] for r in records]
elapsed = [r["elapsed"] for r in records]
assert all(b > a for a, b in zip(seconds, seconds[1:])), "train_seconds must grow over the resume"
# The second segment starts its "elapsed" again; its train_seconds go on from the first's.
restart = next(i for i in range(1, len(elapsed)) if elapsed[i] < elapsed[i - 1])
assert abs(seconds[restart] - (seconds[restart - 1] + elapsed[restart])) < 1e-6
assert 1.2 <= seconds[restart - 1] and 2.4 <= seconds[-1], (seconds[restart - 1], seconds[-1])
PY
# A released model (ppl export) carries its run's training time: a copy
# resumed with a spent budget trains nothing, with a larger one it counts on
# from the run's last train_seconds.
"$ppl" export "$work/budget" --out "$work/model" > /dev/null
grep -q "min of training (metrics.jsonl's train_seconds)" "$work/model/README.md"
cp -r "$work/model" "$work/copy"
# A model exported again from its folder keeps the time.
"$ppl" export "$work/model" --out "$work/model2" > /dev/null
cmp <(grep "min of training" "$work/model/README.md") <(grep "min of training" "$work/model2/README.md")
"$ppl" train air --steps 1000000 --out "$work/copy" --resume --max-minutes 0.03 > /dev/null 2> "$work/copy1.err"
grep -q -- "at or over --max-minutes 0.03; nothing to train" "$work/copy1.err" || { cat "$work/copy1.err"; exit 1; }
"$ppl" train air --steps 1000000 --out "$work/copy" --resume --max-minutes 0.06 > /dev/null 2> "$work/copy2.err"
python3 - "$work/budget/metrics.jsonl" "$work/copy/metrics.jsonl" <<'PY' || exit 1
import json, sys
run = [json.loads(line) for line in open(sys.argv[1])]
copy = [json.loads(line) for line in open(sys.argv[2])]
first = next(r for r in copy if "elapsed" in r)
assert abs(first["train_seconds"] - first["elapsed"] - run[-1]["train_seconds"]) < 1e-6, (first, run[-1])
assert first["step"] == run[-1]["step"] + 1, (first["step"], run[-1]["step"])
PY
# A budget already spent trains no step; a negative one is named.
before=$(md5sum < "$work/budget/metrics.jsonl")
cp "$work/budget/checkpoint.bin" "$work/budget.ckpt"
"$ppl" train air --steps 1000000 --out "$work/budget" --resume --max-minutes 0.03 > /dev/null 2> "$work/budget3.err"
grep -q -- "has trained [0-9.]* minutes in all, at or over --max-minutes 0.03; nothing to train" "$work/budget3.err"
cmp "$work/budget.ckpt" "$work/budget/checkpoint.bin" || { echo "a spent budget rewrote the checkpoint"; exit 1; }
[ "$before" = "$(md5sum < "$work/budget/metrics.jsonl")" ] || { echo "a spent budget trained on"; exit 1; }
set +e
"$ppl" train air "${common[@]}" --steps 2 --max-minutes -1 --out "$work/bad2" 2> "$work/err5"; rc5=$?
set -e
[ $rc5 -eq 2 ] && grep -q -- "--max-minutes is -1, but must be at least 0" "$work/err5"
echo "checkpoint minutes: ok"
