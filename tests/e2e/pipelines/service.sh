#!/bin/sh
# The deploy script of the end-to-end "hosts": gray runs it on a host (through ssh) to stop the
# host's demo service gracefully and start the version it asks for.
#
#   service.sh WORLD deploy  PORT VERSION   stop the running version, start VERSION (idempotent:
#                                           a healthy VERSION already running is left alone)
#   service.sh WORLD stop    PORT           graceful stop (SIGTERM; the service drains, then exits)
#   service.sh WORLD install PORT VERSION   record VERSION as the one `start` runs
#   service.sh WORLD start   PORT           start the installed version, wait until it is healthy
#   service.sh WORLD status  PORT           print the running version; exit 1 when none runs
#
# WORLD is a directory holding world.env, written by tests/e2e/run_e2e.py:
#   DEMO=<path of gray_demo_service>  SERVICE=<service name>  STATE=<dir for pid/version/log files>
#   FAIL_RATES="v2=0.05 ..."  (versions that answer a share of requests with 500)
#   LAME_DUCK_MS=<ms>         (optional: time a stopping service still serves with health 503)
# A host is its service port: PORT.pid, PORT.version (installed), PORT.running, PORT.log in STATE.
set -u

die() {
  echo "service.sh: $*" >&2
  exit 1
}

[ $# -ge 3 ] || die "usage: service.sh WORLD deploy|stop|install|start|status PORT [VERSION]"
WORLD=$1
ACTION=$2
PORT=$3
VERSION=${4:-}
[ -f "$WORLD/world.env" ] || die "no world.env in '$WORLD'"
. "$WORLD/world.env"
case $PORT in '' | *[!0-9]*) die "PORT must be a number, not '$PORT'" ;; esac
[ -x "$DEMO" ] || die "the demo service '$DEMO' is not executable"
mkdir -p "$STATE" || die "cannot create $STATE"

PIDFILE=$STATE/$PORT.pid
LOG=$STATE/$PORT.log

# The pid of the service on PORT when one is alive (a zombie is not), else nothing.
running_pid() {
  [ -f "$PIDFILE" ] || return 1
  _pid=$(cat "$PIDFILE" 2>/dev/null) || return 1
  case $_pid in '' | *[!0-9]*) return 1 ;; esac
  [ -r "/proc/$_pid/stat" ] || return 1
  # Field 3 after the command name in parentheses is the state; Z is a zombie.
  _state=$(sed 's/^.*) \(.\).*$/\1/' "/proc/$_pid/stat" 2>/dev/null) || return 1
  [ "$_state" != Z ] || return 1
  # A recycled pid would not be our service on this port.
  tr '\0' ' ' <"/proc/$_pid/cmdline" 2>/dev/null | grep -q -- "--port $PORT " || return 1
  echo "$_pid"
}

healthy() {
  curl -fsS -o /dev/null --max-time 1 "http://127.0.0.1:$PORT/health" 2>/dev/null
}

fail_rate_of() {
  for pair in ${FAIL_RATES:-}; do
    if [ "${pair%%=*}" = "$1" ]; then
      echo "${pair#*=}"
      return
    fi
  done
  echo 0
}

do_stop() {
  pid=$(running_pid) || {
    echo "port $PORT: no service running"
    return 0
  }
  kill -TERM "$pid" 2>/dev/null || true
  # The service drains (answers in-flight requests, closes keep-alive connections) and exits.
  i=0
  while running_pid >/dev/null; do
    i=$((i + 1))
    if [ $i -ge 300 ]; then
      echo "service.sh: port $PORT: pid $pid did not stop within 15 s; killing it" >&2
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.2
      break
    fi
    sleep 0.05
  done
  rm -f "$PIDFILE" "$STATE/$PORT.running"
  echo "port $PORT: stopped $(cat "$STATE/$PORT.version" 2>/dev/null || echo '?') (pid $pid)"
}

do_install() {
  [ -n "$VERSION" ] || die "install needs a VERSION"
  printf '%s\n' "$VERSION" >"$STATE/$PORT.version.tmp" && mv "$STATE/$PORT.version.tmp" "$STATE/$PORT.version" ||
    die "cannot write $STATE/$PORT.version"
  echo "port $PORT: installed $VERSION"
}

do_start() {
  [ -f "$STATE/$PORT.version" ] || die "port $PORT: nothing installed"
  want=$(cat "$STATE/$PORT.version")
  if pid=$(running_pid); then
    if [ "$(cat "$STATE/$PORT.running" 2>/dev/null)" = "$want" ] && healthy; then
      echo "port $PORT: $want already running (pid $pid)"
      return 0
    fi
    die "port $PORT: another version is running (pid $pid); stop it first"
  fi
  rate=$(fail_rate_of "$want")
  # setsid and closed descriptors: the service outlives the ssh session that started it.
  setsid "$DEMO" --port "$PORT" --version "$want" --service "$SERVICE" --fail-rate "$rate" \
    --lame-duck "${LAME_DUCK_MS:-0}" --pid-file "$PIDFILE" </dev/null >>"$LOG" 2>&1 &
  i=0
  until healthy; do
    i=$((i + 1))
    [ $i -lt 200 ] || die "port $PORT: $want did not become healthy within 10 s (log: $LOG)"
    sleep 0.05
  done
  printf '%s\n' "$want" >"$STATE/$PORT.running"
  echo "port $PORT: started $want (pid $(cat "$PIDFILE" 2>/dev/null), fail rate $rate)"
}

case $ACTION in
  deploy)
    [ -n "$VERSION" ] || die "deploy needs a VERSION"
    if pid=$(running_pid) && [ "$(cat "$STATE/$PORT.running" 2>/dev/null)" = "$VERSION" ] && healthy; then
      echo "port $PORT: $VERSION already running (pid $pid)"
      exit 0
    fi
    do_stop && do_install && do_start
    ;;
  stop) do_stop ;;
  install) do_install ;;
  start) do_start ;;
  status)
    pid=$(running_pid) || {
      echo "port $PORT: not running"
      exit 1
    }
    echo "port $PORT: $(cat "$STATE/$PORT.running" 2>/dev/null || echo '?') (pid $pid)"
    ;;
  *) die "unknown action '$ACTION' (deploy, stop, install, start, status)" ;;
esac
