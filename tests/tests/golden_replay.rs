//! Golden tests against live daemons (`tests/golden/`, see its README; the offline round trips
//! are `golden_codec.rs`):
//!
//! * our storage started on the upstream storage fixture takes it over as is and serves every
//!   file, info and metadata as recorded; `fdfs_file_info` prints what upstream's printed;
//! * replaying every recorded client request against our tracker and that storage gives the
//!   recorded status, except for the listed, explained deviations.

mod golden_common;

use fdfs_common::codec::Message;
use fdfs_common::file_id::{FileKind, RemoteName};
use fdfs_common::proto::client::GroupFileReq;
use fdfs_common::proto::cmd;
use fdfs_common::proto::sync::SyncFileHead;
use golden_common::{hex, load, split_frame, vectors};
use rfdfs_tests::raw;
use rfdfs_tests::{wait_port, Daemon, TempDir, Tmpfs};
use serde_json::Value;
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

fn sha1(b: &[u8]) -> String {
    sha1_smol::Sha1::from(b).digest().to_string()
}

/// Dropped in this order: the daemons, then their file system, then its mount point.
struct Fixture {
    tracker: Daemon,
    storage: Daemon,
    client_conf: PathBuf,
    root: PathBuf,
    _fs: Tmpfs,
    _dir: TempDir,
}

const TRACKER_IP: &str = "127.0.0.150";
const STORAGE_IP: &str = "127.0.0.151";

