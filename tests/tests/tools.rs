//! The fdfs_* tools: upstream's arguments, stdout and exit codes (docs/protocol/config-cli-http.md
//! 4).

use fdfs_common::proto::status;
use rfdfs_tests::{run_tool, Cluster, ClusterOpts, TempDir};
use std::time::{Duration, Instant};

#[test]
fn file_tools_output_and_exit_codes() {
    let c = Cluster::start(ClusterOpts::default());
    let dir = TempDir::new("tools");
    let local = dir.path().join("hello.txt");
    std::fs::write(&local, "hello fastdfs spec\n").unwrap();
    let l = local.to_str().unwrap();

    let (code, out, _) = c.tool("fdfs_upload_file", &[l]);
    assert_eq!(code, 0);
    let id = out.trim_end().to_string();
    assert!(
        id.starts_with("group1/M00/") && id.ends_with(".txt") && out.ends_with('\n'),
        "{out:?}"
    );
    // explicit storage and store path
    let addr = format!("{}:{}", c.storages[0].ip, c.storages[0].port);
    let (code, out, _) = c.tool("fdfs_upload_file", &[l, &addr, "0"]);
    assert_eq!(code, 0, "{out}");
    let (code, _, err) = c.tool("fdfs_upload_file", &[l, &addr, "5"]);
    assert_eq!(code, 22);
    assert!(
        err.ends_with("upload file fail, error no: 22, error info: Invalid argument\n"),
        "{err}"
    );
    let (code, out, err) = c.tool("fdfs_upload_file", &["/nonexistent/x.txt"]);
    assert_eq!((code, out.as_str()), (2, ""));
    assert_eq!(
        err,
        "upload file fail, error no: 2, error info: No such file or directory\n"
    );
    assert_eq!(run_tool("fdfs_upload_file", &[]).0, 1);

    // info, decoded locally for a normal file
    let (code, out, _) = c.tool("fdfs_file_info", &[&id]);
    assert_eq!(code, 0);
    assert!(
        out.starts_with("GET FROM SERVER: false\n\nfile type: normal\nsource storage id: 0\n"),
        "{out}"
    );
    assert!(
        out.contains("file size: 19\nfile crc32: 1705515013 (0x65a81805)\n\n"),
        "{out}"
    );
    let (code, _, err) = c.tool("fdfs_file_info", &["badid"]);
    assert_eq!(code, 0);
    assert_eq!(
        err,
        "query file info fail, error no: 22, error info: Invalid argument\n"
    );

    // download whole, ranged, default local name, failures on stdout with exit 0
    let out_file = dir.path().join("out.txt");
    let o = out_file.to_str().unwrap();
    assert_eq!(
        c.tool("fdfs_download_file", &[&id, o]),
        (0, String::new(), String::new())
    );
    assert_eq!(std::fs::read(&out_file).unwrap(), b"hello fastdfs spec\n");
    assert_eq!(c.tool("fdfs_download_file", &[&id, o, "6", "7"]).0, 0);
    assert_eq!(std::fs::read(&out_file).unwrap(), b"fastdfs");
    let (code, out, _) = c.tool("fdfs_download_file", &[&id, o, "100", "5"]);
    assert_eq!(
        (code, out.as_str()),
        (
            0,
            "download file fail, error no: 22, error info: Invalid argument\n"
        )
    );
    let (code, out, _) = c.tool("fdfs_download_file", &["badfileid"]);
    assert_eq!(
        (code, out.as_str()),
        (
            0,
            "download file fail, error no: 22, error info: Invalid argument\n"
        )
    );
    let never = dir.path().join("never.txt");
    let missing = format!("{}xx.txt", &id[..id.len() - 6]);
    let (code, out, _) = c.tool("fdfs_download_file", &[&missing, never.to_str().unwrap()]);
    assert_eq!(
        (code, out.as_str()),
        (
            0,
            "download file fail, error no: 2, error info: No such file or directory\n"
        )
    );
    assert!(
        !never.exists(),
        "no local file is created when the server refuses"
    );

    // appender tools
    let (code, out, _) = c.tool("fdfs_upload_appender", &[l]);
    assert_eq!(code, 0);
    let ap = out.trim_end().to_string();
    assert_eq!(
        c.tool("fdfs_append_file", &[&ap, l]),
        (0, String::new(), String::new())
    );
    let (code, out, _) = c.tool("fdfs_file_info", &[&ap]);
    assert_eq!(code, 0);
    assert!(
        out.starts_with("GET FROM SERVER: true\n\nfile type: appender\n")
            && out.contains("file size: 38\n"),
        "{out}"
    );
    let (code, out, _) = c.tool("fdfs_file_info", &["-n", &ap]);
    assert_eq!(code, 0);
    assert!(
        !out.contains("file crc32"),
        "-n leaves out a zero crc: {out}"
    );
    let (code, out, _) = c.tool("fdfs_append_file", &[&id, l]);
    assert_eq!(
        (code, out.as_str()),
        (
            22,
            "append file fail, error no: 22, error info: Invalid argument\n"
        )
    );
    let (code, out, _) = c.tool("fdfs_regenerate_filename", &[&ap]);
    assert_eq!(code, 0);
    let regenerated = out.trim_end().to_string();
    assert_ne!(regenerated, ap);
    let (code, out, _) = c.tool("fdfs_file_info", &[&regenerated]);
    assert_eq!(code, 0);
    assert!(
        out.starts_with("GET FROM SERVER: false\n\nfile type: normal\n")
            && out.contains("file size: 38\n")
    );
    let (code, _, err) = c.tool("fdfs_regenerate_filename", &[&id]);
    assert_eq!(code, 22);
    assert!(
        err.ends_with(&format!(
            "regenerate file {id} fail, error no: 22, error info: Invalid argument\n"
        )),
        "{err}"
    );

    // delete twice
    assert_eq!(
        c.tool("fdfs_delete_file", &[&id]),
        (0, String::new(), String::new())
    );
    let (code, out, _) = c.tool("fdfs_delete_file", &[&id]);
    assert_eq!(
        (code, out.as_str()),
        (
            2,
            "delete file fail, error no: 2, error info: No such file or directory\n"
        )
    );

    // crc32 without a config
    assert_eq!(
        run_tool("fdfs_crc32", &[l]),
        (0, "65a81805\n".into(), String::new())
    );
    let empty = dir.path().join("empty");
    std::fs::write(&empty, b"").unwrap();
    assert_eq!(run_tool("fdfs_crc32", &[empty.to_str().unwrap()]).1, "0\n");
    assert_eq!(run_tool("fdfs_crc32", &["/nonexistent"]).0, 2);
}

