//! What is in a group (issue 32): every member lists exactly the files it holds, from its
//! listing index (LIST_FILES, `fdfs_list_files`, `GET /list`, `GET /stat`), page by page while
//! files come and go, and the index rebuilt from the binlog lists the same.

use fdfs_client::{Content, FileId, Upload};
use fdfs_common::config::HostPort;
use fdfs_common::proto::listing::{ListFilesReq, ListPage};
use rfdfs_tests::{run_tool, wait_converged, Cluster, ClusterOpts};
use std::collections::BTreeSet;
use std::time::Duration;

const HTTP_PORT: u16 = 28888;

/// 10,000 files (RFDFS_LISTING_FILES for fewer while working on this test).
fn files() -> u32 {
    std::env::var("RFDFS_LISTING_FILES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000)
}

/// The logical names a member holds: a walk of its data directories (`-m` files left out).
fn walked(c: &Cluster, i: usize) -> BTreeSet<String> {
    rfdfs_tests::snapshot(&c.storages[i].store_paths[0])
        .into_keys()
        .filter(|k| !k.ends_with("-m"))
        .map(|k| format!("group1/M00/{k}"))
        .collect()
}

/// The binlog's live set: created or linked, not deleted since.
fn binlog_live(c: &Cluster, i: usize) -> BTreeSet<String> {
    let dir = c.storages[i].base.join("data/sync");
    let mut live = BTreeSet::new();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                n.starts_with("binlog.") && !n.contains("index") && !n.ends_with(".gz")
            })
        })
        .collect();
    files.sort();
    for f in files {
        for line in std::fs::read_to_string(f).unwrap().lines() {
            let mut it = line.splitn(3, ' ');
            let (_, op, rest) = (it.next(), it.next().unwrap_or(""), it.next().unwrap_or(""));
            let name = rest.split(' ').next().unwrap_or("");
            if name.ends_with("-m") || name.is_empty() {
                continue;
            }
            match op.to_ascii_uppercase().as_str() {
                "C" | "L" | "R" => {
                    live.insert(format!("group1/{name}"));
                    if op.eq_ignore_ascii_case("R") {
                        live.remove(&format!("group1/{}", rest.split(' ').nth(1).unwrap_or("")));
                    }
                }
                "D" => {
                    live.remove(&format!("group1/{name}"));
                }
                _ => {}
            }
        }
    }
    live
}

/// The first page of group1's listing, `limit` files.
fn first_page(limit: u64) -> ListFilesReq {
    ListFilesReq {
        group: "group1".into(),
        limit,
        ..Default::default()
    }
}

/// Every page of member `i`'s listing, `page` files at a time.
fn list_pages(c: &Cluster, i: usize, page: u64, mut between: impl FnMut()) -> Vec<String> {
    let client = c.client();
    let addr = c.storage_addr(i);
    let mut req = first_page(page);
    let mut out = Vec::new();
    loop {
        let text = client.list_files(&addr, &req).unwrap();
        let p = ListPage::parse(&text).unwrap();
        out.extend(p.files.into_iter().map(|f| f.file_id));
        between();
        match p.next {
            Some(t) => req.token = t,
            None => return out,
        }
    }
}

/// Two sets equal, or a short account of how they differ.
fn same(got: &BTreeSet<String>, want: &BTreeSet<String>, what: &str) {
    let extra: Vec<_> = got.difference(want).take(3).collect();
    let missing: Vec<_> = want.difference(got).take(3).collect();
    assert!(
        extra.is_empty() && missing.is_empty(),
        "{what}: {} against {}; extra {extra:?}, missing {missing:?}",
        got.len(),
        want.len()
    );
}

fn tool_list(c: &Cluster, args: &[&str]) -> String {
    let conf = c.client_conf.to_str().unwrap();
    let mut all = vec![conf, "group1"];
    all.extend_from_slice(args);
    let (code, out, err) = run_tool("fdfs_list_files", &all);
    assert_eq!(code, 0, "{out}{err}");
    out
}

