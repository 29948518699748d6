#!/usr/bin/env bash
# Runs PROGRAM [ARGS...] under Oclgrind with its checks on (accesses out of bounds, data races,
# uninitialized values, OpenCL API errors) and fails if the program fails or Oclgrind reports
# anything but the proven false positives listed in exceptions.txt beside this script. Oclgrind
# writes each kernel report to its log (OCLGRIND_LOG): a headline at column 0, then indented lines
# (kernel, work-item, instruction, "At line N", the source line); API errors go to stderr.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if ! command -v oclgrind > /dev/null; then
  echo "run.sh: oclgrind is not installed" >&2
  exit 2
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
log="$work/log"
# A kernel cache of its own, new each run: programs loaded from binaries carry no source, and
# Oclgrind's reports would then show no source line, which the exceptions name.
MHFA_CACHE_DIR="$work/cache" OCLGRIND_LOG="$log" \
  oclgrind --max-errors 1000000 --data-races --uninitialized --check-api "$@" 2> "$work/stderr"
status=$?
cat "$work/stderr" >&2
if [ ! -e "$log" ]; then
  echo "run.sh: Oclgrind wrote no log: did $1 create an OpenCL context?" >&2
  exit 1
fi
# One line per report: headline (its address cut) | kernel | source line.
awk 'function flush() { if (what != "") print what " | " kernel " | " source; what = "" }
     /^[^[:space:]]/ { flush(); what = $0; sub(/ (at|address) .*/, "", what); kernel = source = "" }
     /^\tKernel:/ { kernel = $2 }
     /^\tAt line/ { getline; source = $0; sub(/^[[:space:]]+/, "", source) }
     END { flush() }' "$log" > "$work/reports"
grep -v -e '^#' -e '^[[:space:]]*$' "$here/exceptions.txt" > "$work/exceptions"
grep -v -x -F -f "$work/exceptions" "$work/reports" > "$work/counted"
excepted=$(($(wc -l < "$work/reports") - $(wc -l < "$work/counted")))
kernel_reports=$(wc -l < "$work/counted")
api_reports=$(grep -c -e 'Oclgrind - OpenCL runtime error detected' -e 'OCLGRIND FATAL ERROR' \
  "$work/stderr")
if [ "$kernel_reports" -gt 0 ]; then
  echo "run.sh: reports by headline | kernel | source line:"
  sort "$work/counted" | uniq -c | sort -rn
  echo "run.sh: the first of them in full:"
  head -n 40 "$log"
fi
reports=$((kernel_reports + api_reports))
echo "run.sh: $reports Oclgrind reports ($kernel_reports in kernels, $api_reports API or fatal" \
  "errors; $excepted more excepted by exceptions.txt); program exit status $status"
[ "$status" -eq 0 ] && [ "$reports" -eq 0 ]
