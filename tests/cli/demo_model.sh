#!/usr/bin/env bash
# `ppl demo` with a shipped model: the regression, then AIR's objects over
# test scenes (PNG), the trace of one scene (JSON and HTML) and log p(x) in
# summary.json; a --model that is no folder is a one-line error naming it.
set -euo pipefail
ppl=$1
model=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

out=$("$ppl" --threads 1 demo --steps 50 --model "$model" --out "$work/demo" 2>&1)
echo "$out" | tail -n 6
grep -q "exact mean" <<<"$out"
for f in objects.png trace.json trace.html summary.json; do
  test -s "$work/demo/$f" || { echo "demo: no $f"; exit 1; }
done
grep -q 'id="elbo"' "$work/demo/trace.html"
python3 - "$work/demo/summary.json" "$work/demo/trace.json" <<'PY'
import json, math, sys
s = json.load(open(sys.argv[1]))
assert s["program"] == "air" and s["scenes"] == 12 and s["ll_n"] == 20 and s["particles"] == 10, s
assert math.isfinite(s["log_likelihood"]) and s["standard_error"] > 0, s
# The model counts 0.98 of test scenes right (its card): 9 of 12 is far below.
assert s["counted_right"] >= 9, s
t = json.load(open(sys.argv[2]))
assert t["program"] == "air" and t["split"] == "test" and t["index"] == 0, t
names = {site["name"] for site in t["guide"]["sites"]}
assert {"z_pres/0", "z_where/0", "z_what/0"} <= names, names
PY

# Errors: one line naming the argument and the value.
set +e
err=$("$ppl" demo --steps 50 --model "$work/nowhere" --out "$work/x" 2>&1 >/dev/null); rc=$?
set -e
[ $rc -eq 2 ] && grep -q -- "--model \"$work/nowhere\" is not a folder" <<<"$err" ||
  { echo "demo --model nowhere: exit $rc, $err"; exit 1; }
# "none": the regression only.
out=$("$ppl" demo --steps 50 --model none --out "$work/none")
[ ! -e "$work/none" ] || { echo "demo --model none wrote $work/none"; exit 1; }
echo "demo model: ok"
