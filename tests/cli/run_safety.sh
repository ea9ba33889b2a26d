#!/usr/bin/env bash
# What the tool does with hostile input and interruptions: numbers that do not
# fit, a config.json edited after training, a second trainer on a live run,
# a metrics record with a null loss, Ctrl-C, and a run directory that cannot
# be written. Each ends in a one-line error naming the culprit (exit 2) or
# runs as it should.
set -euo pipefail
ppl=$1
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
cat > "$work/small.json" <<'JSON'
{"rnn_hidden": 16, "encoder_hidden": 16, "decoder_hidden": 16, "predict_hidden": 16,
 "baseline_hidden": 16, "z_what_size": 4, "window_size": 8, "batch_size": 8}
JSON
common=(--data multi-mnist --n-train 32 --config "$work/small.json" --eval-every 0 --seed 1)

# expect_error CODE PATTERN COMMAND...: exits with CODE, prints one line matching PATTERN.
expect_error() {
  local code=$1 pattern=$2
  shift 2
  set +e
  "$@" > /dev/null 2> "$work/err"
  local rc=$?
  set -e
  if [ $rc -ne "$code" ] || ! grep -q -- "$pattern" "$work/err" || [ "$(wc -l < "$work/err")" -ne 1 ]; then
    echo "expected exit $code and one line matching '$pattern' from: $*"
    echo "got exit $rc:"
    cat "$work/err"
    exit 1
  fi
}

# Numbers are checked as written: no saturation, no wrap-around, no inf.
expect_error 2 "^ppl: error: --steps: is 99999999999999999999, which does not fit in 64 bits" \
  "$ppl" train air "${common[@]}" --steps 99999999999999999999 --out "$work/x"
expect_error 2 '^ppl: error: --seed: is "-1", but must be a whole number of at least 0' \
  "$ppl" train air "${common[@]}" --seed -1 --out "$work/x"
expect_error 2 "--seed: is 18446744073709551616, which does not fit in 64 bits" \
  "$ppl" train air "${common[@]}" --seed 18446744073709551616 --out "$work/x"
expect_error 2 "--lr-threshold: is inf, but must be a finite number" \
  "$ppl" train air "${common[@]}" --lr-threshold inf --out "$work/x"
expect_error 2 "--threads: is 2000, but must be from 1 to the" "$ppl" --threads 2000 programs
# A --config that is not a JSON object of options, on a new run and on a resume.
echo '[4, 5]' > "$work/list.json"
expect_error 2 "--config .*list.json must hold a JSON object of program options" \
  "$ppl" train air --data multi-mnist --n-train 32 --config "$work/list.json" --out "$work/x"
[ ! -e "$work/x" ] || { echo "a refused command left $work/x"; exit 1; }
# The argument parser's own errors have the same one-line form.
expect_error 2 "^ppl: error: A subcommand is required" "$ppl"
expect_error 2 "^ppl: error: --threads: .*abc" "$ppl" --threads abc programs

"$ppl" train air "${common[@]}" --steps 3 --checkpoint-every 1 --out "$work/run" > /dev/null 2>&1

expect_error 2 "--config .*list.json must hold a JSON object of program options" \
  "$ppl" train air --resume --steps 4 --config "$work/list.json" --out "$work/run"

# A config.json edited after training: every command that reads the run says so.
cp -r "$work/run" "$work/edited"
sed -i 's/"z_what_size": 4/"z_what_size": 5/' "$work/edited/config.json"
expect_error 2 'config.json was changed after training: "options.z_what_size" is 5 there, but the checkpoint .* was trained with 4' \
  "$ppl" sample "$work/edited" --n 2 --out "$work/s.png"
expect_error 2 '"options.z_what_size" is 5' "$ppl" train air --resume --steps 4 --out "$work/edited"
cp "$work/run/config.json" "$work/edited/config.json"
sed -i 's/"steps": 3/"steps": -3/' "$work/edited/config.json"
expect_error 2 '"train.steps" in .*edited/config.json is -3, but must be at least 1' \
  "$ppl" ll "$work/edited" --particles 2 --n 2
sed -i 's/"steps": -3/"steps": "many"/' "$work/edited/config.json"
expect_error 2 '"train.steps" in .*config.json is "many", but must be a whole number' \
  "$ppl" trace "$work/edited" --index 0
echo '{"program": "air", "options": {}' > "$work/edited/config.json"
expect_error 2 "edited/config.json is not valid JSON" "$ppl" sample "$work/edited" --n 2 --out "$work/s.png"

# A null loss (a NaN step) in metrics.jsonl does not block a resume; a torn
# last line is dropped with a warning naming the file.
cp -r "$work/run" "$work/nulls"
sed -i '2s/"loss":[^,]*/"loss":null/' "$work/nulls/metrics.jsonl"
printf '{"elapsed":0.1,"lo' >> "$work/nulls/metrics.jsonl"
"$ppl" train air --resume --steps 5 --out "$work/nulls" > /dev/null 2> "$work/err"
grep -q "nulls/metrics.jsonl line 4 is not a metrics record; dropped" "$work/err"
[ "$(grep -c '"loss"' "$work/nulls/metrics.jsonl")" -eq 5 ]

# One trainer per run: a second one on a live run is refused and changes
# nothing; SIGINT saves a checkpoint and exits 130.
cp -r "$work/run" "$work/live"
"$ppl" train air --resume --steps 100000 --checkpoint-every 1000000 --out "$work/live" > /dev/null 2> "$work/live.err" &
trainer=$!
for _ in $(seq 1 300); do
  grep -q "resuming" "$work/live.err" 2>/dev/null && break
  sleep 0.1
done
sleep 1
config_before=$(md5sum < "$work/live/config.json")
expect_error 2 "the run in .*live is being trained by another process (pid $trainer)" \
  "$ppl" train air --resume --steps 100001 --out "$work/live"
[ "$config_before" = "$(md5sum < "$work/live/config.json")" ]
kill -INT $trainer
set +e
wait $trainer
rc=$?
set -e
[ $rc -eq 130 ] || { echo "an interrupted train exited $rc, not 130"; cat "$work/live.err"; exit 1; }
grep -q "interrupted at step" "$work/live.err"
"$ppl" sample "$work/live" --n 2 --out "$work/live.png" > /dev/null 2>&1

# A run directory that cannot take ll's record (here a folder squats on its
# name) still gets its estimate printed, with a warning.
mkdir "$work/run/ll_multi-mnist_test_K2.json"
"$ppl" ll "$work/run" --particles 2 --n 2 --batch 2 > "$work/ll.json" 2> "$work/err"
grep -q '"log_likelihood"' "$work/ll.json"
grep -q "ll: warning: cannot write .*ll_multi-mnist_test_K2.json" "$work/err"
echo "run safety: ok"
