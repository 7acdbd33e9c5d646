//! `scripts/monitoring/`: the alerting rules pass their own `promtool test rules` suite, and a
//! real Prometheus (Debian's package) loads the shipped scrape config and rules, scrapes a test
//! cluster, finds every metric family the rules and the Grafana dashboard use, and raises the
//! storage-offline alert when a storage stops.

use rfdfs_tests::{wait_for, Cluster, ClusterOpts, TempDir};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

const TRACKER_METRICS: u16 = 9101;
const STORAGE_METRICS: u16 = 9102;
const PROMETHEUS_PORT: u16 = 9090;

fn monitoring_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/monitoring")
}

fn run(program: &str, args: &[&str], dir: &Path) -> String {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!("{program} (scripts/test.sh installs Debian's prometheus): {e}")
        });
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{program} {args:?} failed:\n{text}");
    text
}

/// `GET path` from Prometheus, as HTTP/1.0 so that the body comes unchunked.
fn get(host: &str, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect((host, PROMETHEUS_PORT)).expect("prometheus port");
    write!(s, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP response");
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, body.to_string())
}

#[test]
fn promtool_checks_the_config_and_tests_the_rules() {
    let dir = monitoring_dir();
    let out = run("promtool", &["check", "config", "prometheus.yml"], &dir);
    assert!(out.contains("SUCCESS: 1 rule files found"), "{out}");
    let out = run("promtool", &["check", "rules", "alerts.yml"], &dir);
    assert!(out.contains("SUCCESS: 9 rules found"), "{out}");
    let out = run("promtool", &["test", "rules", "alerts_test.yml"], &dir);
    assert!(out.contains("SUCCESS"), "{out}");
}

/// Prometheus running on a copy of the shipped files, scraping every second.
struct Prometheus {
    child: Child,
    host: String,
    dir: TempDir,
}

impl Prometheus {
    fn start(host: &str, trackers: &[String], storages: &[String]) -> Prometheus {
        let dir = TempDir::new("prometheus");
        let shipped = monitoring_dir();
        let config = std::fs::read_to_string(shipped.join("prometheus.yml")).unwrap();
        let fast = config
            .replace("scrape_interval: 15s", "scrape_interval: 1s")
            .replace("evaluation_interval: 15s", "evaluation_interval: 1s");
        assert_ne!(
            fast, config,
            "the shipped intervals changed; update this test"
        );
        std::fs::write(dir.path().join("prometheus.yml"), fast).unwrap();
        std::fs::copy(shipped.join("alerts.yml"), dir.path().join("alerts.yml")).unwrap();
        std::fs::create_dir(dir.path().join("targets")).unwrap();
        let targets = |hosts: &[String], port: u16| {
            let mut t = String::from("- targets:\n");
            for h in hosts {
                t += &format!("    - \"{h}:{port}\"\n");
            }
            t + "  labels:\n    group: group1\n"
        };
        let file = |name: &str| dir.path().join("targets").join(name);
        std::fs::write(file("trackers.yml"), targets(trackers, TRACKER_METRICS)).unwrap();
        std::fs::write(file("storages.yml"), targets(storages, STORAGE_METRICS)).unwrap();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
        let child = Command::new("prometheus")
            .arg("--config.file=prometheus.yml")
            .arg("--storage.tsdb.path=data")
            .arg(format!("--web.listen-address={host}:{PROMETHEUS_PORT}"))
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("prometheus (scripts/test.sh installs Debian's prometheus)");
        let p = Prometheus {
            child,
            host: host.to_string(),
            dir,
        };
        rfdfs_tests::wait_port(host, PROMETHEUS_PORT, "prometheus");
        wait_for(
            "prometheus ready",
            || (get(host, "/-/ready").0 == 200).then_some(()),
            || p.log(),
        );
        p
    }

    fn api(&self, path: &str) -> serde_json::Value {
        let (status, body) = get(&self.host, path);
        assert_eq!(status, 200, "{path}: {body}");
        let v: serde_json::Value = serde_json::from_str(&body).expect("JSON from prometheus");
        assert_eq!(v["status"], "success", "{path}: {body}");
        v["data"].clone()
    }

