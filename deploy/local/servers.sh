#!/usr/bin/env bash
# Project-local RabbitMQ + PostgreSQL for ticketq development and CI.
#
#   deploy/local/servers.sh [start] [rabbitmq|postgres]...
#                                       install if missing, start, wait, print env
#   deploy/local/servers.sh stop [rabbitmq|postgres]...
#                                       stop (clean shutdown; default both)
#   deploy/local/servers.sh status      exit 0 iff both are running
#   deploy/local/servers.sh destroy     stop, then delete all local server data
#   deploy/local/servers.sh env         print `export TICKETQ_...` lines: the admin's URLs and
#                                       each service's own (passwords in .local/secrets, 0600)
#   deploy/local/servers.sh rabbitmqctl ARGS...
#                                       rabbitmqctl against our node
#
# Both servers listen on 127.0.0.1 only (RabbitMQ's Erlang distribution and epmd
# too), RabbitMQ has no guest user, and they keep their data under
# ${TICKETQ_LOCAL_DIR:-<repo>/.local}.  Ports: TICKETQ_LOCAL_AMQP_PORT (5672),
# TICKETQ_LOCAL_PG_PORT (5432); the Erlang distribution port is AMQP + 20000.
# Progress goes to stderr; stdout carries only the `export` lines, so
# `eval "$(deploy/local/servers.sh start)"` works.
set -euo pipefail

SCRIPT_PATH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
REPO_ROOT="$(cd "$(dirname "$SCRIPT_PATH")/../.." && pwd)"