/// Files uploaded through three clients: the most through our library, some through the
/// PyPI client py3fdfs, some through the `fdfs_upload_file` tool.
fn upload_through_three_clients(c: &Cluster, n: u32) -> Vec<FileId> {
    let client = c.client();
    let by_python = (n / 20) as usize;
    let by_tool = (n / 50) as usize;
    let mut ids: Vec<FileId> = rfdfs_tests::py3fdfs::upload_many(
        &c.tracker_addr.host,
        c.tracker_addr.port,
        by_python,
        "py3fdfs",
    )
    .iter()
    .map(|id| FileId::parse(id).unwrap())
    .collect();
    let conf = c.client_conf.to_str().unwrap().to_string();
    for k in 0..by_tool {
        let local = c.dir.path().join(format!("tool{k}.txt"));
        std::fs::write(&local, format!("by the tool {k}")).unwrap();
        let (code, out, err) = run_tool("fdfs_upload_file", &[&conf, local.to_str().unwrap()]);
        assert_eq!(code, 0, "{err}");
        ids.push(FileId::parse(out.trim()).unwrap());
    }
    for k in ids.len() as u32..n {
        let data = format!("file {k}").into_bytes();
        ids.push(
            client
                .upload(Content::Buffer(&data), "txt", Upload::File, None, None)
                .unwrap(),
        );
    }
    ids
}