    /// An instant query's result vector.
    fn query(&self, promql: &str) -> Vec<serde_json::Value> {
        let q: String = promql
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        let data = self.api(&format!("/api/v1/query?query={q}"));
        data["result"].as_array().cloned().unwrap_or_default()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `fdfs_*` metric names a text mentions.
fn metrics_in(text: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(k) = text[i..].find("fdfs_").map(|k| k + i) {
        let end = k + bytes[k..]
            .iter()
            .take_while(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || **b == b'_')
            .count();
        let name = text[k..end].to_string();
        // job names and the alternation in the error-rate rule are not metrics
        if !matches!(name.as_str(), "fdfs_" | "fdfs_tracker" | "fdfs_storage")
            && !names.contains(&name)
        {
            names.push(name);
        }
        i = end;
    }
    names
}

#[test]
fn prometheus_scrapes_a_cluster_with_the_shipped_config_and_rules() {
    let mut c = Cluster::start(ClusterOpts {
        storages: 2,
        tracker_extra: format!("metrics.server_port={TRACKER_METRICS}\n"),
        storage_extra: format!("metrics.server_port={STORAGE_METRICS}\n"),
        ..Default::default()
    });
    let client = c.client();
    let id = rfdfs_tests::upload(&client, b"scraped", "txt");
    let mut missing = id.clone();
    missing.name = missing.name.replace(".txt", ".bin");
    assert!(client.download_to_vec(&missing, 0, 0).is_err());
    let storages: Vec<String> = c.storages.iter().map(|s| s.ip.clone()).collect();
    let host = format!("127.{}.{}.9", c.net.0, c.net.1);
    let p = Prometheus::start(&host, &[c.tracker_addr.host.clone()], &storages);

    // every target up, every rule evaluated without error
    wait_for(
        "three targets up",
        || {
            let data = p.api("/api/v1/targets");
            let active = data["activeTargets"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            (active.len() == 3 && active.iter().all(|t| t["health"] == "up")).then_some(())
        },
        || p.log(),
    );
    wait_for(
        "nine rules evaluated",
        || {
            let data = p.api("/api/v1/rules");
            let rules: Vec<serde_json::Value> = data["groups"]
                .as_array()?
                .iter()
                .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
                .collect();
            let evaluated = rules
                .iter()
                .filter(|r| r["health"] == "ok" && r["lastEvaluation"] != "0001-01-01T00:00:00Z")
                .count();
            (rules.len() == 9 && evaluated == 9).then_some(())
        },
        || format!("{}\n{}", p.api("/api/v1/rules"), p.log()),
    );
    // sync lag is served once a member has a peer's mark file: wait for every metric the
    // rules and the dashboard name
    let shipped = monitoring_dir();
    let text = std::fs::read_to_string(shipped.join("alerts.yml")).unwrap()
        + &std::fs::read_to_string(shipped.join("grafana-dashboard.json")).unwrap();
    let metrics = metrics_in(&text);
    assert!(metrics.len() > 15, "{metrics:?}");
    let absent = || {
        let have: Vec<String> = p
            .query("group by (__name__) ({__name__=~\"fdfs_.*\"})")
            .iter()
            .filter_map(|s| s["metric"]["__name__"].as_str().map(String::from))
            .collect();
        let absent: Vec<&String> = metrics.iter().filter(|f| !have.contains(f)).collect();
        format!("{absent:?}")
    };
    wait_for(
        "every metric the rules and the dashboard use",
        || (absent() == "[]").then_some(()),
        || format!("absent: {}\n{}", absent(), p.log()),
    );
    // the dashboard's queries run (template variables as "All" and a 1m rate window)
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(shipped.join("grafana-dashboard.json")).unwrap(),
    )
    .unwrap();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"]
                .as_str()
                .unwrap()
                .replace("$__rate_interval", "1m")
                .replace("$storage", ".*")
                .replace("$tracker", ".*");
            p.query(&expr);
        }
    }
    assert!(p
        .query("ALERTS{alertname=\"FdfsStorageOffline\"}")
        .is_empty());

    // a stopped storage is held OFFLINE by the tracker: the alert becomes pending
    c.storages[1].daemon.stop();
    let alert = wait_for(
        "FdfsStorageOffline pending",
        || p.query("ALERTS{alertname=\"FdfsStorageOffline\"}").pop(),
        || p.log(),
    );
    assert_eq!(alert["metric"]["ip"], storages[1].as_str(), "{alert}");
    assert_eq!(alert["metric"]["alertstate"], "pending", "{alert}");
}

#[test]
fn metric_names_are_read_from_rules_and_dashboards() {
    let names = metrics_in(
        "rate({__name__=~\"fdfs_(tracker|storage)_requests_total\"}) fdfs_storage_request_duration_seconds_bucket{x} job=\"fdfs_tracker\" fdfs_tracker_is_leader",
    );
    assert_eq!(
        names,
        [
            "fdfs_storage_request_duration_seconds_bucket",
            "fdfs_tracker_is_leader"
        ]
    );
}