#[test]
fn config_errors_unreachable_tracker_and_failover() {
    let dir = TempDir::new("toolcfg");
    let (code, _, err) = run_tool("fdfs_upload_file", &["/nonexistent.conf", "/etc/hostname"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("file /nonexistent.conf not exist")
            && err.contains("load conf file \"/nonexistent.conf\" fail, ret code: 2")
    );
    let conf = dir.path().join("c.conf");
    std::fs::write(&conf, "base_path=/tmp\n").unwrap();
    let (code, _, err) = run_tool(
        "fdfs_upload_file",
        &[conf.to_str().unwrap(), "/etc/hostname"],
    );
    assert_eq!(code, 2);
    assert!(err.contains("item \"tracker_server\" not exist"), "{err}");
    // nothing listens on this tracker: the C tools' errno of a failed non-blocking connect
    std::fs::write(
        &conf,
        "tracker_server=127.0.0.99:22199\nconnect_timeout=2\n",
    )
    .unwrap();
    let local = dir.path().join("f.txt");
    std::fs::write(&local, "x").unwrap();
    let (code, _, err) = run_tool(
        "fdfs_upload_file",
        &[conf.to_str().unwrap(), local.to_str().unwrap()],
    );
    assert_eq!(code, 115, "{err}");
    assert!(
        err.contains("connect to server 127.0.0.99:22199 fail"),
        "{err}"
    );

    // with a dead tracker listed first, the client fails over to the live one
    let c = Cluster::start(ClusterOpts::default());
    std::fs::write(
        &conf,
        format!(
            "tracker_server=127.0.0.99:22199\ntracker_server={}\n",
            c.tracker_addr
        ),
    )
    .unwrap();
    for _ in 0..3 {
        let (code, out, err) = run_tool(
            "fdfs_upload_file",
            &[conf.to_str().unwrap(), local.to_str().unwrap()],
        );
        assert_eq!(code, 0, "{out}{err}");
    }
}

#[test]
fn monitor_lists_and_deletes_an_offline_storage() {
    let mut c = Cluster::start(ClusterOpts::default());
    let (code, out, _) = c.tool("fdfs_monitor", &[]);
    assert_eq!(code, 0);
    assert!(out.starts_with(&format!(
        "tracker server count=1, current server index=0\n\ntracker server is {}\n\ngroup count: 1\n\nGroup 1:\ngroup name = group1\n",
        c.tracker_addr
    )), "{out}");
    assert!(out.contains(&format!(
        "\t\tid = {}\n\t\thost = {}:23000  ACTIVE\n",
        c.storages[0].ip, c.storages[0].ip
    )));
    assert!(out.contains("\t\tstotal_download_bytes = "));
    let (_, group_only, _) = c.tool("fdfs_monitor", &["list", "group1"]);
    assert!(!group_only.contains("group count") && group_only.contains("group name = group1"));
    let (code, out, _) = c.tool("fdfs_monitor", &["-h", "127.0.0.7:22122"]);
    assert_eq!(
        (code, out.as_str()),
        (2, "tracker server: 127.0.0.7:22122 not exists!\n")
    );
    let (code, out, _) = c.tool(
        "fdfs_monitor",
        &["delete", "group1", &c.storages[0].ip.clone()],
    );
    assert_eq!(code, 0);
    assert!(out.ends_with(&format!("delete storage server group1::{} fail, error no: 16, error info: Device or resource busy\n", c.storages[0].ip)), "{out}");

    c.storages[0].daemon.stop();
    let client = c.client();
    let deadline = Instant::now() + Duration::from_secs(30);
    while client.list_storages("group1", None).unwrap()[0].status != status::OFFLINE {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(50));
    }
    let ip = c.storages[0].ip.clone();
    let (_, out, _) = c.tool("fdfs_monitor", &["delete", "group1", &ip]);
    assert!(
        out.ends_with(&format!("delete storage server group1::{ip} success\n")),
        "{out}"
    );
    let (_, out, _) = c.tool("fdfs_monitor", &["delete", "group1", &ip]);
    assert!(out.ends_with(&format!("delete storage server group1::{ip} fail, error no: 114, error info: Operation already in progress\n")), "{out}");
    assert_eq!(
        client.list_storages("group1", None).unwrap()[0].status,
        status::DELETED
    );
    let changelog =
        std::fs::read_to_string(c.tracker.base.join("data/storage_changelog.dat")).unwrap();
    assert!(
        changelog.ends_with(&format!(" group1 {ip} 4 \n")),
        "{changelog:?}"
    );
    let (_, out, _) = c.tool("fdfs_monitor", &["delete", "group9"]);
    assert!(out.ends_with(
        "delete group: group9 fail, error no: 2, error info: No such file or directory\n"
    ));
    let (code, out, _) = c.tool("fdfs_monitor", &["bogus"]);
    assert_eq!(code, 0);
    assert!(out.contains("Invalid command bogus\n\n"));
}