/// Three members, 10,000 files from three clients: each member's listing equals the walk of
/// its directories and its binlog's live set; pages taken while files come and go list none
/// twice and miss none that stayed; the tool, HTTP and the counts agree; an index removed is
/// rebuilt to the same listing.
#[test]
fn a_group_is_listed_exactly_while_files_come_and_go() {
    let mut c = Cluster::start(ClusterOpts {
        storages: 3,
        storage_extra: format!("http.server_port={HTTP_PORT}\n"),
        ..Default::default()
    });
    let client = c.client();
    let ids = upload_through_three_clients(&c, files());
    // and appender files
    let app = rfdfs_tests::upload_appender(&client, b"appender", "log");
    client.append(&app, Content::Buffer(b" grows")).unwrap();
    for id in ids.iter().step_by(10) {
        client.delete(id).unwrap();
    }
    wait_converged(&c, &[0, 1, 2], Duration::from_secs(120));

    // every member: the listing equals a walk of its directories and its binlog's live set
    for i in 0..3 {
        let want = walked(&c, i);
        same(
            &binlog_live(&c, i),
            &want,
            &format!("member {i}: binlog and directories"),
        );
        let listed = list_pages(&c, i, 777, || ());
        let set: BTreeSet<String> = listed.iter().cloned().collect();
        assert_eq!(set.len(), listed.len(), "member {i}: a file listed twice");
        same(&set, &want, &format!("member {i}: listing and directories"));
    }
    let tool: BTreeSet<String> = tool_list(&c, &[]).lines().map(String::from).collect();
    same(&tool, &walked(&c, 0), "fdfs_list_files and directories");
    assert_eq!(
        tool_list(&c, &["--count"]).trim(),
        walked(&c, 0).len().to_string()
    );
    // -l: the appender's size is its present one
    let long = tool_list(&c, &["-l", "--prefix", &app.name[..7]]);
    let line = long
        .lines()
        .find(|l| l.starts_with(&app.to_string()))
        .unwrap_or_else(|| panic!("{app} not in\n{long}"));
    assert_eq!(line.split(' ').nth(1), Some("14"), "{line}");

    // pages while files come and go: none twice, none that stayed missing
    let stayed: BTreeSet<String> = walked(&c, 0);
    let mut churn = ids
        .iter()
        .skip(1)
        .step_by(10)
        .cloned()
        .collect::<Vec<_>>()
        .into_iter();
    let mut gone = BTreeSet::new();
    let mut added = 0;
    let listed = list_pages(&c, 0, 500, || {
        if let Some(id) = churn.next() {
            client.delete(&id).unwrap();
            gone.insert(id.to_string());
        }
        let data = format!("new {added}").into_bytes();
        client
            .upload(Content::Buffer(&data), "txt", Upload::File, None, None)
            .unwrap();
        added += 1;
    });
    let set: BTreeSet<String> = listed.iter().cloned().collect();
    assert_eq!(set.len(), listed.len(), "a file listed twice under churn");
    let missing: Vec<_> = stayed
        .difference(&set)
        .filter(|n| !gone.contains(*n))
        .collect();
    assert!(
        missing.is_empty(),
        "{} files that stayed were not listed: {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );

    // HTTP: the same pages, and the counts
    let (status, _, body) =
        rfdfs_tests::http_get(&c.storages[0].ip, HTTP_PORT, "/list?limit=3&prefix=M00/");
    assert_eq!(status, 200, "{body}");
    let page = ListPage::parse(&body).unwrap();
    assert_eq!(page.files.len(), 3);
    assert!(page.next.is_some());
    wait_converged(&c, &[0, 1, 2], Duration::from_secs(120));
    let now = walked(&c, 0);
    let (status, _, stat) = rfdfs_tests::http_get(&c.storages[0].ip, HTTP_PORT, "/stat");
    assert_eq!(status, 200);
    assert!(
        stat.contains(&format!("total {} ", now.len())),
        "{stat}\nwant {}",
        now.len()
    );

    // the index removed while stopped is rebuilt from the binlog: the same listing
    let before: BTreeSet<String> = list_pages(&c, 1, 5000, || ()).into_iter().collect();
    assert_eq!(c.storages[1].daemon.stop(), Some(0));
    std::fs::remove_dir_all(c.storages[1].base.join("data/listing")).unwrap();
    c.start_storage(1);
    c.wait_active(3);
    let addr: HostPort = c.storage_addr(1);
    let rebuilt = rfdfs_tests::wait_for(
        "the rebuilt index",
        || client.list_files(&addr, &first_page(1)).ok(),
        || c.storages[1].daemon.log(),
    );
    assert!(rebuilt.starts_with("next ") || rebuilt.starts_with("end"));
    let after: BTreeSet<String> = list_pages(&c, 1, 5000, || ()).into_iter().collect();
    same(&after, &before, "the rebuilt index and the one before");
    assert!(c.storages[1]
        .daemon
        .log()
        .contains("listing index built from the binlog"));
}

/// Expiry: files given `fdfs-expires` metadata 3 s ahead (set by a client's set_metadata,
/// merge and overwrite) and a `.tmp` file under `expire_rule = ext=tmp ttl=3` are served until
/// then, absent for downloads, file info and HTTP after, and gone from every member's disk (of
/// three) within a sweep plus sync, swept by one member each, with their delete lines in every
/// binlog; files without expiry, with other metadata or with an expiry far ahead are untouched.
#[test]
fn expired_files_are_absent_then_swept_from_every_member() {
    use fdfs_client::Content;
    const MEMBERS: usize = 3;
    let c = Cluster::start(ClusterOpts {
        storages: MEMBERS,
        storage_extra: format!(
            "http.server_port={HTTP_PORT}\nexpire_sweep_interval=1\nexpire_rule = ext=tmp ttl=3\n\
             metrics.server_port=29100\n"
        ),
        ..Default::default()
    });
    let client = c.client();
    let up = |k: usize, ext: &str| {
        let data = format!("file {k}").into_bytes();
        let id = client
            .upload(Content::Buffer(&data), ext, Upload::File, None, None)
            .unwrap();
        (id, data)
    };
    let keep: Vec<_> = (0..10).map(|k| up(k, "txt")).collect();
    let expiring: Vec<_> = (10..13).map(|k| up(k, "txt")).collect();
    let by_rule = up(13, "tmp");
    let at = fdfs_common::now() + 3;
    let meta = |k: &str, v: String| vec![(k.as_bytes().to_vec(), v.into_bytes())];
    for (i, (id, _)) in expiring.iter().enumerate() {
        let op = if i == 0 { b'O' } else { b'M' };
        client
            .set_metadata(id, &meta("fdfs-expires", at.to_string()), op)
            .unwrap();
    }
    client
        .set_metadata(&keep[0].0, &meta("colour", "blue".into()), b'O')
        .unwrap();
    client
        .set_metadata(
            &keep[1].0,
            &meta("fdfs-expires", (at + 3600).to_string()),
            b'M',
        )
        .unwrap();
    // served before their time
    for (id, data) in expiring.iter().chain([&by_rule]) {
        assert_eq!(&client.download_to_vec(id, 0, 0).unwrap(), data);
    }
    // listed with their expiry
    let long = tool_list(&c, &["-l"]);
    let line = long
        .lines()
        .find(|l| l.starts_with(&expiring[0].0.to_string()))
        .unwrap();
    assert!(line.ends_with(&format!(" {at}")), "{line}");

    // after it: absent at once, then deleted on every member, with the delete line
    let gone = |id: &FileId| {
        let name = &id.name[4..];
        (0..MEMBERS).all(|i| {
            !c.storages[i].store_paths[0]
                .join("data")
                .join(name)
                .exists()
        })
    };
    for (id, _) in expiring.iter().chain([&by_rule]) {
        rfdfs_tests::wait_for(
            &format!("{id} answered as absent"),
            || client.download_to_vec(id, 0, 0).is_err().then_some(()),
            || c.storages[0].daemon.log(),
        );
        let (status, _, _) = rfdfs_tests::http_get(&c.storages[0].ip, HTTP_PORT, &format!("/{id}"));
        assert_eq!(status, 404, "{id} over HTTP");
        assert!(client.query_file_info(id, 0).is_err(), "{id}: file info");
    }
    for (id, _) in expiring.iter().chain([&by_rule]) {
        rfdfs_tests::wait_for(
            &format!("{id} gone from every member"),
            || gone(id).then_some(()),
            || (0..MEMBERS).map(|i| c.storages[i].daemon.log()).collect(),
        );
    }
    for i in 0..MEMBERS {
        let lines = binlog_text(&c, i);
        for (id, _) in expiring.iter().chain([&by_rule]) {
            let name = &id.name;
            assert!(
                lines.contains(&format!(" D {name}\n")) || lines.contains(&format!(" d {name}\n")),
                "member {i}: no delete line for {name}"
            );
        }
    }
    // the rest untouched
    for (id, data) in &keep {
        assert!(!gone(id));
        assert_eq!(&client.download_to_vec(id, 0, 0).unwrap(), data);
    }
    let swept: f64 = (0..MEMBERS)
        .map(|i| rfdfs_tests::storage_metric(&c.storages[i].ip, 29100, "expired_swept_total"))
        .sum();
    assert_eq!(swept, 4.0);
}

/// Every binlog line of member `i`.
fn binlog_text(c: &Cluster, i: usize) -> String {
    let dir = c.storages[i].base.join("data/sync");
    let mut text = String::new();
    for e in std::fs::read_dir(&dir).unwrap().flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        if n.starts_with("binlog.") && n[7..].bytes().all(|b| b.is_ascii_digit()) {
            text += &std::fs::read_to_string(e.path()).unwrap();
        }
    }
    text
}

