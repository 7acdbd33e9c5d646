#!/usr/bin/env bash
# Trackers against a simulated fleet of storages (`rfdfs_bench fleet`): CPU, memory, disk
# writes, beat and query answer times, joins, and leader failover. docs/scale.md explains the
# figures and what they are used for.
#
#   scripts/fleet-bench.sh STORAGES GROUPS [SECONDS]
#
# Environment:
#   TRACKERD        the tracker binary to measure (default: rfdfs's release build). Any
#                   fdfs_trackerd that reads tracker.conf will do, so another build of the same
#                   program can be measured beside this one, runs made together.
#   TRACKERS        trackers in the cluster (default 1)
#   BEAT            the storages' heart_beat_interval (default 5)
#   CHECK_ACTIVE    the trackers' check_active_interval (default 4 x BEAT)
#   QPS             QUERY_STORE + QUERY_FETCH per second (default 200)
#   KILL_LEADER_AT  seconds after every storage is ACTIVE to kill -9 the leader (default: never)
#   NET             the first three parts of the trackers' addresses (default 127.0.0; tracker k
#                   listens on NET.(11+k)); the storages use 127.64.0.1 upwards
#   THREADS         simulator threads (default 32: one storage's slow answer holds up the
#                   others a thread serves)
#   WORK            a directory for the trackers' base paths (default: a fresh temp dir)
#
# The trackers start with a soft descriptor limit of 1024, as under systemd, and raise it
# themselves up to max_connections.
set -euo pipefail
cd "$(dirname "$0")/.."
STORAGES=${1:?usage: scripts/fleet-bench.sh STORAGES GROUPS [SECONDS]}
GROUPS_=${2:?usage: scripts/fleet-bench.sh STORAGES GROUPS [SECONDS]}
SECONDS_=${3:-120}
TRACKERD=${TRACKERD:-target/release/fdfs_trackerd}
TRACKERS=${TRACKERS:-1}
BEAT=${BEAT:-5}
CHECK_ACTIVE=${CHECK_ACTIVE:-$((4 * BEAT))}
QPS=${QPS:-200}
THREADS=${THREADS:-32}
NET=${NET:-127.0.0}
WORK=${WORK:-$(mktemp -d /tmp/rfdfs-fleet.XXXXXX)}
[ -x target/release/rfdfs_bench ] || cargo build --release --bin rfdfs_bench
if [ $((STORAGES % GROUPS_)) -ne 0 ]; then
	echo "STORAGES must be a multiple of GROUPS" >&2
	exit 2
fi
PER_GROUP=$((STORAGES / GROUPS_))
MAXCONN=$((STORAGES + STORAGES / 4 + 256))

addrs=()
pids=()
for k in $(seq 1 "$TRACKERS"); do
	addrs+=("$NET.$((10 + k)):22122")
done
list=$(IFS=,; echo "${addrs[*]}")
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	# the next run binds the same addresses: wait until these trackers are gone
	for p in "${pids[@]}"; do
		while kill -0 "$p" 2>/dev/null; do sleep 0.2; done
	done
}
trap cleanup EXIT
for k in $(seq 1 "$TRACKERS"); do
	base="$WORK/tracker$k"
	mkdir -p "$base"
	cat >"$base/tracker.conf" <<EOF
bind_addr=$NET.$((10 + k))
port=22122
base_path=$base
max_connections=$MAXCONN
check_active_interval=$CHECK_ACTIVE
store_lookup=2
log_level=warn
EOF
	(ulimit -Sn 1024; exec "$TRACKERD" "$base/tracker.conf") &
	wait $! || true
	for _ in $(seq 50); do
		[ -s "$base/data/fdfs_trackerd.pid" ] && break
		sleep 0.1
	done
	pids+=("$(cat "$base/data/fdfs_trackerd.pid")")
done

leader_pid() {
	# the leader the storages follow, as the fleet's "joined:" line names it
	local leader
	leader=$(sed -n 's/^joined:.*following \(.*\)$/\1/p' "$out")
	for k in $(seq 1 "$TRACKERS"); do
		if [ "$leader" = "${addrs[$((k - 1))]}" ]; then
			echo "${pids[$((k - 1))]}"
		fi
	done
}

out="$WORK/fleet.out"
target/release/rfdfs_bench fleet --trackers "$list" --groups "$GROUPS_" --per-group "$PER_GROUP" \
	--seconds "$SECONDS_" --beat-interval "$BEAT" --queries-per-second "$QPS" \
	--threads "$THREADS" --tracker-pids "$(IFS=,; echo "${pids[*]}")" --late-joiner | tee "$out" &
fleet=$!
if [ -n "${KILL_LEADER_AT:-}" ]; then
	until grep -q '^joined:' "$out" 2>/dev/null; do
		kill -0 $fleet 2>/dev/null || break
		sleep 0.5
	done
	sleep "$KILL_LEADER_AT"
	victim=$(leader_pid)
	if [ -n "$victim" ]; then
		echo "killing the leader, pid $victim"
		kill -9 "$victim"
	else
		echo "no tracker log names a leader; nothing killed"
	fi
fi
wait $fleet || true
for k in $(seq 1 "$TRACKERS"); do
	echo "tracker$k data files: $(du -cb "$WORK/tracker$k/data/"*.dat 2>/dev/null | tail -1 | cut -f1) bytes"
done