/// Wait up to 60 s until a storage of group1 (`storage`: that one) is ACTIVE on the tracker.
fn wait_group1_active(client: &fdfs_client::Client, storage: Option<&str>, daemon: &Daemon) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let active = client
            .list_storages("group1", storage)
            .map(|v| {
                v.iter()
                    .any(|s| s.status == fdfs_common::proto::status::ACTIVE)
            })
            .unwrap_or(false);
        if active {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "storage not ACTIVE:\n{}",
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Extract the upstream storage tree and start our tracker and storage on it, with the
/// capture's addresses and settings.
fn start_fixture() -> Fixture {
    start_fixture_from("storage-fixture.tar.gz", TRACKER_IP, STORAGE_IP, 256, "")
}

/// Extract `archive` (base/ and store0/) and start our tracker at `tracker_ip` and a storage
/// of group1 at `storage_ip` on it.
fn start_fixture_from(
    archive: &str,
    tracker_ip: &str,
    storage_ip: &str,
    subdir_count: u32,
    tracker_extra: &str,
) -> Fixture {
    let dir = TempDir::new("fixture");
    let root = dir.path().to_path_buf();
    // the capture's tracker reserves 10%: a file system of the fixture's own keeps the host's
    // disk fill out of the test
    let fs = Tmpfs::over(&root, 1024, false);
    let st = Command::new("tar")
        .args([
            "xzf",
            vectors().join(archive).to_str().unwrap(),
            "-C",
            root.to_str().unwrap(),
        ])
        .status()
        .expect("tar");
    assert!(st.success(), "extracting the fixture failed");
    let tbase = root.join("tracker");
    std::fs::create_dir_all(&tbase).unwrap();
    let tconf = tbase.join("tracker.conf");
    // the capture's tracker: upstream's sample values, reserved 10%
    std::fs::write(
        &tconf,
        format!(
            "bind_addr={tracker_ip}\nport=22122\nbase_path={}\nreserved_storage_space=10%\nstore_lookup=2\n\
             check_active_interval=120\nslot_min_size=256\nslot_max_size=1MB\ntrunk_alloc_alignment_size=256\n\
             trunk_free_space_merge=true\ntrunk_file_size=64MB\ntrunk_create_file_space_threshold=20G\n\
             trunk_compress_binlog_min_interval=86400\ntrunk_compress_binlog_interval=86400\n\
             trunk_binlog_max_backups=7\nid_type_in_filename=id\n{tracker_extra}",
            tbase.display()
        ),
    )
    .unwrap();
    let tracker = Daemon::start("fdfs_trackerd", &tconf, &tbase);
    wait_port(tracker_ip, 22122, "tracker");
    let base = root.join("base");
    let sconf = base.join("storage.conf");
    std::fs::write(
        &sconf,
        format!(
            "group_name=group1\nbind_addr={storage_ip}\nport=23000\nbase_path={}\nstore_path_count=1\n\
             store_path0={}\nsubdir_count_per_path={subdir_count}\ntracker_server={tracker_ip}:22122\n\
             thread_stack_size=512KB\nheart_beat_interval=1\nstat_report_interval=1\nbuff_size=256KB\n\
             sync_binlog_buff_interval=1\nsync_stat_file_interval=10\n",
            base.display(),
            root.join("store0").display()
        ),
    )
    .unwrap();
    let storage = Daemon::start("fdfs_storaged", &sconf, &base);
    let client_conf = root.join("client.conf");
    std::fs::write(&client_conf, format!("tracker_server={tracker_ip}:22122\n")).unwrap();
    let client = fdfs_client::Client::from_conf(&client_conf).unwrap();
    wait_group1_active(&client, None, &storage);
    Fixture {
        tracker,
        storage,
        client_conf,
        root,
        _fs: fs,
        _dir: dir,
    }
}

/// Download a recorded live file and ask its file info: size, sha1 and info as recorded.
fn check_live_file(client: &fdfs_client::Client, f: &Value) -> (fdfs_client::FileId, Vec<u8>) {
    let file_id = f["file_id"].as_str().unwrap();
    let id = fdfs_client::FileId::parse(file_id).unwrap();
    let data = client
        .download_to_vec(&id, 0, 0)
        .unwrap_or_else(|e| panic!("{file_id}: {e}"));
    assert_eq!(data.len() as u64, f["size"].as_u64().unwrap(), "{file_id}");
    assert_eq!(sha1(&data), f["sha1"].as_str().unwrap(), "{file_id}");
    let q = &f["query_file_info"];
    let info = client.query_file_info(&id, 0).unwrap();
    assert_eq!(
        (
            info.file_size,
            info.create_timestamp,
            info.crc32 as i32 as i64
        ),
        (
            q["file_size"].as_i64().unwrap(),
            q["create_timestamp"].as_i64().unwrap(),
            q["crc32_i64"].as_i64().unwrap()
        ),
        "{file_id}"
    );
    assert_eq!(
        info.source_ip,
        q["source_ip"].as_str().unwrap(),
        "{file_id}"
    );
    (id, data)
}

/// Our storage takes over an upstream storage that wrote small files into a trunk file (the
/// trunk server of its group): every live file, in a trunk slot or not, downloads with its
/// recorded sha1 and file info; deleted ones and ones whose slot was reused answer ENOENT;
/// ranges inside a slot stay inside it; a delete zeroes exactly its slot.
#[test]
fn trunk_fixture_storage_serves_files_in_trunk_slots() {
    let fx = start_fixture_from("trunk-fixture.tar.gz", "127.0.0.170", "127.0.0.171", 16, "");
    let meta = load("trunk-fixture.json");
    let client = fdfs_client::Client::from_conf(&fx.client_conf).unwrap();
    let mut in_trunks = 0;
    for f in meta["live_files"].as_array().unwrap() {
        let file_id = f["file_id"].as_str().unwrap();
        let (id, data) = check_live_file(&client, f);
        if f["kind"] == "trunk" {
            in_trunks += 1;
            // a range ends at the file's end, not at the slot's
            let size = data.len() as i64;
            if size > 2 {
                assert_eq!(
                    client.download_to_vec(&id, 1, 0).unwrap(),
                    &data[1..],
                    "{file_id}"
                );
                assert_eq!(
                    client.download_to_vec(&id, size - 2, 100).unwrap(),
                    &data[size as usize - 2..],
                    "{file_id}"
                );
            }
            if size > 0 {
                assert_eq!(
                    client.download_to_vec(&id, size, 0).unwrap_err().errno(),
                    22,
                    "{file_id}: an offset at the end"
                );
            }
        }
    }
    assert!(in_trunks > 20, "only {in_trunks} trunk files");
    // fdfs_file_info prints what upstream's printed for trunk names (decoded from the name:
    // "file type: normal", as upstream's tool says), with and without -s
    let mut printed = 0;
    for e in meta["live_files"]
        .as_array()
        .unwrap()
        .iter()
        .chain(meta["absent_file_ids"].as_array().unwrap())
    {
        for run in e["fdfs_file_info"].as_array().into_iter().flatten() {
            let argv: Vec<&str> = run["argv"].as_str().unwrap().split(' ').collect();
            let args: Vec<String> = argv[1..]
                .iter()
                .map(|a| {
                    if *a == "client.conf" {
                        fx.client_conf.to_string_lossy().into_owned()
                    } else {
                        a.to_string()
                    }
                })
                .collect();
            let out = Command::new(rfdfs_tests::bin("fdfs_file_info"))
                .args(&args)
                .env("TZ", "UTC")
                .output()
                .unwrap();
            assert_eq!(
                String::from_utf8_lossy(&out.stdout),
                run["stdout"].as_str().unwrap(),
                "{}",
                run["argv"]
            );
            printed += 1;
        }
    }
    assert!(printed > 0, "no recorded fdfs_file_info run");
    for a in meta["absent_file_ids"].as_array().unwrap() {
        let id = fdfs_client::FileId::parse(a["file_id"].as_str().unwrap()).unwrap();
        assert_eq!(
            client.download_to_vec(&id, 0, 0).unwrap_err().errno(),
            2,
            "{id}"
        );
        assert_eq!(
            client.query_file_info(&id, 0).unwrap_err().errno(),
            2,
            "{id}"
        );
    }
    // a name pointing past the trunk file's end, or at a slot too small for its size: refused,
    // nothing read
    let live = meta["live_files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "trunk")
        .unwrap();
    let good = fdfs_client::FileId::parse(live["file_id"].as_str().unwrap()).unwrap();
    let rn = fdfs_common::file_id::RemoteName::decode(&good.name).unwrap();
    let slot = fdfs_common::trunk::TrunkSlot::of_name(&rn).unwrap();
    for bad in [
        fdfs_common::trunk::TrunkSlot {
            offset: 64 << 20,
            ..slot
        },
        fdfs_common::trunk::TrunkSlot {
            alloc_size: 24,
            ..slot
        },
        fdfs_common::trunk::TrunkSlot {
            trunk_id: 7,
            ..slot
        },
    ] {
        let name = good.name.replacen(&slot.encode_b16(), &bad.encode_b16(), 1);
        let id = fdfs_client::FileId {
            group: good.group.clone(),
            name,
        };
        let e = client.download_to_vec(&id, 0, 0).unwrap_err().errno();
        assert!(e == 22 || e == 2, "{id}: {e}");
    }
    // delete: the slot, and only the slot, becomes zeros
    let trunk = fx.root.join("store0/data/00/00/000001");
    let before = std::fs::read(&trunk).unwrap();
    client.delete(&good).unwrap();
    let after = std::fs::read(&trunk).unwrap();
    let (start, end) = (
        slot.offset as usize,
        (slot.offset + slot.alloc_size) as usize,
    );
    assert!(after[start..end].iter().all(|&b| b == 0));
    assert_eq!(before[..start], after[..start]);
    assert_eq!(before[end..], after[end..]);
    assert_eq!(client.download_to_vec(&good, 0, 0).unwrap_err().errno(), 2);
    let binlog = std::fs::read_to_string(fx.root.join("base/data/sync/binlog.000")).unwrap();
    assert!(
        binlog
            .lines()
            .last()
            .unwrap()
            .ends_with(&format!(" D {}", good.name)),
        "{binlog}"
    );
}

/// Our storage takes over the captured trunk server's data dir and becomes its group's trunk
/// server: its free-space index is the one upstream's binlog describes (the six free blocks,
/// reported to the tracker in MB with trunk file id 1), and a new small file goes into the best
/// fitting of those blocks.
#[test]
fn trunk_fixture_storage_resumes_as_trunk_server() {
    let fx = start_fixture_from(
        "trunk-fixture.tar.gz",
        "127.0.0.176",
        "127.0.0.177",
        16,
        "use_trunk_file=true\n",
    );
    let client = fdfs_client::Client::from_conf(&fx.client_conf).unwrap();
    let group = || client.list_groups().unwrap().into_iter().next().unwrap();
    rfdfs_tests::wait_for(
        "the tracker never had the fixture's trunk file id and free space",
        || {
            let g = group();
            // 64,884,224 free bytes in 6 blocks (trunk-fixture.json, free_blocks_after_replay)
            (g.current_trunk_file_id == 1 && g.trunk_free_mb == 64884224 >> 20).then_some(())
        },
        || {
            let g = group();
            format!(
                "trunk file id {} and {} MB free:\n{}",
                g.current_trunk_file_id,
                g.trunk_free_mb,
                fx.storage.log()
            )
        },
    );
    let id = rfdfs_tests::upload(&client, &[5u8; 100], "txt");
    let rn = fdfs_common::file_id::RemoteName::decode(&id.name).unwrap();
    let slot = fdfs_common::trunk::TrunkSlot::of_name(&rn).unwrap();
    // the free 256-byte blocks are at 1792 and 9984: best fit, lowest offset
    assert_eq!(
        (slot.trunk_id, slot.offset, slot.alloc_size),
        (1, 1792, 256)
    );
    assert_eq!(rfdfs_tests::read_back(&client, &id), [5u8; 100]);
}

/// A new member joining the upstream trunk server's group gets every trunk file into the same
/// slot of its own copy of the trunk file, byte for byte, and serves it from there.
#[test]
fn trunk_files_replicate_into_the_same_slots() {
    let fx = start_fixture_from("trunk-fixture.tar.gz", "127.0.0.173", "127.0.0.174", 16, "");
    let meta = load("trunk-fixture.json");
    let base2 = fx.root.join("member2");
    let store2 = fx.root.join("member2-store0");
    std::fs::create_dir_all(&base2).unwrap();
    std::fs::create_dir_all(&store2).unwrap();
    let conf2 = base2.join("storage.conf");
    std::fs::write(
        &conf2,
        format!(
            "group_name=group1\nbind_addr=127.0.0.175\nport=23000\nbase_path={}\nstore_path_count=1\n\
             store_path0={}\nsubdir_count_per_path=16\ntracker_server=127.0.0.173:22122\n\
             heart_beat_interval=1\nstat_report_interval=1\nsync_binlog_buff_interval=1\n",
            base2.display(),
            store2.display()
        ),
    )
    .unwrap();
    let member2 = Daemon::start("fdfs_storaged", &conf2, &base2);
    let client = fdfs_client::Client::from_conf(&fx.client_conf).unwrap();
    wait_group1_active(&client, Some("127.0.0.175"), &member2);
    let trunk1 = std::fs::read(fx.root.join("store0/data/00/00/000001")).unwrap();
    let trunk2_path = store2.join("data/00/00/000001");
    for f in meta["live_files"].as_array().unwrap() {
        if f["kind"] != "trunk" {
            continue;
        }
        let file_id = f["file_id"].as_str().unwrap();
        let id = fdfs_client::FileId::parse(file_id).unwrap();
        let rn = fdfs_common::file_id::RemoteName::decode(&id.name).unwrap();
        let slot = fdfs_common::trunk::TrunkSlot::of_name(&rn).unwrap();
        let (a, b) = (
            slot.offset as usize,
            (slot.offset + slot.alloc_size) as usize,
        );
        // replication is done when the member says so; wait for the last slots to land
        rfdfs_tests::wait_for(
            &format!("{file_id}: slot {a}..{b} differs on member 2"),
            || {
                let trunk2 = std::fs::read(&trunk2_path).unwrap_or_default();
                (trunk2.len() >= b && trunk2[a..b] == trunk1[a..b]).then_some(())
            },
            || member2.log(),
        );
        // and member 2 serves it from its own copy
        let mut s = raw::connect("127.0.0.175", 23000);
        let body = fdfs_common::proto::storage::DownloadReq {
            offset: 0,
            count: 0,
            group: id.group.clone(),
            filename: id.name.clone(),
        }
        .to_bytes();
        let (st, data) = raw::exchange(&mut s, &raw::frame(cmd::DOWNLOAD_FILE, 0, &body)).unwrap();
        assert_eq!(st, 0, "{file_id}");
        assert_eq!(sha1(&data), f["sha1"].as_str().unwrap(), "{file_id}");
    }
}

#[test]
fn fixture_storage_serves_upstream_tree_and_replays_captured_requests() {
    let fx = start_fixture();
    let meta = load("storage-fixture.json");
    let client = fdfs_client::Client::from_conf(&fx.client_conf).unwrap();

    // taken over as an existing storage: no re-created tree, same identity files
    let log = fx.storage.log();
    assert!(
        !log.contains("mkdir sub dir"),
        "the fixture tree was re-created:\n{log}"
    );
    for sf in meta["state_files"].as_array().unwrap() {
        let path = sf["path"].as_str().unwrap();
        let content = sf["content"].as_str().unwrap();
        let on_disk = std::fs::read_to_string(fx.root.join(path)).unwrap();
        if path.ends_with(".data_init_flag")
            || path.ends_with(".fastdfs_vars")
            || path.ends_with(".mark")
        {
            assert_eq!(on_disk, content, "{path} changed");
        }
        if path.ends_with("binlog.000") {
            assert!(on_disk.starts_with(content), "binlog was rewritten");
            for line in content.lines() {
                assert!(
                    fdfs_storage::binlog::parse_line(line).is_some(),
                    "binlog line does not parse: {line:?}"
                );
            }
        }
        if path.ends_with("storage_stat.dat") {
            // our writer produces exactly upstream's shape from what it read
            std::fs::write(fx.root.join("stat-copy"), content).unwrap();
            let (s, c) = fdfs_storage::stat_file::load_stat_file(&fx.root.join("stat-copy"));
            assert_eq!(fdfs_storage::stat_file::stat_file_text(&s, c), content);
        }
        if path.ends_with("binlog_index.dat") {
            assert_eq!(on_disk, content);
        }
    }

    // every live file: content, file info and metadata as recorded
    for f in meta["live_files"].as_array().unwrap() {
        let file_id = f["file_id"].as_str().unwrap();
        let (id, _) = check_live_file(&client, f);
        let q = &f["query_file_info"];
        // the raw reply is the 40-byte IPv4-width shape with the sign-extended CRC
        let mut s = raw::connect(STORAGE_IP, 23000);
        let body = GroupFileReq {
            group: id.group.clone(),
            filename: id.name.clone(),
        }
        .to_bytes();
        let (st, reply) =
            raw::exchange(&mut s, &raw::frame(cmd::QUERY_FILE_INFO, 0, &body)).unwrap();
        assert_eq!((st, reply.len()), (0, 40));
        assert_eq!(
            i64::from_be_bytes(reply[16..24].try_into().unwrap()),
            q["crc32_i64"].as_i64().unwrap()
        );
        let (st, packed) = raw::exchange(&mut s, &raw::frame(cmd::GET_METADATA, 0, &body)).unwrap();
        match f.get("metadata") {
            Some(m) => assert_eq!(
                (st, packed),
                (0, hex(m["packed_hex"].as_str().unwrap())),
                "{file_id}"
            ),
            None => assert_eq!(st, 2, "{file_id}: no metadata means ENOENT"),
        }
    }
    for a in meta["absent_file_ids"].as_array().unwrap() {
        let id = fdfs_client::FileId::parse(a["file_id"].as_str().unwrap()).unwrap();
        assert_eq!(client.download_to_vec(&id, 0, 0).unwrap_err().errno(), 2);
        assert_eq!(client.query_file_info(&id, 0).unwrap_err().errno(), 2);
    }

    // fdfs_file_info prints exactly what upstream's printed (asked from the server where
    // upstream asked it: appender and slave files)
    for e in load("file-ids.json")["file_ids"].as_array().unwrap() {
        let info = &e["fdfs_file_info"];
        if e["final_state"]["state"] != "live" || info["stdout"].as_str().unwrap_or("").is_empty() {
            continue;
        }
        let out = Command::new(rfdfs_tests::bin("fdfs_file_info"))
            .args([
                fx.client_conf.to_str().unwrap(),
                e["file_id"].as_str().unwrap(),
            ])
            .env("TZ", "UTC")
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            info["stdout"].as_str().unwrap(),
            "{}",
            e["file_id"]
        );
    }

    replay_captured_requests(&meta);
    assert!(
        fx.tracker.log().contains("joined"),
        "the fixture storage joined our tracker"
    );
}

/// File names a request body names (by command layout), for the state-dependent deviations.
fn names_in_request(server: &str, command: u8, body: &[u8]) -> Vec<String> {
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    if server == "tracker" {
        return match command {
            102 | 103 | 105 if body.len() > 16 => vec![text(&body[16..])],
            _ => vec![],
        };
    }
    match command {
        14 if body.len() > 32 => vec![text(&body[32..])],
        12 | 15 | 22 if body.len() > 16 => vec![text(&body[16..])],
        13 if body.len() > 33 => {
            let l = i64::from_be_bytes(body[..8].try_into().unwrap())
                .clamp(0, (body.len() - 33) as i64) as usize;
            vec![text(&body[33..33 + l])]
        }
        24 | 36 if body.len() > 16 => {
            let l = i64::from_be_bytes(body[..8].try_into().unwrap())
                .clamp(0, (body.len() - 16) as i64) as usize;
            vec![text(&body[16..16 + l])]
        }
        34 if body.len() > 24 => {
            let l = i64::from_be_bytes(body[..8].try_into().unwrap())
                .clamp(0, (body.len() - 24) as i64) as usize;
            vec![text(&body[24..24 + l])]
        }
        38 => vec![text(body)],
        _ => vec![],
    }
}

fn replay_captured_requests(meta: &Value) {
    // the capture's tracker led its one-tracker cluster: ours elects itself once it knows its
    // tracker list (from the storage's JOIN) - wait for that before replaying GET_LEADER
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let mut s = raw::connect(TRACKER_IP, 22122);
        if raw::exchange(&mut s, &raw::frame(cmd::SERVER_GET_LEADER, 0, &[])).map(|r| r.0)
            == Some(0)
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "our tracker elected no leader"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let absent: Vec<String> = meta["absent_file_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            a["file_id"]
                .as_str()
                .unwrap()
                .split_once('/')
                .unwrap()
                .1
                .to_string()
        })
        .collect();
    // Deviations that follow from replaying a whole session against its end state, or from a
    // documented decision; anything else must match upstream's status exactly.
    let explained: HashMap<&str, (u8, &str)> = HashMap::from([
        (
            "download_empty",
            (
                0,
                "empty files download as an empty body (client-protocol 7.2)",
            ),
        ),
        (
            "s14_empty",
            (
                0,
                "empty files download as an empty body (client-protocol 7.2)",
            ),
        ),
        (
            "monitor_delete",
            (
                2,
                "the emulated storage 127.0.0.153 of phase 4 is not in our cluster",
            ),
        ),
        (
            "monitor_delete_again",
            (
                2,
                "the emulated storage 127.0.0.153 of phase 4 is not in our cluster",
            ),
        ),
    ]);
    let v = load("client-commands.json");
    let mut compared = 0;
    let mut deviations = Vec::new();
    let mut conns: HashMap<String, std::net::TcpStream> = HashMap::new();
    for x in v["exchanges"].as_array().unwrap() {
        let name = x["name"].as_str().unwrap();
        let tag = x["tag"].as_str().unwrap_or("");
        let server = x["server"].as_str().unwrap();
        let command = x["cmd"].as_u64().unwrap() as u8;
        if x.get("request_truncated").and_then(Value::as_bool) == Some(true) {
            continue; // only the first bytes of these frames were kept
        }
        let Some(recorded) = x["status"].as_u64().map(|s| s as u8) else {
            // QUIT: no reply, the connection closes
            let mut s = raw::connect(
                if server == "tracker" {
                    TRACKER_IP
                } else {
                    STORAGE_IP
                },
                if server == "tracker" { 22122 } else { 23000 },
            );
            use std::io::Write;
            s.write_all(&hex(x["request_hex"].as_str().unwrap()))
                .unwrap();
            assert!(raw::is_closed(&mut s), "{name}");
            continue;
        };
        let req = hex(x["request_hex"].as_str().unwrap());
        let (_, body) = split_frame(&req);
        let names = names_in_request(server, command, body);
        let touches_absent = names.iter().any(|n| absent.contains(n));
        let expected = if let Some((st, _)) = explained.get(tag) {
            *st
        } else if recorded == 0 && touches_absent && server == "storage" {
            2 // deleted or renamed later in the session: absent from the end-state fixture
        } else if recorded == 0 && command == cmd::UPLOAD_SLAVE_FILE {
            17 // the slave the session created is already in the fixture
        } else {
            recorded
        };
        let (host, port) = if server == "tracker" {
            (TRACKER_IP, 22122)
        } else {
            (STORAGE_IP, 23000)
        };
        let key = format!("{host}:{port}");
        let mut s = conns
            .remove(&key)
            .unwrap_or_else(|| raw::connect(host, port));
        let reply = raw::exchange(&mut s, &req);
        if expected != recorded {
            deviations.push(format!("{tag}: upstream {recorded}, ours {expected}"));
        }
        let (st, rbody) =
            reply.unwrap_or_else(|| panic!("{name}: connection closed without a reply"));
        assert_eq!(
            st, expected,
            "{name} [{tag}]: status {st}, upstream {recorded}, expected {expected}"
        );
        compared += 1;
        if st == 0 && recorded == 0 && expected == 0 {
            let resp = hex(x["response_hex"].as_str().unwrap());
            let (_, ubody) = split_frame(&resp);
            let truncated = x.get("response_truncated").and_then(Value::as_bool) == Some(true);
            match (server, command) {
                // byte-identical where nothing depends on cluster state or time
                ("tracker", 75) | ("tracker", 69) | ("tracker", 111) | ("storage", 111) => {
                    assert_eq!(rbody, ubody, "{name}: body differs from upstream's")
                }
                // a normal file's bytes never change: same content as upstream served
                ("storage", 14)
                    if !truncated
                        && !names.iter().any(|n| {
                            RemoteName::decode(n).is_ok_and(|r| r.kind == FileKind::Appender)
                        }) =>
                {
                    assert_eq!(sha1(&rbody), sha1(ubody), "{name}: downloaded bytes differ")
                }
                // the same shape: lengths of fixed layouts
                ("tracker", 101 | 104 | 102 | 103 | 90 | 96 | 97 | 98) | ("storage", 22) => {
                    assert_eq!(rbody.len(), ubody.len(), "{name}: reply shape differs")
                }
                ("storage", 11 | 23 | 21 | 38) => {
                    assert_eq!(rbody.len() >= 16 + 44, ubody.len() >= 16 + 44, "{name}")
                }
                _ => {}
            }
        }
        // after EINVAL the storage closes; otherwise keep using the connection
        if !(server == "storage" && st == 22) {
            conns.insert(key, s);
        } else {
            assert!(
                raw::is_closed(&mut s),
                "{name}: storage keeps the connection after EINVAL"
            );
        }
    }
    assert!(compared > 200, "only {compared} requests replayed");
    eprintln!(
        "replayed {compared} requests; {} explained deviations: {deviations:?}",
        deviations.len()
    );
}

