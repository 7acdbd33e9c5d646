//! A smoke run of every decoder under mutated input (issue 6): packet bodies, file IDs, config
//! files, storage_ids.conf, binlog and mark lines, HTTP request heads and Range headers. Seeds:
//! the committed corpus in tests/fuzz-corpus/ and every recorded packet body of the golden
//! vectors. Each target runs `RFDFS_FUZZ_MS` milliseconds (default 700); a panic fails the test
//! and its input is written to target/fuzz-crashes/ for replay.

use fdfs_common::codec::Message;
use fdfs_common::proto::{client, cluster, stats, storage, sync};
use rfdfs_tests::Rng;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A mutation of one or two seeds: flips, interesting bytes, inserts, deletes, truncation,
/// splices, duplicated runs.
fn mutate(r: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut v = seeds[r.index(seeds.len())].clone();
    for _ in 0..1 + r.index(6) {
        let n = v.len();
        match r.index(8) {
            0 if n > 0 => {
                let i = r.index(n);
                v[i] ^= 1 << r.index(8);
            }
            1 if n > 0 => {
                let i = r.index(n);
                v[i] = [0u8, 0xff, 0x7f, 0x80, b'/', b'.', b'\n', b'=', b'%', b' '][r.index(10)];
            }
            2 => {
                let i = r.index(n + 1);
                v.insert(i, r.next_u64() as u8);
            }
            3 if n > 0 => {
                let i = r.index(n);
                v.remove(i);
            }
            4 => v.truncate(r.index(n + 1)),
            5 => {
                let other = &seeds[r.index(seeds.len())];
                let cut = r.index(other.len() + 1);
                v.extend_from_slice(&other[cut..]);
            }
            6 if n > 0 => {
                let a = r.index(n);
                let b = (a + r.index(16)).min(n);
                let run = v[a..b].to_vec();
                let i = r.index(v.len() + 1);
                v.splice(i..i, run);
            }
            _ if n >= 8 => {
                let i = r.index(n - 7);
                v[i..i + 8].copy_from_slice(&(r.next_u64() as i64).to_be_bytes());
            }
            _ => {}
        }
    }
    v
}

fn corpus(name: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz-corpus")
        .join(name);
    let mut v: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("seed corpus {}: {e}", dir.display()))
        .flatten()
        .map(|e| std::fs::read(e.path()).unwrap())
        .collect();
    v.push(Vec::new());
    v
}

/// Every recorded request and response body of the golden vectors.
fn packet_seeds() -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/protocol/vectors");
    let mut seeds = vec![Vec::new()];
    for f in ["client-commands.json", "cluster-commands.json"] {
        let text = std::fs::read_to_string(dir.join(f)).expect("golden vectors");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        for x in v["exchanges"].as_array().unwrap() {
            for k in ["request_hex", "response_hex"] {
                if let Some(h) = x[k].as_str() {
                    let b: Vec<u8> = (0..h.len() / 2)
                        .map(|i| u8::from_str_radix(&h[2 * i..2 * i + 2], 16).unwrap_or(0))
                        .collect();
                    if b.len() > 10 && b.len() < 64 * 1024 {
                        seeds.push(b[10..].to_vec());
                    }
                }
            }
        }
    }
    seeds
}