/// `fdfs_exporter` (upstream 6.16's exporter): `-c exporter.conf` with basic auth, `fastdfs_*`
/// gauges for a two-group cluster that a Prometheus text parser accepts (each family described
/// once), 401 without the credentials, 404 elsewhere, a clean exit on SIGTERM.
#[test]
fn fdfs_exporter_serves_the_cluster_with_basic_auth() {
    use std::io::{Read, Write};
    let c = Cluster::start(ClusterOpts {
        storages: 2,
        groups: 2,
        ..Default::default()
    });
    let host = format!("127.{}.{}.9", c.net.0, c.net.1);
    let port = 9898;
    let dir = TempDir::new("exporter");
    let conf = dir.path().join("exporter.conf");
    std::fs::write(
        &conf,
        format!(
            "bind_addr = {host}\nport = {port}\nfdfs_client_cfg = {}\ndaemon = false\n\n[auth]\nmethod = basic\nusername = test\npassword = hello1234\n",
            c.client_conf.display()
        ),
    )
    .unwrap();
    let mut child = Command::new(rfdfs_tests::bin("fdfs_exporter"))
        .args(["-c", conf.to_str().unwrap()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    rfdfs_tests::wait_port(&host, port, "fdfs_exporter");
    let request = |path: &str, auth: Option<&str>| {
        let mut s = std::net::TcpStream::connect((host.as_str(), port)).unwrap();
        let auth = auth
            .map(|a| format!("Authorization: Basic {a}\r\n"))
            .unwrap_or_default();
        write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n{auth}\r\n").unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        text
    };
    // base64 of "test:hello1234"
    let good = "dGVzdDpoZWxsbzEyMzQ=";
    // 500 until the tracker knows its leader (SERVER_TRACKER_CLUSTER_STAT goes to the leader)
    let text = wait_for(
        "a 200 answer from the exporter",
        || {
            let text = request("/metrics", Some(good));
            text.starts_with("HTTP/1.1 200 ").then_some(text)
        },
        || c.tracker.log(),
    );
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert!(
        head.starts_with("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"),
        "{head}"
    );
    assert!(
        head.contains(&format!("Content-Length: {}", body.len())),
        "{head}"
    );
    // Prometheus's own parser: upstream's names draw lint remarks (gauges named `_total`,
    // `_mb` units), never a parse error
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (scripts/test.sh installs Debian's prometheus)");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let checked = promtool.wait_with_output().unwrap();
    let remarks = String::from_utf8_lossy(&checked.stdout).into_owned()
        + &String::from_utf8_lossy(&checked.stderr);
    assert!(
        matches!(checked.status.code(), Some(0 | 3)) && !remarks.contains("error"),
        "{remarks}\n{body}"
    );
    for family in [
        "fastdfs_tracker_is_leader",
        "fastdfs_group_storage_count",
        "fastdfs_storage_upload_total",
        "fastdfs_storage_synced_delay_seconds",
    ] {
        assert!(
            body.contains(&format!("# TYPE {family} gauge\n{family}{{")),
            "{family}\n{body}"
        );
    }
    assert_eq!(
        body.matches("# TYPE fastdfs_group_total_mb gauge\n")
            .count(),
        1
    );
    for g in ["group1", "group2"] {
        assert!(
            body.contains(&format!("fastdfs_group_storage_count{{group=\"{g}\"}} 1\n")),
            "{body}"
        );
    }
    assert!(body.contains(&format!(
        "fastdfs_tracker_is_leader{{host=\"{}:22122\"}} 1\n",
        c.tracker_addr.host
    )));
    assert_eq!(
        request("/metrics", None),
        "HTTP/1.1 401 Unauthorized\r\nContent-Type: text/plain\r\nContent-Length: 12\r\n\r\nUnauthorized"
    );
    assert!(request("/metrics", Some("dGVzdDp3cm9uZw==")).starts_with("HTTP/1.1 401 "));
    assert_eq!(
        request("/", Some(good)),
        "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 9\r\n\r\nNot Found"
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(0));
    assert_eq!(
        out,
        format!("FastDFS Prometheus Exporter\n===========================\n\nFastDFS client initialized successfully\nTracker server count: 1\nMode: foreground\nAuth method: basic\nListening on {host}:{port}\nMetrics endpoint: http://{host}:{port}/metrics\n\n\nShutting down prometheus exporter service...\nPrometheus exporter service exited.\n\n")
    );
}