/// A binlog found shorter than where the index stands (lines lost at a crash, a binlog
/// restored from a backup): the index is rebuilt, so the files uploaded afterwards, whose lines
/// land before the index's old position, are listed, and the listing is the binlog's live set.
#[test]
fn an_index_past_a_shortened_binlog_is_rebuilt() {
    let mut c = Cluster::start(ClusterOpts::default());
    let client = c.client();
    for k in 0..40 {
        rfdfs_tests::upload(&client, format!("old {k}").as_bytes(), "txt");
    }
    assert_eq!(list_pages(&c, 0, 100, || ()).len(), 40);
    assert_eq!(c.storages[0].daemon.stop(), Some(0));
    // the binlog loses its second half; the record of its end goes too (no repair is started)
    let sync = c.storages[0].base.join("data/sync");
    let binlog = sync.join("binlog.000");
    let text = std::fs::read_to_string(&binlog).unwrap();
    let half: String = text.lines().take(20).map(|l| format!("{l}\n")).collect();
    std::fs::write(&binlog, half).unwrap();
    let _ = std::fs::remove_file(sync.join("rfdfs_binlog_end.dat"));
    c.start_storage(0);
    c.wait_active(1);
    let mut new = BTreeSet::new();
    for k in 0..5 {
        let id = rfdfs_tests::upload(&client, format!("new {k}").as_bytes(), "txt");
        new.insert(id.to_string());
    }
    let listed = rfdfs_tests::wait_for(
        "the new files listed",
        || {
            let text = client
                .list_files(&c.storage_addr(0), &first_page(1000))
                .ok()?;
            let page = ListPage::parse(&text).ok()?;
            let set: BTreeSet<String> = page.files.into_iter().map(|f| f.file_id).collect();
            new.is_subset(&set).then_some(set)
        },
        || c.storages[0].daemon.log(),
    );
    same(
        &listed,
        &binlog_live(&c, 0),
        "the rebuilt index and the binlog",
    );
    assert!(c.storages[0].daemon.log().contains("past the binlog's end"));
}

