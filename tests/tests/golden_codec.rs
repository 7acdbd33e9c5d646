//! Golden tests against real bytes captured from upstream FastDFS 6.16.1, offline
//! (`tests/golden/`, see its README): every client, cluster and trunk request/response frame
//! decodes and re-encodes byte-identically through our codec, the trunk allocator writes
//! upstream's binlog lines, and every file ID decodes to its recorded fields and re-encodes
//! from them. `golden_replay.rs` replays the same captures against live daemons.

mod golden_common;

use fdfs_common::codec::Message;
use fdfs_common::file_id::{FileKind, FilePayload, RemoteName, Source};
use fdfs_common::proto::client::{
    decode_group_stats, decode_storage_stats, FetchReply, GroupFileReq, GroupReq, GroupStat,
    ListStorageReq, StoreAllReply, StoreReply,
};
use fdfs_common::proto::cmd;
use fdfs_common::proto::stats::{
    StorageClusterStat, StorageClusterStatReq, TrackerClusterStat, TrackerClusterStatReq,
    VolumeStat, VolumeStatReq,
};
use fdfs_common::proto::storage::{
    AppendHead, DownloadReq, FileIdReply, FileInfoReply, ModifyHead, SetMetadataReq, TruncateReq,
    UploadReq, UploadSlaveHead,
};
use fdfs_common::proto::sync::{
    ReportServerId, SyncDeleteReq, SyncFileHead, SyncRangeReq, SyncTwoNamesReq,
};
use golden_common::{hex, load, split_frame};
use rfdfs_tests::TempDir;
use serde_json::Value;
use std::process::Command;

/// Decode a request body with our codec and encode it again.
fn reencode_request(server: &str, command: u8, body: &[u8]) -> Result<Vec<u8>, String> {
    let e = |x: fdfs_common::codec::DecodeError| x.to_string();
    let empty = || {
        if body.is_empty() {
            Ok(Vec::new())
        } else {
            Err("expected an empty body".to_string())
        }
    };
    if server == "tracker" {
        match command {
            101 | 106 | 91 | 95 | 75 | 111 | 82 | 250 => empty(),
            104 | 107 | 90 | 108 => {
                if body.len() != 16 {
                    return Err("group body must be 16 bytes".into());
                }
                GroupReq::from_bytes(body).map(|m| m.to_bytes()).map_err(e)
            }
            102 | 103 | 105 => GroupFileReq::from_bytes(body)
                .map(|m| m.to_bytes())
                .map_err(e),
            92..=94 => ListStorageReq::from_bytes(body)
                .map(|m| m.to_bytes())
                .map_err(e),
            96 => TrackerClusterStatReq::from_bytes(body)
                .map(|m| m.to_bytes())
                .map_err(e),
            97 => StorageClusterStatReq::from_bytes(body)
                .map(|m| m.to_bytes())
                .map_err(e),
            98 => VolumeStatReq::from_bytes(body)
                .map(|m| m.to_bytes())
                .map_err(e),
            69 => fdfs_common::proto::cluster::FetchStorageIdsReq::from_bytes(body)
                .map(|m| m.to_bytes())
                .map_err(e),
            other => Err(format!("no decoder for tracker cmd {other}")),
        }
    } else {
        match command {
            11 | 23 => {
                let mut r = fdfs_common::codec::Reader::new(body);
                let m = UploadReq::decode(&mut r).map_err(e)?;
                Ok([m.to_bytes(), r.rest().to_vec()].concat())
            }
            21 => {
                let mut r = fdfs_common::codec::Reader::new(body);
                let m = UploadSlaveHead::decode(&mut r).map_err(e)?;
                Ok([m.to_bytes(), r.rest().to_vec()].concat())
            }
            24 => {
                let mut r = fdfs_common::codec::Reader::new(body);
                let m = AppendHead::decode(&mut r).map_err(e)?;
                Ok([m.to_bytes(), r.rest().to_vec()].concat())
            }
            34 => {
                let mut r = fdfs_common::codec::Reader::new(body);
                let m = ModifyHead::decode(&mut r).map_err(e)?;
                Ok([m.to_bytes(), r.rest().to_vec()].concat())
            }
            14 => DownloadReq::from_bytes(body)
                .map(|m| m.to_bytes())
                .map_err(e),
            12 | 15 | 22 => GroupFileReq::from_bytes(body)
                .map(|m| m.to_bytes())
                .map_err(e),
            13 => SetMetadataReq::from_bytes(body)
                .map(|m| m.to_bytes())
                .map_err(e),
            36 => TruncateReq::from_bytes(body)
                .map(|m| m.to_bytes())
                .map_err(e),
            38 => Ok(body.to_vec()),
            111 | 82 | 250 => empty(),
            other => Err(format!("no decoder for storage cmd {other}")),
        }
    }
}