/// The storage -> storage replication streams of the capture (phase 2: storage1's full sync to
/// a new storage2; phase 3: steady replication both ways), replayed in order against two fresh
/// receivers of ours, are answered with upstream's statuses. Frames kept only in part are
/// rebuilt from the fixture's files and checked against the recorded frame sha1.
#[test]
fn replication_streams_are_answered_as_recorded() {
    let c = rfdfs_tests::Cluster::start(rfdfs_tests::ClusterOpts {
        storages: 2,
        ..Default::default()
    });
    let fixture = load("storage-fixture.json");
    let dir = TempDir::new("fixture-files");
    let st = Command::new("tar")
        .args([
            "xzf",
            vectors().join("storage-fixture.tar.gz").to_str().unwrap(),
            "-C",
            dir.path().to_str().unwrap(),
            "store0/data/00/00",
        ])
        .status()
        .unwrap();
    assert!(st.success());
    let by_name: HashMap<String, PathBuf> = fixture["live_files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let id = f["file_id"].as_str().unwrap();
            (
                id.split_once('/').unwrap().1.to_string(),
                dir.path().join(f["path_in_tar"].as_str().unwrap()),
            )
        })
        .collect();
    let v = load("cluster-commands.json");
    let mut conns: HashMap<String, std::net::TcpStream> = HashMap::new();
    let mut replayed = 0;
    for x in v["exchanges"].as_array().unwrap() {
        if x["server"] != "storage" {
            continue;
        }
        let Some(recorded) = x["status"].as_u64() else {
            continue;
        };
        let name = x["name"].as_str().unwrap();
        let mut req = hex(x["request_hex"].as_str().unwrap());
        if x.get("request_truncated").and_then(Value::as_bool) == Some(true) {
            let (h, body) = split_frame(&req);
            let head = SyncFileHead::decode(&mut fdfs_common::codec::Reader::new(body)).unwrap();
            let content = std::fs::read(&by_name[&head.filename]).unwrap();
            assert_eq!(
                sha1(&content),
                x["request_content_sha1"].as_str().unwrap(),
                "{name}"
            );
            let fixed = 10 + SyncFileHead::FIXED_LEN + head.filename.len();
            req.truncate(fixed);
            req.extend_from_slice(&content);
            assert_eq!(h.pkg_len as usize + 10, req.len());
            assert_eq!(
                sha1(&req),
                x["request_sha1"].as_str().unwrap(),
                "{name}: rebuilt frame"
            );
        }
        // storage2 (.152) received from storage1 and the other way round
        let target = if x["server_addr"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.152")
        {
            0
        } else {
            1
        };
        let key = format!("{target}-{}", x["connection"].as_str().unwrap_or(""));
        // from the other member's address: replication is taken only from members
        let s = conns.entry(key.clone()).or_insert_with(|| {
            raw::connect_from(&c.storages[1 - target].ip, &c.storages[target].ip, 23000)
        });
        let (st, _) = raw::exchange(s, &req).unwrap_or_else(|| panic!("{name}: no reply"));
        assert_eq!(
            st as u64,
            recorded,
            "{name}: {}",
            x["notes"].as_str().unwrap_or("")
        );
        replayed += 1;
    }
    assert!(
        replayed >= 90,
        "only {replayed} replication requests replayed"
    );
    // the receivers recorded what they applied with lower-case letters and the source's times
    let binlog = std::fs::read_to_string(c.storages[0].base.join("data/sync/binlog.000")).unwrap();
    assert!(
        binlog
            .lines()
            .filter(|l| l.split(' ').nth(1) == Some("c"))
            .count()
            >= 40,
        "{binlog}"
    );
    assert!(binlog
        .lines()
        .all(|l| fdfs_storage::binlog::parse_line(l).is_some()));
}

