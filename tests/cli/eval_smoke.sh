#!/usr/bin/env bash
# Smoke test of `ppl eval scenes`: the judge on real MNIST-4 scenes and on
# bad copies of them (three broken structures, blurred and blob digits), the evaluation of a (barely trained) VAE run on mnist-4, and the
# one-line errors for a missing run and a data set without structure rules.
# Exits 77 (skipped) where the MNIST digits are absent.
set -euo pipefail
ppl=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if ! grep -qE '^mnist +yes' <<<"$("$ppl" data list)"; then echo "eval smoke: skipped (no mnist digits)"; exit 77; fi

"$ppl" eval scenes --real --data mnist-4 --n 30 --d-steps-cap 0 --out "$work/real" > "$work/real.json" 2> /dev/null
# pass_rates: real scenes pass, every kind of bad scene fails.
sed -n '/"pass_rates": {/,/}/p' "$work/real.json" | awk -F'"' 'NF >= 3 && $2 != "pass_rates" {
    v = $3; gsub(/[:, ]/, "", v); n++
    if (($2 == "real" && v + 0 < 0.9) || ($2 != "real" && v + 0 > 0.1)) { print "pass rate of " $2 ": " v; bad = 1 } }
  END { if (n != 6 || bad) { print n " pass rates"; exit 1 } }'
grep -q '"min_confidence"' "$work/real.json" && grep -q '"scene-reader-v2"' "$work/real.json"
[ -s "$work/real/eval_scenes_real.png" ] && [ -s "$work/real/eval_scenes_blob.png" ] && [ -s "$work/real/eval_scenes.json" ]
"$ppl" eval scenes --real --n 10 --d-steps-cap 0 --break blurred > "$work/blurred.json" 2> /dev/null
grep -q '"blurred"' "$work/blurred.json" && ! grep -q '"blob"' "$work/blurred.json"

echo '{"channels": 8, "z_size": 8}' > "$work/small.json"
"$ppl" train vae --data mnist-4 --n-train 32 --steps 2 --config "$work/small.json" --eval-every 0 \
  --checkpoint-every 2 --out "$work/vae" > /dev/null 2>&1
"$ppl" eval scenes "$work/vae" --n 20 --d-steps-cap 20 > "$work/vae.json" 2> /dev/null
grep -q '"s_acc"' "$work/vae.json" && grep -q '"d_steps"' "$work/vae.json" && grep -q '"broken_rules"' "$work/vae.json" &&
  grep -q '"consecutive_pairs"' "$work/vae.json"
[ -s "$work/vae/eval_scenes.json" ] && [ -s "$work/vae/eval_scenes.png" ]

# Boxes: a tiny GNM on mnist-4, AP against the generator's boxes.
echo '{"channels": 8, "draw_steps": 1, "z_global_size": 2, "interaction_hidden": 8, "z_what_size": 2, "z_bg_size": 2, "glimpse_size": 8}' > "$work/gnm.json"
"$ppl" train gnm --data mnist-4 --n-train 32 --steps 1 --batch-size 4 --config "$work/gnm.json" --eval-every 0 \
  --checkpoint-every 1 --out "$work/gnm" > /dev/null 2>&1
"$ppl" eval boxes "$work/gnm" --n 8 > "$work/boxes.json" 2> /dev/null
grep -q '"ap_50"' "$work/boxes.json" && grep -q '"ap_50_95"' "$work/boxes.json" &&
  grep -q '"frame_ap_50"' "$work/boxes.json" && [ -s "$work/gnm/eval_boxes.png" ]
"$ppl" eval traverse "$work/gnm" --index 1 --dims 1 --columns 3 > /dev/null 2>&1
grep -q '"z_g/0\[0\]"' "$work/gnm/traverse.json" && [ -s "$work/gnm/traverse.png" ]
# GNM's samples also come with their own boxes (Fig. 3).
"$ppl" eval scenes "$work/gnm" --n 10 --d-steps-cap 0 > "$work/gnm-scenes.json" 2> /dev/null
[ -s "$work/gnm/eval_scenes.json" ] && [ -s "$work/gnm/eval_scenes_boxes.png" ]
# ... and are judged a second time, reading each digit inside its own box.
grep -q '"own_boxes"' "$work/gnm-scenes.json" && ! grep -q '"own_boxes"' "$work/vae.json"

set +e
"$ppl" eval boxes "$work/vae" 2> "$work/err4"; rc4=$?
"$ppl" eval scenes "$work/none" 2> "$work/err1"; rc1=$?
"$ppl" eval scenes "$work/vae" --data multi-mnist 2> "$work/err2"; rc2=$?
"$ppl" eval scenes 2> "$work/err3"; rc3=$?
"$ppl" eval scenes --real --break smudged 2> "$work/err5"; rc5=$?
"$ppl" eval scenes --real --min-confidence 1.5 2> "$work/err6"; rc6=$?
set -e
[ $rc1 -eq 2 ] && grep -q "does not exist" "$work/err1" && [ "$(wc -l < "$work/err1")" -eq 1 ]
[ $rc2 -eq 2 ] && grep -q 'multi-mnist' "$work/err2" && [ "$(wc -l < "$work/err2")" -eq 1 ]
[ $rc3 -eq 2 ] && grep -q 'RUN is required' "$work/err3"
[ $rc4 -eq 2 ] && grep -q 'holds a "vae" program' "$work/err4" && [ "$(wc -l < "$work/err4")" -eq 1 ]
[ $rc5 -eq 2 ] && grep -q -- '--break is "smudged"' "$work/err5"
[ $rc6 -eq 2 ] && grep -q -- '--min-confidence is 1.5' "$work/err6"
echo "eval smoke: ok"