STATE_DIR="${TICKETQ_LOCAL_DIR:-$REPO_ROOT/.local}"
case "$STATE_DIR" in /*) ;; *) STATE_DIR="$PWD/$STATE_DIR" ;; esac
STATE_DIR="${STATE_DIR%/}"

AMQP_PORT="${TICKETQ_LOCAL_AMQP_PORT:-5672}"
PG_PORT="${TICKETQ_LOCAL_PG_PORT:-5432}"
WAIT_SECONDS="${TICKETQ_LOCAL_WAIT_SECONDS:-90}"

# Credentials of the local servers (dev only, loopback only).
APP_USER=ticketq
APP_PASSWORD=ticketq
APP_VHOST=ticketq
APP_DB=ticketq

say() { printf 'servers.sh: %s\n' "$*" >&2; }
die() {
    printf 'servers.sh: ERROR: %s\n' "$1" >&2
    shift
    local line
    for line in "$@"; do printf '    %s\n' "$line" >&2; done
    exit 1
}

check_port() { # name value max
    if ! [[ "$2" =~ ^[0-9]+$ ]] || (($2 < 1 || $2 > $3)); then
        die "TICKETQ_LOCAL_$1=$2 is not a usable port (1..$3)"
    fi
}
check_port AMQP_PORT "$AMQP_PORT" 45535 # the Erlang dist port is AMQP+20000
check_port PG_PORT "$PG_PORT" 65535
DIST_PORT=$((AMQP_PORT + 20000))

# Two nodes with the same name cannot share the host's epmd, so a second
# checkout on other ports gets its own node name.
if [[ "$AMQP_PORT" == 5672 ]]; then
    NODENAME="${TICKETQ_LOCAL_RABBITMQ_NODENAME:-ticketq@localhost}"
else
    NODENAME="${TICKETQ_LOCAL_RABBITMQ_NODENAME:-ticketq-$AMQP_PORT@localhost}"
fi

RMQ_DIR="$STATE_DIR/rabbitmq"
RMQ_PID_FILE="$RMQ_DIR/rabbitmq.pid"
RMQ_STARTUP_LOG="$RMQ_DIR/startup.log"
PG_LINK="$STATE_DIR/pg" # a directory, or a symlink to one (see pg_choose_root)
PG_ROOT=""              # resolved lazily: $PG_ROOT/{data,run,postgresql.log}
PG_BIN=""
RMQ_BIN=""

# ----------------------------------------------------------------------------
# helpers

is_root() { [[ $EUID -eq 0 ]]; }

# Alive and not a zombie (without an init system nobody reaps orphans).
pid_alive() {
    local pid="$1" stat
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    stat="$(cat "/proc/$pid/stat" 2>/dev/null)" || return 1
    stat="${stat##*) }"
    [[ "${stat:0:1}" != Z && "${stat:0:1}" != X ]]
}

# Something accepts TCP connections on 127.0.0.1:$1 ?
port_in_use() {
    timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
}

port_owner_hint() {
    command -v ss >/dev/null 2>&1 || return 0
    ss -Hltnp "sport = :$1" 2>/dev/null | sed 's/^/      /' >&2 || true
}

port_conflict() { # what port env_var
    printf 'servers.sh: ERROR: port 127.0.0.1:%s is already in use by a %s that is not ticketq'"'"'s local one:\n' "$2" "$1" >&2
    port_owner_hint "$2"
    printf '%s\n' \
        "    Either point ticketq at servers you already have (then nothing is started here):" \
        "      export TICKETQ_AMQP_URL=amqp://USER:PASS@HOST:5672/VHOST" \
        "      export TICKETQ_DATABASE_URL=postgresql://USER:PASS@HOST:5432/DB" \
        "    or run the local ones on free ports, e.g.: export $3=$(($2 + 1))" >&2
    exit 1
}

show_log_tail() { # file [lines]
    local f="$1" n="${2:-40}"
    if [[ -s "$f" ]]; then
        printf -- '----- last %s lines of %s -----\n' "$n" "$f" >&2
        tail -n "$n" "$f" >&2 || true
        printf -- '-----\n' >&2
    fi
}

short_hash() { printf '%s' "$1" | sha1sum | cut -c1-10; }

# ----------------------------------------------------------------------------
# packages

find_rabbitmq() {
    if [[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ]]; then
        # Debian: /usr/sbin/rabbitmq-server is a wrapper that su's to the
        # `rabbitmq` user and cd's to /var/lib/rabbitmq; we want the real one.
        RMQ_BIN=/usr/lib/rabbitmq/bin
    elif command -v rabbitmq-server >/dev/null 2>&1; then
        RMQ_BIN="$(dirname "$(readlink -f "$(command -v rabbitmq-server)")")"
    else
        RMQ_BIN=""
        return 1
    fi
}

find_postgres() {
    local d v
    # An existing cluster must be run by the major version that created it.
    if [[ -n "$PG_ROOT" && -r "$PG_ROOT/data/PG_VERSION" ]]; then
        v="$(cat "$PG_ROOT/data/PG_VERSION")"
        if [[ -x "/usr/lib/postgresql/$v/bin/pg_ctl" ]]; then
            PG_BIN="/usr/lib/postgresql/$v/bin"
            return 0
        fi
    fi
    if command -v pg_ctl >/dev/null 2>&1 && command -v initdb >/dev/null 2>&1; then
        PG_BIN="$(dirname "$(readlink -f "$(command -v pg_ctl)")")"
        return 0
    fi
    # shellcheck disable=SC2012
    for d in /usr/lib/postgresql/15/bin $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -rV); do
        if [[ -x "$d/pg_ctl" && -x "$d/initdb" ]]; then
            PG_BIN="$d"
            return 0
        fi
    done
    PG_BIN=""
    return 1
}

apt_install() {
    local policy=/usr/sbin/policy-rc.d t0=$SECONDS
    is_root || die "missing packages: $*" "install them first: sudo apt-get install -y $*"
    command -v apt-get >/dev/null 2>&1 \
        || die "missing packages: $* (and no apt-get here); install RabbitMQ/PostgreSQL 15 yourself" \
            "or set TICKETQ_AMQP_URL / TICKETQ_DATABASE_URL to servers you already have"
    say "installing $* with apt-get (one-time)..."
    # Keep the distro's own services (rabbit@host on 5672, cluster 15/main on
    # 5432) from being started by the package scripts: they would take our
    # ports.  policy-rc.d is honoured by invoke-rc.d and deb-systemd-invoke.
    local made_policy=0
    if [[ ! -e "$policy" ]]; then
        printf '#!/bin/sh\n# temporary, from ticketq deploy/local/servers.sh\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        made_policy=1
        trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    local rc=0
    {
        DEBIAN_FRONTEND=noninteractive apt-get update -q \
            && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@"
    } >&2 || rc=$?
    if ((made_policy)); then
        rm -f "$policy"
        trap - EXIT
    fi
    ((rc == 0)) || die "apt-get install $* failed (exit $rc)"
    say "apt-get took $((SECONDS - t0))s"
}

ensure_packages() { # components...
    local want=() c
    for c in "$@"; do
        case "$c" in
            rabbitmq) find_rabbitmq || want+=(rabbitmq-server) ;;
            postgres) find_postgres || want+=(postgresql) ;;
        esac
    done
    ((${#want[@]} == 0)) && return 0
    apt_install "${want[@]}"
    for c in "$@"; do
        case "$c" in
            rabbitmq) find_rabbitmq || die "rabbitmq-server still not found after installing it" ;;
            postgres) find_postgres || die "initdb/pg_ctl still not found after installing postgresql" \
                "(looked in PATH and /usr/lib/postgresql/*/bin)" ;;
        esac
    done
}

