#!/usr/bin/env bash
# The runtime matrix (issue 12), run after `npm test` has compiled the tests into build/:
#   - the whole suite as compiled (build/test/*.test.js, build/test/long/ and build/test/system/) on Node 22, 24 and 26,
#     but for the TypeScript compile matrix (below);
#   - the protocol and API suites as TypeScript, run as they are (they import ../websocket-server.ts: type
#     stripping), on Node 22, 24 and 26, on Bun (`bun test`) and on Deno (`deno test -A`, which type-checks first).
# The runtimes are the npm packages pinned in .ci/runtimes/package.json, installed here (`npm ci --prefix
# .ci/runtimes`) when missing or older than its lock. Every run has a time limit; the tests talk to 127.0.0.1 only.
# Prints one line per run, and the failures of a run that failed; exits 1 if any run failed.
#
# Usage, after `npm test`: bash .ci/runtimes.sh
set -euo pipefail
cd "$(dirname "$0")/.."

runtimes=.ci/runtimes
bin=$runtimes/node_modules
ts_suites=(test/conformance.test.ts test/parser.test.ts test/api.test.ts test/deflate.test.ts test/interop.test.ts)
# Run by `npm test` only: the compile matrix checks what TypeScript compilers make of the file, which does not
# depend on the Node that runs them, and takes minutes; three more runs of it would prove nothing new.
once_only=(build/test/system/compile-matrix.test.js)
whole_suite_limit=600 # seconds, for a run that takes about 100 s on 2 cores
ts_suites_limit=300   # seconds, for runs of 10 to 30 s

if [ "$(uname -sm)" != "Linux x86_64" ]; then
  echo "runtimes.sh: the pinned runtimes are builds for Linux x86_64, not $(uname -sm)." >&2
  exit 1
fi
if ! compgen -G 'build/test/*.test.js' >/dev/null; then
  echo 'runtimes.sh: build/test/ has no compiled tests: run `npm test` first.' >&2
  exit 1
fi
if [ ! -f "$bin/.package-lock.json" ] || [ "$runtimes/package-lock.json" -nt "$bin/.package-lock.json" ]; then
  echo "installing the runtimes pinned in $runtimes/package.json (about 800 MB)"
  npm ci --prefix "$runtimes" --ignore-scripts --no-audit --no-fund
fi

# No update check or telemetry from the runtimes; logs without colours.
export DENO_NO_UPDATE_CHECK=1 DO_NOT_TRACK=1 NO_COLOR=1
logs=$(mktemp -d "${TMPDIR:-/tmp}/runtimes.XXXXXX")
echo "runtime matrix, logs in $logs"
runs=0
failures=0
started=$SECONDS

# run LABEL LOG LIMIT COMMAND...: runs COMMAND with its output in $logs/LOG, stopped after LIMIT seconds (TERM,
# then KILL 10 s later), and sets $status, $elapsed and $stopped (the limit when it was reached, else empty).
run() {
  local label=$1 log=$logs/$2 limit=$3
  shift 3
  printf '  %-56s ' "$label"
  runs=$((runs + 1))
  local begun=$SECONDS
  status=0
  timeout --kill-after=10 "$limit" "$@" >"$log" 2>&1 || status=$?
  elapsed=$((SECONDS - begun))
  stopped=
  if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then stopped=$limit; fi
}

# result OK SUMMARY LOG EXCERPT...: ends the run's line; when not OK, prints EXCERPT's output (the failures), or
# the end of the log when the run was stopped.
result() {
  local ok=$1 summary=$2 log=$3
  shift 3
  if [ "$ok" = yes ]; then
    printf 'ok    %-40s %4d s\n' "$summary" "$elapsed"
  elif [ -n "$stopped" ]; then
    failures=$((failures + 1))
    printf 'FAIL  %-40s %4d s (stopped at its limit, log %s)\n' "$summary" "$elapsed" "$log"
    tail -n 20 "$log" | awk '{ print "      " $0 }'
  else
    failures=$((failures + 1))
    printf 'FAIL  %-40s %4d s (exit status %d, log %s)\n' "$summary" "$elapsed" "$status" "$log"
    { "$@" || true; } | awk '{ print "      " $0 }'
  fi
}

