#!/usr/bin/env bash
# The rfdfs container's entrypoint: a tracker or a storage in the foreground, configured from
# the environment, logging to standard error.
#
#   rfdfs-entrypoint tracker | storage     run that daemon (the image's CMD says which)
#   rfdfs-entrypoint config tracker|storage print the config the environment makes, and exit
#   rfdfs-entrypoint health                 exit 0 when the daemon's /health answers 200
#   rfdfs-entrypoint <anything else>        run it (fdfs_monitor, a shell...)
#
# The config: a file mounted at $RFDFS_CONF_DIR/<role>.conf (default /etc/fdfs) is used as it
# is. Otherwise one is written to $RFDFS_RUN_DIR/<role>.conf (default /run/rfdfs) at every
# start from the container's defaults below, then every FDFS_<KEY>=<value> variable as a line
# `<key> = <value>`: the key lower-cased, `__` standing for a dot (FDFS_HTTP__SERVER_PORT ->
# http.server_port), and a value with `;` giving one line per part (several tracker_server or
# advertise_address lines). A later line wins over a default, as in any FastDFS config.
# The data directories may start empty: base_path and every store path are created.
set -euo pipefail

conf_dir=${RFDFS_CONF_DIR:-/etc/fdfs}
run_dir=${RFDFS_RUN_DIR:-/run/rfdfs}
bin_dir=${RFDFS_BIN_DIR:-}

die() { echo "rfdfs-entrypoint: $*" >&2; exit 64; }

program() { if [ -n "$bin_dir" ]; then echo "$bin_dir/$1"; else echo "$1"; fi; }

# The container's defaults: upstream's own for everything else.
defaults() {
    echo "# written by rfdfs-entrypoint from the environment; mount $conf_dir/$1.conf to use your own"
    echo "base_path = /var/fdfs"
    echo "log_to_stderr = true"
    echo "metrics.server_port = 9101"
    if [ "$1" = storage ]; then
        echo "group_name = group1"
        echo "store_path0 = /var/fdfs"
    fi
}

from_env() {
    local name key value part
    while IFS= read -r name; do
        key=${name#FDFS_}
        key=${key//__/.}
        key=${key,,}
        value=${!name}
        IFS=';' read -r -a parts <<<"$value"
        for part in "${parts[@]}"; do
            part=$(echo "$part" | sed 's/^[[:space:]]*//; s/[[:space:]]*$//')
            [ -n "$part" ] && echo "$key = $part"
        done
    done < <(compgen -e | grep '^FDFS_' | sort)
}

config_text() {
    defaults "$1"
    from_env
}

# The config file for a role: the mounted one, or one written now.
config_file() {
    local role=$1
    if [ -f "$conf_dir/$role.conf" ]; then
        echo "$conf_dir/$role.conf"
        return
    fi
    mkdir -p "$run_dir"
    config_text "$role" >"$run_dir/$role.conf"
    if [ "$role" = storage ] && ! grep -q '^tracker_server' "$run_dir/$role.conf"; then
        die "a storage needs a tracker: set FDFS_TRACKER_SERVER (host:22122; several separated by ;)"
    fi
    echo "$run_dir/$role.conf"
}

# The last value of a key in a config file.
value_of() { sed -n "s/^[[:space:]]*$2[[:space:]]*=[[:space:]]*//p" "$1" | tail -n 1; }

run() {
    local role=$1 conf dir
    conf=$(config_file "$role")
    for key in base_path $(sed -n 's/^[[:space:]]*\(store_path[0-9]*\)[[:space:]]*=.*/\1/p' "$conf" | sort -u); do
        dir=$(value_of "$conf" "$key")
        [ -n "$dir" ] && mkdir -p "$dir"
    done
    local daemon=fdfs_trackerd
    [ "$role" = storage ] && daemon=fdfs_storaged
    # exec: the daemon is the container's main process and gets its SIGTERM (it drains:
    # answers what is in progress, flushes binlog and marks, then exits 0)
    exec "$(program "$daemon")" -N "$conf"
}

health() {
    local conf port host
    if [ -f "$conf_dir/storage.conf" ] || [ -f "$run_dir/storage.conf" ]; then
        conf=$([ -f "$conf_dir/storage.conf" ] && echo "$conf_dir/storage.conf" || echo "$run_dir/storage.conf")
    else
        conf=$([ -f "$conf_dir/tracker.conf" ] && echo "$conf_dir/tracker.conf" || echo "$run_dir/tracker.conf")
    fi
    [ -f "$conf" ] || die "no config to find the metrics port in"
    port=$(value_of "$conf" metrics.server_port)
    [ -n "$port" ] && [ "$port" != 0 ] || die "metrics.server_port is off in $conf: /health needs it"
    host=$(value_of "$conf" bind_addr)
    host=${host:-127.0.0.1}
    # bash's own /dev/tcp: the image needs no curl
    exec 3<>"/dev/tcp/$host/$port" || exit 1
    printf 'GET /health HTTP/1.0\r\nHost: %s\r\n\r\n' "$host" >&3
    local status
    read -r _ status _ <&3 || exit 1
    [ "$status" = 200 ]
}

case "${1:-}" in
    tracker | storage) run "$1" ;;
    config)
        [ "${2:-}" = tracker ] || [ "${2:-}" = storage ] || die "config tracker|storage"
        config_text "$2"
        ;;
    health) health ;;
    "") die "tracker, storage, config <role>, health, or a command to run" ;;
    *) exec "$@" ;;
esac
