//! The S3 endpoint (issue 33) with real S3 clients: the group's files, uploaded through
//! FastDFS, listed, read and deleted through boto3, awscli and s3cmd on each member, the same
//! bytes FastDFS clients and the HTTP port read.

use fdfs_client::{Content, FileId, Upload};
use rfdfs_tests::s3::{self, endpoint};
use rfdfs_tests::{Cluster, ClusterOpts, TempDir};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::time::Duration;

const HTTP_PORT: u16 = 28890;

fn sha256_hex(b: &[u8]) -> String {
    Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

/// Bytes no two objects share: a pattern seeded by `seed`.
fn content(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| ((i as u64 * 31 + u64::from(seed) * 7) % 251) as u8)
        .collect()
}

fn two_members(keys: &TempDir) -> Cluster {
    s3_cluster(keys, 2, 1, &format!("http.server_port = {HTTP_PORT}\n"))
}

/// `storages` storages in `groups` groups with the S3 endpoint on and `extra` lines in their
/// storage.conf, every one ACTIVE.
fn s3_cluster(keys: &TempDir, storages: usize, groups: usize, extra: &str) -> Cluster {
    let c = Cluster::start(ClusterOpts {
        storages,
        groups,
        storage_extra: format!("{extra}{}", s3::storage_lines(keys.path())),
        ..Default::default()
    });
    c.wait_active(storages);
    c
}

