//! Files over 4 GiB (issue 28, finding 8): uploaded, read back from every member, appended to,
//! modified past 4 GiB, read through an HTTP range past 4 GiB, replicated; and a multi-GiB
//! change that `write_ack_copies` may have to undo is not held in memory.
//!
//! The store paths are on a btrfs image with compression (a loop device): the content is
//! mostly zeros, so 4 GiB per member takes a few MB of disk.

use fdfs_client::{Content, FileId, Upload};
use rfdfs_tests::{Cluster, ClusterOpts, LoopFs, Rng};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;

const HTTP_PORT: u16 = 18931;
const MIB: u64 = 1 << 20;

/// A sparse file of `len` bytes: each MiB starts with its index (8 bytes, little-endian), the
/// rest zeros, so a byte out of place shows.
fn source(path: &Path, len: u64) {
    let f = std::fs::File::create(path).unwrap();
    f.set_len(len).unwrap();
    let mut at = 0;
    while at < len {
        let tag = (at / MIB).to_le_bytes();
        let n = (len - at).min(8) as usize;
        f.write_all_at(&tag[..n], at).unwrap();
        at += MIB;
    }
}

/// Size and CRC32 of what a writer is given.
#[derive(Default)]
struct Crc(u64, crc32fast::Hasher);

impl Write for Crc {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0 += b.len() as u64;
        self.1.update(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Size and CRC32 of `len` bytes of file `path` from 0.
fn crc_of_prefix(path: &Path, len: u64) -> (u64, u32) {
    let f = std::fs::File::open(path).unwrap();
    let mut h = crc32fast::Hasher::new();
    let mut buf = vec![0u8; 8 << 20];
    let mut at = 0;
    while at < len {
        let n = (len - at).min(buf.len() as u64) as usize;
        f.read_exact_at(&mut buf[..n], at).unwrap();
        h.update(&buf[..n]);
        at += n as u64;
    }
    (len, h.finalize())
}

/// Size and CRC32 of `id` as member `i` serves it.
fn served(c: &Cluster, i: usize, id: &FileId) -> (u64, u32) {
    let mut sink = Crc::default();
    c.client()
        .download_from(&c.storage_addr(i), id, 0, 0, || Ok(&mut sink))
        .unwrap_or_else(|e| panic!("download of {id} from member {i}: {e}"));
    (sink.0, sink.1.finalize())
}

/// Wait until both members serve `want` (size, CRC32) for `id`.
fn both_serve(c: &Cluster, id: &FileId, want: (u64, u32)) {
    for i in 0..2 {
        rfdfs_tests::wait_for(
            &format!("member {i} to serve {id} as {want:?}"),
            || (served(c, i, id) == want).then_some(()),
            || c.storages[i].daemon.log(),
        );
    }
}

/// The largest the storage's resident memory has been, in bytes.
fn peak_rss(c: &Cluster, i: usize) -> u64 {
    let pid = c.storages[i].daemon.pid().unwrap();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb << 10
}

#[test]
fn a_file_over_4_gib_is_stored_read_changed_and_replicated() {
    let fs = LoopFs::new("large", "btrfs", 16 << 10);
    let st = std::process::Command::new("mount")
        .args(["-o", "remount,compress-force=zstd:1"])
        .arg(&fs.dir)
        .status()
        .unwrap();
    assert!(st.success(), "remount with compression");
    let c = Cluster::start(ClusterOpts {
        storages: 2,
        group_store_roots: vec![("group1".into(), fs.dir.clone())],
        storage_extra: format!(
            "write_ack_copies=2\nwrite_ack_timeout=300\nhttp.server_port={HTTP_PORT}\n"
        ),
        ..Default::default()
    });
    rfdfs_tests::wait_sees_a_peer(&c, 0);
    // an answer waits for the copy of 4 GiB on the other member (write_ack_copies)
    let text = format!(
        "network_timeout=600\nconnect_timeout=2\ntracker_server={}\n",
        c.tracker_addr
    );
    let client = fdfs_client::Client::new(
        fdfs_common::config::ClientConfig::from_ini(
            &fdfs_common::config::IniFile::parse_str("client.conf", &text).unwrap(),
        )
        .unwrap(),
    );
    let dir = rfdfs_tests::TempDir::new("large-src");
    let src = dir.path().join("big");
    let len = (4 << 30) + MIB + 123;
    source(&src, len);

    // upload: answered once both members hold it (write_ack_copies = 2)
    let id = client
        .upload(
            Content::File(&src),
            "bin",
            Upload::Appender,
            Some((c.storage_addr(0), 0)),
            None,
        )
        .unwrap();
    let mut want = crc_of_prefix(&src, len);
    both_serve(&c, &id, want);

    // a range past 4 GiB, over HTTP, from the other member
    let (from, to) = ((4 << 30) + MIB - 4, (4 << 30) + MIB + 3);
    let out = std::process::Command::new("curl")
        .args(["-s", "-f", "-r", &format!("{from}-{to}")])
        .arg(format!(
            "http://{}:{HTTP_PORT}/group1/{}",
            c.storages[1].ip, id.name
        ))
        .output()
        .unwrap();
    assert!(out.status.success(), "curl: {out:?}");
    let mut expected = vec![0u8; 8];
    std::fs::File::open(&src)
        .unwrap()
        .read_exact_at(&mut expected, from)
        .unwrap();
    assert_eq!(out.stdout, expected, "bytes {from}-{to} over HTTP");

    // append and modify past 4 GiB, on the source member; the peer follows
    let mut rng = Rng(0x1a76e);
    let tail = rng.bytes(MIB as usize + 7);
    client.append(&id, Content::Buffer(&tail)).unwrap();
    let f = std::fs::OpenOptions::new().write(true).open(&src).unwrap();
    f.write_all_at(&tail, len).unwrap();
    let patch = rng.bytes(4096);
    let at = (4 << 30) + 100;
    client
        .modify(&id, at as i64, Content::Buffer(&patch))
        .unwrap();
    f.write_all_at(&patch, at).unwrap();
    want = crc_of_prefix(&src, len + tail.len() as u64);
    both_serve(&c, &id, want);

    // cut back to 1 GiB: what it cuts off (3 GiB) may have to be put back, never in memory
    let short = (1 << 30) + 5;
    client.truncate(&id, short as i64).unwrap();
    want = crc_of_prefix(&src, short);
    both_serve(&c, &id, want);
    let peak = peak_rss(&c, 0);
    assert!(
        peak < 512 << 20,
        "the storage held {} MiB at its peak",
        peak >> 20
    );
}
