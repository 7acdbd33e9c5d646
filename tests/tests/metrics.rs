//! `metrics.server_port`: Prometheus text from each daemon, parsed by a third-party parser, whose
//! counters follow real traffic; and `/health`.

use openmetrics_parser::{prometheus::parse_prometheus, PrometheusValue};
use rfdfs_tests::{http_get, storage_conf_text, Cluster, ClusterOpts, Daemon, TempDir};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const TRACKER_METRICS: u16 = 9101;
const STORAGE_METRICS: u16 = 9102;

/// `GET path` → (status, body).
fn get(host: &str, port: u16, path: &str) -> (u16, String) {
    let (status, head, body) = http_get(host, port, path);
    if path == "/metrics" && status == 200 {
        assert!(
            head.contains("Content-Type: text/plain; version=0.0.4"),
            "{head}"
        );
    }
    (status, body)
}

type Exposition = openmetrics_parser::MetricsExposition<
    openmetrics_parser::PrometheusType,
    openmetrics_parser::PrometheusValue,
>;

fn scrape(host: &str, port: u16) -> Exposition {
    let (status, body) = get(host, port, "/metrics");
    assert_eq!(status, 200);
    parse_prometheus(&body).unwrap_or_else(|e| panic!("not Prometheus text: {e:?}\n{body}"))
}

/// The value of the sample of `family` whose labels include all of `labels` (0 when absent).
fn value(e: &Exposition, family: &str, labels: &[(&str, &str)]) -> f64 {
    let Some(f) = e.families.get(family) else {
        return 0.0;
    };
    f.iter_samples()
        .find(|s| {
            let set = s.get_labelset().unwrap();
            labels
                .iter()
                .all(|(k, v)| set.get_label_value(k) == Some(*v))
        })
        .map(|s| match &s.value {
            PrometheusValue::Counter(c) => c.value.as_f64(),
            PrometheusValue::Gauge(g) | PrometheusValue::Unknown(g) => g.as_f64(),
            PrometheusValue::Histogram(h) => h.count.unwrap_or(0) as f64,
            PrometheusValue::Summary(_) => f64::NAN,
        })
        .unwrap_or(0.0)
}