/// The index is as right as the binlog; reconcile sets it to what the store paths hold. A
/// member whose base path (binlog, marks, index) was restored from a backup older than its
/// store path holds files no line names, and files removed by hand from every member are still
/// in every binlog: after two reconcile passes each member's listing is the walk of its
/// directories again.
#[test]
fn reconcile_sets_the_index_to_what_the_store_paths_hold() {
    let mut c = Cluster::start(ClusterOpts {
        storages: 2,
        storage_extra: "reconcile_interval=2\nmetrics.server_port=29100\n".into(),
        ..Default::default()
    });
    let client = c.client();
    let ids: Vec<FileId> = (0..40)
        .map(|k| rfdfs_tests::upload(&client, format!("file {k}").as_bytes(), "txt"))
        .collect();
    wait_converged(&c, &[0, 1], Duration::from_secs(60));
    // a backup of member 1's base path, then 5 files more
    let backup = c.dir.path().join("backup");
    let base1 = c.storages[1].base.join("data");
    assert_eq!(c.storages[1].daemon.stop(), Some(0));
    for d in ["sync", "listing"] {
        rfdfs_tests::copy_tree(&base1.join(d), &backup.join(d));
    }
    c.start_storage(1);
    c.wait_active(2);
    for k in 0..5 {
        rfdfs_tests::upload(&client, format!("later {k}").as_bytes(), "txt");
    }
    wait_converged(&c, &[0, 1], Duration::from_secs(60));
    for i in 0..2 {
        assert_eq!(c.storages[i].daemon.stop(), Some(0));
    }
    for d in ["sync", "listing"] {
        std::fs::remove_dir_all(base1.join(d)).unwrap();
        rfdfs_tests::copy_tree(&backup.join(d), &base1.join(d));
    }
    // three files removed by hand from both members
    for id in &ids[..3] {
        for i in 0..2 {
            let path = c.storages[i].store_paths[0]
                .join("data")
                .join(&id.name[4..]);
            std::fs::remove_file(path).unwrap();
        }
    }
    for i in 0..2 {
        c.start_storage(i);
    }
    c.wait_active(2);
    for i in 0..2 {
        let want = walked(&c, i);
        assert_eq!(want.len(), 42);
        rfdfs_tests::wait_for_up_to(
            Duration::from_secs(60),
            &format!("member {i}'s listing to be its directories"),
            || {
                let listed: BTreeSet<String> = list_pages(&c, i, 1000, || ()).into_iter().collect();
                (listed == want).then_some(())
            },
            || c.storages[i].daemon.log(),
        );
    }
    let log = c.storages[1].daemon.log();
    assert!(log.contains("the listing index did not list"), "{log}");
    assert!(log.contains("the listing index listed the absent"), "{log}");
    let corrected = |i: usize| {
        rfdfs_tests::storage_metric(
            &c.storages[i].ip,
            29100,
            "reconcile_listing_corrected_total",
        )
    };
    assert_eq!((corrected(0), corrected(1)), (3.0, 8.0));
}

