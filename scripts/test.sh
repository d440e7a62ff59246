#!/usr/bin/env bash
# The test command: installs what the tests need, starts a throwaway PostgreSQL cluster, then runs
# the whole pytest suite (server tests on SQLite and on PostgreSQL) in parallel worker processes
# (pytest-xdist, two per core; ONSITE_TEST_WORKERS=N to choose), with ruff, mypy and the limits
# beside it; their output comes after pytest's, and either failing fails the run.
#   scripts/test.sh                 every test (what CI runs)
#   scripts/test.sh --quick         every test not marked slow: the inner loop
#   scripts/test.sh tests/x -x      extra arguments go to pytest; -n 0 runs in one process
#                                   (needed for --pdb and -s)
set -euo pipefail
cd "$(dirname "$0")/.."
selection=()
if [ "${1:-}" = "--quick" ]; then
  shift
  selection=(-m "not slow")
fi
bash scripts/bootstrap.sh test
export PATH="$PWD/.venv/bin:$PATH"

pg_dir=""
pg_port=""
lint_pid=""
lint_log=""
stop_lint() {
  if [ -n "$lint_pid" ]; then
    pkill -TERM -P "$lint_pid" 2>/dev/null || true
    kill "$lint_pid" 2>/dev/null || true
    wait "$lint_pid" 2>/dev/null || true
    lint_pid=""
  fi
}
cleanup() {
  stop_lint
  if [ -n "$lint_log" ]; then
    rm -f "$lint_log"
    lint_log=""
  fi
  if [ -n "$pg_dir" ]; then
    if [ "$(id -u)" -eq 0 ]; then
      su postgres -s /bin/sh -c "$pg_bin/pg_ctl -D '$pg_dir/data' -m immediate stop" >/dev/null 2>&1 || true
    else
      "$pg_bin/pg_ctl" -D "$pg_dir/data" -m immediate stop >/dev/null 2>&1 || true
    fi
    rm -rf "$pg_dir"
    pg_dir=""
  fi
}
trap cleanup EXIT

# pytest runs as a child (not exec'd), so the EXIT trap above still runs after it. The cluster
# was started detached (pg_ctl gives it its own session), so a Ctrl-C never reaches it: only
# cleanup stops it. A signal to this script is passed on to pytest (see below), the script
# waits for pytest's own teardown, cleans up, then dies of the same signal so that a calling
# shell stops too.
pytest_pid=""
caught=""
signals=0
on_signal() {
  caught=$1
  signals=$((signals + 1))
  if [ -z "$pytest_pid" ]; then
    cleanup
    trap - "$1"
    kill -s "$1" $$
  fi
  # A Ctrl-C reached pytest already (the terminal signals the whole process group); for any
  # other signal, an interrupt asks pytest to stop its live servers and end cleanly.
  if [ "$1" != INT ]; then
    kill -s INT "$pytest_pid" 2>/dev/null || true
  fi
}
for sig in INT TERM HUP; do
  trap "on_signal $sig" "$sig"
done