# ----------------------------------------------------------------------------
# RabbitMQ

rmq_env() {
    export HOME="$RMQ_DIR" # the Erlang cookie lives in $HOME/.erlang.cookie
    export RABBITMQ_NODENAME="$NODENAME"
    export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
    export RABBITMQ_NODE_PORT="$AMQP_PORT"
    export RABBITMQ_DIST_PORT="$DIST_PORT"
    export RABBITMQ_MNESIA_BASE="$RMQ_DIR/mnesia"
    export RABBITMQ_LOG_BASE="$RMQ_DIR/log"
    export RABBITMQ_PID_FILE="$RMQ_PID_FILE"
    # Ignore /etc/rabbitmq/* (a developer machine may have its own settings).
    export RABBITMQ_CONF_ENV_FILE="$RMQ_DIR/rabbitmq-env.conf"
    export RABBITMQ_CONFIG_FILE="$RMQ_DIR/rabbitmq.conf"
    export RABBITMQ_ADVANCED_CONFIG_FILE="$RMQ_DIR/advanced.config"
    export RABBITMQ_ENABLED_PLUGINS_FILE="$RMQ_DIR/enabled_plugins"
    export ERL_EPMD_ADDRESS=127.0.0.1
    export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
    export RABBITMQ_CTL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
    unset RABBITMQ_ALLOW_INPUT RABBITMQ_ENABLED_PLUGINS RABBITMQ_LOGS
}

rmqctl() { (rmq_env && cd "$RMQ_DIR" && "$RMQ_BIN/rabbitmqctl" -n "$NODENAME" "$@"); }

rmq_pid() { [[ -r "$RMQ_PID_FILE" ]] && tr -dc '0-9' <"$RMQ_PID_FILE"; }

rmq_process_alive() { # the pid file names a live Erlang VM
    local pid
    pid="$(rmq_pid 2>/dev/null)" || return 1
    pid_alive "$pid" && grep -q beam "/proc/$pid/comm" 2>/dev/null
}

rmq_write_config() {
    mkdir -p "$RMQ_DIR/mnesia" "$RMQ_DIR/log"
    # No plugins by default (enable with: servers.sh rabbitmqctl ... / rabbitmq-plugins).
    [[ -e "$RMQ_DIR/enabled_plugins" ]] || echo '[].' >"$RMQ_DIR/enabled_plugins"
    printf '# generated by deploy/local/servers.sh; intentionally empty\n' >"$RMQ_DIR/rabbitmq-env.conf"
    [[ -e "$RMQ_DIR/advanced.config" ]] || echo '[].' >"$RMQ_DIR/advanced.config"
    cat >"$RMQ_DIR/rabbitmq.conf" <<EOF
# generated by deploy/local/servers.sh (listener/node settings come from env vars)
log.file.level = info
log.console = false
disk_free_limit.absolute = 50MB
# The first boot creates our user, not the default guest administrator.
default_user = $APP_USER
default_pass = $APP_PASSWORD
EOF
}