/// A sweeping member killed (SIGKILL) while it deletes a few thousand expired files, and
/// started again: every expired file ends up gone from both members, with a delete line in each
/// binlog, and no member deletes a file twice.
#[test]
fn a_sweep_killed_half_way_deletes_nothing_twice_and_misses_nothing() {
    let mut c = Cluster::start(ClusterOpts {
        storages: 2,
        storage_extra: "expire_sweep_interval=1\n".into(),
        ..Default::default()
    });
    let client = c.client();
    // all from member 0, the one that sweeps them, and expiring at one instant: one long sweep
    let ids: Vec<FileId> = (0..3000)
        .map(|k| {
            rfdfs_tests::upload_via(
                &client,
                format!("t{k}").as_bytes(),
                "txt",
                &c.storage_addr(0),
            )
        })
        .collect();
    let at = fdfs_common::now() + 2;
    let meta = vec![(b"fdfs-expires".to_vec(), at.to_string().into_bytes())];
    for id in &ids {
        client.set_metadata(id, &meta, b'O').unwrap();
    }
    let dirs: Vec<_> = (0..2)
        .map(|i| c.storages[i].store_paths[0].join("data"))
        .collect();
    let held = |i: usize| {
        let data = &dirs[i];
        ids.iter()
            .filter(|id| data.join(&id.name[4..]).exists())
            .count()
    };
    rfdfs_tests::wait_for_up_to(
        Duration::from_secs(120),
        "the sweep to begin",
        || (held(0) < ids.len()).then_some(()),
        || c.storages[0].daemon.log(),
    );
    c.storages[0].daemon.kill9();
    let left = held(0);
    assert!(
        left > 0,
        "member 0 had swept every file when it was killed: the sweep must be longer"
    );
    eprintln!("member 0 killed with {left} of {} files left", ids.len());
    c.start_storage(0);
    c.wait_active(2);
    for i in 0..2 {
        rfdfs_tests::wait_for_up_to(
            Duration::from_secs(120),
            &format!("every expired file gone from member {i}"),
            || (held(i) == 0).then_some(()),
            || c.storages[0].daemon.log() + &c.storages[1].daemon.log(),
        );
    }
    // each member's binlog: a delete line for every file, and no file deleted twice by the
    // member itself (its own, upper-case lines: the sweeper across its restart, or the other
    // member sweeping in its stead while it was down), but for the one delete the kill may have
    // cut short between its line and the unlink, which is made again; a received delete may
    // come twice (the source sends again what its mark file had not passed at the kill)
    for i in 0..2 {
        let lines = binlog_text(&c, i);
        let mut deletes = std::collections::BTreeMap::new();
        for l in lines.lines() {
            let mut it = l.split(' ');
            if let (Some(_), Some(op @ ("D" | "d")), Some(name)) = (it.next(), it.next(), it.next())
            {
                let (own, any) = deletes.entry(name.to_string()).or_insert((0, 0));
                *own += usize::from(op == "D");
                *any += 1;
            }
        }
        let mut made_again = 0;
        for id in &ids {
            let (own, any) = deletes.get(&id.name).copied().unwrap_or((0, 0));
            made_again += usize::from(own == 2);
            assert!(
                own <= 2 && any >= 1,
                "member {i}: {own} own and {any} delete lines in all for {id} (killed with \
                 {left} of {} left)",
                ids.len()
            );
        }
        assert!(
            made_again <= 1,
            "member {i} deleted {made_again} files twice"
        );
    }
}
