//! The seed's front end: plain nginx with `upstream fdfs { server storage1; server storage2; }`
//! and `location /M00 { proxy_pass http://fdfs; }`, in front of two storages' HTTP ports.
//! scripts/test.sh installs Debian's nginx when it is missing.

use rfdfs_tests::{Cluster, ClusterOpts, TempDir};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const HTTP_PORT: u16 = 8888;
const NGINX_PORT: u16 = 8080;

fn nginx_binary() -> PathBuf {
    for p in ["/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/bin/nginx"] {
        if std::path::Path::new(p).exists() {
            return p.into();
        }
    }
    panic!("nginx is required for this test: scripts/test.sh installs Debian's nginx");
}

struct Nginx(Child);

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_nginx(dir: &TempDir, listen: &str, upstreams: &[String]) -> Nginx {
    let d = dir.path().display();
    let servers: String = upstreams
        .iter()
        .map(|u| format!("        server {u};\n"))
        .collect();
    let conf = format!(
        "daemon off;\nmaster_process off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
         events {{ worker_connections 64; }}\n\
         http {{\n    access_log off;\n    client_body_temp_path {d}/body;\n    proxy_temp_path {d}/proxy;\n\
         fastcgi_temp_path {d}/fastcgi;\n    uwsgi_temp_path {d}/uwsgi;\n    scgi_temp_path {d}/scgi;\n\
             upstream fdfs {{\n{servers}    }}\n\
             server {{\n        listen {listen};\n        location /M00 {{\n            proxy_pass http://fdfs;\n        }}\n    }}\n}}\n"
    );
    let path = dir.path().join("nginx.conf");
    std::fs::write(&path, conf).unwrap();
    let child = Command::new(nginx_binary())
        .arg("-c")
        .arg(&path)
        .arg("-p")
        .arg(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("stderr")).unwrap())
        .spawn()
        .expect("start nginx");
    let (host, port) = listen.rsplit_once(':').unwrap();
    rfdfs_tests::wait_port(host, port.parse().unwrap(), "nginx");
    Nginx(child)
}

fn curl(args: &[&str]) -> (String, Vec<u8>) {
    let out = Command::new("curl")
        .args([
            "-s",
            "-S",
            "--max-time",
            "20",
            "-w",
            "%{http_code}",
            "-o",
            "-",
        ])
        .args(args)
        .output()
        .expect("curl is required (scripts/test.sh installs it)");
    let mut body = out.stdout;
    let code = body.split_off(body.len().saturating_sub(3));
    (String::from_utf8_lossy(&code).into_owned(), body)
}

#[test]
fn plain_nginx_proxies_to_the_storages() {
    let c = Cluster::start(ClusterOpts {
        storages: 2,
        storage_extra: format!("http.server_port={HTTP_PORT}\n"),
        ..Default::default()
    });
    let client = c.client();
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
    let id = rfdfs_tests::upload(&client, &data, "bin");
    // plain nginx has no fallback to the source: wait until both members hold the file
    let deadline = Instant::now() + Duration::from_secs(30);
    for i in 0..2 {
        loop {
            let mut got = Vec::new();
            if client
                .download_from(&c.storage_addr(i), &id, 0, 0, || Ok(&mut got))
                .is_ok()
                && got == data
            {
                break;
            }
            assert!(Instant::now() < deadline, "{id} not on storage {i}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    let dir = TempDir::new("nginx");
    let listen = format!("127.{}.{}.200:{NGINX_PORT}", c.net.0, c.net.1);
    let upstreams: Vec<String> = (0..2)
        .map(|i| format!("{}:{HTTP_PORT}", c.storages[i].ip))
        .collect();
    let _nginx = start_nginx(&dir, &listen, &upstreams);
    let url = format!("http://{listen}/{}", id.name);
    // nginx alternates between the two storages: every answer is the file
    for _ in 0..4 {
        let (code, body) = curl(&[&url]);
        assert_eq!(code, "200");
        assert!(body == data, "body differs ({} bytes)", body.len());
    }
    let (code, body) = curl(&["-H", "Range: bytes=1000-1999", &url]);
    assert_eq!(code, "206");
    assert_eq!(body, &data[1000..2000]);
    let (code, body) = curl(&["-H", "Range: bytes=-100", &url]);
    assert_eq!(
        (code.as_str(), body.as_slice()),
        ("206", &data[data.len() - 100..])
    );
}
