//! The storage's HTTP server, driven by curl (docs/protocol/config-cli-http.md section 5).

use fdfs_client::Upload;
use fdfs_client::{Content, FileId};
use rfdfs_tests::{Cluster, ClusterOpts};
use std::collections::HashMap;
use std::process::Command;

const HTTP_PORT: u16 = 8888;

/// One curl exchange: status, headers (lower-case names; the last response's), body.
struct Reply {
    status: u16,
    headers: HashMap<String, String>,
    body: Vec<u8>,
    stderr: String,
}

fn curl(args: &[&str]) -> Reply {
    let out = Command::new("curl")
        .args(["-s", "-S", "-D", "-", "--max-time", "20"])
        .args(args)
        .output()
        .expect("curl is required (scripts/test.sh installs it)");
    let raw = out.stdout;
    // the last header block (curl prints one per response on a reused connection)
    let mut start = 0;
    let mut status = 0;
    let mut headers = HashMap::new();
    let mut body_at = raw.len();
    while let Some(end) = raw[start..].windows(4).position(|w| w == b"\r\n\r\n") {
        let head = String::from_utf8_lossy(&raw[start..start + end]).into_owned();
        if !head.starts_with("HTTP/") {
            break;
        }
        let mut lines = head.lines();
        status = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        body_at = start + end + 4;
        if !raw[body_at..].starts_with(b"HTTP/") {
            break;
        }
        start = body_at;
    }
    Reply {
        status,
        headers,
        body: raw[body_at.min(raw.len())..].to_vec(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn http_cluster(extra: &str) -> Cluster {
    let dir = rfdfs_tests::TempDir::new("mime");
    let mime = dir.path().join("mime.types");
    std::fs::write(&mime, "# test map\ntext/plain txt\nimage/jpeg jpeg jpg\n").unwrap();
    let c = Cluster::start(ClusterOpts {
        storage_extra: format!(
            "http.server_port={HTTP_PORT}\nhttp.mime_types_filename={}\nhttp.default_content_type=application/octet-stream\n{extra}",
            mime.display()
        ),
        ..Default::default()
    });
    // the mime file must outlive the cluster start only
    drop(dir);
    c
}

fn url(c: &Cluster, path: &str) -> String {
    format!("http://{}:{HTTP_PORT}{path}", c.storages[0].ip)
}

fn upload(c: &Cluster, data: &[u8], ext: &str) -> FileId {
    c.client()
        .upload(Content::Buffer(data), ext, Upload::File, None, None)
        .unwrap()
}

#[test]
fn files_headers_ranges_and_conditionals() {
    let c = http_cluster("");
    let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 % 251) as u8).collect();
    let id = upload(&c, &data, "txt");
    let short = format!("/{}", id.name);
    let long = format!("/{id}");

    // both URL forms, whole file
    for p in [&short, &long] {
        let r = curl(&[&url(&c, p)]);
        assert_eq!(r.status, 200, "{p}: {}", r.stderr);
        assert_eq!(r.body, data);
        assert_eq!(r.headers["content-length"], "1000");
        assert_eq!(r.headers["content-type"], "text/plain");
        assert_eq!(r.headers["accept-ranges"], "bytes");
        assert!(r.headers.contains_key("etag") && r.headers.contains_key("last-modified"));
    }
    let r = curl(&[&url(&c, &short)]);
    let (etag, lm) = (
        r.headers["etag"].clone(),
        r.headers["last-modified"].clone(),
    );

    // HEAD: the headers only
    let h = curl(&["-I", &url(&c, &short)]);
    // (-I and -D both print the head: what follows it is only line ends)
    assert_eq!(h.status, 200);
    assert!(
        h.body.iter().all(|b| *b == b'\r' || *b == b'\n'),
        "{:?}",
        h.body
    );
    assert_eq!(h.headers["content-length"], "1000");

    // conditionals
    let r = curl(&["-H", &format!("If-None-Match: {etag}"), &url(&c, &short)]);
    assert_eq!((r.status, r.body.len()), (304, 0));
    let r = curl(&["-H", "If-None-Match: \"other\"", &url(&c, &short)]);
    assert_eq!(r.status, 200);
    let r = curl(&["-H", &format!("If-Modified-Since: {lm}"), &url(&c, &short)]);
    assert_eq!(r.status, 304);
    let r = curl(&[
        "-H",
        "If-Modified-Since: Thu, 01 Jan 1970 00:00:01 GMT",
        &url(&c, &short),
    ]);
    assert_eq!(r.status, 200);

    // ranges
    let range = |spec: &str| curl(&["-H", &format!("Range: bytes={spec}"), &url(&c, &short)]);
    let r = range("0-9");
    assert_eq!(r.status, 206);
    assert_eq!(r.headers["content-range"], "bytes 0-9/1000");
    assert_eq!(r.body, &data[..10]);
    let r = range("990-");
    assert_eq!((r.status, r.body.as_slice()), (206, &data[990..]));
    let r = range("-5");
    assert_eq!(r.headers["content-range"], "bytes 995-999/1000");
    assert_eq!(r.body, &data[995..]);
    let r = range("900-5000");
    assert_eq!(r.headers["content-range"], "bytes 900-999/1000");
    let r = range("1000-");
    assert_eq!(r.status, 416);
    assert_eq!(r.headers["content-range"], "bytes */1000");
    let r = range("5-2");
    assert_eq!(r.status, 416);
    let r = range("0-1,10-12");
    assert_eq!(r.status, 206);
    assert!(r.headers["content-type"].starts_with("multipart/byteranges; boundary="));
    let body = String::from_utf8_lossy(&r.body);
    assert!(body.contains("Content-Range: bytes 0-1/1000"), "{body}");
    assert!(body.contains("Content-Range: bytes 10-12/1000"), "{body}");
    assert_eq!(r.headers["content-length"], r.body.len().to_string());
    // If-Range with another version: the whole file
    let r = curl(&[
        "-H",
        "Range: bytes=0-9",
        "-H",
        "If-Range: \"old\"",
        &url(&c, &short),
    ]);
    assert_eq!((r.status, r.body.len()), (200, 1000));

    // keep-alive: two requests, one connection
    let r = curl(&["-v", &url(&c, &short), &url(&c, &long)]);
    assert!(
        r.stderr.contains("Re-using existing connection") || r.stderr.contains("Reusing existing"),
        "{}",
        r.stderr
    );

    // attachment name
    let r = curl(&[&format!("{}?filename=report.txt", url(&c, &short))]);
    assert_eq!(
        r.headers["content-disposition"],
        "attachment; filename=\"report.txt\""
    );

    // a type the map does not know, a missing file, another group, other methods
    let bin = upload(&c, b"abc", "xyz");
    let r = curl(&[&url(&c, &format!("/{}", bin.name))]);
    assert_eq!(r.headers["content-type"], "application/octet-stream");
    let missing = short.replace(&short[short.len() - 8..short.len() - 4], "0000");
    assert_eq!(curl(&[&url(&c, &missing)]).status, 404);
    assert_eq!(
        curl(&[&url(&c, &long.replace("group1", "group9"))]).status,
        404
    );
    let r = curl(&["-X", "DELETE", &url(&c, &short)]);
    assert_eq!(r.status, 405);
    assert_eq!(
        curl(&[&url(&c, &short)]).body,
        data,
        "DELETE touched the file"
    );
}

#[test]
fn appender_and_slave_files_are_served() {
    let c = http_cluster("");
    let client = c.client();
    let app = client
        .upload(
            Content::Buffer(b"first"),
            "log",
            Upload::Appender,
            None,
            None,
        )
        .unwrap();
    client.append(&app, Content::Buffer(b" second")).unwrap();
    let r = curl(&[&url(&c, &format!("/{app}"))]);
    assert_eq!((r.status, r.body.as_slice()), (200, &b"first second"[..]));
    let master = upload(&c, b"master", "jpg");
    let slave = client
        .upload_slave(&master, "_150x150", "jpg", Content::Buffer(b"thumb"))
        .unwrap();
    let r = curl(&[&url(&c, &format!("/{}", slave.name))]);
    assert_eq!((r.status, r.body.as_slice()), (200, &b"thumb"[..]));
    assert_eq!(r.headers["content-type"], "image/jpeg");
}

#[test]
fn paths_outside_the_store_are_refused() {
    let c = http_cluster("");
    let id = upload(&c, b"inside", "txt");
    // a file beside the store that a traversal would reach
    let secret = c.storages[0].store_paths[0].join("secret.txt");
    std::fs::write(&secret, b"SECRET").unwrap();
    for p in [
        "/M00/../secret.txt",
        "/M00/00/../../secret.txt",
        "/M00/00/00/../../../secret.txt",
        "/M00/%2e%2e/secret.txt",
        "/M00/00/00/%2e%2e%2f%2e%2e%2f%2e%2e%2fsecret.txt",
        "/group1/M00/00/00/..%2F..%2F..%2Fsecret.txt",
        "//etc/passwd",
        "/etc/passwd",
        "/M00/00/00/",
        "/M99/00/00/x",
        "/M00/00/00/%00",
        &format!("/{}/../../../secret.txt", id.name),
    ] {
        let r = curl(&["--path-as-is", &url(&c, p)]);
        assert!(
            r.status == 400 || r.status == 404,
            "{p}: {} {}",
            r.status,
            String::from_utf8_lossy(&r.body)
        );
        assert!(
            !r.body.starts_with(b"SECRET") && !r.body.starts_with(b"root:"),
            "{p}"
        );
    }
    // raw garbage on the port does not stop it
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect((c.storages[0].ip.as_str(), HTTP_PORT)).unwrap();
    s.write_all(b"\x00\x01garbage\r\n\r\n").unwrap();
    let mut b = Vec::new();
    let _ = s.read_to_end(&mut b);
    assert!(
        b.starts_with(b"HTTP/1.1 400"),
        "{}",
        String::from_utf8_lossy(&b)
    );
    assert_eq!(curl(&[&url(&c, &format!("/{}", id.name))]).body, b"inside");
}

#[test]
fn anti_steal_token_accept_reject_expire() {
    let c = http_cluster(
        "http.anti_steal.check_token=true\nhttp.anti_steal.token_ttl=900\nhttp.anti_steal.secret_key=FastDFS1234567890\n",
    );
    let id = upload(&c, b"guarded", "txt");
    let now = fdfs_common::now();
    let path = format!("/{}", id.name);
    let with = |token: &str, ts: i64| url(&c, &format!("{path}?token={token}&ts={ts}"));
    // the module's form: the token covers the path without the group
    let good = fdfs_common::http::anti_steal_token(&id.name, "FastDFS1234567890", now);
    let r = curl(&[&with(&good, now)]);
    assert_eq!((r.status, r.body.as_slice()), (200, &b"guarded"[..]));
    let r = curl(&[&url(&c, &format!("/{id}?token={good}&ts={now}"))]);
    assert_eq!(r.status, 200, "group form");
    // the library builds the same URL
    let built = fdfs_client::http_url(
        &format!("http://{}:{HTTP_PORT}", c.storages[0].ip),
        &id,
        false,
        Some(("FastDFS1234567890", now)),
    );
    assert_eq!(curl(&[&built]).status, 200, "{built}");
    // and so does the tool, from a client.conf with the http keys
    let conf = c.dir.path().join("client-token.conf");
    std::fs::write(
        &conf,
        format!(
            "tracker_server={}\nhttp.anti_steal.check_token=true\nhttp.anti_steal.secret_key=FastDFS1234567890\n",
            c.tracker_addr
        ),
    )
    .unwrap();
    let (code, out, err) = rfdfs_tests::run_tool(
        "rfdfs_http_url",
        &[
            conf.to_str().unwrap(),
            &id.to_string(),
            &format!("http://{}:{HTTP_PORT}", c.storages[0].ip),
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("?token="), "{out}");
    assert_eq!(curl(&[out.trim()]).status, 200, "{out}");
    // wrong, missing, expired
    assert_eq!(curl(&[&with(&"0".repeat(32), now)]).status, 403);
    assert_eq!(curl(&[&url(&c, &path)]).status, 403);
    let old = now - 1000;
    let expired = fdfs_common::http::anti_steal_token(&id.name, "FastDFS1234567890", old);
    assert_eq!(curl(&[&with(&expired, old)]).status, 403);
    // the token of another file does not open this one
    let other = upload(&c, b"other", "txt");
    let t = fdfs_common::http::anti_steal_token(&other.name, "FastDFS1234567890", now);
    assert_eq!(curl(&[&with(&t, now)]).status, 403);
}

#[test]
fn a_failed_token_check_serves_the_configured_file() {
    let dir = rfdfs_tests::TempDir::new("fail-file");
    let fail = dir.path().join("anti-steal.jpg");
    std::fs::write(&fail, b"NOT FOR YOU").unwrap();
    let c = http_cluster(&format!(
        "http.anti_steal.check_token=true\nhttp.anti_steal.secret_key=k\nhttp.anti_steal.token_check_fail={}\n",
        fail.display()
    ));
    let id = upload(&c, b"guarded", "txt");
    let r = curl(&[&url(&c, &format!("/{}", id.name))]);
    assert_eq!((r.status, r.body.as_slice()), (200, &b"NOT FOR YOU"[..]));
    assert_eq!(r.headers["content-type"], "image/jpeg");
}

/// A storage that takes the HTTP port over from nginx applies the access rules nginx applied:
/// the token checks of fastdfs-nginx-module's `mod_fastdfs.conf` beside storage.conf (with its
/// secret key, as clients were given tokens for nginx) and its bypass header, even where the
/// storage's own http keys ask for none.
#[test]
fn the_nginx_modules_token_checks_apply_to_the_built_in_server() {
    let mut c = http_cluster("");
    let id = upload(&c, b"guarded", "txt");
    let path = format!("/{}", id.name);
    assert_eq!(curl(&[&url(&c, &path)]).status, 200);
    std::fs::write(
        c.storages[0].base.join("mod_fastdfs.conf"),
        "group_name=group1\nurl_have_group_name=false\nstore_path0=/unused\n\
         http.anti_steal.check_token=true\nhttp.anti_steal.token_ttl=900\n\
         http.anti_steal.secret_key=ModuleKey\n\
         anti_steal_bypass_header_name=X-Internal\nanti_steal_bypass_header_value=yes\n",
    )
    .unwrap();
    // the restart needs a mime map again (the cluster's was removed after its start)
    let mime = c.dir.path().join("mime.types");
    std::fs::write(&mime, "text/plain txt\n").unwrap();
    let conf = c.storages[0].daemon.conf.clone();
    let text = std::fs::read_to_string(&conf).unwrap()
        + &format!("\nhttp.mime_types_filename={}\n", mime.display());
    std::fs::write(&conf, text).unwrap();
    c.restart_storage(0);
    assert_eq!(curl(&[&url(&c, &path)]).status, 403);
    let now = fdfs_common::now();
    let token = fdfs_common::http::anti_steal_token(&id.name, "ModuleKey", now);
    let r = curl(&[&url(&c, &format!("{path}?token={token}&ts={now}"))]);
    assert_eq!((r.status, r.body.as_slice()), (200, &b"guarded"[..]));
    let other_key = fdfs_common::http::anti_steal_token(&id.name, "FastDFS1234567890", now);
    let r = curl(&[&url(&c, &format!("{path}?token={other_key}&ts={now}"))]);
    assert_eq!(r.status, 403);
    assert_eq!(
        curl(&["-H", "X-Internal: yes", &url(&c, &path)]).status,
        200
    );
    assert_eq!(curl(&["-H", "X-Internal: no", &url(&c, &path)]).status, 403);
    let log = c.storages[0].daemon.log();
    assert!(log.contains("apply to the built-in HTTP server"), "{log}");
}

/// Upstream's own sample http.conf names a `token_check_fail` file in its author's home, which
/// upstream's daemons never read: the storage starts with it as is, and with token checks on
/// it says the file is missing and answers a failed check 403.
#[test]
fn a_missing_token_check_fail_file_does_not_stop_the_storage() {
    let sample = "http.anti_steal.token_check_fail=/home/yuqing/fastdfs/conf/anti-steal.jpg\n";
    let c = http_cluster(sample);
    let id = upload(&c, b"open", "txt");
    assert_eq!(curl(&[&url(&c, &format!("/{}", id.name))]).status, 200);

    let c = http_cluster(&format!(
        "http.anti_steal.check_token=true\nhttp.anti_steal.secret_key=k\n{sample}"
    ));
    let id = upload(&c, b"guarded", "txt");
    assert_eq!(curl(&[&url(&c, &format!("/{}", id.name))]).status, 403);
    let log = c.storages[0].daemon.log();
    assert!(
        log.contains("/home/yuqing/fastdfs/conf/anti-steal.jpg not exist"),
        "{log}"
    );
}

/// `http.server_port` already taken (nginx with fastdfs-nginx-module on the same host, as in
/// upstream's setups before 6.13): the storage still starts and serves the protocol, and says
/// why it has no HTTP server.
#[test]
fn a_taken_http_port_leaves_the_storage_running_without_http() {
    let net = rfdfs_tests::unique_net();
    let squatter =
        std::net::TcpListener::bind(format!("127.{}.{}.10:{HTTP_PORT}", net.0, net.1)).unwrap();
    let c = Cluster::start(ClusterOpts {
        net: Some(net),
        storage_extra: format!("http.server_port={HTTP_PORT}\n"),
        ..Default::default()
    });
    let id = upload(&c, b"served anyway", "txt");
    assert_eq!(rfdfs_tests::read_back(&c.client(), &id), b"served anyway");
    let log = c.storages[0].daemon.log();
    assert!(
        log.contains(&format!("http.server_port {HTTP_PORT} is taken")),
        "{log}"
    );
    drop(squatter);
}

#[test]
fn the_tracker_redirects_to_a_storage_that_has_the_file() {
    let c = Cluster::start(ClusterOpts {
        storages: 2,
        tracker_extra: format!("http.redirect_port=8080\nhttp.storage_server_port={HTTP_PORT}\n"),
        storage_extra: format!("http.server_port={HTTP_PORT}\n"),
        ..Default::default()
    });
    let data = b"found through the tracker".to_vec();
    let id = upload(&c, &data, "txt");
    let tracker = format!("http://{}:8080", c.tracker_addr.host);
    // the Location names a storage, and following it gets the file
    let r = curl(&[&format!("{tracker}/{id}?filename=a.txt")]);
    assert_eq!(r.status, 302);
    let loc = &r.headers["location"];
    assert!(
        (0..2).any(|i| loc
            == &format!(
                "http://{}:{HTTP_PORT}/{id}?filename=a.txt",
                c.storages[i].ip
            )),
        "{loc}"
    );
    let r = curl(&["-L", &format!("{tracker}/{id}")]);
    assert_eq!((r.status, r.body), (200, data));
    // unknown group, no group, garbage name
    assert_eq!(
        curl(&[&format!("{tracker}/group9/{}", id.name)]).status,
        404
    );
    assert_eq!(curl(&[&format!("{tracker}/{}", id.name)]).status, 404);
    assert_eq!(
        curl(&[&format!("{tracker}/group1/M00/00/00/x")]).status,
        404
    );
}

#[test]
fn multi_range_off_and_http_disabled() {
    let c = http_cluster("http.multi_range.enabled=false\n");
    let id = upload(&c, b"0123456789", "txt");
    let u = url(&c, &format!("/{}", id.name));
    assert_eq!(curl(&["-H", "Range: bytes=0-1,4-5", &u]).status, 416);
    assert_eq!(curl(&["-H", "Range: bytes=4-5", &u]).body, b"45");
    // a port with http.disabled = true is not opened
    let c = http_cluster("http.disabled=true\n");
    let addr = (c.storages[0].ip.as_str(), HTTP_PORT);
    assert!(std::net::TcpStream::connect(addr).is_err());
}