rmq_start() {
    local t0=$SECONDS waited launcher=""

    if rmq_process_alive; then
        if [[ -r "$RMQ_DIR/amqp_port" && "$(cat "$RMQ_DIR/amqp_port")" != "$AMQP_PORT" ]]; then
            die "ticketq's RabbitMQ is already running on port $(cat "$RMQ_DIR/amqp_port"), not $AMQP_PORT." \
                "Run '$SCRIPT_PATH stop' first to change TICKETQ_LOCAL_AMQP_PORT."
        fi
        if rmqctl -q await_startup --timeout 5 >/dev/null 2>&1; then
            say "RabbitMQ already running (node $NODENAME, pid $(rmq_pid))"
            rmq_provisioned || rmq_provision
            return 0
        fi
        say "RabbitMQ process $(rmq_pid) exists but is not up yet; waiting for it"
    else
        port_in_use "$AMQP_PORT" && port_conflict "RabbitMQ (or other server)" "$AMQP_PORT" TICKETQ_LOCAL_AMQP_PORT
        port_in_use "$DIST_PORT" && port_conflict "process (Erlang distribution port = AMQP+20000)" "$DIST_PORT" TICKETQ_LOCAL_AMQP_PORT
        rmq_write_config
        rm -f "$RMQ_PID_FILE"
        echo "$AMQP_PORT" >"$RMQ_DIR/amqp_port"
        say "starting RabbitMQ (node $NODENAME, 127.0.0.1:$AMQP_PORT, data $RMQ_DIR)"
        # Run in the background ourselves (the Debian service script needs an
        # init system).  All fds are redirected so that callers such as CI
        # runners are not kept waiting on our stdout/stderr.
        (
            rmq_env
            cd "$RMQ_DIR"
            exec setsid "$RMQ_BIN/rabbitmq-server" </dev/null >"$RMQ_STARTUP_LOG" 2>&1 9>&-
        ) &
        launcher=$!
    fi

    # `rabbitmqctl wait` follows the pid file and then the boot of the app; it
    # gives up by itself if the OS process dies.  Loop in case it exits early
    # (e.g. the pid file was not written yet).
    while :; do
        waited=$((SECONDS - t0))
        if ((waited >= WAIT_SECONDS)); then
            show_log_tail "$RMQ_STARTUP_LOG" 25
            show_log_tail "$RMQ_DIR/log/$NODENAME.log" 15
            die "RabbitMQ did not come up within ${WAIT_SECONDS}s (logs above; dir $RMQ_DIR)"
        fi
        if [[ -s "$RMQ_PID_FILE" ]]; then
            if ! rmq_process_alive; then
                show_log_tail "$RMQ_STARTUP_LOG" 25
                show_log_tail "$RMQ_DIR/log/$NODENAME.log" 15
                die "RabbitMQ exited during startup (logs above; dir $RMQ_DIR)"
            fi
            if rmqctl -q wait --timeout $((WAIT_SECONDS - waited)) "$RMQ_PID_FILE" >/dev/null 2>&1 \
                && rmqctl -q await_startup --timeout 10 >/dev/null 2>&1; then
                break
            fi
        elif [[ -n "$launcher" ]] && ! pid_alive "$launcher"; then
            show_log_tail "$RMQ_STARTUP_LOG" 25
            show_log_tail "$RMQ_DIR/log/$NODENAME.log" 15
            die "RabbitMQ failed to start (logs above; dir $RMQ_DIR)"
        fi
        sleep 0.5
    done
    say "RabbitMQ up after $((SECONDS - t0))s (pid $(rmq_pid))"
    rmq_provision
}

rmq_provisioned() { # cheap check used when the node was already running
    local users
    rmqctl -q list_user_permissions "$APP_USER" --no-table-headers 2>/dev/null \
        | grep -qxF "$(printf '%s\t.*\t.*\t.*' "$APP_VHOST")" || return 1
    users="$(rmqctl -q list_users --no-table-headers 2>/dev/null)" || return 1
    ! grep -qE '^guest([[:space:]]|$)' <<<"$users"
}

