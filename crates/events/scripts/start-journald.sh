#!/usr/bin/env bash
# Starts systemd-journald outside systemd (CI VMs and containers without an
# init), so the journald events backend can be tested against a real journal.
# Idempotent: does nothing when a journal already listens on the native socket.
set -euo pipefail
SOCK=/run/systemd/journal/socket
JOURNALD=${JOURNALD:-/lib/systemd/systemd-journald}
listening() {
  python3 - "$SOCK" <<'PY' 2>/dev/null
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.connect(sys.argv[1])
PY
}
if listening; then
  echo "journald already listening on $SOCK"
  exit 0
fi
[ -x "$JOURNALD" ] || { echo "error: $JOURNALD not found (install systemd)" >&2; exit 1; }
mkdir -p /run/systemd/journal
setsid -f "$JOURNALD" </dev/null >/dev/null 2>&1
for _ in $(seq 1 100); do
  if listening; then echo "journald started on $SOCK"; exit 0; fi
  sleep 0.05
done
echo "error: journald did not start listening on $SOCK" >&2
exit 1