/// Objects of 0 B, 2 KiB, 5 MiB and 20 MiB (and one with metadata) uploaded through FastDFS
/// are listed, read whole and in ranges, by presigned URL and by the transfer manager, through
/// boto3 on both members; deleted through S3 on one, gone from both; the rest read the same
/// through awscli, s3cmd, the FastDFS client and the HTTP port.
#[test]
fn the_group_is_a_bucket_its_files_listed_read_and_deleted_through_s3_clients() {
    let keys = TempDir::new("s3-keys");
    let c = two_members(&keys);
    let client = c.client();
    let sizes = [0usize, 2048, 5 << 20, 20 << 20, 100, 777, 3000];
    let mut objects: BTreeMap<String, (Vec<u8>, FileId)> = BTreeMap::new();
    for (k, &len) in sizes.iter().enumerate() {
        let data = content(len, k as u8);
        let id = client
            .upload(
                Content::Buffer(&data),
                if k % 2 == 0 { "bin" } else { "txt" },
                Upload::File,
                None,
                None,
            )
            .unwrap();
        objects.insert(id.name.clone(), (data, id));
    }
    // one file with FastDFS metadata: S3 gives it as x-amz-meta-*
    let with_meta = objects.keys().nth(1).unwrap().clone();
    client
        .set_metadata(
            &objects[&with_meta].1,
            &[
                (b"author".to_vec(), b"rfdfs".to_vec()),
                (b"width".to_vec(), b"640".to_vec()),
            ],
            b'O',
        )
        .unwrap();
    rfdfs_tests::wait_converged(&c, &[0, 1], Duration::from_secs(60));
    let names: Vec<String> = objects.keys().cloned().collect();
    let deleted: Vec<String> = names.iter().step_by(3).cloned().collect();
    let spec = |delete: &[String]| {
        let objs: serde_json::Map<String, serde_json::Value> = objects
            .iter()
            .map(|(k, (data, _))| {
                let mut o = serde_json::json!({"sha256": sha256_hex(data), "size": data.len()});
                if *k == with_meta {
                    o["meta"] = serde_json::json!({"author": "rfdfs", "width": "640"});
                }
                (k.clone(), o)
            })
            .collect();
        serde_json::json!({
            "bucket": "group1",
            "objects": objs,
            "admin": [s3::ADMIN.0, s3::ADMIN.1],
            "reader": [s3::READER.0, s3::READER.1],
            "delete": delete,
        })
    };
    // member 1 first, deleting nothing; then member 0, deleting a third
    for (member, delete) in [(1usize, vec![]), (0, deleted.clone())] {
        let path = keys.path().join(format!("spec{member}.json"));
        std::fs::write(&path, spec(&delete).to_string()).unwrap();
        let out = s3::run_script(
            "group_bucket.py",
            &[&endpoint(&c.storages[member].ip), path.to_str().unwrap()],
        );
        assert!(out.contains("all checks passed"), "{out}");
    }
    // the deletes reach the other member: FastDFS and S3 both find nothing there
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    for name in &deleted {
        let id = &objects[name].1;
        while client.download_to_vec(id, 0, 0).is_ok() {
            assert!(std::time::Instant::now() < deadline, "{name} still served");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let ep1 = endpoint(&c.storages[1].ip);
    rfdfs_tests::wait_converged(&c, &[0, 1], Duration::from_secs(30));
    let listed = s3::aws(&ep1, &["s3", "ls", "--recursive", "s3://group1/M00/"]);
    for name in &names {
        assert_eq!(
            listed.contains(name.as_str()),
            !deleted.contains(name),
            "{name} in `aws s3 ls` of member 1:\n{listed}"
        );
    }
    // awscli's sync brings down every object left; s3cmd and the HTTP port read them the same
    let down = keys.path().join("down");
    s3::aws(
        &ep1,
        &["s3", "sync", "s3://group1/M00/", down.to_str().unwrap()],
    );
    for (name, (data, id)) in objects.iter().filter(|(n, _)| !deleted.contains(n)) {
        let local = down.join(&name[4..]);
        assert_eq!(&std::fs::read(&local).unwrap(), data, "aws s3 sync: {name}");
        let got = keys.path().join("s3cmd.out");
        let _ = std::fs::remove_file(&got);
        s3::s3cmd(
            &c.storages[0].ip,
            &["get", &format!("s3://group1/{name}"), got.to_str().unwrap()],
        );
        assert_eq!(&std::fs::read(&got).unwrap(), data, "s3cmd get: {name}");
        assert_eq!(
            &client.download_to_vec(id, 0, 0).unwrap(),
            data,
            "FastDFS: {name}"
        );
        let http = std::process::Command::new("curl")
            .args([
                "-sf",
                &format!("http://{}:{HTTP_PORT}/group1/{name}", c.storages[1].ip),
            ])
            .output()
            .unwrap();
        assert_eq!(&http.stdout, data, "HTTP port: {name}");
    }
    let s3cmd_ls = s3::s3cmd(
        &c.storages[0].ip,
        &["ls", "--recursive", "s3://group1/M00/"],
    );
    assert_eq!(
        s3cmd_ls.lines().count(),
        names.len() - deleted.len(),
        "{s3cmd_ls}"
    );
    // one deleted through awscli, seen gone by FastDFS
    let last = names.iter().rfind(|n| !deleted.contains(n)).unwrap();
    s3::aws(&ep1, &["s3", "rm", &format!("s3://group1/{last}")]);
    assert!(client.download_to_vec(&objects[last].1, 0, 0).is_err());
}

/// DeleteObjects streamed as `aws-chunked` with a CRC32 trailer, signed by botocore: a wrong
/// trailer or broken framing is refused and deletes nothing; the right one deletes. Unsigned
/// requests are refused; unknown sub-resources answer 501 with S3's error document. Then
/// `rfdfs_bench s3` PUTs and GETs without an error.
#[test]
fn streamed_bodies_are_checked_before_anything_is_deleted() {
    let keys = TempDir::new("s3-raw");
    let c = s3_cluster(&keys, 1, 1, "");
    let client = c.client();
    let keep = rfdfs_tests::upload(&client, b"kept", "txt");
    let remove = rfdfs_tests::upload(&client, b"removed", "txt");
    let out = s3::run_script(
        "raw_bodies.py",
        &[
            &c.storages[0].ip,
            &rfdfs_tests::s3::S3_PORT.to_string(),
            s3::ADMIN.0,
            s3::ADMIN.1,
            "group1",
            &keep.name,
            &remove.name,
        ],
    );
    assert!(out.contains("all checks passed"), "{out}");
    assert_eq!(client.download_to_vec(&keep, 0, 0).unwrap(), b"kept");
    assert!(client.download_to_vec(&remove, 0, 0).is_err());
    // the S3 load generator of scripts/s3-bench.sh: PUT, then GET, with no error
    let endpoint = format!("{}:{}", c.storages[0].ip, rfdfs_tests::s3::S3_PORT);
    for op in ["put", "get"] {
        let (code, out, err) = rfdfs_tests::run_tool(
            "rfdfs_bench",
            &[
                "s3",
                &endpoint,
                "bench",
                "1024",
                "4",
                "0.5",
                "--op",
                op,
                "--objects",
                "50",
                "--access-key",
                s3::ADMIN.0,
                "--secret-key",
                s3::ADMIN.1,
                "--cpu",
                &format!("storage={}", c.storages[0].daemon.pid().unwrap()),
            ],
        );
        assert_eq!(code, 0, "rfdfs_bench s3 --op {op}: {out}{err}");
        assert!(out.contains("(") && out.contains(" 0 errors)"), "{out}");
        assert!(
            out.contains(" us CPU/op") && out.contains("  storage "),
            "{out}"
        );
    }
}

/// A bucket of keys (CreateBucket) written and read through boto3 on one member and read on
/// the other (`tests/s3/named_bucket.py`); every object is an ordinary file: the same bytes
/// through the FastDFS client and the HTTP port, on both members.
#[test]
fn objects_written_through_s3_are_fastdfs_files_on_every_member() {
    let keys = TempDir::new("s3-named");
    let c = two_members(&keys);
    let out = keys.path().join("out.json");
    let spec = serde_json::json!({
        "admin": [s3::ADMIN.0, s3::ADMIN.1],
        "bucket": "photos",
        "out": out.to_str().unwrap(),
    });
    let spec_path = keys.path().join("spec.json");
    std::fs::write(&spec_path, spec.to_string()).unwrap();
    let said = s3::run_script(
        "named_bucket.py",
        &[
            &endpoint(&c.storages[0].ip),
            &endpoint(&c.storages[1].ip),
            spec_path.to_str().unwrap(),
        ],
    );
    assert!(said.contains("all checks passed"), "{said}");
    rfdfs_tests::wait_converged(&c, &[0, 1], Duration::from_secs(60));
    let objects: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(
        objects.len(),
        500 + 8,
        "{:?}",
        objects.keys().take(20).collect::<Vec<_>>()
    );
    let client = c.client();
    for (key, o) in &objects {
        let id = FileId::parse(o["file_id"].as_str().unwrap()).unwrap();
        let data = client.download_to_vec(&id, 0, 0).unwrap();
        assert_eq!(
            sha256_hex(&data),
            o["sha256"].as_str().unwrap(),
            "FastDFS: {key}"
        );
        if !key.starts_with("many/") {
            let local = keys.path().join("downloaded");
            let (code, out, err) = c.tool(
                "fdfs_download_file",
                &[o["file_id"].as_str().unwrap(), local.to_str().unwrap()],
            );
            assert_eq!(code, 0, "fdfs_download_file {key}: {out}{err}");
            let got = std::fs::read(&local).unwrap();
            assert_eq!(
                sha256_hex(&got),
                o["sha256"].as_str().unwrap(),
                "fdfs_download_file: {key}"
            );
        }
        for member in 0..2 {
            let http = std::process::Command::new("curl")
                .args([
                    "-sf",
                    &format!(
                        "http://{}:{HTTP_PORT}/{}",
                        c.storages[member].ip,
                        o["file_id"].as_str().unwrap()
                    ),
                ])
                .output()
                .unwrap();
            assert_eq!(
                sha256_hex(&http.stdout),
                o["sha256"].as_str().unwrap(),
                "HTTP port of {member}: {key}"
            );
        }
    }
}

/// A tree of files (0 B to 20 MiB, names with spaces and `&+-é"`) through rclone, awscli,
/// s3cmd and restic into buckets of keys, checked by each tool against the tree and read back
/// through the FastDFS client.
#[test]
fn rclone_awscli_s3cmd_and_restic_write_and_check_their_trees() {
    let keys = TempDir::new("s3-tools");
    let c = two_members(&keys);
    let (ip0, ip1) = (c.storages[0].ip.clone(), c.storages[1].ip.clone());
    let tree = keys.path().join("tree");
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("small 2k.txt", content(2048, 1)),
        ("odd &+-é\" name.bin", content(3000, 2)),
        ("dir/five.bin", content(5 << 20, 3)),
        ("dir/sub/twenty.bin", content(20 << 20, 4)),
    ];
    for (name, data) in &files {
        let p = tree.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, data).unwrap();
    }
    let tree_s = tree.to_str().unwrap();
    // rclone: multipart from 5 MiB on, checked by downloading every file from the other member
    s3::rclone(&ip0, &["mkdir", "rf:rclone"]);
    s3::rclone(
        &ip0,
        &[
            "copy",
            "--s3-upload-cutoff",
            "5M",
            "--s3-chunk-size",
            "5M",
            tree_s,
            "rf:rclone/tree",
        ],
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let r = s3::rclone_command(&ip1, &["check", "--download", tree_s, "rf:rclone/tree"])
            .status()
            .unwrap();
        if r.success() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "rclone check --download on member 1 failed"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    s3::rclone(&ip0, &["check", tree_s, "rf:rclone/tree"]);
    // awscli: a bucket, the tree synced up (multipart above its 8 MiB threshold), listed, removed
    let ep0 = endpoint(&ip0);
    s3::aws(&ep0, &["s3", "mb", "s3://awscli"]);
    s3::aws(&ep0, &["s3", "sync", tree_s, "s3://awscli/tree"]);
    s3::aws(
        &ep0,
        &[
            "s3",
            "cp",
            &format!("{tree_s}/dir/sub/twenty.bin"),
            "s3://awscli/one copy",
        ],
    );
    let ls = s3::aws(&ep0, &["s3", "ls", "--recursive", "s3://awscli/"]);
    for (name, _) in &files {
        assert!(ls.contains(&format!("tree/{name}")), "{name} not in:\n{ls}");
    }
    let back = keys.path().join("aws-back");
    s3::aws(
        &ep0,
        &["s3", "sync", "s3://awscli/tree", back.to_str().unwrap()],
    );
    for (name, data) in &files {
        assert_eq!(
            &std::fs::read(back.join(name)).unwrap(),
            data,
            "aws s3 sync down: {name}"
        );
    }
    let listed = s3::aws(
        &ep0,
        &[
            "s3api",
            "list-objects-v2",
            "--bucket",
            "awscli",
            "--prefix",
            "tree/dir/",
        ],
    );
    assert!(
        listed.contains("tree/dir/five.bin") && listed.contains("tree/dir/sub/twenty.bin"),
        "{listed}"
    );
    // aws s3api: a multipart upload by hand, listed while under way, completed, read back
    // (`s3api <command> --bucket awscli --key "by s3api" <more>`, its JSON answer)
    let by_s3api = |command: &str, more: &[&str]| -> serde_json::Value {
        let args = [
            &["s3api", command, "--bucket", "awscli", "--key", "by s3api"],
            more,
        ]
        .concat();
        let out = s3::aws(&ep0, &args);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("aws s3api {command}: {e}: {out}"))
    };
    let up = by_s3api("create-multipart-upload", &[]);
    let id = up["UploadId"].as_str().unwrap().to_string();
    let mut parts = Vec::new();
    for (n, file) in [(1, "dir/five.bin"), (2, "small 2k.txt")] {
        let path = format!("{tree_s}/{file}");
        let r = by_s3api(
            "upload-part",
            &[
                "--upload-id",
                &id,
                "--part-number",
                &n.to_string(),
                "--body",
                &path,
            ],
        );
        parts.push(serde_json::json!({"PartNumber": n, "ETag": r["ETag"]}));
    }
    let listed_parts = by_s3api("list-parts", &["--upload-id", &id]);
    assert_eq!(
        listed_parts["Parts"].as_array().unwrap().len(),
        2,
        "{listed_parts}"
    );
    let uploads = s3::aws(
        &ep0,
        &["s3api", "list-multipart-uploads", "--bucket", "awscli"],
    );
    assert!(uploads.contains(&id), "{uploads}");
    let done = serde_json::json!({ "Parts": parts }).to_string();
    by_s3api(
        "complete-multipart-upload",
        &["--upload-id", &id, "--multipart-upload", &done],
    );
    let whole = keys.path().join("by-s3api");
    by_s3api("get-object", &[whole.to_str().unwrap()]);
    let mut want = files[3].1.clone();
    want.extend_from_slice(&files[1].1);
    assert_eq!(std::fs::read(&whole).unwrap(), want, "aws s3api multipart");
    s3::aws(&ep0, &["s3", "rm", "--recursive", "s3://awscli/tree"]);
    let ls = s3::aws(&ep0, &["s3", "ls", "--recursive", "s3://awscli/"]);
    assert!(!ls.contains("tree/") && ls.contains("one copy"), "{ls}");
    // s3cmd
    s3::s3cmd(&ip0, &["mb", "s3://s3cmd"]);
    s3::s3cmd(
        &ip0,
        &[
            "put",
            &format!("{tree_s}/small 2k.txt"),
            "s3://s3cmd/a/small",
        ],
    );
    s3::s3cmd(
        &ip0,
        &[
            "put",
            &format!("{tree_s}/dir/sub/twenty.bin"),
            "s3://s3cmd/a/twenty",
        ],
    );
    let got = keys.path().join("s3cmd-got");
    s3::s3cmd(&ip1, &["get", "s3://s3cmd/a/twenty", got.to_str().unwrap()]);
    assert_eq!(
        std::fs::read(&got).unwrap(),
        files[4].1,
        "s3cmd get from member 1"
    );
    assert_eq!(s3::s3cmd(&ip0, &["ls", "s3://s3cmd/a/"]).lines().count(), 2);
    s3::s3cmd(&ip0, &["del", "s3://s3cmd/a/small"]);
    assert_eq!(s3::s3cmd(&ip0, &["ls", "s3://s3cmd/a/"]).lines().count(), 1);
    // restic: a repository in a bucket, the tree backed up, every byte read back and checked,
    // restored
    s3::rclone(&ip0, &["mkdir", "rf:restic"]);
    s3::restic(&ip0, "restic", &["init"]);
    s3::restic(&ip0, "restic", &["backup", tree_s]);
    s3::restic(&ip1, "restic", &["check", "--read-data"]);
    let restored = keys.path().join("restored");
    s3::restic(
        &ip1,
        "restic",
        &["restore", "latest", "--target", restored.to_str().unwrap()],
    );
    for (name, data) in &files {
        let p = restored.join(tree.strip_prefix("/").unwrap()).join(name);
        assert_eq!(&std::fs::read(&p).unwrap(), data, "restic restore: {name}");
    }
}