rmq_provision() {
    # Idempotent: vhost, user (password reset if it does not match), tags, permissions.
    local vhosts users
    vhosts="$(rmqctl -q list_vhosts name --no-table-headers)" \
        || die "rabbitmqctl list_vhosts failed against node $NODENAME"
    if ! grep -qxF "$APP_VHOST" <<<"$vhosts"; then
        rmqctl -q add_vhost "$APP_VHOST" >/dev/null
    fi
    users="$(rmqctl -q list_users --no-table-headers | awk '{print $1}')"
    if grep -qxF "$APP_USER" <<<"$users"; then
        rmqctl -q authenticate_user "$APP_USER" "$APP_PASSWORD" >/dev/null 2>&1 \
            || rmqctl -q change_password "$APP_USER" "$APP_PASSWORD" >/dev/null
    else
        rmqctl -q add_user "$APP_USER" "$APP_PASSWORD" >/dev/null
    fi
    rmqctl -q set_user_tags "$APP_USER" administrator >/dev/null
    rmqctl -q set_permissions -p "$APP_VHOST" "$APP_USER" '.*' '.*' '.*' >/dev/null
    # No default guest administrator (a node created before default_user was set has one).
    if grep -qxF guest <<<"$users"; then
        rmqctl -q delete_user guest >/dev/null
    fi
}

rmq_stop() {
    if ! rmq_process_alive; then
        say "RabbitMQ not running"
        return 0
    fi
    find_rabbitmq || die "rabbitmq-server is not installed, but a pid file says it runs ($RMQ_PID_FILE)"
    say "stopping RabbitMQ (node $NODENAME, pid $(rmq_pid))"
    # `stop <pidfile>` returns once the OS process is gone.
    if ! rmqctl -q stop "$RMQ_PID_FILE" >/dev/null 2>&1; then
        local pid
        pid="$(rmq_pid)"
        say "rabbitmqctl stop failed; sending SIGTERM to $pid"
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 60); do pid_alive "$pid" || break; sleep 0.5; done
        pid_alive "$pid" && die "RabbitMQ (pid $pid) did not stop"
    fi
    rm -f "$RMQ_PID_FILE"
}

rmq_status() {
    if ! rmq_process_alive; then
        echo "rabbitmq: stopped"
        return 1
    fi
    find_rabbitmq || true
    if [[ -n "$RMQ_BIN" ]] && rmqctl -q await_startup --timeout 5 >/dev/null 2>&1; then
        echo "rabbitmq: running  node=$NODENAME pid=$(rmq_pid) amqp=127.0.0.1:$AMQP_PORT data=$RMQ_DIR"
        return 0
    fi
    echo "rabbitmq: process $(rmq_pid) alive but the broker is not (yet) up"
    return 1
}

# ----------------------------------------------------------------------------
# PostgreSQL

# Run a command as the `postgres` OS user when we are root (PostgreSQL refuses
# to run as root).  cd / first: the caller's cwd may be unreadable for it.
as_pg() {
    # 9>&-: the server must not inherit our lock fd (see take_lock).
    if is_root; then
        (cd / && runuser -u postgres -- "$@" 9>&-)
    else
        (cd / && "$@" 9>&-)
    fi
}

pg_resolve_root() { # → PG_ROOT if the layout exists
    if [[ -L "$PG_LINK" ]]; then
        PG_ROOT="$(readlink "$PG_LINK")"
    elif [[ -d "$PG_LINK" ]]; then
        PG_ROOT="$PG_LINK"
    else
        PG_ROOT=""
        return 1
    fi
}