/// Decode a successful response body with our codec and encode it again.
fn reencode_response(server: &str, command: u8, body: &[u8]) -> Result<Vec<u8>, String> {
    let e = |x: fdfs_common::codec::DecodeError| x.to_string();
    if server == "tracker" {
        match command {
            101 | 104 => StoreReply::from_bytes(body)
                .map(|m| m.to_bytes())
                .map_err(e),
            106 | 107 => StoreAllReply::from_bytes(body)
                .map(|m| m.to_bytes())
                .map_err(e),
            102 | 103 | 105 => FetchReply::from_bytes(body)
                .map(|m| m.to_bytes())
                .map_err(e),
            90 => GroupStat::from_bytes(body).map(|m| m.to_bytes()).map_err(e),
            91 => decode_group_stats(body)
                .map(|v| v.iter().flat_map(|g| g.to_bytes()).collect())
                .map_err(e),
            92 => decode_storage_stats(body)
                .map(|v| {
                    let mut out = Vec::new();
                    for s in v {
                        s.encode(&mut out);
                    }
                    out
                })
                .map_err(e),
            96 => TrackerClusterStat::decode_list(body)
                .map(|v| TrackerClusterStat::encode_list(&v))
                .map_err(e),
            97 => StorageClusterStat::decode_list(body)
                .map(|(a, b, v)| StorageClusterStat::encode_list(a, b, &v))
                .map_err(e),
            98 => VolumeStat::decode_list(body)
                .map(|(a, v)| VolumeStat::encode_list(a, &v))
                .map_err(e),
            95 | 75 | 69 | 93 | 108 | 111 => Ok(body.to_vec()),
            other => Err(format!("no decoder for tracker reply to {other}")),
        }
    } else {
        match command {
            11 | 21 | 23 | 38 => FileIdReply::from_bytes(body)
                .map(|m| m.to_bytes())
                .map_err(e),
            22 => FileInfoReply::from_bytes(body)
                .map(|m| m.to_bytes())
                .map_err(e),
            14 | 15 => Ok(body.to_vec()),
            12 | 13 | 111 | 24 | 34 | 36 if body.is_empty() => Ok(Vec::new()),
            // upstream's echo of zero-length APPEND/MODIFY/TRUNCATE (client-protocol 7.1)
            24 | 34 | 36 => Ok(body.to_vec()),
            other => Err(format!("no decoder for storage reply to {other}")),
        }
    }
}

/// Upstream's 96/97/98 replies with the bytes after each text field's NUL zeroed.
fn zero_after_nul_fields(command: u8, b: &[u8]) -> Vec<u8> {
    let mut v = b.to_vec();
    let (start, rec, fields): (usize, usize, &[(usize, usize)]) = match command {
        96 => (1, 90, &[(0, 52), (66, 8)]),
        97 => (6, 106, &[(0, 16), (16, 52), (82, 8)]),
        _ => (5, 59, &[(0, 17)]),
    };
    let mut off = start;
    while off + rec <= v.len() {
        for &(f, n) in fields {
            let field = &mut v[off + f..off + f + n];
            if let Some(p) = field.iter().position(|&c| c == 0) {
                field[p..].fill(0);
            }
        }
        off += rec;
    }
    v
}