# The lint step (ruff, mypy, then the module-length and complexity limits of scripts/limits.py:
# a module over 500 lines or a function over complexity 20 fails the run) runs beside the
# cluster's start and pytest, not before them: on a fresh clone mypy has no cache and took
# 42 s of wall time (30 s of CPU) before the first test, while much of a whole run waits on
# servers, timers and Kivy frames with a core idle (docs/BENCHMARKS.md, "Session 14"). Its
# output is shown after pytest's, and a lint failure fails the run.
# Named after this script's process: a run killed outright (SIGKILL runs no trap) leaves its
# log, which the next run removes.
remove_left_by_ended_runs() {
  # Each path given ends in "-PID" (or "-PID.log"), the run that made it: removed if that
  # run has ended.
  local old pid
  for old in "$@"; do
    [ -e "$old" ] || continue
    pid=${old##*-}
    kill -0 "${pid%.log}" 2>/dev/null || rm -rf "$old"
  done
}
remove_left_by_ended_runs /tmp/onsite-lint-"$(id -u)"-*.log
lint_log="/tmp/onsite-lint-$(id -u)-$$.log"
: >"$lint_log"
(
  lint_rc=0
  echo "test: ruff"; ruff check . || lint_rc=1
  echo "test: mypy"; mypy shared || lint_rc=1
  mypy onsite_server kiosk central_emulator || lint_rc=1
  echo "test: limits"; python scripts/limits.py --strict || lint_rc=1
  exit "$lint_rc"
) >"$lint_log" 2>&1 </dev/null &
lint_pid=$!
echo "test: ruff, mypy and limits started beside pytest; their output follows pytest's" >&2

start_postgres() {
  pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  if [ -z "$pg_bin" ] || [ ! -x "$pg_bin/initdb" ]; then
    echo "test: PostgreSQL server binaries not found; server tests run on SQLite only" >&2
    return 1
  fi
  pg_dir=$(mktemp -d /tmp/onsite-pg.XXXXXX)
  pg_port=$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  local run=(sh -c)
  local stop="$pg_bin/pg_ctl -D '$pg_dir/data' -m immediate stop"
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres "$pg_dir"
    run=(su postgres -s /bin/sh -c)
    stop="su postgres -s /bin/sh -c \"$stop\""
  fi
  # A SIGKILL (a tool's time limit, the kernel's OOM killer) runs no trap, and the cluster
  # runs in a session of its own, so it outlived such a run. A watcher in a session of its
  # own stops it and removes its folder once this script is gone; after a normal end, cleanup
  # has done both and the watcher finds nothing to do. What it needs comes in its environment,
  # so that its command line names no cluster folder (the tests look for one in `ps`).
  WATCH_PID=$$ WATCH_DIR="$pg_dir" WATCH_STOP="$stop" setsid sh -c \
    'while kill -0 "$WATCH_PID" 2>/dev/null; do sleep 1; done
     eval "$WATCH_STOP" >/dev/null 2>&1; rm -rf "$WATCH_DIR"' >/dev/null 2>&1 </dev/null &
  "${run[@]}" "$pg_bin/initdb -D '$pg_dir/data' -U postgres -A trust -E UTF8 >'$pg_dir/initdb.log' 2>&1" \
    || { cat "$pg_dir/initdb.log" >&2; return 1; }
  "${run[@]}" "$pg_bin/pg_ctl -D '$pg_dir/data' -l '$pg_dir/server.log' -w -t 60 -o \"-c listen_addresses=127.0.0.1 -p $pg_port -k '$pg_dir' -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300\" start >/dev/null" \
    || { cat "$pg_dir/server.log" >&2; return 1; }
  "$pg_bin/createdb" -h 127.0.0.1 -p "$pg_port" -U postgres onsite_test
  export ONSITE_TEST_PG_URL="postgresql+psycopg://postgres@127.0.0.1:$pg_port/onsite_test"
  echo "test: throwaway PostgreSQL on port $pg_port in $pg_dir" >&2
}

if [ "${ONSITE_TEST_SKIP_PG:-0}" != "1" ]; then
  if start_postgres; then
    export ONSITE_TEST_REQUIRE_PG=1
  fi
fi

echo "test: pytest" >&2
export SDL_VIDEODRIVER="${SDL_VIDEODRIVER:-offscreen}"
# Some machines set PYTHONDONTWRITEBYTECODE: then every run, and every worker, compiles the
# project and rewrites every test module's asserts again (half of collection time). The caches
# land in __pycache__ folders, which git ignores.
unset PYTHONDONTWRITEBYTECODE
# In the background so that `wait` returns when a signal arrives. A background job of a
# non-interactive shell ignores SIGINT, which env --default-signal undoes so that a Ctrl-C
# still reaches pytest as a KeyboardInterrupt, and reads /dev/null unless told otherwise,
# which <&0 does (pytest --pdb keeps the terminal).
# The first worker to ask migrates the run's template databases and the others copy them
# (tests/onsite_server/run_templates.py); each test has a copy of its own.
# --dist loadgroup hands each test to the next free worker, in the order tests/conftest.py
# puts them (the long ones first), and keeps a module that shares a fixture on one worker.
# Two workers a core: much of the suite waits (drills on timers and leases, live servers
# starting and stopping, Kivy walks between frames, pip's downloads), and with one worker a
# core the two cores of these machines were busy only 56 % of a whole run; with two a core
# it took 669 s against 1,089 s (docs/BENCHMARKS.md, "Session 9: the whole run").
workers="${ONSITE_TEST_WORKERS:-$(( $(nproc) * 2 ))}"
# The tests' temporary folders in RAM, where the machine has room for them (a run writes about
# 1 GB there: a fresh virtualenv, instance folders, logs): on this machine's disk, pytest's
# removal of an earlier run's 28,000 files and folders took 82 s at the end of a run
# (docs/BENCHMARKS.md, "Session 11: the tests' CPU"). One folder a run, named after the
# checkout and this script's process: removed after a run that passed, kept after one that
# failed until the next run of the same checkout starts (a run inside a run,
# tests/scripts/test_test_command.py, leaves the outer one's alone). --basetemp given to this
# script comes later, and wins.
basetemp=()
shm_free_kb=$(df -Pk /dev/shm 2>/dev/null | awk 'NR == 2 {print $4}' || true)
if [ -w /dev/shm ] && [ "${shm_free_kb:-0}" -ge $((6 * 1024 * 1024)) ]; then
  tmp_prefix="/dev/shm/onsite-tests-$(id -u)-$(printf %s "$PWD" | md5sum | cut -c1-10)"
  remove_left_by_ended_runs "$tmp_prefix"-*
  basetemp=(--basetemp "$tmp_prefix-$$")
fi
env --default-signal=INT pytest -n "$workers" --dist loadgroup \
  "${basetemp[@]}" "${selection[@]}" "$@" <&0 &
pytest_pid=$!
while :; do
  signals_before=$signals
  rc=0
  wait "$pytest_pid" || rc=$?
  # A trapped signal ends `wait` early while pytest still runs: wait again for its real end
  # (once pytest has ended, bash answers with its saved exit status).
  if [ "$signals" -eq "$signals_before" ]; then
    break
  fi
done
pytest_pid=""
# After an interrupt the lint step is stopped (by cleanup), not waited for.
if [ -z "$caught" ] && [ -n "$lint_pid" ]; then
  lint_rc=0
  wait "$lint_pid" || lint_rc=$?
  lint_pid=""
  cat "$lint_log" >&2
  if [ "$lint_rc" -ne 0 ]; then
    echo "test: the lint step failed (ruff, mypy or limits, above)" >&2
    if [ "$rc" -eq 0 ]; then
      rc=1
    fi
  fi
fi
cleanup
if [ "$rc" -eq 0 ] && [ "${#basetemp[@]}" -gt 0 ]; then
  rm -rf "${basetemp[1]}"
fi
if [ -n "$caught" ]; then
  trap - "$caught"
  kill -s "$caught" $$
fi
exit "$rc"
