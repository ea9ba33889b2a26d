#!/usr/bin/env bash
# `ppl one-shot`: one-line errors naming the flag and its value for a bad
# search option, and, on a barely trained DooD with tasks drawn from MNIST,
# the accuracy with its standard error and the per-query scores file, and
# `ppl sample --tokens` (character-conditioned generation) on the same run.
# The second part exits 77 (skipped) where the MNIST digits are absent.
set -uo pipefail
ppl=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=0

# expect_error FRAGMENT... -- ARGS...: exit 2, one line on stderr holding every FRAGMENT.
expect_error() {
  local fragments=()
  while [ "$1" != "--" ]; do fragments+=("$1"); shift; done
  shift
  "$ppl" one-shot "$work/no-run" "$@" > "$work/out" 2> "$work/err"
  local rc=$? ok=1
  for f in "${fragments[@]}"; do grep -qF -- "$f" "$work/err" || ok=0; done
  if [ $rc -ne 2 ] || [ $ok -ne 1 ] || [ "$(wc -l < "$work/err")" -ne 1 ]; then
    echo "FAIL $*: exit $rc, expected 2 and one line with ${fragments[*]}; stderr:"
    head -5 "$work/err"
    failed=1
  else
    echo "ok   $*: $(cat "$work/err")"
  fi
}

expect_error "--particles" "particles is 0" -- --particles 0
expect_error "--particles" "particles is -3" -- --k -3
expect_error "--draws" "draws is 0" -- --draws 0
expect_error "--steps" "steps is -1" -- --steps -1
expect_error "--lr" "learning_rate is -0.5" -- --lr -0.5
expect_error "--motor-sd" "motor_sd is 0" -- --motor-sd 0
expect_error "--motor-noise" '"mean"' '"average", "sum"' -- --motor-noise mean
expect_error "--renderer" '"type"' '"fixed", "recomputed"' -- --renderer type
expect_error "--scale-low" "scale_low is 1.5" -- --scale-low 1.5
expect_error "--scale-high" "scale_high is 0.9" -- --protocol supplement --scale-high 0.9
expect_error "--shear" "shear is 2" -- --shear 2
expect_error "--protocol" '"paper"' '"authors", "supplement", "quick"' -- --protocol paper
expect_error "--batch" "batch is 0" -- --protocol quick --batch 0
[ $failed -eq 0 ] || exit 1

if ! grep -qE '^mnist +yes' <<<"$("$ppl" data list)"; then echo "one shot: skipped (no mnist digits)"; exit 77; fi
echo '{"steps": 2, "control_points": 3, "render_samples": 20, "rnn_hidden": 16, "mlp_hidden": 16, "feature_size": 16}' \
  > "$work/small.json"
"$ppl" train dood --data mnist --n-train 16 --steps 1 --batch-size 4 --config "$work/small.json" --eval-every 0 \
  --checkpoint-every 1 --out "$work/dood" > /dev/null 2>&1 || { echo "FAIL training the small dood"; exit 1; }
"$ppl" --threads 1 one-shot "$work/dood" --from-data mnist --episodes 2 --ways 3 --protocol quick --steps 2 \
  --scores "$work/scores.json" > "$work/summary.json" 2> /dev/null || { echo "FAIL one-shot --protocol quick"; exit 1; }
python3 - "$work/summary.json" "$work/scores.json" "$work/dood/one_shot_mnist.json" <<'PY' || exit 1
import json, math, sys
summary, scores, saved = (json.load(open(p)) for p in sys.argv[1:])
assert summary["protocol"] == "quick" and summary["options"]["steps"] == 2 and summary["options"]["draws"] == 5, summary
assert summary["options"]["motor_noise"] == "average" and summary["options"]["renderer"] == "fixed"
assert summary["queries"] == 6 and len(summary["tasks"]) == 2
a = summary["accuracy"]
assert abs(summary["standard_error"] - math.sqrt(a * (1 - a) / 6)) < 1e-12
for t in summary["tasks"]:
    p = t["correct"] / t["queries"]
    assert abs(t["accuracy"] - p) < 1e-12 and abs(t["standard_error"] - math.sqrt(p * (1 - p) / t["queries"])) < 1e-12
assert saved["accuracy"] == a and "predictions" in saved["tasks"][0]
queries = scores["queries"]
assert scores["options"] == summary["options"] and len(queries) == 6
for q in queries:
    assert set(q) == {"task", "query", "answer", "prediction", "correct", "scores"}, q
    assert len(q["scores"]) == 3 and q["prediction"] == max(range(3), key=lambda c: q["scores"][c])
    assert q["correct"] == (q["prediction"] == q["answer"])
