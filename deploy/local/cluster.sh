#!/usr/bin/env bash
# A local 3-node RabbitMQ cluster on loopback, to try ticketq beyond one machine.
#
#   deploy/local/cluster.sh [start]     start the three nodes, join them, print env
#   deploy/local/cluster.sh stop        stop the three nodes (clean shutdown)
#   deploy/local/cluster.sh status      exit 0 iff all three run as one cluster
#   deploy/local/cluster.sh destroy     stop, then delete the cluster's data
#   deploy/local/cluster.sh env         print `export TICKETQ_...` lines
#   deploy/local/cluster.sh rabbitmqctl [a|b|c] ARGS...
#                                       rabbitmqctl against one node (default a)
#
# Each node is a RabbitMQ of deploy/local/servers.sh (run once per node with its own
# TICKETQ_LOCAL_DIR, port and node name), so it listens on 127.0.0.1 only, Erlang
# distribution included, and has no guest user.  The nodes share an Erlang cookie of
# their own, never the single-node server's.  Ports: AMQP TICKETQ_CLUSTER_AMQP_PORT
# (5681) and the next two; distribution ports AMQP + 20000.  Node names rabbit-a@localhost,
# rabbit-b@..., rabbit-c@... (with -PORT appended on other ports: epmd is shared).
# Data: ${TICKETQ_CLUSTER_DIR:-<repo>/.local/cluster}/{a,b,c}/rabbitmq.
# The nodes always start together: a clustered node that restarts waits for its peers.
# stdout carries only the `export` lines: `eval "$(deploy/local/cluster.sh start)"`.
set -euo pipefail

SCRIPT_PATH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
SERVERS="$(dirname "$SCRIPT_PATH")/servers.sh"
REPO_ROOT="$(cd "$(dirname "$SCRIPT_PATH")/../.." && pwd)"