#[test]
fn metrics_follow_traffic_and_health_reports_serving() {
    let c = Cluster::start(ClusterOpts {
        storages: 2,
        tracker_extra: format!("metrics.server_port={TRACKER_METRICS}\n"),
        storage_extra: format!("metrics.server_port={STORAGE_METRICS}\n"),
        ..Default::default()
    });
    let tracker = c.tracker_addr.host.clone();
    let storages: Vec<String> = c.storages.iter().map(|s| s.ip.clone()).collect();
    // healthy: the tracker has a leader (itself), each storage has joined it
    let deadline = Instant::now() + Duration::from_secs(30);
    for (host, port) in std::iter::once((&tracker, TRACKER_METRICS))
        .chain(storages.iter().map(|s| (s, STORAGE_METRICS)))
    {
        while get(host, port, "/health").0 != 200 {
            assert!(Instant::now() < deadline, "{host}:{port} never healthy");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    assert_eq!(get(&tracker, TRACKER_METRICS, "/nothing").0, 404);

    let before: Vec<Exposition> = storages
        .iter()
        .map(|s| scrape(s, STORAGE_METRICS))
        .collect();
    let tracker_before = scrape(&tracker, TRACKER_METRICS);

    let client = c.client();
    let data = vec![b'm'; 4096];
    let mut ids = Vec::new();
    for _ in 0..20 {
        ids.push(rfdfs_tests::upload(&client, &data, "bin"));
    }
    for id in &ids {
        assert_eq!(client.download_to_vec(id, 0, 0).unwrap(), data);
    }
    let mut missing = ids[0].clone();
    missing.name = missing.name.replace(".bin", ".zzz");
    assert!(client.download_to_vec(&missing, 0, 0).is_err());

    // both members hold every file: nothing left to sync either way
    let deadline = Instant::now() + Duration::from_secs(60);
    let after: Vec<Exposition> = loop {
        let now: Vec<Exposition> = storages
            .iter()
            .map(|s| scrape(s, STORAGE_METRICS))
            .collect();
        let lag: f64 = now
            .iter()
            .map(|e| value(e, "fdfs_storage_sync_lag_bytes", &[]))
            .sum();
        let peers_known = now
            .iter()
            .all(|e| e.families.contains_key("fdfs_storage_sync_lag_bytes"));
        if peers_known && lag == 0.0 {
            break now;
        }
        assert!(Instant::now() < deadline, "sync lag never reached 0");
        std::thread::sleep(Duration::from_millis(200));
    };

    let sum = |v: &[Exposition], family: &str, labels: &[(&str, &str)]| -> f64 {
        v.iter().map(|e| value(e, family, labels)).sum()
    };
    let delta = |family: &str, labels: &[(&str, &str)]| {
        sum(&after, family, labels) - sum(&before, family, labels)
    };
    let upload = [("command", "UPLOAD_FILE")];
    let download = [("command", "DOWNLOAD_FILE")];
    assert_eq!(delta("fdfs_storage_requests_total", &upload), 20.0);
    assert_eq!(delta("fdfs_storage_request_errors_total", &upload), 0.0);
    assert_eq!(delta("fdfs_storage_requests_total", &download), 21.0);
    assert_eq!(delta("fdfs_storage_request_errors_total", &download), 1.0);
    // the histogram counts every request
    assert_eq!(
        delta("fdfs_storage_request_duration_seconds", &upload),
        20.0
    );
    assert!(delta("fdfs_storage_received_bytes_total", &[]) >= 20.0 * 4096.0);
    assert!(delta("fdfs_storage_sent_bytes_total", &[]) >= 20.0 * 4096.0);
    let up_ops = [("operation", "upload")];
    assert_eq!(delta("fdfs_storage_operations_total", &up_ops), 20.0);
    // replicated to the other member
    let sync_in = [("operation", "sync_in")];
    assert!(delta("fdfs_storage_file_bytes_total", &sync_in) >= 20.0 * 4096.0);
    for e in &after {
        assert!(value(e, "fdfs_storage_store_path_free_bytes", &[("index", "0")]) > 0.0);
        assert_eq!(
            value(e, "fdfs_storage_store_path_up", &[("index", "0")]),
            1.0
        );
        assert_eq!(value(e, "fdfs_storage_trackers_joined", &[]), 1.0);
        assert!(value(e, "fdfs_storage_connections_accepted_total", &[]) >= 1.0);
    }

    let t = scrape(&tracker, TRACKER_METRICS);
    let query = [("command", "QUERY_STORE_WITHOUT_GROUP_ONE")];
    assert!(
        value(&t, "fdfs_tracker_requests_total", &query)
            - value(&tracker_before, "fdfs_tracker_requests_total", &query)
            >= 20.0,
        "{:?}",
        t.families.keys().collect::<Vec<_>>()
    );
    assert_eq!(value(&t, "fdfs_tracker_has_leader", &[]), 1.0);
    assert_eq!(
        value(
            &t,
            "fdfs_tracker_group_storages",
            &[("group", "group1"), ("status", "ACTIVE")]
        ),
        2.0
    );
    for s in &c.storages {
        let labels = [("ip", s.ip.as_str()), ("status", "ACTIVE")];
        assert_eq!(value(&t, "fdfs_tracker_storage_status", &labels), 7.0);
    }

    // the tracker gone: the storages are not serving any more
    let mut c = c;
    assert_eq!(c.tracker.stop(), Some(0));
    let deadline = Instant::now() + Duration::from_secs(30);
    for host in &storages {
        loop {
            let (status, body) = get(host, STORAGE_METRICS, "/health");
            if status == 503 {
                assert_eq!(body, "not joined to any tracker\n");
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{host} still healthy without a tracker"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    // and a storage that never reached a tracker answers 503 while it waits
    let dir = TempDir::new("metrics-wait");
    let ip = format!("127.{}.{}.30", c.net.0, c.net.1);
    let conf = dir.path().join("storage.conf");
    let text = storage_conf_text(
        &ip,
        23000,
        dir.path(),
        &[dir.path().to_path_buf()],
        4,
        &c.tracker_addrs(),
        &format!("metrics.server_port={STORAGE_METRICS}\n"),
    );
    std::fs::write(&conf, text).unwrap();
    let mut waiting = Daemon::start("fdfs_storaged", &conf, dir.path());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if TcpStream::connect((ip.as_str(), STORAGE_METRICS)).is_ok() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no metrics port while waiting for a tracker"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(get(&ip, STORAGE_METRICS, "/health").0, 503);
    assert_eq!(waiting.stop(), Some(0));
}
