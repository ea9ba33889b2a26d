#!/usr/bin/env bash
# Opens the page of `ppl trace` in headless Chromium (Debian's chromium
# package): the DOM must hold both site tables and every inlined image must
# decode (naturalWidth > 0). Skipped (exit 77) where chromium is absent.
set -euo pipefail
ppl=$1
browser=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$browser" ]; then
  echo "chromium not installed: skipped (apt-get install chromium)"
  exit 77
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat > "$work/small.json" <<'JSON'
{"rnn_hidden": 16, "encoder_hidden": 16, "decoder_hidden": 16, "predict_hidden": 16,
 "baseline_hidden": 16, "z_what_size": 4, "window_size": 10, "batch_size": 8}
JSON
"$ppl" train air --data multi-mnist --n-train 16 --steps 2 --eval-every 0 --config "$work/small.json" \
  --out "$work/run" > /dev/null 2>&1
"$ppl" trace "$work/run" --index 0 --html "$work/trace.html" --json "$work/trace.json" > /dev/null
# A probe page loads the trace page in an iframe and reports what it sees.
cat > "$work/probe.html" <<'HTML'
<!doctype html><html><body><iframe id="f" src="trace.html" width="1200" height="900"></iframe>
<pre id="out">pending</pre>
<script>
document.getElementById('f').onload = function () {
  var d = this.contentDocument;
  var imgs = Array.from(d.images);
  var decoded = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  var rows = d.querySelectorAll('#guide tr').length + d.querySelectorAll('#model tr').length;
  document.getElementById('out').textContent =
    'images=' + imgs.length + ' decoded=' + decoded + ' rows=' + rows + ' elbo=' + d.getElementById('elbo').textContent;
};
</script></body></html>
HTML
flags=(--headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking
       --disable-component-update --disable-sync --allow-file-access-from-files --user-data-dir="$work/profile")
dom=$(timeout 120 "$browser" "${flags[@]}" --virtual-time-budget=5000 --dump-dom "file://$work/probe.html" 2>/dev/null)
line=$(printf '%s' "$dom" | grep -o 'images=[0-9]* decoded=[0-9]* rows=[0-9]* elbo=[-0-9.]*' || true)
echo "chromium saw: $line"
images=$(echo "$line" | sed -n 's/.*images=\([0-9]*\).*/\1/p')
decoded=$(echo "$line" | sed -n 's/.*decoded=\([0-9]*\).*/\1/p')
rows=$(echo "$line" | sed -n 's/.*rows=\([0-9]*\).*/\1/p')
[ -n "$images" ] && [ "$images" -ge 5 ] && [ "$images" = "$decoded" ] && [ "$rows" -ge 10 ] || { echo "trace page check failed"; exit 1; }
timeout 120 "$browser" "${flags[@]}" --screenshot="$work/shot.png" --window-size=1200,900 "file://$work/trace.html" > /dev/null 2>&1
[ "$(stat -c %s "$work/shot.png")" -gt 10000 ] || { echo "screenshot is empty"; exit 1; }
echo "trace html in chromium: ok"
