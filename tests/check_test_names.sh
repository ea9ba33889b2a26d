#!/usr/bin/env bash
# Catch test names are passed to ctest as CMake lists: a ';' in a name splits
# it into filters that match nothing, and a '[' or ']' (CMake's bracket
# syntax) glues it and every later name of its file into one entry, so the
# cases would silently not run.
root=${1:-.}
hits=$(grep -rnE 'TEST_CASE\("[^"]*[];[]' "$root/tests" --include='*.cpp' || true)
if [ -n "$hits" ]; then
  echo "test names must not contain ';', '[' or ']':"
  echo "$hits"
  exit 1
fi
echo "test names: ok"
