//! The fuzz targets: each takes arbitrary bytes and must return without panicking, whatever
//! they are. The smoke run in the test suite (tests/fuzz_smoke.rs) and the cargo-fuzz targets
//! (tests/fuzz/, scripts/fuzz.sh) call these same functions.

use fdfs_common::codec::Message;
use fdfs_common::proto::{client, cluster, leader, stats, storage, sync, trunk};

/// The fuzz target names, as cargo-fuzz and the seed corpus directories know them.
pub const TARGETS: [&str; 7] = [
    "packets",
    "file_id",
    "config",
    "storage_ids",
    "binlog",
    "mark",
    "http_request",
];

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Every packet body decoder, and the header.
pub fn packets(b: &[u8]) {
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
    let _ = cluster::ReportIpChangedReq::from_bytes(b);
    let _ = cluster::StorageAddrReq::from_bytes(b);
    let _ = cluster::GetGroupNameReq::from_bytes(b);
    let _ = cluster::GroupName::from_bytes(b);
    let _ = leader::RunningStatus::from_bytes(b);
    let _ = leader::LeaderAddr::from_bytes(b);
    let _ = leader::JoinLeaderReq::from_bytes(b);
    let _ = leader::PingLeaderReq::from_bytes(b);
    let _ = leader::TrunkServers::from_bytes(b);
    let _ = sync::FetchPathBinlogReq::from_bytes(b);
    let _ = cluster::ChangeStatusReq::from_bytes(b);
    let _ = stats::TrackerClusterStatReq::from_bytes(b);
    let _ = stats::StorageClusterStatReq::from_bytes(b);
    let _ = stats::VolumeStatReq::from_bytes(b);
    let _ = trunk::TrunkAllocReq::from_bytes(b);
    let _ = trunk::TrunkSlotReq::from_bytes(b);
    let _ = trunk::TrunkInfo::from_bytes(b);
    let _ = trunk::TrunkBinlogSize::from_bytes(b);
    let _ = trunk::TrunkFileId::from_bytes(b);
    let _ = trunk::TrunkFreeMb::from_bytes(b);
    let _ = trunk::TrunkServerId::from_bytes(b);
    let _ = trunk::TrunkBinlogLines::from_bytes(b);
    if let Ok(h) = <&[u8; 24]>::try_from(b.get(..24).unwrap_or_default()) {
        let _ = fdfs_common::trunk::SlotHeader::from_bytes(h);
    }
    let _ = sync::PathBinlogStream::lines(b);
    let _ = sync::leading_name_len(b);
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
}

/// File IDs and logical names.
pub fn file_id(b: &[u8]) {
    let s = text(b);
    if let Ok((_, name)) = fdfs_common::file_id::split_file_id(&s) {
        let _ = fdfs_common::file_id::RemoteName::decode(name);
        let _ = fdfs_common::file_id::LogicalName::parse(name, 3);
    }
    let _ = fdfs_common::file_id::RemoteName::decode(&s);
    let _ = fdfs_common::file_id::LogicalName::parse(&s, 256);
    if let Ok(rn) = fdfs_common::file_id::RemoteName::decode(&s) {
        if let Some(slot) = fdfs_common::trunk::TrunkSlot::of_name(&rn) {
            let _ = slot.holds(u64::from(slot.alloc_size), 64 << 20);
            let _ = fdfs_common::trunk::SlotHeader::for_name(&rn, b'F');
        }
    }
}

/// tracker.conf / storage.conf / client.conf.
pub fn config(b: &[u8]) {
    if let Ok(ini) = fdfs_common::config::IniFile::parse_str("fuzz.conf", &text(b)) {
        let _ = fdfs_common::config::TrackerConfig::from_ini(&ini);
        let _ = fdfs_common::config::StorageConfig::from_ini(&ini);
        let _ = fdfs_common::config::ClientConfig::from_ini(&ini);
    }
}

/// storage_ids.conf, and the pages the tracker serves from it.
pub fn storage_ids(b: &[u8]) {
    if let Ok(ids) = fdfs_common::config::storage_ids::StorageIds::parse("ids.conf", &text(b)) {
        let (_, page) = ids.page(0, 8064);
        let mut back = fdfs_common::config::storage_ids::StorageIds::default();
        back.extend_from_page(&page).expect("our own page parses");
    }
}

/// Binlog lines.
pub fn binlog(b: &[u8]) {
    for line in text(b).lines() {
        let _ = fdfs_storage::binlog::parse_line(line);
        if let Some(r) = fdfs_common::trunk::TrunkBinlogRecord::parse(line) {
            assert_eq!(
                r.to_line().trim_end(),
                line,
                "a trunk binlog line formats back"
            );
        }
    }
}

/// Mark files.
pub fn mark(b: &[u8]) {
    let _ = fdfs_storage::mark::Mark::parse(&text(b), "fuzz.mark");
}

/// HTTP request heads, their parameters, Range and If-Modified-Since headers.
pub fn http_request(b: &[u8]) {
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
}

/// The target called `name`.
pub fn target(name: &str) -> Option<fn(&[u8])> {
    Some(match name {
        "packets" => packets,
        "file_id" => file_id,
        "config" => config,
        "storage_ids" => storage_ids,
        "binlog" => binlog,
        "mark" => mark,
        "http_request" => http_request,
        _ => return None,
    })
}