assert sum(q["correct"] for q in queries) == summary["correct"]
assert [(q["task"], q["query"]) for q in queries] == [(f"episode{e:02d}", i) for e in (1, 2) for i in range(3)]
PY
# Resuming: a search stopped by Ctrl-C after its first task and resumed gives
# the scores of the uninterrupted one (the same computation: the generators'
# states are saved with each task); a leftover unfinished search is named,
# and so is a --resume that changes the search.
resumable=(--threads 1 one-shot "$work/dood" --from-data mnist --episodes 6 --ways 3 --protocol quick --steps 100)
partial="$work/dood/one_shot_mnist.partial.json"
"$ppl" "${resumable[@]}" --scores "$work/whole.json" > /dev/null 2>&1 \
  || { echo "FAIL the uninterrupted search"; exit 1; }
[ ! -e "$partial" ] || { echo "FAIL a finished search left $partial"; exit 1; }
"$ppl" "${resumable[@]}" --scores "$work/resumed.json" > /dev/null 2> "$work/stopped.err" &
pid=$!
for _ in $(seq 1 600); do [ -e "$partial" ] && break; sleep 0.05; done
kill -INT $pid
rc=0; wait $pid || rc=$?
if [ $rc -ne 130 ] || ! grep -q "finished task.* kept in .*(continue with --resume)" "$work/stopped.err"; then
  echo "FAIL Ctrl-C after the first task: exit $rc (expected 130), stderr: $(tail -2 "$work/stopped.err")"; exit 1
fi
"$ppl" "${resumable[@]}" > /dev/null 2> "$work/err"; rc=$?
[ $rc -eq 2 ] && grep -q "holds the finished tasks of an unfinished search; pass --resume" "$work/err" \
  || { echo "FAIL starting over an unfinished search: exit $rc, $(cat "$work/err")"; exit 1; }
"$ppl" "${resumable[@]}" --resume --seed 3 > /dev/null 2> "$work/err"; rc=$?
[ $rc -eq 2 ] && grep -q "was made with seed 0, but this command has 3" "$work/err" \
  || { echo "FAIL --resume with another seed: exit $rc, $(cat "$work/err")"; exit 1; }
# A damaged generator state is named before anything is drawn.
cp "$partial" "$work/partial.saved"
python3 - "$partial" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
j["generators"]["default_cpu"] = j["generators"]["default_cpu"][:100]
json.dump(j, open(sys.argv[1], "w"))
PY
"$ppl" "${resumable[@]}" --resume > /dev/null 2> "$work/err"; rc=$?
[ $rc -ne 0 ] && grep -q 'one_shot_mnist.partial.json ("generators"."default_cpu") has a 100-element .* generator state' \
  "$work/err" || { echo "FAIL --resume with a damaged generator state: exit $rc, $(cat "$work/err")"; exit 1; }
mv "$work/partial.saved" "$partial"
"$ppl" "${resumable[@]}" --resume --scores "$work/resumed.json" > /dev/null 2> "$work/err" \
  || { echo "FAIL --resume: $(cat "$work/err")"; exit 1; }
[ ! -e "$partial" ] || { echo "FAIL the resumed search left $partial"; exit 1; }
"$ppl" "${resumable[@]}" --resume > /dev/null 2> "$work/err"; rc=$?
[ $rc -eq 2 ] && grep -q -- "--resume needs the unfinished search" "$work/err" \
  || { echo "FAIL --resume with nothing to resume: exit $rc, $(cat "$work/err")"; exit 1; }
python3 - "$work/whole.json" "$work/resumed.json" <<'PY' || exit 1
import json, sys
whole, resumed = (json.load(open(p))["queries"] for p in sys.argv[1:])
assert len(whole) == len(resumed) == 18
for a, b in zip(whole, resumed):
    assert (a["task"], a["query"], a["prediction"]) == (b["task"], b["query"], b["prediction"]), (a, b)
    # Same computation on the same machine and threads: equal up to rounding at most.
    assert all(abs(x - y) <= 1e-9 * max(1.0, abs(x)) for x, y in zip(a["scores"], b["scores"])), (a, b)
PY
"$ppl" --threads 1 sample "$work/dood" --tokens 3 --n 2 --out "$work/tokens.png" > "$work/tokens.out" 2>&1 \
  || { echo "FAIL sample --tokens"; cat "$work/tokens.out"; exit 1; }
python3 - "$work/tokens.png" <<'PY' || exit 1
import struct, sys
png = open(sys.argv[1], "rb").read()
assert png[:8] == b"\x89PNG\r\n\x1a\n"
width, height = struct.unpack(">II", png[16:24])
# 2 rows of 1 + 3 images of 50 px (DooD's image size), 2 px between and around them.
assert (width, height) == (4 * 50 + 5 * 2, 2 * 50 + 3 * 2), (width, height)
PY
for bad in "--tokens 0" "--tokens -2" "--tokens 2 --reconstruct"; do
  # shellcheck disable=SC2086
  "$ppl" sample "$work/dood" $bad > /dev/null 2> "$work/err"
  rc=$?
  if [ $rc -ne 2 ] || ! grep -qF -- "--tokens" "$work/err"; then
    echo "FAIL sample $bad: exit $rc, stderr: $(head -3 "$work/err")"
    exit 1
  fi
done
echo "one shot: ok"
