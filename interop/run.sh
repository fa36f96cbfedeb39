#!/usr/bin/env bash
# Runs the real-SDK interop suite against two fresh Firekeeper servers:
# one started with --emulator and one in default (production) mode.
#
#   FK_BIN=target/debug/firekeeper bash interop/run.sh
#
# Installs nothing: run `npm ci` in interop/ and
# `pip install -r interop/python/requirements.txt` first.
# FK_BIN defaults to target/debug/firekeeper (relative to the repo root).
# FK_KEEP_WORK=1 keeps the temporary data directories and logs.
# FK_SITE_BIN (and FK_SITE_STATIC, default examples/session-site/static) runs the example
# session-cookie site's test in headless Chromium as well.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

FK_BIN="${FK_BIN:-target/debug/firekeeper}"
case "$FK_BIN" in
  /*) ;;
  *) FK_BIN="$ROOT/$FK_BIN" ;;
esac
FK_PROJECT="${FK_PROJECT:-demo-firekeeper}"
READY_TIMEOUT="${FK_READY_TIMEOUT:-60}"

if [[ ! -x "$FK_BIN" ]]; then
  echo "interop: FK_BIN=$FK_BIN is not an executable (build the server first)" >&2
  exit 1
fi
if [[ ! -d interop/node_modules/firebase || ! -d interop/node_modules/firebase-admin ]]; then
  echo "interop: interop/node_modules is missing; run 'npm ci' in interop/ first" >&2
  exit 1
fi

WORK="$(mktemp -d -t fk-interop.XXXXXX)"
EMU_DIR="$WORK/emulator-data"
PROD_DIR="$WORK/default-data"
mkdir -p "$EMU_DIR" "$PROD_DIR"
EMU_LOG="$WORK/emulator-server.log"
PROD_LOG="$WORK/default-server.log"
CLI_LOG="$WORK/cli.log"
: >"$EMU_LOG"
: >"$PROD_LOG"
: >"$CLI_LOG"
EMU_PID=""
PROD_PID=""

stop_server() {
  local pid="$1"
  [[ -n "$pid" ]] || return 0
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      echo "interop: server pid $pid ignored SIGTERM; killing it" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  local status=$?
  set +e
  stop_server "$EMU_PID"
  stop_server "$PROD_PID"
  if [[ $status -ne 0 ]]; then
    for log in "$CLI_LOG" "$EMU_LOG" "$PROD_LOG"; do
      if [[ -s "$log" ]]; then
        echo "----- $(basename "$log") (last 200 lines) -----" >&2
        tail -n 200 "$log" >&2
      fi
    done
  fi
  if [[ "${FK_KEEP_WORK:-}" == "1" ]]; then
    echo "interop: kept $WORK" >&2
  else
    rm -rf "$WORK"
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Four distinct free loopback ports (all sockets are open at the same time): each server's
# auth port and database port.
read -r EMU_PORT PROD_PORT EMU_DB_PORT PROD_DB_PORT < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(4)]
for s in socks: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])
for s in socks: s.close()
')

# Credentials for the default-mode server, created through the CLI on its data dir.
cli() { "$FK_BIN" "$@" 2>>"$CLI_LOG"; }
FK_PROD_API_KEY="$(cli api-keys create --data-dir "$PROD_DIR" --project "$FK_PROJECT")"
FK_PROD_ADMIN_TOKEN="$(cli admin-tokens create --data-dir "$PROD_DIR" --project "$FK_PROJECT")"
FK_PROD_SA_FILE="$WORK/service-account.json"
cli service-accounts create --data-dir "$PROD_DIR" --project "$FK_PROJECT" --out "$FK_PROD_SA_FILE" >/dev/null
if [[ -z "$FK_PROD_API_KEY" || -z "$FK_PROD_ADMIN_TOKEN" || ! -s "$FK_PROD_SA_FILE" ]]; then
  echo "interop: the CLI did not produce an API key, admin token and service-account file" >&2
  exit 1
fi

"$FK_BIN" serve --listen "127.0.0.1:$EMU_PORT" --rtdb-listen "127.0.0.1:$EMU_DB_PORT" \
  --data-dir "$EMU_DIR" --project "$FK_PROJECT" --emulator >"$EMU_LOG" 2>&1 &
EMU_PID=$!
# The default-mode server also runs the database's revocation bridge.
# The federated tests point GitHub and Twitter at stand-ins of their APIs.
FIREKEEPER_RTDB_REVOCATION_PATH='metadata/$uid/revokeTime' FIREKEEPER_IDP_ENDPOINT_OVERRIDES=1 \
  "$FK_BIN" serve --listen "127.0.0.1:$PROD_PORT" --rtdb-listen "127.0.0.1:$PROD_DB_PORT" \
  --data-dir "$PROD_DIR" --project "$FK_PROJECT" >"$PROD_LOG" 2>&1 &
PROD_PID=$!

# Ready when the server logs its listening line or answers GET / with any HTTP status.
wait_ready() {
  local name="$1" pid="$2" port="$3" log="$4"
  local deadline=$((SECONDS + READY_TIMEOUT))
  while ((SECONDS < deadline)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "interop: the $name server (pid $pid) exited before becoming ready" >&2
      return 1
    fi
    if grep -q "listening on http://127.0.0.1:$port" "$log"; then
      return 0
    fi
    if command -v curl >/dev/null 2>&1 &&
      curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$port/"; then
      return 0
    fi
    sleep 0.2
  done
  echo "interop: the $name server was not ready after ${READY_TIMEOUT}s" >&2
  return 1
}
wait_ready emulator "$EMU_PID" "$EMU_PORT" "$EMU_LOG"
wait_ready default "$PROD_PID" "$PROD_PORT" "$PROD_LOG"

export FK_BIN FK_PROJECT FK_PROD_API_KEY FK_PROD_ADMIN_TOKEN FK_PROD_SA_FILE
export FK_EMU_URL="http://127.0.0.1:$EMU_PORT"
export FK_PROD_URL="http://127.0.0.1:$PROD_PORT"
export FK_EMU_DB_HOST="127.0.0.1:$EMU_DB_PORT"
export FK_PROD_DB_HOST="127.0.0.1:$PROD_DB_PORT"
export FK_PROD_DATA_DIR="$PROD_DIR"
# The suites decide per test which mode to use; never inherit a stray emulator setting.
unset FIREBASE_AUTH_EMULATOR_HOST

echo "interop: emulator-mode server $FK_EMU_URL (pid $EMU_PID), default-mode server $FK_PROD_URL (pid $PROD_PID)"

status=0
echo "interop: node --test interop/node/*.test.mjs"
node --test interop/node/*.test.mjs || status=1
if [[ ! -d interop/functions/node_modules/firebase-functions ]]; then
  echo "interop: interop/functions/node_modules is missing; run 'npm ci' in interop/functions first" >&2
  status=1
else
  echo "interop: node --test interop/functions/blocking.test.mjs (starts its own servers)"
  node --test interop/functions/blocking.test.mjs || status=1
fi
echo "interop: python3 -m pytest -q interop/python"
python3 -m pytest -q interop/python || status=1
if [[ -n "${FK_SITE_BIN:-}" ]]; then
  case "$FK_SITE_BIN" in /*) ;; *) FK_SITE_BIN="$ROOT/$FK_SITE_BIN" ;; esac
  FK_SITE_STATIC="${FK_SITE_STATIC:-$ROOT/examples/session-site/static}"
  case "$FK_SITE_STATIC" in /*) ;; *) FK_SITE_STATIC="$ROOT/$FK_SITE_STATIC" ;; esac
  export FK_SITE_BIN FK_SITE_STATIC
  echo "interop: node --test interop/browser/*.test.mjs (example site in headless Chromium)"
  node --test interop/browser/*.test.mjs || status=1
else
  echo "interop: FK_SITE_BIN not set; skipping the example site's browser test"
fi

for entry in "emulator:$EMU_PID" "default:$PROD_PID"; do
  if ! kill -0 "${entry#*:}" 2>/dev/null; then
    echo "interop: the ${entry%%:*} server died during the tests" >&2
    status=1
  fi
done
exit "$status"