#[test]
fn client_frames_roundtrip_through_our_codec() {
    let v = load("client-commands.json");
    let exchanges = v["exchanges"].as_array().unwrap();
    assert_eq!(exchanges.len(), 278);
    let mut checked = 0;
    for x in exchanges {
        let name = x["name"].as_str().unwrap();
        let server = x["server"].as_str().unwrap();
        let command = x["cmd"].as_u64().unwrap() as u8;
        let status = x["status"].as_u64();
        let req = hex(x["request_hex"].as_str().unwrap());
        let (h, body) = split_frame(&req);
        assert_eq!(h.cmd, command, "{name}");
        if x.get("request_truncated").and_then(Value::as_bool) != Some(true) {
            assert_eq!(h.pkg_len as usize, body.len(), "{name}: request length");
            match reencode_request(server, command, body) {
                Ok(again) => assert_eq!(again, body, "{name}: request re-encodes differently"),
                Err(why) => assert_ne!(
                    status,
                    Some(0),
                    "{name}: successful request does not decode: {why}"
                ),
            }
        } else {
            assert_eq!(
                h.pkg_len as u64 + 10,
                x["request_len"].as_u64().unwrap(),
                "{name}"
            );
        }
        let resp_hex = x["response_hex"].as_str().unwrap();
        if resp_hex.is_empty() {
            assert_eq!(command, cmd::QUIT, "{name}: only QUIT has no reply");
            continue;
        }
        let resp = hex(resp_hex);
        let (rh, rbody) = split_frame(&resp);
        assert_eq!(rh.cmd, cmd::RESP, "{name}");
        assert_eq!(Some(rh.status as u64), status, "{name}");
        if rh.status != 0 {
            assert_eq!(
                (rh.pkg_len, rbody.len()),
                (0, 0),
                "{name}: error replies are header only"
            );
            continue;
        }
        if x.get("response_truncated").and_then(Value::as_bool) == Some(true) {
            assert_eq!(
                rh.pkg_len as u64 + 10,
                x["response_len"].as_u64().unwrap(),
                "{name}"
            );
            continue;
        }
        assert_eq!(rh.pkg_len as usize, rbody.len(), "{name}: response length");
        let again =
            reencode_response(server, command, rbody).unwrap_or_else(|e| panic!("{name}: {e}"));
        if server == "tracker" && matches!(command, 96..=98) {
            // upstream leaves stale buffer bytes after the NULs of these records (client-protocol
            // 7.3); we zero-fill, so the same fields and length is the equality that holds
            assert_eq!(again.len(), rbody.len(), "{name}");
            assert_eq!(
                reencode_response(server, command, &again).unwrap(),
                again,
                "{name}"
            );
            assert_eq!(zero_after_nul_fields(command, rbody), again, "{name}");
        } else {
            assert_eq!(again, rbody, "{name}: response re-encodes differently");
        }
        checked += 1;
    }
    assert!(checked > 200, "only {checked} responses checked");
}

/// Every recorded trunk exchange (27-33, 72-74, 94) decodes and re-encodes byte-identically,
/// requests and answers, and every trunk binlog line upstream pushed or wrote parses and
/// formats back to itself.
#[test]
fn trunk_frames_roundtrip_through_our_codec() {
    use fdfs_common::proto::trunk::*;
    use fdfs_common::trunk::TrunkBinlogRecord;
    fn same<M: Message>(b: &[u8]) -> Result<Vec<u8>, String> {
        M::from_bytes(b)
            .map(|m| m.to_bytes())
            .map_err(|e| e.to_string())
    }
    let v = load("trunk-commands.json");
    let (mut requests, mut answers, mut lines) = (0, 0, 0);
    for x in v["exchanges"].as_array().unwrap() {
        let name = x["name"].as_str().unwrap();
        let command = x["cmd"].as_u64().unwrap() as u8;
        if x.get("request_truncated").and_then(Value::as_bool) == Some(true) {
            continue; // the capture kept only the start of a long binlog push
        }
        let req = hex(x["request_hex"].as_str().unwrap());
        let (_, body) = split_frame(&req);
        let again = match command {
            27 => same::<TrunkAllocReq>(body),
            28 | 29 => same::<TrunkSlotReq>(body),
            30 => {
                let m = TrunkBinlogLines::from_bytes(body).unwrap();
                for line in m.text.lines() {
                    let r = TrunkBinlogRecord::parse(line)
                        .unwrap_or_else(|| panic!("{name}: {line:?}"));
                    assert_eq!(r.to_line(), format!("{line}\n"), "{name}");
                    lines += 1;
                }
                Ok(m.to_bytes())
            }
            73 => same::<TrunkFileId>(body),
            74 => same::<TrunkFreeMb>(body),
            94 => same::<ListStorageReq>(body),
            31..=33 | 72 => Ok(body.to_vec()),
            _ => continue,
        };
        match again {
            Ok(again) => assert_eq!(again, body, "{name}: request"),
            // a malformed request upstream refused: refused by our codec too
            Err(why) => assert_ne!(x["status"].as_u64(), Some(0), "{name}: {why}"),
        }
        requests += 1;
        let resp = hex(x["response_hex"].as_str().unwrap());
        let (rh, rbody) = split_frame(&resp);
        if rh.status != 0 || rbody.is_empty() {
            continue;
        }
        let again = match command {
            27 => same::<TrunkInfo>(rbody),
            31 => same::<TrunkBinlogSize>(rbody),
            72 => same::<TrunkFileId>(rbody),
            94 => same::<TrunkServerId>(rbody),
            other => panic!("{name}: unexpected answer body to {other}"),
        };
        assert_eq!(again.as_deref(), Ok(rbody), "{name}: answer");
        answers += 1;
    }
    assert!(
        requests > 100 && answers > 20 && lines > 100,
        "{requests} requests, {answers} answers, {lines} lines"
    );
    for l in load("trunk-fixture.json")["trunk_binlog"]["lines"]
        .as_array()
        .unwrap()
    {
        let line = l["line"].as_str().unwrap();
        let r = TrunkBinlogRecord::parse(line).unwrap();
        assert_eq!(r.to_line(), format!("{line}\n"));
    }
}

