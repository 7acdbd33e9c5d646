//! IPv6 end to end, in a network namespace of its own with IPv6 addresses on its loopback: a
//! tracker listening on `IPv4,IPv6` and a storage on an IPv6 address known by its storage id;
//! a file uploaded through the tracker's IPv6 address and read back through its IPv4 one, the
//! 46-byte address fields `response_ip_addr_size = auto` gives when the ids hold IPv6
//! addresses, `fdfs_monitor`'s bracketed host, and `address_family = both` with an empty
//! `bind_addr` answering on both families.

use rfdfs_tests::{bin_dir, TempDir};

#[test]
fn a_cluster_on_ipv6_addresses_serves_both_families() {
    let dir = TempDir::new("ipv6");
    let d = dir.path().display();
    let script = format!(
        r#"
set -e
export PATH={bin}:$PATH
ip link set lo up
ip -6 addr add fd00:fd::2/128 dev lo nodad
ip -6 addr add fd00:fd::10/128 dev lo nodad
mkdir -p {d}/t {d}/t2 {d}/s {d}/sp {d}/c
echo "100001 group1 [fd00:fd::10]" > {d}/storage_ids.conf
cat > {d}/tracker.conf <<CONF
bind_addr = 127.0.0.2,fd00:fd::2
port = 22122
base_path = {d}/t
use_storage_id = true
id_type_in_filename = id
storage_ids_filename = storage_ids.conf
CONF
cat > {d}/tracker2.conf <<CONF
bind_addr =
address_family = both
port = 22123
base_path = {d}/t2
CONF
cat > {d}/storage.conf <<CONF
group_name = group1
bind_addr = fd00:fd::10
port = 23000
base_path = {d}/s
store_path0 = {d}/sp
subdir_count_per_path = 4
heart_beat_interval = 1
tracker_server = [fd00:fd::2]:22122
CONF
for c in v6=[fd00:fd::2]:22122 v4=127.0.0.2:22122 both6=[fd00:fd::2]:22123 both4=127.0.0.2:22123; do
  printf 'base_path = {d}/c\ntracker_server = %s\n' "${{c#*=}}" > {d}/client-${{c%%=*}}.conf
done
cleanup() {{
  for p in {d}/t/data/fdfs_trackerd.pid {d}/t2/data/fdfs_trackerd.pid {d}/s/data/fdfs_storaged.pid; do
    [ -f $p ] && kill $(cat $p) 2>/dev/null || true
  done
}}
trap cleanup EXIT
fdfs_trackerd {d}/tracker.conf
fdfs_trackerd {d}/tracker2.conf
fdfs_storaged {d}/storage.conf
for i in $(seq 1 60); do
  fdfs_monitor {d}/client-v6.conf 2>/dev/null | grep -q ' ACTIVE' && break
  sleep 0.5
done
echo hello-ipv6 > {d}/f.txt
id=$(fdfs_upload_file {d}/client-v6.conf {d}/f.txt)
echo "ID $id"
fdfs_download_file {d}/client-v4.conf "$id" {d}/back.txt
cmp {d}/f.txt {d}/back.txt && echo ROUND_TRIP_OK
fdfs_file_info {d}/client-v4.conf "$id"
fdfs_monitor {d}/client-v6.conf | grep -E 'host = '
fdfs_monitor {d}/client-both6.conf | grep -E 'group count'
fdfs_monitor {d}/client-both4.conf | grep -E 'group count'
grep -o 'response_ip_addr_size=[0-9]*' {d}/s/logs/storaged.log | head -1
"#,
        bin = bin_dir().display(),
    );
    let text = rfdfs_tests::run_in_netns(&script, "the IPv6 steps");
    let id = text
        .lines()
        .find_map(|l| l.strip_prefix("ID "))
        .expect("a file ID");
    assert!(id.starts_with("group1/M00/"), "{text}");
    assert!(text.contains("ROUND_TRIP_OK"), "{text}");
    // the name carries the storage id; its address comes from the storage
    assert!(text.contains("source storage id: 100001\n"), "{text}");
    assert!(text.contains("source ip address: fd00:fd::10\n"), "{text}");
    assert!(text.contains("file size: 11\n"), "{text}");
    assert!(
        text.contains("host = [fd00:fd::10]:23000  ACTIVE"),
        "{text}"
    );
    assert_eq!(text.matches("group count: 0").count(), 2, "{text}");
    assert!(text.contains("response_ip_addr_size=46"), "{text}");
}