/// The fixture's binlog and its mark for storage2 parse, and a reader resumes from the mark
/// at the binlog's end.
#[test]
fn fixture_binlog_and_mark_resume() {
    let meta = load("storage-fixture.json");
    let dir = TempDir::new("fixture-state");
    let sync = dir.path().join("sync");
    std::fs::create_dir_all(&sync).unwrap();
    for sf in meta["state_files"].as_array().unwrap() {
        let path = sf["path"].as_str().unwrap();
        if let Some(name) = path.strip_prefix("base/data/sync/") {
            std::fs::write(sync.join(name), sf["content"].as_str().unwrap()).unwrap();
        }
    }
    let mark = fdfs_storage::mark::Mark::load(&sync.join("127.0.0.152_23000.mark"))
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            mark.binlog_index,
            mark.binlog_offset,
            mark.need_sync_old,
            mark.sync_old_done
        ),
        (0, 5306, true, true)
    );
    assert_eq!(
        mark.to_text(),
        std::fs::read_to_string(sync.join("127.0.0.152_23000.mark")).unwrap()
    );
    let len = std::fs::metadata(sync.join("binlog.000")).unwrap().len();
    let mut from_start = fdfs_storage::binlog::BinlogReader::new(&sync, 0, 0);
    let mut records = 0;
    while let fdfs_storage::binlog::Next::Record(_, n) = from_start.next((0, len)).unwrap() {
        from_start.offset += n;
        records += 1;
    }
    assert_eq!((from_start.offset, records), (len, 86), "every line parses");
    let mut resumed =
        fdfs_storage::binlog::BinlogReader::new(&sync, mark.binlog_index, mark.binlog_offset);
    assert!(matches!(
        resumed.next((0, len)).unwrap(),
        fdfs_storage::binlog::Next::Eof
    ));
}