# from_line PATTERN LOG: LOG from the first line matching PATTERN on, else its last 60 lines.
from_line() {
  if grep -q "$1" "$2"; then sed -n "/$1/,\$p" "$2"; else tail -n 60 "$2"; fi
}

# node_run VERSION LABEL LOG LIMIT FILE...: the spec reporter ends with "ℹ pass N", "ℹ fail N", ... and, when
# something failed, a "✖ failing tests:" section.
node_run() {
  local node=$bin/node$1/bin/node label=$2 log=$logs/$3 limit=$4
  shift 4
  run "node $("$node" --version | cut -c2-)  $label" "$(basename "$log")" "$limit" \
    "$node" --test --test-reporter=spec "$@"
  local pass fail skipped ok=no
  pass=$(sed -n 's/^ℹ pass \([0-9]*\)$/\1/p' "$log")
  fail=$(sed -n 's/^ℹ fail \([0-9]*\)$/\1/p' "$log")
  skipped=$(sed -n 's/^ℹ skipped \([0-9]*\)$/\1/p' "$log")
  if [ "$status" -eq 0 ] && [ "${pass:-0}" -gt 0 ] && [ "${fail:-1}" -eq 0 ]; then ok=yes; fi
  result "$ok" "${pass:-?} passed, ${fail:-?} failed, ${skipped:-?} skipped" "$log" from_line '^✖ failing tests:' "$log"
}

whole_suite=()
for file in build/test/*.test.js build/test/long/*.test.js build/test/system/*.test.js; do
  if [[ " ${once_only[*]} " == *" $file "* ]]; then
    echo "  (not run again per Node version: $file, which npm test ran)"
  else
    whole_suite+=("$file")
  fi
done
for version in 22 24 26; do
  node_run "$version" 'whole suite, compiled' "node$version-build.log" "$whole_suite_limit" "${whole_suite[@]}"
done
for version in 22 24 26; do
  node_run "$version" 'protocol and API suites, .ts' "node$version-ts.log" "$ts_suites_limit" "${ts_suites[@]}"
done

# Bun, with the suites' own per-test limit (test/support/wait.ts). `--only-failures` keeps the log to the failures
# and the summary (" N pass", " N fail"). Under Bun, `ws` is Bun's built-in client (see test/support/harness.ts).
bun=$bin/@oven/bun-linux-x64/bin/bun
run "bun $("$bun" --version)  protocol and API suites, .ts" bun.log "$ts_suites_limit" \
  "$bun" test --only-failures --timeout=10000 "${ts_suites[@]}"
pass=$(sed -n 's/^ *\([0-9]*\) pass$/\1/p' "$logs/bun.log")
fail=$(sed -n 's/^ *\([0-9]*\) fail$/\1/p' "$logs/bun.log")
ok=no
if [ "$status" -eq 0 ] && [ "${pass:-0}" -gt 0 ] && [ "${fail:-1}" -eq 0 ]; then ok=yes; fi
result "$ok" "${pass:-?} passed, ${fail:-?} failed" "$logs/bun.log" tail -n 80 "$logs/bun.log"

# Deno counts a describe() as a test and each test in it as a step: "ok | 50 passed (620 steps) | 0 failed (13s)".
deno=$bin/@deno/linux-x64-glibc/deno
run "deno $("$deno" --version | sed -n 's/^deno \([^ ]*\).*/\1/p')  protocol and API suites, .ts, type-checked" deno.log \
  "$ts_suites_limit" "$deno" test -A "${ts_suites[@]}"
summary=$(sed -n 's/^\(ok\|FAILED\) | \(.*\) ([^()]*)$/\2/p' "$logs/deno.log")
ok=no
if [ "$status" -eq 0 ] && grep -q '^ok | [1-9]' "$logs/deno.log"; then ok=yes; fi
result "$ok" "${summary:-?}" "$logs/deno.log" from_line '^ ERRORS' "$logs/deno.log"

total=$((SECONDS - started))
if [ "$failures" -gt 0 ]; then
  echo "runtime matrix: $failures of $runs runs failed ($((total / 60)) min $((total % 60)) s); logs in $logs"
  exit 1
fi
rm -rf "$logs"
echo "runtime matrix: all $runs runs passed ($((total / 60)) min $((total % 60)) s)"