CLUSTER_DIR="${TICKETQ_CLUSTER_DIR:-$REPO_ROOT/.local/cluster}"
case "$CLUSTER_DIR" in /*) ;; *) CLUSTER_DIR="$PWD/$CLUSTER_DIR" ;; esac
CLUSTER_DIR="${CLUSTER_DIR%/}"
BASE_PORT="${TICKETQ_CLUSTER_AMQP_PORT:-5681}"
NODES=(a b c)

# Those of the local servers (servers.sh creates them on each node).
APP_USER=ticketq
APP_PASSWORD=ticketq
APP_VHOST=ticketq

say() { printf 'cluster.sh: %s\n' "$*" >&2; }
die() {
    printf 'cluster.sh: ERROR: %s\n' "$*" >&2
    exit 1
}

if ! [[ "$BASE_PORT" =~ ^[0-9]+$ ]] || ((BASE_PORT < 1 || BASE_PORT > 45533)); then
    die "TICKETQ_CLUSTER_AMQP_PORT=$BASE_PORT is not usable (1..45533: distribution ports are +20000)"
fi
if ((BASE_PORT <= 5672 && 5672 <= BASE_PORT + 2)); then
    die "TICKETQ_CLUSTER_AMQP_PORT=$BASE_PORT would take 5672, the single-node server's port"
fi

node_index() { # a|b|c -> 0|1|2
    case "$1" in a) echo 0 ;; b) echo 1 ;; c) echo 2 ;; *) die "unknown node '$1' (a|b|c)" ;; esac
}
node_port() { echo $((BASE_PORT + $(node_index "$1"))); }
node_name() {
    if [[ "$BASE_PORT" == 5681 ]]; then
        echo "rabbit-$1@localhost"
    else
        echo "rabbit-$1-$BASE_PORT@localhost"
    fi
}
node_dir() { echo "$CLUSTER_DIR/$1"; }

# servers.sh for one node: its own data dir, port and node name.
on_node() { # node servers.sh-args...
    local node="$1"
    shift
    TICKETQ_LOCAL_DIR="$(node_dir "$node")" \
        TICKETQ_LOCAL_AMQP_PORT="$(node_port "$node")" \
        TICKETQ_LOCAL_RABBITMQ_NODENAME="$(node_name "$node")" \
        "$SERVERS" "$@"
}

ctl() { on_node "$1" rabbitmqctl "${@:2}"; }

# One cookie for the three nodes, made once; servers.sh keeps each node's in $HOME = its
# RabbitMQ dir, and Erlang leaves an existing cookie file alone.
install_cookie() {
    local cookie="$CLUSTER_DIR/.erlang.cookie" node target
    if [[ ! -s "$cookie" ]]; then
        (umask 077 && head -c 32 /dev/urandom | sha256sum | cut -c1-40 | tr -d '\n' >"$cookie")
    fi
    for node in "${NODES[@]}"; do
        target="$(node_dir "$node")/rabbitmq/.erlang.cookie"
        mkdir -p "$(dirname "$target")"
        if ! cmp -s "$cookie" "$target" 2>/dev/null; then
            rm -f "$target"
            cp "$cookie" "$target"
            chmod 400 "$target"
        fi
    done
}

members_of() { # node -> the running nodes it sees, one a line
    ctl "$1" -q cluster_status --formatter json 2>/dev/null \
        | grep -o '"running_nodes":\[[^]]*\]' | grep -o 'rabbit-[^"]*'
}

join() { # node: make it a member of node a's cluster, unless it is one
    local node="$1" seed
    seed="$(node_name a)"
    if ctl "$node" -q cluster_status --formatter json 2>/dev/null | grep -q "\"$seed\""; then
        return 0
    fi
    say "joining $(node_name "$node") to $seed"
    # The CLI reports the node's own restart as warnings: kept for a failure only.
    local log
    log="$(node_dir "$node")/join.log"
    {
        ctl "$node" -q stop_app \
            && ctl "$node" -q reset \
            && ctl "$node" -q join_cluster "$seed" \
            && ctl "$node" -q start_app \
            && ctl "$node" -q await_startup --timeout 60
    } >"$log" 2>&1 || {
        cat "$log" >&2
        die "$(node_name "$node") could not join $seed (output above)"
    }
}

cmd_start() {
    local t0=$SECONDS node pids=() failed=0 i
    mkdir -p "$CLUSTER_DIR"
    install_cookie
    say "starting rabbit-a, -b, -c (127.0.0.1:$BASE_PORT-$((BASE_PORT + 2)), data $CLUSTER_DIR)"
    for node in "${NODES[@]}"; do
        on_node "$node" start rabbitmq >/dev/null 2>"$(node_dir "$node")/start.err" &
        pids+=($!)
    done
    for i in "${!pids[@]}"; do
        if ! wait "${pids[$i]}"; then
            failed=1
            say "node ${NODES[$i]} failed to start:"
            cat "$(node_dir "${NODES[$i]}")/start.err" >&2
        fi
    done
    ((failed == 0)) || die "the cluster did not start"
    say "nodes up after $((SECONDS - t0))s"
    join b
    join c
    local running
    running="$(members_of a | wc -l)"
    ((running == 3)) || die "node a sees $running running nodes, not 3"
    say "cluster of 3 ready in $((SECONDS - t0))s"
    print_env
}

cmd_stop() {
    local node
    for node in c b a; do
        on_node "$node" stop rabbitmq
    done
}

cmd_status() {
    local node rc=0 running
    for node in "${NODES[@]}"; do
        if ctl "$node" -q await_startup --timeout 5 >/dev/null 2>&1; then
            running="$(members_of "$node" | tr '\n' ' ')"
            echo "$(node_name "$node"): running amqp=127.0.0.1:$(node_port "$node") cluster=[${running% }]"
            [[ "$(wc -w <<<"$running")" == 3 ]] || rc=1
        else
            echo "$(node_name "$node"): stopped"
            rc=1
        fi
    done
    return $rc
}

cmd_destroy() {
    cmd_stop
    [[ -d "$CLUSTER_DIR" ]] && say "deleting $CLUSTER_DIR" && rm -rf -- "$CLUSTER_DIR"
    return 0
}

print_env() {
    local urls=() node
    for node in "${NODES[@]}"; do
        urls+=("amqp://$APP_USER:$APP_PASSWORD@127.0.0.1:$(node_port "$node")/$APP_VHOST")
    done
    echo "export TICKETQ_AMQP_URL=$(
        IFS=,
        echo "${urls[*]}"
    )"
    echo "export TICKETQ_RABBITMQCTL=\"$SCRIPT_PATH rabbitmqctl a\""
}

cmd_rabbitmqctl() {
    local node=a
    if [[ "${1:-}" =~ ^[abc]$ ]]; then
        node="$1"
        shift
    fi
    exec env TICKETQ_LOCAL_DIR="$(node_dir "$node")" \
        TICKETQ_LOCAL_AMQP_PORT="$(node_port "$node")" \
        TICKETQ_LOCAL_RABBITMQ_NODENAME="$(node_name "$node")" \
        "$SERVERS" rabbitmqctl "$@"
}

cmd="${1:-start}"
(($#)) && shift
case "$cmd" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    destroy) cmd_destroy ;;
    env) print_env ;;
    rabbitmqctl) cmd_rabbitmqctl "$@" ;;
    -h | --help | help) sed -n '2,10p' "$SCRIPT_PATH" | sed 's/^# \{0,1\}//' ;;
    *)
        sed -n '2,10p' "$SCRIPT_PATH" | sed 's/^# \{0,1\}//' >&2
        exit 2
        ;;
esac