/// The storage -> tracker traffic of the capture (joins, beats, disk reports, the initial-sync
/// handshake of storage2, the emulated third storage of phase 4, restarts), replayed in order
/// against our tracker, each recorded connection from the recorded storage address: the same
/// status and reply length for every request.
#[test]
fn tracker_answers_recorded_storage_traffic() {
    let dir = TempDir::new("tracker-replay");
    let conf = dir.path().join("tracker.conf");
    // the capture's tracker ran on 127.0.0.150:22122; another port keeps clear of the fixture test
    std::fs::write(
        &conf,
        format!(
            "bind_addr=127.0.0.150\nport=22123\nbase_path={}\nreserved_storage_space=10%\nstore_lookup=2\n\
             slot_max_size=1MB\ntrunk_alloc_alignment_size=256\ntrunk_free_space_merge=true\n\
             trunk_create_file_space_threshold=20G\ntrunk_compress_binlog_min_interval=86400\n\
             trunk_compress_binlog_interval=86400\ntrunk_binlog_max_backups=7\n",
            dir.path().display()
        ),
    )
    .unwrap();
    let _tracker = Daemon::start("fdfs_trackerd", &conf, dir.path());
    wait_port("127.0.0.150", 22123, "tracker");
    let v = load("cluster-commands.json");
    let mut conns: HashMap<String, std::net::TcpStream> = HashMap::new();
    let mut replayed = 0;
    for x in v["exchanges"].as_array().unwrap() {
        if x["server"] != "tracker" {
            continue;
        }
        let name = x["name"].as_str().unwrap();
        let key = x["connection"].as_str().unwrap_or(name).to_string();
        let client_ip: std::net::IpAddr = x["client"]
            .as_str()
            .unwrap()
            .split(':')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let s = conns.entry(key.clone()).or_insert_with(|| {
            fdfs_common::net::connect(
                "127.0.0.150",
                22123,
                Some(client_ip),
                Duration::from_secs(5),
                Duration::from_secs(20),
            )
            .unwrap()
        });
        let req = hex(x["request_hex"].as_str().unwrap());
        let Some(recorded) = x["status"].as_u64() else {
            use std::io::Write;
            s.write_all(&req).unwrap();
            assert!(raw::is_closed(s), "{name}: QUIT closes");
            conns.remove(&key);
            continue;
        };
        let (st, body) = raw::exchange(s, &req).unwrap_or_else(|| panic!("{name}: no reply"));
        assert_eq!(
            st as u64,
            recorded,
            "{name} [{}]: {}",
            x["context"],
            x["notes"].as_str().unwrap_or("")
        );
        let resp = hex(x["response_hex"].as_str().unwrap());
        let (_, ubody) = split_frame(&resp);
        let command = x["cmd"].as_u64().unwrap() as u8;
        match command {
            // a lone tracker sends the leader brief on every new connection, upstream's only when
            // its leader-change counter moved; change lists also depend on when members changed
            cmd::STORAGE_BEAT | cmd::STORAGE_REPORT_DISK_USAGE | cmd::STORAGE_SYNC_REPORT
                if st == 0 =>
            {
                assert!(
                    !body.is_empty() && (body.len() - 1) % 67 == 0,
                    "{name}: change list shape"
                )
            }
            // the changelog reply is whatever was pending for that storage: state, not protocol
            cmd::STORAGE_CHANGELOG_REQ => {}
            _ => assert_eq!(body.len(), ubody.len(), "{name}: reply length"),
        }
        if command == cmd::STORAGE_PARAMETER_REQ || command == cmd::STORAGE_GET_MY_IP {
            assert_eq!(body, ubody, "{name}: reply bytes");
        }
        replayed += 1;
    }
    assert!(replayed > 90, "only {replayed} tracker requests replayed");
}