/// Keys live in the listing index, which the binlog gives back: after a clean restart (the run
/// file read), and after the index is removed while the storage is stopped (rebuilt from the
/// binlog, each file's metadata read again), every key names the same bytes; overwritten keys
/// name their latest bytes, deleted ones nothing.
#[test]
fn keys_survive_a_restart_and_an_index_rebuilt_from_the_binlog() {
    let keys = TempDir::new("s3-rebuild");
    let mut c = s3_cluster(&keys, 1, 1, "");
    let ep = endpoint(&c.storages[0].ip);
    let tree = keys.path().join("tree");
    for k in 0..40 {
        let p = tree.join(format!("d{}/file {k}.txt", k % 4));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, content(100 + k, k as u8)).unwrap();
    }
    s3::aws(&ep, &["s3", "mb", "s3://keep"]);
    s3::aws(&ep, &["s3", "sync", tree.to_str().unwrap(), "s3://keep/t"]);
    // an overwrite and a delete
    std::fs::write(tree.join("d1/file 1.txt"), b"second version").unwrap();
    s3::aws(
        &ep,
        &[
            "s3",
            "cp",
            tree.join("d1/file 1.txt").to_str().unwrap(),
            "s3://keep/t/d1/file 1.txt",
        ],
    );
    s3::aws(&ep, &["s3", "rm", "s3://keep/t/d2/file 2.txt"]);
    std::fs::remove_file(tree.join("d2/file 2.txt")).unwrap();
    let listing = || s3::aws(&ep, &["s3", "ls", "--recursive", "s3://keep/"]);
    let before = listing();
    assert_eq!(before.lines().count(), 39, "{before}");
    let check = |what: &str| {
        let after = listing();
        assert_eq!(
            after
                .lines()
                .map(|l| l.split_whitespace().skip(2).collect::<Vec<_>>().join(" "))
                .collect::<Vec<_>>(),
            before
                .lines()
                .map(|l| l.split_whitespace().skip(2).collect::<Vec<_>>().join(" "))
                .collect::<Vec<_>>(),
            "{what}"
        );
        let back = keys.path().join(format!("back-{what}"));
        s3::aws(&ep, &["s3", "sync", "s3://keep/t", back.to_str().unwrap()]);
        for k in 0..40 {
            let rel = format!("d{}/file {k}.txt", k % 4);
            match std::fs::read(tree.join(&rel)) {
                Ok(want) => assert_eq!(
                    std::fs::read(back.join(&rel)).unwrap(),
                    want,
                    "{what}: {rel}"
                ),
                Err(_) => assert!(!back.join(&rel).exists(), "{what}: {rel} came back"),
            }
        }
    };
    c.restart_storage(0);
    check("restart");
    assert_eq!(c.storages[0].daemon.stop(), Some(0));
    std::fs::remove_file(c.storages[0].base.join("data/listing/group1.list")).unwrap();
    c.start_storage(0);
    c.wait_active(1);
    // listings answer SlowDown (503) while the index is rebuilt: the clients retry
    check("rebuild");
}

