//! Micro-benchmarks of the packet codec and file-ID encoding (`cargo bench -p fdfs-common`).
//! A plain timing harness rather than criterion: each case is warmed up, then run in batches
//! for about half a second; the best batch's time per operation is printed, which is the
//! figure least disturbed by the rest of the machine.

use fdfs_common::codec::Message;
use fdfs_common::file_id::{split_file_id, FilePayload, LogicalName, RemoteName, Source};
use fdfs_common::metadata;
use fdfs_common::proto::cluster::{JoinReq, StatBlock};
use fdfs_common::proto::storage::{DownloadReq, FileIdReply, UploadReq};
use fdfs_common::proto::{cmd, Header};
use std::hint::black_box;
use std::time::{Duration, Instant};

fn bench(name: &str, mut f: impl FnMut()) {
    for _ in 0..10_000 {
        f();
    }
    let batch = 10_000;
    let mut best = Duration::MAX;
    let end = Instant::now() + Duration::from_millis(500);
    while Instant::now() < end {
        let t = Instant::now();
        for _ in 0..batch {
            f();
        }
        best = best.min(t.elapsed());
    }
    let ns = best.as_nanos() as f64 / batch as f64;
    println!("{name:<36} {ns:>9.1} ns/op");
}

fn main() {
    // cargo bench passes --bench; a filter argument picks cases by substring
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with("--"));
    let run = |name: &str, f: &mut dyn FnMut()| {
        if filter.as_ref().is_none_or(|x| name.contains(x.as_str())) {
            bench(name, f);
        }
    };

    let header = Header::new(cmd::UPLOAD_FILE, 10240 + UploadReq::LEN);
    run("header encode", &mut || {
        black_box(black_box(&header).to_bytes());
    });
    let hb = header.to_bytes();
    run("header decode", &mut || {
        black_box(Header::decode(black_box(&hb)).unwrap());
    });

    let upload = UploadReq {
        store_path_index: 0,
        file_size: 10240,
        ext: "jpg".into(),
    };
    run("upload request encode", &mut || {
        black_box(black_box(&upload).to_bytes());
    });
    let ub = upload.to_bytes();
    run("upload request decode", &mut || {
        black_box(UploadReq::from_bytes(black_box(&ub)).unwrap());
    });

    let download = DownloadReq {
        offset: 0,
        count: 0,
        group: "group1".into(),
        filename: "M00/00/00/wKhHf1S-oryAZCpgAAAE2uRlJkA126.xml".into(),
    };
    run("download request encode", &mut || {
        black_box(black_box(&download).to_bytes());
    });
    let db = download.to_bytes();
    run("download request decode", &mut || {
        black_box(DownloadReq::from_bytes(black_box(&db)).unwrap());
    });

    let reply = FileIdReply {
        group: "group1".into(),
        filename: download.filename.clone(),
    };
    let rb = reply.to_bytes();
    run("file id reply decode", &mut || {
        black_box(FileIdReply::from_bytes(black_box(&rb)).unwrap());
    });

    let join = JoinReq {
        group: "group1".into(),
        storage_port: 23000,
        store_path_count: 1,
        subdir_count_per_path: 256,
        upload_priority: 10,
        join_time: 1_700_000_000,
        up_time: 1_700_000_100,
        version: "6.16.1".into(),
        init_flag: 0,
        status: 7,
        storage_id: "192.168.0.10".into(),
        current_tracker_ip: "192.168.0.2".into(),
        trackers: vec!["192.168.0.2:22122".into(), "192.168.0.3:22122".into()],
    };
    let jb = join.to_bytes();
    run("storage join decode", &mut || {
        black_box(JoinReq::from_bytes(black_box(&jb)).unwrap());
    });

    let stats = StatBlock::default();
    run("storage beat stats encode", &mut || {
        black_box(black_box(&stats).to_bytes());
    });
    let sb = stats.to_bytes();
    run("storage beat stats decode", &mut || {
        black_box(StatBlock::from_bytes(black_box(&sb)).unwrap());
    });

    let payload = FilePayload {
        source: Source::Ipv4([192, 168, 71, 127]),
        timestamp: 1_421_779_644,
        size_field: FilePayload::make_size_field(1242, false, 0x12_3456),
        crc32: 0xe465_2640,
    };
    run("file name encode (27 chars)", &mut || {
        black_box(black_box(&payload).encode_b27());
    });
    let b27 = payload.encode_b27();
    run("file name decode (27 chars)", &mut || {
        black_box(FilePayload::decode_b27(black_box(&b27)).unwrap());
    });
    let file_id = format!("group1/M00/00/00/{b27}126.xml");
    run("file id split + decode", &mut || {
        let (_, name) = split_file_id(black_box(&file_id)).unwrap();
        black_box(RemoteName::decode(name).unwrap());
    });
    let name = &file_id["group1/".len()..];
    run("logical name parse (store path)", &mut || {
        black_box(LogicalName::parse(black_box(name), 1).unwrap());
    });

    let items: Vec<metadata::MetaItem> = (0..8)
        .map(|i| {
            (
                format!("key{i}").into_bytes(),
                format!("value number {i}").into_bytes(),
            )
        })
        .collect();
    run("metadata pack (8 items)", &mut || {
        black_box(metadata::pack(black_box(&items)));
    });
    let packed = metadata::pack(&items);
    run("metadata unpack (8 items)", &mut || {
        black_box(metadata::unpack(black_box(&packed)));
    });
}