/// Our trunk allocator, given the allocations, confirmations and frees of the captured session,
/// writes upstream's trunk binlog line for line, and replaying that binlog leaves the free
/// blocks upstream's storage reported after its restart.
#[test]
fn trunk_allocator_writes_upstreams_binlog() {
    use fdfs_common::proto::trunk::TrunkInfo;
    use fdfs_common::trunk::TrunkBinlogRecord;
    use fdfs_storage::trunk_alloc::FreeIndex;
    let meta = load("trunk-fixture.json");
    let recorded: Vec<&Value> = meta["trunk_binlog"]["lines"]
        .as_array()
        .unwrap()
        .iter()
        .collect();
    let mut ix = FreeIndex::default();
    let mut written = Vec::new();
    let mut held = std::collections::VecDeque::new();
    for l in &recorded {
        let r = TrunkBinlogRecord::parse(l["line"].as_str().unwrap()).unwrap();
        let meaning = l["meaning"].as_str().unwrap();
        let ts = r.timestamp;
        if meaning.starts_with("allocated piece added in HOLD state") {
            let (piece, lines) = match ix.alloc(ts, 0, r.block.size, 256) {
                Some(x) => x,
                None => {
                    written.extend(ix.add_trunk(
                        ts,
                        TrunkInfo {
                            offset: 0,
                            size: 64 << 20,
                            ..r.block
                        },
                    ));
                    ix.alloc(ts, 0, r.block.size, 256).unwrap()
                }
            };
            written.extend(lines);
            held.push_back(piece);
        } else if meaning.starts_with("allocation confirmed") {
            // the piece confirmed is the one the line names (one raw allocation never is)
            let at = held.iter().position(|p| *p == r.block).unwrap();
            let piece = held.remove(at).unwrap();
            written.extend(ix.confirm(ts, &piece, true));
        } else if meaning.starts_with("freed by the delete") {
            written.extend(ix.free(ts, r.block));
        }
    }
    let ours: Vec<String> = written
        .iter()
        .map(|r| r.to_line().trim_end().to_string())
        .collect();
    let theirs: Vec<&str> = recorded
        .iter()
        .map(|l| l["line"].as_str().unwrap())
        .collect();
    assert_eq!(ours, theirs);
    // replayed from the binlog alone, as a restarted trunk server does: held blocks are free
    let mut replayed = FreeIndex::default();
    for line in &theirs {
        replayed.replay(&TrunkBinlogRecord::parse(line).unwrap());
    }
    let blocks: Vec<(u64, u64, u64)> = replayed
        .blocks()
        .map(|b| (b.trunk_id.into(), b.offset.into(), b.size.into()))
        .collect();
    let expected: Vec<(u64, u64, u64)> = meta["free_blocks_after_replay"]["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["trunk_id"].as_u64().unwrap(),
                b["offset"].as_u64().unwrap(),
                b["size"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(blocks, expected);
    assert_eq!(
        replayed.free_bytes(),
        meta["free_blocks_after_replay"]["total_bytes"]
            .as_u64()
            .unwrap()
    );
}

#[test]
fn cluster_frames_roundtrip_through_our_codec() {
    use fdfs_common::proto::cluster::*;
    let v = load("cluster-commands.json");
    let mut checked = 0;
    for x in v["exchanges"].as_array().unwrap() {
        if x["server"] != "tracker"
            || x.get("request_truncated").and_then(Value::as_bool) == Some(true)
        {
            continue; // storage<->storage replication belongs to the sync codec
        }
        let name = x["name"].as_str().unwrap();
        let command = x["cmd"].as_u64().unwrap() as u8;
        let req = hex(x["request_hex"].as_str().unwrap());
        let (_, body) = split_frame(&req);
        let again = match command {
            cmd::STORAGE_JOIN => JoinReq::from_bytes(body).map(|m| m.to_bytes()),
            cmd::STORAGE_BEAT if body.is_empty() => Ok(Vec::new()),
            cmd::STORAGE_BEAT if body.len() == StatBlock::LEN => {
                StatBlock::from_bytes(body).map(|m| m.to_bytes())
            }
            cmd::STORAGE_REPORT_DISK_USAGE => {
                decode_disk_usage(body).map(|v| encode_disk_usage(&v))
            }
            cmd::STORAGE_SYNC_REPORT => decode_sync_report(body).map(|v| encode_sync_report(&v)),
            cmd::STORAGE_SYNC_NOTIFY => SyncSource::from_bytes(body).map(|m| m.to_bytes()),
            cmd::STORAGE_GET_MY_IP if body.len() == 21 => {
                GetMyIpReq::from_bytes(body).map(|m| m.to_bytes())
            }
            cmd::STORAGE_REPORT_STATUS if body.len() == 83 => {
                ReportStatusReq::from_bytes(body).map(|m| m.to_bytes())
            }
            cmd::STORAGE_SYNC_SRC_REQ => GroupStorageReq::from_bytes(body).map(|m| m.to_bytes()),
            cmd::REPORT_SERVER_ID if x["server"] == "storage" => {
                ReportServerId::from_bytes(body).map(|m| m.to_bytes())
            }
            cmd::SYNC_CREATE_FILE | cmd::SYNC_UPDATE_FILE if x["server"] == "storage" => {
                let mut r = fdfs_common::codec::Reader::new(body);
                SyncFileHead::decode(&mut r).map(|m| [m.to_bytes(), r.rest().to_vec()].concat())
            }
            cmd::SYNC_DELETE_FILE if x["server"] == "storage" => {
                SyncDeleteReq::from_bytes(body).map(|m| m.to_bytes())
            }
            cmd::SYNC_APPEND_FILE | cmd::SYNC_MODIFY_FILE | cmd::SYNC_TRUNCATE_FILE
                if x["server"] == "storage" =>
            {
                let mut r = fdfs_common::codec::Reader::new(body);
                SyncRangeReq::decode(&mut r).map(|m| [m.to_bytes(), r.rest().to_vec()].concat())
            }
            cmd::SYNC_RENAME_FILE | cmd::SYNC_CREATE_LINK if x["server"] == "storage" => {
                SyncTwoNamesReq::from_bytes(body).map(|m| m.to_bytes())
            }
            cmd::STORAGE_CHANGELOG_REQ if body.len() == 32 => {
                GroupStorageReq::from_bytes(body).map(|m| m.to_bytes())
            }
            cmd::STORAGE_GET_STATUS | cmd::STORAGE_GET_SERVER_ID => {
                StorageAddrReq::from_bytes(body).map(|m| m.to_bytes())
            }
            cmd::STORAGE_GET_GROUP_NAME => GetGroupNameReq::from_bytes(body).map(|m| m.to_bytes()),
            cmd::STORAGE_CHANGE_STATUS => ChangeStatusReq::from_bytes(body).map(|m| m.to_bytes()),
            cmd::STORAGE_REPORT_IP_CHANGED => {
                ReportIpChangedReq::from_bytes(body).map(|m| m.to_bytes())
            }
            _ => continue,
        };
        assert_eq!(
            again.unwrap_or_else(|e| panic!("{name}: {e}")),
            body,
            "{name}"
        );
        let resp = x["response_hex"].as_str().unwrap();
        if resp.is_empty() {
            continue;
        }
        let resp = hex(resp);
        let (rh, rbody) = split_frame(&resp);
        if rh.status != 0 {
            continue;
        }
        let again = match command {
            cmd::STORAGE_JOIN => JoinReply::from_bytes(rbody).map(|m| m.to_bytes()),
            cmd::STORAGE_BEAT | cmd::STORAGE_REPORT_DISK_USAGE | cmd::STORAGE_SYNC_REPORT => {
                ChangeList::from_bytes(rbody).map(|m| m.to_bytes())
            }
            cmd::STORAGE_SYNC_SRC_REQ if !rbody.is_empty() => {
                SyncSource::from_bytes(rbody).map(|m| m.to_bytes())
            }
            _ => Ok(rbody.to_vec()),
        };
        assert_eq!(
            again.unwrap_or_else(|e| panic!("{name}: {e}")),
            rbody,
            "{name}"
        );
        checked += 1;
    }
    assert!(checked > 50, "only {checked} cluster exchanges checked");
}

#[test]
fn file_ids_decode_to_recorded_fields() {
    let v = load("file-ids.json");
    let ids = v["file_ids"].as_array().unwrap();
    assert_eq!(ids.len(), 50);
    let dir = TempDir::new("fileids");
    let conf = dir.path().join("client.conf");
    // normal files are decoded locally: the tracker is never asked (nothing listens here)
    std::fs::write(
        &conf,
        "tracker_server=127.0.0.99:22122\nconnect_timeout=1\n",
    )
    .unwrap();
    for e in ids {
        let file_id = e["file_id"].as_str().unwrap();
        let remote = e["remote_filename"].as_str().unwrap();
        let d = &e["decoded"];
        let n = RemoteName::decode(remote).unwrap_or_else(|err| panic!("{file_id}: {err}"));
        assert_eq!(
            hex(d["payload_hex"].as_str().unwrap()),
            n.payload.to_bytes(),
            "{file_id}"
        );
        assert_eq!(
            n.payload.timestamp as u64,
            d["timestamp"].as_u64().unwrap(),
            "{file_id}"
        );
        assert_eq!(
            hex(d["size_field_hex"].as_str().unwrap()),
            n.payload.size_field.to_be_bytes(),
            "{file_id}"
        );
        assert_eq!(
            n.payload.is_appender(),
            d["flag_bit58_appender"].as_bool().unwrap()
        );
        assert_eq!(
            n.payload.is_trunk(),
            d["flag_bit59_trunk"].as_bool().unwrap()
        );
        assert_eq!(
            format!("{:08x}", n.payload.crc32),
            d["crc32_from_name_hex"].as_str().unwrap()
        );
        match &n.payload.source {
            Source::Ipv4(_) => assert_eq!(
                n.payload.source.ip_text().unwrap(),
                d["source"]["value"].as_str().unwrap()
            ),
            Source::Id(id) => assert_eq!(id.to_string(), d["source"]["value"].as_str().unwrap()),
        }
        if let Some(size) = d["size_from_name"].as_i64() {
            assert_eq!(n.payload.file_size(), Some(size), "{file_id}");
        }
        let kind = match n.kind {
            FileKind::Normal => "normal",
            FileKind::Appender => "appender",
            FileKind::Slave => "slave",
            FileKind::Trunk => "trunk",
        };
        assert_eq!(
            kind,
            d["classification_by_name"].as_str().unwrap(),
            "{file_id}"
        );
        // generating the name from the decoded fields gives the same characters back
        let parts = &e["name_parts"];
        let b27 = parts["b27"].as_str().unwrap();
        assert_eq!(FilePayload::decode_b27(b27).unwrap().encode_b27(), b27);
        if let Some(x7) = parts["x7"].as_str() {
            assert_eq!(&remote[remote.len() - 7..], x7);
            let ext = parts["ext"].as_str().unwrap_or("");
            assert_eq!(fdfs_common::file_id::format_ext(ext, || 0).len(), 7);
        }
        if let Some(master) = parts["master_file_id"].as_str() {
            let (_, mname) = fdfs_common::file_id::split_file_id(master).unwrap();
            let slave = fdfs_common::file_id::slave_name(
                mname,
                parts["slave_prefix"].as_str().unwrap(),
                parts["slave_ext"].as_str().unwrap_or(""),
            );
            assert_eq!(slave, remote, "{file_id}");
        }
        let info = &e["fdfs_file_info"];
        if info["parsed"]["get_from_server"] == Value::Bool(false) {
            let out = Command::new(rfdfs_tests::bin("fdfs_file_info"))
                .args([conf.to_str().unwrap(), file_id])
                .env("TZ", "UTC")
                .output()
                .unwrap();
            assert_eq!(out.status.code(), Some(0));
            assert_eq!(
                String::from_utf8_lossy(&out.stdout),
                info["stdout"].as_str().unwrap(),
                "{file_id}"
            );
        }
    }
}