# Decide where the cluster lives.  Normally $STATE_DIR/pg; but when the
# postgres user cannot reach $STATE_DIR (e.g. CI clones into a 0700 mktemp
# dir) or the socket path would be too long, use /var/tmp and leave a symlink.
pg_choose_root() {
    local target
    if pg_resolve_root; then
        if [[ -L "$PG_LINK" && ! -d "$PG_ROOT" ]]; then
            say "PostgreSQL dir $PG_ROOT (symlinked from $PG_LINK) is gone; creating a new cluster there"
        fi
    else
        PG_ROOT="$PG_LINK"
        local reachable=1
        if is_root; then
            id postgres >/dev/null 2>&1 || die "no 'postgres' OS user (is the postgresql package installed?)"
            # shellcheck disable=SC2016
            runuser -u postgres -- sh -c 'cd / && test -x "$1"' sh "$STATE_DIR" 2>/dev/null || reachable=0
        fi
        local sock="$STATE_DIR/pg/run/.s.PGSQL.$PG_PORT"
        if ((!reachable)) || ((${#sock} > 100)); then
            target="/var/tmp/ticketq-pg-$(short_hash "$STATE_DIR")"
            if ((!reachable)); then
                say "the postgres user cannot enter $STATE_DIR; keeping PostgreSQL data in $target"
            else
                say "socket path under $STATE_DIR is too long; keeping PostgreSQL data in $target"
            fi
            if [[ -e "$target" && "$(stat -c %U "$target")" != "$(is_root && echo postgres || id -un)" ]]; then
                die "$target exists but is owned by $(stat -c %U "$target"); remove it or set TICKETQ_LOCAL_DIR"
            fi
            ln -sfn "$target" "$PG_LINK"
            PG_ROOT="$target"
        fi
    fi
    mkdir -p "$PG_ROOT"
    if is_root; then
        chown postgres:postgres "$PG_ROOT"
    fi
    chmod 700 "$PG_ROOT"
    as_pg mkdir -p "$PG_ROOT/run"
}

pg_running() { # exit 0 if our cluster runs
    [[ -n "$PG_ROOT" && -f "$PG_ROOT/data/postmaster.pid" ]] || return 1
    local pid
    pid="$(head -n 1 "$PG_ROOT/data/postmaster.pid" 2>/dev/null)" || return 1
    pid_alive "$pid"
}

pg_running_port() { sed -n 4p "$PG_ROOT/data/postmaster.pid" 2>/dev/null; }

pg_psql() { # SQL via the unix socket as the postgres superuser
    as_pg "$PG_BIN/psql" -X -q -A -t -v ON_ERROR_STOP=1 \
        -h "$PG_ROOT/run" -p "$PG_PORT" -U postgres -d postgres "$@"
}

pg_write_config() {
    local conf="$PG_ROOT/data/ticketq.conf"
    cat >"$conf" <<EOF
# generated by deploy/local/servers.sh on every start; edit that script instead
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$PG_ROOT/run'
max_connections = 300
fsync = on
synchronous_commit = on
full_page_writes = on
password_encryption = 'scram-sha-256'
timezone = 'UTC'
log_timezone = 'UTC'
EOF
    is_root && chown postgres:postgres "$conf"
    if ! grep -q "^include_if_exists = 'ticketq.conf'" "$PG_ROOT/data/postgresql.conf"; then
        printf "\n# ticketq local settings\ninclude_if_exists = 'ticketq.conf'\n" >>"$PG_ROOT/data/postgresql.conf"
    fi
}

pg_start() {
    local t0=$SECONDS locale=C
    pg_choose_root
    find_postgres || die "PostgreSQL binaries not found"

    if pg_running; then
        local running_port
        running_port="$(pg_running_port)"
        if [[ "$running_port" != "$PG_PORT" ]]; then
            die "ticketq's PostgreSQL is already running on port $running_port, not $PG_PORT." \
                "Run '$SCRIPT_PATH stop' first to change TICKETQ_LOCAL_PG_PORT."
        fi
        say "PostgreSQL already running (port $PG_PORT, data $PG_ROOT/data)"
        pg_provision
        return 0
    fi

    port_in_use "$PG_PORT" && port_conflict "PostgreSQL (or other server)" "$PG_PORT" TICKETQ_LOCAL_PG_PORT

    if [[ ! -s "$PG_ROOT/data/PG_VERSION" ]]; then
        if [[ -d "$PG_ROOT/data" ]]; then
            say "removing incomplete cluster dir $PG_ROOT/data"
            rm -rf "$PG_ROOT/data"
        fi
        locale -a 2>/dev/null | grep -qixE 'c\.utf-?8' && locale=C.UTF-8
        say "initdb $PG_ROOT/data ($("$PG_BIN/postgres" --version))"
        if ! as_pg "$PG_BIN/initdb" -D "$PG_ROOT/data" -U postgres \
            --auth-local=trust --auth-host=scram-sha-256 \
            --encoding=UTF8 --locale="$locale" --data-checksums \
            >"$PG_ROOT/initdb.log" 2>&1; then
            show_log_tail "$PG_ROOT/initdb.log"
            die "initdb failed (log above)"
        fi
    fi
    pg_write_config

    say "starting PostgreSQL (127.0.0.1:$PG_PORT, data $PG_ROOT/data)"
    local out
    if ! out="$(as_pg "$PG_BIN/pg_ctl" -D "$PG_ROOT/data" -l "$PG_ROOT/postgresql.log" \
        -w -t "$WAIT_SECONDS" start 2>&1)"; then
        printf '%s\n' "$out" >&2
        show_log_tail "$PG_ROOT/postgresql.log" 20
        die "PostgreSQL failed to start (or was not ready within ${WAIT_SECONDS}s); log: $PG_ROOT/postgresql.log"
    fi
    say "PostgreSQL up after $((SECONDS - t0))s"
    pg_provision
}

pg_provision() {
    pg_psql <<SQL >/dev/null
DO \$\$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$APP_USER') THEN
    CREATE ROLE $APP_USER LOGIN PASSWORD '$APP_PASSWORD' CREATEDB CREATEROLE;
  ELSE
    ALTER ROLE $APP_USER LOGIN PASSWORD '$APP_PASSWORD' CREATEDB CREATEROLE;
  END IF;
END
\$\$;
SQL
    if [[ -z "$(pg_psql -c "SELECT 1 FROM pg_database WHERE datname = '$APP_DB'")" ]]; then
        pg_psql -c "CREATE DATABASE $APP_DB OWNER $APP_USER" >/dev/null
    fi
}

pg_stop() {
    pg_resolve_root || true
    if ! pg_running; then
        say "PostgreSQL not running"
        return 0
    fi
    find_postgres || die "PostgreSQL binaries not found, but $PG_ROOT/data/postmaster.pid exists"
    say "stopping PostgreSQL (data $PG_ROOT/data)"
    as_pg "$PG_BIN/pg_ctl" -D "$PG_ROOT/data" -m fast -w -t 60 stop >/dev/null
}

pg_status() {
    pg_resolve_root || true
    if pg_running; then
        if find_postgres && as_pg "$PG_BIN/pg_isready" -q -h "$PG_ROOT/run" -p "$(pg_running_port)"; then
            echo "postgres: running  pid=$(head -n 1 "$PG_ROOT/data/postmaster.pid") port=127.0.0.1:$(pg_running_port) data=$PG_ROOT/data"
            return 0
        fi
        echo "postgres: process alive but not accepting connections"
        return 1
    fi
    echo "postgres: stopped"
    return 1
}

# ----------------------------------------------------------------------------
# commands

# Each service's own broker user / database role (`ticketq setup` creates them from these
# URLs; shared/setup/grants.py says what each may do).
BROKER_PRINCIPALS=(intake presale aftersales warehouse finance cli web upstream ops report)
DB_PRINCIPALS=(intake presale aftersales warehouse finance web ops report migrator)  # cli: none (reads are requests)

secret() { # name → its password, made once (random, hex: it goes into URLs) and kept 0600
    local dir="$STATE_DIR/secrets" file="$STATE_DIR/secrets/$1"
    if [[ ! -s "$file" ]]; then
        (umask 077 && mkdir -p "$dir" && od -An -N18 -tx1 /dev/urandom | tr -d ' \n' >"$file.$$" \
            && mv -n "$file.$$" "$file" && rm -f "$file.$$")
    fi
    cat "$file"
}

print_env() {
    local admin_amqp="amqp://$APP_USER:$APP_PASSWORD@127.0.0.1:$AMQP_PORT/$APP_VHOST"
    local admin_db="postgresql://$APP_USER:$APP_PASSWORD@127.0.0.1:$PG_PORT/$APP_DB" name
    # The admin's (setup's) credentials; also every process's fallback when it has no own.
    echo "export TICKETQ_AMQP_URL=$admin_amqp"
    echo "export TICKETQ_DATABASE_URL=$admin_db"
    echo "export TICKETQ_ADMIN_AMQP_URL=$admin_amqp"
    echo "export TICKETQ_ADMIN_DATABASE_URL=$admin_db"
    echo "export TICKETQ_RABBITMQCTL=\"$SCRIPT_PATH rabbitmqctl\""
    for name in "${BROKER_PRINCIPALS[@]}"; do
        echo "export TICKETQ_${name^^}_AMQP_URL=amqp://tq_$name:$(secret "$name")@127.0.0.1:$AMQP_PORT/$APP_VHOST"
    done
    for name in "${DB_PRINCIPALS[@]}"; do
        echo "export TICKETQ_${name^^}_DATABASE_URL=postgresql://tq_$name:$(secret "$name")@127.0.0.1:$PG_PORT/$APP_DB"
    done
}

# Serialise start/stop/destroy (e.g. `make test` and `make demo` at once).
take_lock() {
    [[ -d "$STATE_DIR" ]] || return 0
    command -v flock >/dev/null 2>&1 || return 0
    exec 9>"$STATE_DIR/.lock"
    if ! flock -w $((WAIT_SECONDS * 2)) 9; then
        die "another servers.sh holds $STATE_DIR/.lock"
    fi
}

cmd_start() {
    local comps=("$@") t0=$SECONDS c
    ((${#comps[@]})) || comps=(rabbitmq postgres)
    for c in "${comps[@]}"; do
        [[ "$c" == rabbitmq || "$c" == postgres ]] || die "unknown component '$c' (rabbitmq|postgres)"
    done
    if [[ ! -d "$STATE_DIR" ]]; then
        mkdir -p "$STATE_DIR"
        chmod 755 "$STATE_DIR" # the postgres user may need to traverse it
    fi
    take_lock
    ensure_packages "${comps[@]}"
    for c in "${comps[@]}"; do
        case "$c" in
            rabbitmq) rmq_start ;;
            postgres) pg_start ;;
        esac
    done
    say "ready (${comps[*]}) in $((SECONDS - t0))s"
    print_env
}

cmd_stop() {
    local comps=("$@") c
    take_lock
    ((${#comps[@]})) || comps=(rabbitmq postgres)
    for c in "${comps[@]}"; do
        case "$c" in
            rabbitmq) rmq_stop ;;
            postgres) pg_stop ;;
            *) die "unknown component '$c' (rabbitmq|postgres)" ;;
        esac
    done
}

cmd_destroy() { # stop, then delete all local data (incl. a /var/tmp PG dir)
    cmd_stop
    if pg_resolve_root && [[ -L "$PG_LINK" && "$PG_ROOT" == /var/tmp/ticketq-pg-* ]]; then
        say "deleting $PG_ROOT"
        rm -rf -- "$PG_ROOT"
    fi
    if [[ -d "$STATE_DIR" ]]; then
        say "deleting $STATE_DIR"
        rm -rf -- "$RMQ_DIR" "$PG_LINK" "$STATE_DIR/.lock"
        rmdir -- "$STATE_DIR" 2>/dev/null || say "left $STATE_DIR (not empty)"
    fi
}

cmd_status() {
    local rc=0
    rmq_status || rc=1
    pg_status || rc=1
    return $rc
}

cmd_rabbitmqctl() {
    find_rabbitmq || die "rabbitmq-server is not installed (run '$SCRIPT_PATH start')"
    mkdir -p "$RMQ_DIR"
    rmq_env
    cd "$RMQ_DIR"
    exec "$RMQ_BIN/rabbitmqctl" -n "$NODENAME" "$@"
}

usage() {
    sed -n '2,18p' "$SCRIPT_PATH" | sed 's/^# \{0,1\}//'
}

cmd="${1:-start}"
(($#)) && shift
case "$cmd" in
    start) cmd_start "$@" ;;
    rabbitmq | postgres) cmd_start "$cmd" "$@" ;;
    stop) cmd_stop "$@" ;;
    status) cmd_status ;;
    destroy) cmd_destroy ;;
    env) print_env ;;
    rabbitmqctl) cmd_rabbitmqctl "$@" ;;
    -h | --help | help) usage ;;
    *)
        usage >&2
        exit 2
        ;;
esac
