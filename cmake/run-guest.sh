#!/bin/sh
# run-guest.sh LOG TIMEOUT QEMU ARGS... - boot one bare-metal image under qemu-system.
# The serial output is kept in LOG (tools/matrix.py reads it) and echoed for ctest. The run
# passes only if QEMU exits 0 AND the guest printed its "N passed, 0 failed" summary, so a guest
# that dies early cannot pass silently. A hung guest is killed after TIMEOUT seconds (status 124).
log=$1; secs=$2; shift 2
mkdir -p "$(dirname "$log")"
timeout -k 2 "$secs" "$@" </dev/null >"$log" 2>&1
rc=$?
cat "$log"
if [ $rc -eq 124 ]; then
  echo "run-guest: guest timed out after ${secs}s (killed)"
  exit $rc
fi
if [ $rc -eq 0 ] && ! grep -Eq '^[0-9]+ passed, 0 failed' "$log"; then
  echo "run-guest: QEMU exited 0 but the guest printed no passing summary"
  exit 3
fi
exit $rc