/// Lifecycle expiration is rfdfs's expiry: a rule dated in the past answers what it covers
/// absent at once (objects written before the rule and after), the sweeper deletes their files
/// from every member; a Days rule is the object's `fdfs-expires` metadata, a day or two ahead,
/// which FastDFS clients read too.
#[test]
fn lifecycle_expiration_is_the_files_expiry_on_every_member() {
    let keys = TempDir::new("s3-lifecycle");
    let c = s3_cluster(&keys, 2, 1, "expire_sweep_interval = 1\n");
    let out = keys.path().join("out.json");
    let said = s3::run_script(
        "lifecycle.py",
        &[
            &endpoint(&c.storages[0].ip),
            s3::ADMIN.0,
            s3::ADMIN.1,
            "life",
            out.to_str().unwrap(),
        ],
    );
    assert!(said.contains("all checks passed"), "{said}");
    let o: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let client = c.client();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    for id in o["expired"].as_array().unwrap() {
        let rel = &id.as_str().unwrap()["group1/M00/".len()..];
        for s in &c.storages {
            let p = s.store_paths[0].join("data").join(rel);
            while p.exists() {
                assert!(
                    std::time::Instant::now() < deadline,
                    "{id} not swept from {}",
                    s.ip
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
    for id in o["kept"].as_array().unwrap() {
        let id = FileId::parse(id.as_str().unwrap()).unwrap();
        assert_eq!(client.download_to_vec(&id, 0, 0).unwrap(), b"keep/c");
    }
    let days = FileId::parse(o["days"].as_str().unwrap()).unwrap();
    let meta = client.get_metadata(&days).unwrap();
    let expires: i64 = meta
        .iter()
        .find(|(k, _)| k == b"fdfs-expires")
        .map(|(_, v)| String::from_utf8_lossy(v).parse().unwrap())
        .expect("fdfs-expires set by the Days rule");
    let now = fdfs_common::now();
    assert!(
        expires > now + 86_400 - 10 && expires <= now + 2 * 86_400,
        "{expires} vs {now}"
    );
}

/// Two groups: group2's bucket asked of group1's storage is passed on to group2's storage
/// (listing, reading, deleting through it); a group nobody has is NoSuchBucket.
#[test]
fn another_groups_bucket_is_answered_through_any_storage() {
    let keys = TempDir::new("s3-groups");
    let c = s3_cluster(&keys, 2, 2, "");
    let g2 = if c.storages[1].group == "group2" {
        1
    } else {
        0
    };
    let g1 = 1 - g2;
    let client = c.client();
    let id = client
        .upload(
            Content::Buffer(b"in group2"),
            "txt",
            Upload::File,
            Some((c.storage_addr(g2), 0xFF)),
            None,
        )
        .unwrap();
    assert_eq!(id.group, "group2");
    let said = s3::run_script(
        "other_group.py",
        &[
            &endpoint(&c.storages[g1].ip),
            &endpoint(&c.storages[g2].ip),
            s3::ADMIN.0,
            s3::ADMIN.1,
            &format!("{}/{}", id.group, id.name),
        ],
    );
    assert!(said.contains("all checks passed"), "{said}");
    assert!(
        client.download_to_vec(&id, 0, 0).is_err(),
        "deleted through group1's storage"
    );
}

/// With `write_ack_copies = 2`, a write acknowledged by one member is read, listed and (once
/// deleted) missed at once on the other: overwrites of one key alternate between the members
/// and each is read back from the other.
#[test]
fn writes_are_read_and_listed_at_once_on_the_other_member() {
    let keys = TempDir::new("s3-raw");
    let c = s3_cluster(&keys, 2, 1, "write_ack_copies = 2\n");
    // each member takes writes once it knows the other ACTIVE (its next beat)
    let client = c.client();
    for i in 0..2 {
        rfdfs_tests::wait_for(
            "both members taking writes",
            || {
                client
                    .upload(
                        Content::Buffer(b"x"),
                        "txt",
                        Upload::File,
                        Some((c.storage_addr(i), 0xFF)),
                        None,
                    )
                    .ok()
            },
            || c.storages[i].daemon.log(),
        );
    }
    let said = s3::run_script(
        "read_after_write.py",
        &[
            &endpoint(&c.storages[0].ip),
            &endpoint(&c.storages[1].ip),
            s3::ADMIN.0,
            s3::ADMIN.1,
        ],
    );
    assert!(said.contains("all checks passed"), "{said}");
}

/// Virtual-host style through boto3 (`addressing_style = virtual`) with `s3.domain` set: the
/// bucket in the host name, CreateBucket included.
#[test]
fn virtual_host_style_requests_name_their_bucket_in_the_host() {
    let keys = TempDir::new("s3-vhost");
    let domain = format!("s3-{}.rfdfs.test", std::process::id());
    let c = s3_cluster(&keys, 1, 1, &format!("s3.domain = {domain}\n"));
    let ip = &c.storages[0].ip;
    let _names = [
        rfdfs_tests::hosts_file::HostName::add(&domain, ip),
        rfdfs_tests::hosts_file::HostName::add(&format!("vbucket.{domain}"), ip),
    ];
    let said = s3::run_script(
        "virtual_host.py",
        &[
            &format!("http://{domain}:{}", s3::S3_PORT),
            s3::ADMIN.0,
            s3::ADMIN.1,
        ],
    );
    assert!(said.contains("all checks passed"), "{said}");
}

/// Overwrites of a few keys from 8 clients at once: once the storage has deleted what they
/// made older, the group holds one file a key. Two S3 writes noting themselves in the listing
/// index at the same instant used to skip one of the notes, and the overwrite it made was
/// never deleted.
#[test]
fn concurrent_overwrites_leave_one_file_a_key() {
    let keys = TempDir::new("s3-over");
    let c = s3_cluster(&keys, 1, 1, "");
    let said = s3::run_script(
        "overwrites.py",
        &[&endpoint(&c.storages[0].ip), s3::ADMIN.0, s3::ADMIN.1],
    );
    assert!(said.contains("all checks passed"), "{said}");
}
