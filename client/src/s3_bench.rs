//! `rfdfs_bench s3`: an S3 load generator (issue 33's speed figures), so that the client is not
//! the limit: boto3 from one thread reached only ~400 PUT/s of 1 KiB here. Each thread keeps
//! one keep-alive connection and signs every request with SigV4 (`UNSIGNED-PAYLOAD`, as
//! clients do over TLS; the server still checks the signature), PUTs or GETs objects of one
//! size, and the figures are those of `bench.rs` (ops/s, MB/s, p50/p99), with each named
//! daemon's CPU per operation from /proc. Any S3 endpoint can be measured the same way
//! (SeaweedFS's gateway: `scripts/s3-bench.sh`).

use crate::bench_run::{run_threads, BenchResult};
use crate::daemon_cpu::{DaemonCpu, Snapshot};
use fdfs_common::s3::sigv4::{self, UNSIGNED_PAYLOAD};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What `rfdfs_bench s3` is told.
#[derive(clap::Args, Debug)]
pub struct S3Args {
    /// the endpoint's host:port
    pub endpoint: String,
    /// the bucket (created when missing)
    pub bucket: String,
    /// bytes per object
    pub size: usize,
    /// client threads (one connection each)
    pub threads: usize,
    /// seconds per figure
    pub seconds: f64,
    /// put or get
    #[arg(long, default_value = "put")]
    pub op: String,
    #[arg(long, default_value = "rfdfs-bench")]
    pub access_key: String,
    #[arg(long, default_value = "rfdfs-bench-secret")]
    pub secret_key: String,
    /// objects written first for a GET run
    #[arg(long, default_value_t = 1000)]
    pub objects: usize,
    /// `name=pid` of a daemon whose CPU per operation to report (repeatable)
    #[arg(long = "cpu")]
    pub cpu: Vec<String>,
}

/// One connection to the endpoint.
struct S3Conn {
    host: String,
    reader: BufReader<TcpStream>,
    access: String,
    secret: String,
}

fn amz_date() -> String {
    fdfs_common::s3::auth::format_amz_date(fdfs_common::now())
}

impl S3Conn {
    fn open(a: &S3Args) -> std::io::Result<S3Conn> {
        let s = TcpStream::connect(&a.endpoint)?;
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(Duration::from_secs(30)))?;
        Ok(S3Conn {
            host: a.endpoint.clone(),
            reader: BufReader::with_capacity(256 << 10, s),
            access: a.access_key.clone(),
            secret: a.secret_key.clone(),
        })
    }

    /// One request; the answer's status and body length read (the body dropped).
    fn request(&mut self, method: &str, path: &str, body: &[u8]) -> std::io::Result<(u16, u64)> {
        let date = amz_date();
        let headers = vec![
            ("host".to_string(), self.host.clone()),
            (
                "x-amz-content-sha256".to_string(),
                UNSIGNED_PAYLOAD.to_string(),
            ),
            ("x-amz-date".to_string(), date.clone()),
        ];
        let req = sigv4::Request {
            method,
            path,
            query: &[],
            headers: &headers,
            payload_hash: UNSIGNED_PAYLOAD,
        };
        let auth = sigv4::authorization(
            &self.access,
            &self.secret,
            "us-east-1",
            &date,
            &["host", "x-amz-content-sha256", "x-amz-date"],
            &req,
        )
        .map_err(|e| std::io::Error::other(e.to_string()))?;
        let head = format!(
            "{method} {} HTTP/1.1\r\nHost: {}\r\nx-amz-content-sha256: {UNSIGNED_PAYLOAD}\r\nx-amz-date: {date}\r\nAuthorization: {auth}\r\nContent-Length: {}\r\n\r\n",
            sigv4::uri_encode(path, true),
            self.host,
            body.len()
        );
        let s = self.reader.get_mut();
        if body.len() <= 64 << 10 {
            let mut out = head.into_bytes();
            out.extend_from_slice(body);
            s.write_all(&out)?;
        } else {
            s.write_all(head.as_bytes())?;
            s.write_all(body)?;
        }
        let mut line = String::new();
        self.reader.read_line(&mut line)?;
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("bad status line {line:?}")))?;
        let mut len = 0u64;
        loop {
            line.clear();
            if self.reader.read_line(&mut line)? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
        }
        if method != "HEAD" {
            std::io::copy(&mut (&mut self.reader).take(len), &mut std::io::sink())?;
        }
        Ok((status, len))
    }
}

/// The figure, and the daemons' CPU as it began (after the bucket and a GET run's objects
/// were written: their cost is not the figure's).
fn run(a: &S3Args, daemons: &DaemonCpu) -> Result<(BenchResult, Snapshot), String> {
    let mut setup = S3Conn::open(a).map_err(|e| format!("connect {}: {e}", a.endpoint))?;
    let (st, _) = setup
        .request("PUT", &format!("/{}", a.bucket), b"")
        .map_err(|e| e.to_string())?;
    if !matches!(st, 200 | 409) {
        return Err(format!("create bucket {}: HTTP {st}", a.bucket));
    }
    let body = Arc::new(vec![b'x'; a.size]);
    let get = match a.op.as_str() {
        "put" => false,
        "get" => true,
        other => return Err(format!("--op {other}: put or get")),
    };
    if get {
        for k in 0..a.objects {
            let (st, _) = setup
                .request("PUT", &format!("/{}/get-{}-{k}", a.bucket, a.size), &body)
                .map_err(|e| e.to_string())?;
            if st != 200 {
                return Err(format!("put object {k}: HTTP {st}"));
            }
        }
    }
    let conns: Arc<Vec<Mutex<Option<S3Conn>>>> =
        Arc::new((0..a.threads).map(|_| Mutex::new(None)).collect());
    let (bucket, size, objects) = (a.bucket.clone(), a.size, a.objects.max(1));
    let args = Arc::new(S3Args {
        endpoint: a.endpoint.clone(),
        bucket: a.bucket.clone(),
        size: a.size,
        threads: a.threads,
        seconds: a.seconds,
        op: a.op.clone(),
        access_key: a.access_key.clone(),
        secret_key: a.secret_key.clone(),
        objects: a.objects,
        cpu: Vec::new(),
    });
    let work = Arc::new(move |t: usize, i: u64| -> Result<u64, ()> {
        let mut slot = conns[t].lock().map_err(drop)?;
        if slot.is_none() {
            *slot = Some(S3Conn::open(&args).map_err(drop)?);
        }
        let c = slot.as_mut().ok_or(())?;
        let res = if get {
            let k = (i as usize * 7919 + t * 104_729) % objects;
            c.request("GET", &format!("/{bucket}/get-{size}-{k}"), b"")
        } else {
            c.request("PUT", &format!("/{bucket}/put-{size}-{t}-{i}"), &body)
        };
        match res {
            Ok((200, n)) => Ok(if get { n } else { size as u64 }),
            _ => {
                *slot = None;
                Err(())
            }
        }
    });
    let before = daemons.snapshot();
    let r = run_threads(a.threads, Duration::from_secs_f64(a.seconds), work);
    Ok((r, before))
}

/// Run and print the figure; the exit code.
pub fn main(a: S3Args) -> i32 {
    let daemons = match DaemonCpu::parse(&a.cpu) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("rfdfs_bench s3: {e}");
            return 2;
        }
    };
    match run(&a, &daemons) {
        Ok((r, before)) => {
            let line = r.line(&format!("s3-{}", a.op), a.size, a.threads);
            println!("{line}{}", daemons.per_op(&before, r.ops));
            0
        }
        Err(e) => {
            eprintln!("rfdfs_bench s3: {e}");
            1
        }
    }
}