fn run(name: &str, seeds: &[Vec<u8>], target: impl Fn(&[u8])) -> usize {
    let ms: u64 = std::env::var("RFDFS_FUZZ_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(700);
    let mut r = Rng(0x0f0f_1234 ^ name.len() as u64);
    let end = Instant::now() + Duration::from_millis(ms);
    let mut n = 0;
    for s in seeds {
        check(name, s, &target);
    }
    while Instant::now() < end {
        let input = mutate(&mut r, seeds);
        check(name, &input, &target);
        n += 1;
    }
    eprintln!("fuzz {name}: {n} inputs, no panic");
    n
}

fn check(name: &str, input: &[u8], target: &impl Fn(&[u8])) {
    if catch_unwind(AssertUnwindSafe(|| target(input))).is_err() {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/fuzz-crashes");
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join(format!("{name}-{:08x}", crc32fast::hash(input)));
        let _ = std::fs::write(&path, input);
        panic!("fuzz target {name} panicked on {}", path.display());
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn packet_decoders() {
    let seeds = packet_seeds();
    run("packets", &seeds, |b| {
        let _ = client::GroupReq::from_bytes(b);
        let _ = client::GroupFileReq::from_bytes(b);
        let _ = client::ListStorageReq::from_bytes(b);
        let _ = client::decode_group_stats(b);
        let _ = client::decode_storage_stats(b);
        let _ = cluster::StatBlock::from_bytes(b);
        let _ = cluster::Brief::from_bytes(b);
        let _ = cluster::JoinReq::from_bytes(b);
        let _ = cluster::JoinReply::from_bytes(b);
        let _ = cluster::SyncSource::from_bytes(b);
        let _ = cluster::ChangeList::from_bytes(b);
        let _ = cluster::GetMyIpReq::from_bytes(b);
        let _ = cluster::FetchStorageIdsReq::from_bytes(b);
        let _ = cluster::StorageIdsPage::from_bytes(b);
        let _ = cluster::SysFileReq::from_bytes(b);
        let _ = cluster::SysFileChunk::from_bytes(b);
        let _ = cluster::ReportStatusReq::from_bytes(b);
        let _ = cluster::GroupStorageReq::from_bytes(b);
        let _ = cluster::decode_disk_usage(b);
        let _ = cluster::decode_sync_report(b);
        let _ = storage::UploadReq::from_bytes(b);
        let _ = storage::UploadSlaveHead::from_bytes(b);
        let _ = storage::DownloadReq::from_bytes(b);
        let _ = storage::SetMetadataReq::from_bytes(b);
        let _ = storage::AppendHead::from_bytes(b);
        let _ = storage::ModifyHead::from_bytes(b);
        let _ = storage::TruncateReq::from_bytes(b);
        let _ = storage::FileIdReply::from_bytes(b);
        let _ = sync::ReportServerId::from_bytes(b);
        let _ = sync::SyncFileHead::from_bytes(b);
        let _ = sync::SyncDeleteReq::from_bytes(b);
        let _ = sync::SyncRangeReq::from_bytes(b);
        let _ = sync::SyncTwoNamesReq::from_bytes(b);
        let _ = stats::TrackerClusterStat::decode_list(b);
        let _ = stats::StorageClusterStat::decode_list(b);
        let _ = stats::VolumeStat::decode_list(b);
        let _ = fdfs_common::metadata::unpack(b);
        if b.len() >= 10 {
            let _ = fdfs_common::proto::Header::decode(b[..10].try_into().unwrap());
        }
    });
}

#[test]
fn file_ids() {
    run("file_id", &corpus("file_id"), |b| {
        let s = text(b);
        if let Ok((_, name)) = fdfs_common::file_id::split_file_id(&s) {
            let _ = fdfs_common::file_id::RemoteName::decode(name);
            let _ = fdfs_common::file_id::LogicalName::parse(name, 3);
        }
        let _ = fdfs_common::file_id::RemoteName::decode(&s);
        let _ = fdfs_common::file_id::LogicalName::parse(&s, 256);
    });
}

#[test]
fn config_files() {
    run("config", &corpus("config"), |b| {
        if let Ok(ini) = fdfs_common::config::IniFile::parse_str("fuzz.conf", &text(b)) {
            let _ = fdfs_common::config::TrackerConfig::from_ini(&ini);
            let _ = fdfs_common::config::StorageConfig::from_ini(&ini);
            let _ = fdfs_common::config::ClientConfig::from_ini(&ini);
        }
    });
    run("storage_ids", &corpus("storage_ids"), |b| {
        if let Ok(ids) = fdfs_common::storage_ids::StorageIds::parse("ids.conf", &text(b)) {
            let (_, page) = ids.page(0, 8064);
            let mut back = fdfs_common::storage_ids::StorageIds::default();
            back.extend_from_page(&page).expect("our own page parses");
        }
    });
}

#[test]
fn binlog_and_mark_lines() {
    run("binlog", &corpus("binlog"), |b| {
        for line in text(b).lines() {
            let _ = fdfs_storage::binlog::parse_line(line);
        }
    });
    let dir = rfdfs_tests::TempDir::new("fuzz-mark");
    let path = dir.path().join("peer.mark");
    run("mark", &corpus("mark"), |b| {
        std::fs::write(&path, b).unwrap();
        let _ = fdfs_storage::sync::Mark::load(&path);
    });
}

#[test]
fn http_requests() {
    run("http_request", &corpus("http_request"), |b| {
        if let Some(req) = fdfs_common::http::Request::parse(b) {
            let _ = req.param("token");
            let _ = req.keep_alive();
            for size in [0, 1, 1000] {
                let _ = fdfs_common::http::parse_ranges(req.header("range"), size);
            }
            let _ = req
                .header("if-modified-since")
                .map(fdfs_common::http::parse_http_date);
        }
    });
}