#[test]
fn fdfs_test_upload_and_operations() {
    let c = Cluster::start(ClusterOpts::default());
    let dir = TempDir::new("fdfstest");
    let local = dir.path().join("small.jpg");
    std::fs::write(&local, vec![7u8; 200]).unwrap();
    let (code, out, _) = c.tool("fdfs_test", &["upload", local.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with(
        "This is FastDFS client test program v6.16.1\n\nCopyright (C) 2008, Happy Fish / YuQing\n"
    ));
    assert!(
        out.contains("storage_upload_by_filename\ngroup_name=group1, remote_filename=M00/"),
        "{out}"
    );
    assert!(out.contains("storage_upload_slave_by_filename\n"));
    assert!(out.contains("file size=200\n") && !out.contains("not equal!"));
    let name = out
        .lines()
        .find_map(|l| l.strip_prefix("group_name=group1, remote_filename="))
        .unwrap()
        .to_string();
    let slave = out
        .lines()
        .filter_map(|l| l.strip_prefix("group_name=group1, remote_filename="))
        .nth(1)
        .unwrap()
        .to_string();
    assert_eq!(slave, format!("{}_big.jpg", &name[..name.len() - 4]));
    let (code, out, _) = c.tool("fdfs_test", &["getmeta", "group1", &name]);
    assert_eq!(code, 0);
    assert!(out.ends_with("get meta data success, meta count=4\next_name=jpg\nfile_size=115120\nheight=80\nwidth=160\n"), "{out}");
    let (_, out, _) = c.tool(
        "fdfs_test",
        &["setmeta", "group1", &name, "M", "a=1,width=1"],
    );
    assert!(out.ends_with("set meta data success\n"));
    let (_, out, _) = c.tool("fdfs_test", &["getmeta", "group1", &name]);
    assert!(
        out.contains("meta count=5\na=1\n") && out.contains("width=1\n"),
        "{out}"
    );
    let (_, out, _) = c.tool("fdfs_test", &["query_servers", "group1", &name]);
    assert!(
        out.ends_with(&format!(
            "server list (1):\n\t{}:23000\n\n",
            c.storages[0].ip
        )),
        "{out}"
    );
    let target = dir.path().join("dl.jpg");
    let (_, out, _) = c.tool(
        "fdfs_test",
        &["download", "group1", &name, target.to_str().unwrap()],
    );
    assert!(out.contains(&format!(
        "download file success, file size=200, file save to {}\n",
        target.display()
    )));
    let (code, out, _) = c.tool("fdfs_test", &["delete", "group1", &name]);
    assert!(code == 0 && out.ends_with("delete file success\n"));
    // an operation failure still exits with the final active test's result
    let (code, out, _) = c.tool("fdfs_test", &["delete", "group1", &name]);
    assert_eq!(code, 0);
    assert!(out.ends_with("delete file fail, error no: 2, error info: No such file or directory\n"));
    assert_eq!(c.tool("fdfs_test", &["foo"]).0, 22);
}

#[test]
fn fdfs_test1_and_the_appender_test_programs() {
    let c = Cluster::start(ClusterOpts::default());
    let dir = TempDir::new("fdfstest1");
    let local = dir.path().join("small.txt");
    std::fs::write(&local, vec![b'x'; 301]).unwrap();
    let local = local.to_str().unwrap();
    let ip = &c.storages[0].ip;

    let (code, out, _) = c.tool("fdfs_test1", &["upload", local, "CALLBACK"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!(
            "tracker_query_storage_store_list_with_group: \n\tserver 1. group_name=group1, ip_addr={ip}, port=23000\n\n"
        )),
        "{out}"
    );
    // fdfs_test1 names its call before making it and prints no id line of its own
    assert!(out.contains(&format!(
        "storage_upload_by_callback\nsource ip address: {ip}\n"
    )));
    assert!(!out.contains("remote_filename=") && !out.contains("not equal!"));
    let urls: Vec<&str> = out
        .lines()
        .filter_map(|l| l.strip_prefix(&format!("example file url: http://{ip}/")))
        .collect();
    assert_eq!(urls.len(), 2, "{out}");
    assert_eq!(
        urls[1],
        format!("{}_small.txt", &urls[0][..urls[0].len() - 4])
    );
    let (code, out, _) = c.tool("fdfs_test1", &["getmeta", urls[1]]);
    assert_eq!(code, 0);
    assert!(out.ends_with(&format!(
        "storage={ip}:23000\nget meta data success, meta count=4\next_name=jpg\nfile_size=115120\nheight=80\nwidth=160\n"
    )), "{out}");
    let (code, out, _) = c.tool(
        "fdfs_test1",
        &["query_servers", "group1/M00/00/00/nothere.txt"],
    );
    assert_eq!(code, 22, "{out}");
    assert!(out.ends_with("tracker_query_storage_list1 fail, file_id=group1/M00/00/00/nothere.txt, error no: 22, error info: Invalid argument\n"), "{out}");
    let (code, out, _) = c.tool("fdfs_test1", &["delete", urls[1]]);
    assert!(code == 0 && out.ends_with("delete file success\n"), "{out}");
    let (code, out, _) = c.tool("fdfs_test1", &["setmeta", urls[0]]);
    assert_eq!(code, 22);
    assert!(out.contains("setmeta <file_id> <op_flag> <metadata_list>\n"));

    // a successful run, its output and the file sizes it printed
    let appender_test = |program: &str, args: &[&str]| {
        let (code, out, err) = c.tool(program, args);
        assert_eq!(code, 0, "{out}{err}");
        assert!(!err.contains("!!!"), "{err}");
        let sizes: Vec<String> = out
            .lines()
            .filter_map(|l| l.strip_prefix("file size="))
            .map(String::from)
            .collect();
        (out, sizes)
    };
    // upload 301 bytes, truncate to 150, append 301, modify at the end with 301 more
    let (out, sizes) = appender_test("fdfs_appender_test", &[local, "BUFF"]);
    assert_eq!(sizes, ["301", "150", "451", "752"], "{out}");
    assert!(out
        .contains("storage_upload_appender_by_filebuff\ngroup_name=group1, remote_filename=M00/"));
    assert!(out.contains("storage_append_by_filebuff\nappend file successfully.\n"));
    assert!(out.contains("storage_modify_by_filebuff\nmodify file successfully.\n"));
    // upstream's URL in this program carries the tracker's address
    assert!(out.contains(&format!(
        "file url: http://{}/group1/M00/",
        c.tracker_addr.host
    )));

    // the "1" spelling truncates to 0 and keeps the FILE mode's append and modify names
    let (out, sizes) = appender_test("fdfs_appender_test1", &[local]);
    assert_eq!(sizes, ["301", "0", "301", "602"], "{out}");
    assert!(out.contains("storage_upload_appender_by_filename1\nfild_id=group1/M00/"));
    assert!(
        out.contains("storage_append_by_filename\n")
            && out.contains("storage_modify_by_filename\n")
    );
    let id = out
        .lines()
        .find_map(|l| l.strip_prefix("fild_id="))
        .unwrap();
    let client = c.client();
    let id = fdfs_client::FileId::parse(id).unwrap();
    let expected = vec![b'x'; 602];
    assert_eq!(rfdfs_tests::read_back(&client, &id), expected);

    let (code, out, _) = c.tool("fdfs_appender_test", &["/nonexistent/file"]);
    assert_eq!(code, 2);
    assert!(out.ends_with("storage_upload_appender_by_filename\nupload file fail, error no: 2, error info: No such file or directory\n"), "{out}");
    let (code, out, _) = c.tool("fdfs_appender_test1", &[]);
    assert_eq!(code, 1);
    assert!(out.ends_with("<config_file> <local_filename> [FILE | BUFF | CALLBACK]\n"));
}

#[test]
fn sigterm_during_an_upload_leaves_nothing_behind() {
    use std::io::Write;
    let mut c = Cluster::start(ClusterOpts {
        storage_extra: "network_timeout=2\n".into(),
        ..Default::default()
    });
    // half an upload, then the storage is told to stop
    let mut s = rfdfs_tests::raw::connect(&c.storages[0].ip, 23000);
    let mut body = vec![0u8];
    body.extend_from_slice(&1000i64.to_be_bytes());
    body.extend_from_slice(b"bin\0\0\0");
    let mut frame = (15i64 + 1000).to_be_bytes().to_vec();
    frame.extend_from_slice(&[fdfs_common::proto::cmd::UPLOAD_FILE, 0]);
    frame.extend_from_slice(&body);
    frame.extend_from_slice(&[1u8; 500]);
    s.write_all(&frame).unwrap();
    let data = c.storages[0].store_paths[0].join("data");
    let temp_files = || std::fs::read_dir(data.join(".rfdfs_tmp")).unwrap().count();
    // the partial upload is in a file (unnamed) before the stop
    let deadline = Instant::now() + Duration::from_secs(10);
    while c.storages[0]
        .daemon
        .files_being_received(&c.storages[0].store_paths[0])
        .is_empty()
    {
        assert!(
            Instant::now() < deadline,
            "the upload never reached the disk"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(c.storages[0].daemon.stop(), Some(0));
    assert_eq!(temp_files(), 0, "partial upload left behind");
    let mut stored = Vec::new();
    for h in std::fs::read_dir(&data)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().len() == 2)
    {
        for l in std::fs::read_dir(h.path()).unwrap().flatten() {
            stored.extend(
                std::fs::read_dir(l.path())
                    .unwrap()
                    .flatten()
                    .map(|e| e.file_name()),
            );
        }
    }
    assert!(
        stored.is_empty(),
        "a partial upload became a file: {stored:?}"
    );
}

#[test]
fn cluster_stat_tools() {
    let c = Cluster::start(ClusterOpts {
        storages: 2,
        ..Default::default()
    });
    let conf = c.client_conf.to_str().unwrap().to_string();
    // the leader is elected once the storages joined; wait for GET_LEADER to answer
    let deadline = Instant::now() + Duration::from_secs(20);
    let out = loop {
        let (code, out, _) = run_tool("fdfs_tracker_stat", &["-c", &conf, "-d"]);
        assert_eq!(code, 0);
        if !out.is_empty() {
            break out;
        }
        assert!(Instant::now() < deadline, "no tracker stat");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        out.starts_with(&format!(
            "\n{}, is_leader: 1, is_active: 1, connections {{alloc: ",
            c.tracker_addr
        )),
        "{out}"
    );
    assert!(
        out.contains("\n  version: 6.16.1, up_time: ")
            && out.ends_with("\n\n\ntracker server count: 1\n\n"),
        "{out:?}"
    );
    // filters that match nothing print nothing
    assert_eq!(
        run_tool("fdfs_tracker_stat", &["-c", &conf, "-F"]),
        (0, String::new(), String::new())
    );

    let (code, out, _) = run_tool("fdfs_storage_stat", &["-c", &conf]);
    assert_eq!(code, 0);
    for s in &c.storages {
        assert!(
            out.contains(&format!("{}:23000 ACTIVE, connections {{alloc: ", s.ip)),
            "{out}"
        );
    }
    assert!(out.ends_with("\nstorage server count: 2\n\n"));
    assert_eq!(run_tool("fdfs_storage_stat", &["-c", &conf, "-N"]).1, "");

    let (code, out, _) = run_tool("fdfs_volumn_stat", &["-c", &conf]);
    assert_eq!(code, 0);
    assert!(
        out.starts_with("\ngroup1 disk_available: 1, disk space {total: "),
        "{out}"
    );
    assert!(
        out.ends_with("}\n\nstorage volumn / group count: 1\n\n"),
        "{out:?}"
    );
    let (code, _, err) = run_tool("fdfs_volumn_stat", &["-c", &conf, "-x"]);
    assert_eq!(code, 1);
    assert!(err.contains("Usage: "));
}

/// On a terminal (a pty from `script`) the file tools draw a progress line on stderr and erase
/// it; their own output is unchanged, as it is when stdout is a pipe.
#[test]
fn file_tools_show_progress_only_on_a_terminal() {
    let c = Cluster::start(ClusterOpts::default());
    let dir = TempDir::new("progress");
    let big = dir.path().join("big.bin");
    std::fs::write(&big, vec![0x5Au8; 8 << 20]).unwrap();
    let bin = rfdfs_tests::bin_dir();
    let conf = c.client_conf.display().to_string();
    let on_pty = |cmd: String| {
        let out = std::process::Command::new("script")
            .args(["-qec", &cmd, "/dev/null"])
            .output()
            .expect("script (util-linux)");
        assert!(out.status.success(), "{cmd}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let shown = on_pty(format!(
        "{}/fdfs_upload_file {conf} {}",
        bin.display(),
        big.display()
    ));
    assert!(
        shown.contains(&format!("upload file {}: ", big.display())) && shown.contains(" MiB"),
        "{shown:?}"
    );
    // the line is erased before the tool's own output, which ends the transcript
    let (progress, id) = shown
        .rsplit_once("\r\x1b[K")
        .expect("an erased progress line");
    assert!(progress.contains("/ 8.0 MiB"), "{progress:?}");
    let id = id.trim_end();
    assert!(id.starts_with("group1/M00/"), "{id:?}");

    let local = dir.path().join("back.bin");
    let shown = on_pty(format!(
        "{}/fdfs_download_file {conf} {id} {}",
        bin.display(),
        local.display()
    ));
    assert!(
        shown.contains(&format!("download file {id}: ")),
        "{shown:?}"
    );
    assert_eq!(std::fs::read(&local).unwrap(), std::fs::read(&big).unwrap());

    // piped: upstream's output only
    let (code, out, err) = c.tool("fdfs_upload_file", &[&big.display().to_string()]);
    assert_eq!(code, 0);
    assert!(out.starts_with("group1/M00/") && out.ends_with('\n') && out.lines().count() == 1);
    assert_eq!(err, "");
}

/// `fdfs_health_checker`: upstream's banner and report every interval, a stopped storage
/// reported critical with an alert line, and a clean exit on SIGTERM.
#[test]
fn health_checker_reports_the_cluster_until_terminated() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    // the checker warns under 20% free: a file system of the test's own, not the host's disk
    let fs = rfdfs_tests::Tmpfs::new("health", 128);
    let mut c = Cluster::start(ClusterOpts {
        storages: 2,
        group_store_roots: vec![("group1".into(), fs.dir.clone())],
        ..Default::default()
    });
    // killed when the test ends, passed or failed: it runs until told to stop
    struct Checker(std::process::Child);
    impl Drop for Checker {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let start = |c: &Cluster| {
        Checker(
            Command::new(rfdfs_tests::bin("fdfs_health_checker"))
                .args([c.client_conf.to_str().unwrap(), "-i", "3"])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
        )
    };
    // the lines of the first report, up to its closing rule
    let first_report = |child: &mut Checker| {
        let out = child.0.stdout.take().unwrap();
        let mut lines = BufReader::new(out).lines();
        let mut text = String::new();
        for l in lines.by_ref() {
            let l = l.unwrap();
            text += &l;
            text += "\n";
            if l == "=====================================" {
                break;
            }
        }
        (text, lines)
    };
    let mut child = start(&c);
    let (text, lines) = first_report(&mut child);
    assert!(text.starts_with("FastDFS Health Check Service\n============================\n\nCheck interval too small, using minimum: 10 seconds\nFastDFS client initialized successfully\nTracker server count: 1\nCheck interval: 10 seconds\nMode: foreground\n\n\n=== FastDFS Cluster Health Check ===\nOverall Status: OK\nGroups: 1 total, 1 healthy\nStorage Servers: 2 total, 2 healthy, 0 warning, 0 critical\nTimestamp: "), "{text}");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.0.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let rest: Vec<String> = lines.map(Result::unwrap).collect();
    assert_eq!(
        rest,
        [
            "",
            "",
            "Shutting down health check service...",
            "Health check service exited"
        ]
    );
    assert_eq!(child.0.wait().unwrap().code(), Some(0));

    c.storages[1].daemon.stop();
    let ip = c.storages[1].ip.clone();
    rfdfs_tests::wait_for(
        "the tracker to hold the storage offline",
        || {
            let list = c.client().list_storages("group1", Some(&ip)).ok()?;
            (list.first()?.status == status::OFFLINE).then_some(())
        },
        || c.tracker.log(),
    );
    let mut child = start(&c);
    let (text, _) = first_report(&mut child);
    child.0.kill().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.0.stderr.take().unwrap(), &mut err).unwrap();
    assert!(text.contains("Overall Status: CRITICAL\nGroups: 1 total, 0 healthy\nStorage Servers: 2 total, 1 healthy, 0 warning, 1 critical\n"), "{text}");
    assert!(
        err.contains(&format!(
            "[ALERT] CRITICAL: Storage group1:{ip} - Storage server not active (status: 5)"
        )),
        "{err}"
    );
}

/// client.conf's `log_level`: a misspelt key is a WARNING on the tools' stderr, naming the
/// file, line and the nearest known key, unless `log_level` is above warnings.
#[test]
fn client_conf_log_level_decides_what_the_tools_log() {
    let dir = TempDir::new("client-log-level");
    let conf = |name: &str, extra: &str| {
        let p = dir.path().join(name);
        std::fs::write(
            &p,
            format!("base_path=/tmp\ntracker_server=127.0.0.31:22122\nconect_timeout=5\n{extra}"),
        )
        .unwrap();
        p.to_str().unwrap().to_string()
    };
    let id = "group1/M00/00/00/wKhHf1S-oryAZCpgAAAE2uRlJkA126.xml";
    let (_, _, err) = run_tool("fdfs_file_info", &[&conf("info.conf", ""), id]);
    assert!(
        err.contains("WARNING - conf file \"")
            && err.contains("line 3")
            && err.contains("connect_timeout"),
        "{err}"
    );
    let (_, _, err) = run_tool(
        "fdfs_file_info",
        &[&conf("error.conf", "log_level=error\n"), id],
    );
    assert!(!err.contains("WARNING"), "{err}");
}

/// `rfdfs_bench` prints each named daemon's CPU per operation beside every figure (tracker and
/// storage apart, from /proc), and names a `--cpu` it cannot read.
#[test]
fn the_load_generator_reports_each_daemons_cpu_per_operation() {
    let c = Cluster::start(ClusterOpts::default());
    let conf = c.client_conf.to_str().unwrap().to_string();
    let tracker = format!("tracker={}", c.tracker.pid().unwrap());
    let storage = format!("storage={}", c.storages[0].daemon.pid().unwrap());
    let (code, out, err) = run_tool(
        "rfdfs_bench",
        &[
            "both", &conf, "1024", "2", "0.5", "--cpu", &tracker, "--cpu", &storage,
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    for op in ["upload", "download"] {
        let line = out
            .lines()
            .find(|l| l.starts_with(op))
            .unwrap_or_else(|| panic!("no {op} figure: {out}"));
        for daemon in ["tracker", "storage"] {
            let us = line
                .split(&format!("  {daemon} "))
                .nth(1)
                .and_then(|r| r.split(" us CPU/op").next())
                .and_then(|n| n.parse::<u64>().ok());
            assert!(us.is_some(), "{op}: no {daemon} CPU/op in {line:?}");
        }
        assert!(line.contains(" 0 errors)"), "{line}");
    }
    // a storage does work for each upload: its figure cannot be zero
    let up = out.lines().find(|l| l.starts_with("upload")).unwrap();
    assert!(!up.contains("storage 0 us CPU/op"), "{up}");
    let (code, _, err) = run_tool(
        "rfdfs_bench",
        &["upload", &conf, "1024", "1", "0.2", "--cpu", "storage"],
    );
    assert_eq!(code, 2);
    assert!(err.contains("--cpu storage: expected name=pid"), "{err}");
}
