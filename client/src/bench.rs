//! `rfdfs_bench`: a multi-threaded load generator over the client library with persistent
//! (pooled) connections, reporting ops/s, MB/s and latency percentiles. It runs against any
//! cluster through a `client.conf`, so upstream's daemons can be measured the same way.

use crate::bench_run::{run_threads, BenchResult};
use crate::daemon_cpu::DaemonCpu;
use crate::personality::{Personality, WireClient};
use crate::storage_requests::Upload;
use crate::{Client, Content, FileId};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Per-thread wire clients of a personality other than rfdfs's own (which uses the pooled
/// [`Client`]).
fn wire_clients(
    client: &Client,
    personality: Personality,
    threads: usize,
) -> Option<Arc<Vec<Mutex<WireClient>>>> {
    if personality == Personality::Rfdfs {
        return None;
    }
    let tracker = client.cfg.tracker_servers.first()?.clone();
    let timeout = Duration::from_secs(client.cfg.network_timeout.max(1));
    Some(Arc::new(
        (0..threads)
            .map(|_| Mutex::new(WireClient::new(personality, tracker.clone(), timeout)))
            .collect(),
    ))
}

/// Upload `size`-byte buffers for `duration`, as `personality` writes them; returns the
/// result and the IDs written.
pub fn upload(
    client: Arc<Client>,
    personality: Personality,
    size: usize,
    threads: usize,
    duration: Duration,
) -> (BenchResult, Vec<FileId>) {
    let data: Arc<Vec<u8>> = Arc::new((0..size).map(|i| (i * 31 % 251) as u8).collect());
    let ids = Arc::new(Mutex::new(Vec::new()));
    let (c, d, ids2) = (Arc::clone(&client), Arc::clone(&data), Arc::clone(&ids));
    let wire = wire_clients(&client, personality, threads);
    let r = run_threads(
        threads,
        duration,
        Arc::new(move |t, _| {
            let r = match &wire {
                Some(w) => w[t].lock().unwrap().upload(&d, "bin"),
                None => c.upload(Content::Buffer(&d), "bin", Upload::File, None, None),
            };
            match r {
                Ok(id) => {
                    ids2.lock().unwrap().push(id);
                    Ok(d.len() as u64)
                }
                Err(_) => Err(()),
            }
        }),
    );
    let v = std::mem::take(&mut *ids.lock().unwrap());
    (r, v)
}

/// Download the given files round robin for `duration`, as `personality` asks for them.
pub fn download(
    client: Arc<Client>,
    personality: Personality,
    ids: Arc<Vec<FileId>>,
    threads: usize,
    duration: Duration,
) -> BenchResult {
    let wire = wire_clients(&client, personality, threads);
    run_threads(
        threads,
        duration,
        Arc::new(move |t, i| {
            let id = &ids[(t * 7919 + i as usize) % ids.len()];
            match &wire {
                Some(w) => w[t].lock().unwrap().download(id),
                None => client.download_to(id, 0, 0, || Ok(std::io::sink())),
            }
            .map_err(|_| ())
        }),
    )
}

/// Every stored file of a store path (`data/HH/HH/*`) with its size.
fn listing(store: &std::path::Path) -> std::collections::BTreeMap<String, u64> {
    let mut out = std::collections::BTreeMap::new();
    let data = store.join("data");
    let dirs = |p: &std::path::Path| std::fs::read_dir(p).into_iter().flatten().flatten();
    for h in dirs(&data).filter(|e| e.file_name().len() == 2) {
        for l in dirs(&h.path()) {
            for f in dirs(&l.path()) {
                let size = f.metadata().map(|m| m.len()).unwrap_or(0);
                out.insert(
                    format!(
                        "{}/{}/{}",
                        h.file_name().to_string_lossy(),
                        l.file_name().to_string_lossy(),
                        f.file_name().to_string_lossy()
                    ),
                    size,
                );
            }
        }
    }
    out
}

/// Upload `count` files of 0 B to 5 MiB with `threads` threads, then time how long the members
/// (their store paths given) take to hold the same files.
fn replication(client: Arc<Client>, count: usize, threads: usize, stores: &[String]) -> i32 {
    let sizes = move |k: usize| {
        if k % 500 == 7 {
            5 << 20
        } else if k % 50 == 3 {
            512 << 10
        } else {
            (k * 37) % 20000
        }
    };
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let client = Arc::clone(&client);
            std::thread::spawn(move || {
                let mut errors = 0;
                for k in (t..count).step_by(threads) {
                    let data: Vec<u8> = (0..sizes(k)).map(|i| (i * 31 + k) as u8).collect();
                    if client
                        .upload(Content::Buffer(&data), "bin", Upload::File, None, None)
                        .is_err()
                    {
                        errors += 1;
                    }
                }
                errors
            })
        })
        .collect();
    let errors: usize = handles.into_iter().map(|h| h.join().unwrap_or(1)).sum();
    let uploaded = Instant::now();
    let stores: Vec<std::path::PathBuf> = stores.iter().map(std::path::PathBuf::from).collect();
    loop {
        let lists: Vec<_> = stores.iter().map(|s| listing(s)).collect();
        if lists.windows(2).all(|w| w[0] == w[1]) && lists[0].len() >= count - errors {
            break;
        }
        if uploaded.elapsed() > Duration::from_secs(600) {
            eprintln!("no convergence within 600 s");
            return 1;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    println!(
        "replication {count} files x {} members: uploads {:.1} s ({errors} errors), converged {:.2} s after the last upload",
        stores.len(),
        (uploaded - start).as_secs_f64(),
        uploaded.elapsed().as_secs_f64()
    );
    0
}

/// Download the given files over HTTP from `base` (`host:port`), one keep-alive connection per
/// thread, for `duration`.
pub fn http_download(
    base: &str,
    ids: Arc<Vec<FileId>>,
    threads: usize,
    duration: Duration,
) -> BenchResult {
    use std::io::{BufRead, BufReader, Read, Write};
    type Conn = Option<BufReader<std::net::TcpStream>>;
    let conns: Arc<Vec<Mutex<Conn>>> = Arc::new((0..threads).map(|_| Mutex::new(None)).collect());
    let base = base.to_string();
    run_threads(
        threads,
        duration,
        Arc::new(move |t, i| {
            let id = &ids[(t * 7919 + i as usize) % ids.len()];
            let mut slot = conns[t].lock().unwrap();
            let get = |r: &mut BufReader<std::net::TcpStream>| -> std::io::Result<u64> {
                write!(
                    r.get_mut(),
                    "GET /{} HTTP/1.1\r\nHost: {base}\r\n\r\n",
                    id.name
                )?;
                let mut len = None;
                let mut status = String::new();
                r.read_line(&mut status)?;
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line)? == 0 {
                        return Err(std::io::ErrorKind::UnexpectedEof.into());
                    }
                    let line = line.trim_end();
                    if line.is_empty() {
                        break;
                    }
                    if let Some((k, v)) = line.split_once(':') {
                        if k.eq_ignore_ascii_case("content-length") {
                            len = v.trim().parse::<u64>().ok();
                        }
                    }
                }
                let len = len.ok_or(std::io::ErrorKind::InvalidData)?;
                let n = std::io::copy(&mut r.by_ref().take(len), &mut std::io::sink())?;
                if !status.contains(" 200 ") || n != len {
                    return Err(std::io::ErrorKind::InvalidData.into());
                }
                Ok(n)
            };
            if slot.is_none() {
                let s = std::net::TcpStream::connect(&base).map_err(|_| ())?;
                let _ = s.set_nodelay(true);
                *slot = Some(BufReader::with_capacity(256 * 1024, s));
            }
            let r = get(slot.as_mut().expect("connected"));
            if r.is_err() {
                *slot = None;
            }
            r.map_err(|_| ())
        }),
    )
}

/// `soak`: `idle` connections to the tracker and as many to the storage, each of which did one
/// request and then sits idle, touched again every 30 s; 8 threads of upload/download/delete; a
/// probe that opens a new storage connection every second. One status line every 10 s; the exit
/// code says whether any probe or operation failed.
fn soak(client: Arc<Client>, secs: u64, idle: usize, storage: &str) -> i32 {
    use fdfs_common::proto::cmd;
    let tracker = client.cfg.tracker_servers[0].to_string();
    let active_test =
        |s: &mut std::net::TcpStream| fdfs_common::net::request(s, cmd::ACTIVE_TEST, &[]).is_ok();
    let mut held = Vec::new();
    let mut refused_idle = 0;
    for i in 0..2 * idle {
        let addr = if i % 2 == 0 { &tracker } else { storage };
        match std::net::TcpStream::connect(addr) {
            Ok(mut s) => {
                let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
                if active_test(&mut s) {
                    held.push(s);
                } else {
                    refused_idle += 1;
                }
            }
            Err(_) => refused_idle += 1,
        }
    }
    println!(
        "soak: {} idle connections held ({refused_idle} refused)",
        held.len()
    );
    let stop = Arc::new(AtomicBool::new(false));
    let ops = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let errors = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let workers: Vec<_> = (0..8)
        .map(|t| {
            let (c, stop, ops, errors) = (
                Arc::clone(&client),
                Arc::clone(&stop),
                Arc::clone(&ops),
                Arc::clone(&errors),
            );
            std::thread::spawn(move || {
                let data: Vec<u8> = (0..10240).map(|i| (i * 13 + t) as u8).collect();
                while !stop.load(Ordering::Relaxed) {
                    let ok = c
                        .upload(Content::Buffer(&data), "bin", Upload::File, None, None)
                        .and_then(|id| {
                            let back = c.download_to_vec(&id, 0, 0)?;
                            c.delete(&id)?;
                            Ok(back == data)
                        })
                        .unwrap_or(false);
                    let counter = if ok { &ops } else { &errors };
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let start = Instant::now();
    let (mut probes, mut probe_failures) = (0u64, 0u64);
    let mut last_touch = Instant::now();
    let mut last_line = Instant::now();
    while start.elapsed() < Duration::from_secs(secs) {
        std::thread::sleep(Duration::from_secs(1));
        probes += 1;
        let ok = std::net::TcpStream::connect(storage)
            .map(|mut s| active_test(&mut s))
            .unwrap_or(false);
        if !ok {
            probe_failures += 1;
        }
        if last_touch.elapsed() >= Duration::from_secs(30) {
            last_touch = Instant::now();
            let before = held.len();
            held.retain_mut(|s| active_test(s));
            if held.len() != before {
                println!("soak: {} idle connections were closed", before - held.len());
            }
        }
        if last_line.elapsed() >= Duration::from_secs(10) {
            last_line = Instant::now();
            println!(
                "soak {:>5}s: {} ops, {} errors, new-connection probes {probes} ({probe_failures} failed), idle held {}",
                start.elapsed().as_secs(),
                ops.load(Ordering::Relaxed),
                errors.load(Ordering::Relaxed),
                held.len()
            );
        }
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        let _ = w.join();
    }
    let errors = errors.load(Ordering::Relaxed);
    println!(
        "soak done: {} ops, {errors} errors, {probe_failures} of {probes} probes failed, {} of {} idle connections still open",
        ops.load(Ordering::Relaxed),
        held.len(),
        2 * idle
    );
    i32::from(errors > 0 || probe_failures > 0 || refused_idle > 0)
}

/// The physical reference for downloads: `sendfile` of a page-cached file over `streams`
/// loopback TCP connections at once, each into a reader that drops the bytes (MB/s in all).
fn loopback_sendfile(file_bytes: usize, secs: f64, streams: usize) -> std::io::Result<f64> {
    use std::io::{Read, Write};
    let path = std::env::temp_dir().join(format!("rfdfs-bench-sendfile-{}", std::process::id()));
    let mut f = std::fs::File::create(&path)?;
    let chunk = vec![0x5au8; 1 << 20];
    let mut left = file_bytes;
    while left > 0 {
        let n = left.min(chunk.len());
        f.write_all(&chunk[..n])?;
        left -= n;
    }
    drop(f);
    let file = Arc::new(std::fs::File::open(&path)?);
    let _ = std::fs::remove_file(&path);
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let readers = std::thread::spawn(
        move || -> std::io::Result<Vec<std::thread::JoinHandle<u64>>> {
            (0..streams)
                .map(|_| {
                    let (mut s, _) = listener.accept()?;
                    Ok(std::thread::spawn(move || {
                        let mut buf = vec![0u8; 1 << 20];
                        let mut total = 0u64;
                        while let Ok(n @ 1..) = s.read(&mut buf) {
                            total += n as u64;
                        }
                        total
                    }))
                })
                .collect()
        },
    );
    let start = Instant::now();
    let senders: Vec<_> = (0..streams)
        .map(|_| {
            let file = Arc::clone(&file);
            std::thread::spawn(move || -> std::io::Result<()> {
                let sock = std::net::TcpStream::connect(addr)?;
                while start.elapsed().as_secs_f64() < secs {
                    let mut off: i64 = 0;
                    while (off as usize) < file_bytes {
                        let want = file_bytes - off as usize;
                        let n = nix::sys::sendfile::sendfile(&sock, &*file, Some(&mut off), want)
                            .map_err(std::io::Error::from)?;
                        if n == 0 {
                            break;
                        }
                    }
                }
                Ok(())
            })
        })
        .collect();
    for s in senders {
        s.join()
            .map_err(|_| std::io::Error::other("sender panicked"))??;
    }
    let mut received = 0u64;
    for r in readers
        .join()
        .map_err(|_| std::io::Error::other("accept panicked"))??
    {
        received += r.join().unwrap_or(0);
    }
    Ok(received as f64 / start.elapsed().as_secs_f64() / 1e6)
}

/// rfdfs_bench's command line.
#[derive(clap::Parser, Debug)]
#[command(
    name = "rfdfs_bench",
    version,
    about = "Load generator for a FastDFS cluster (rfdfs's or upstream's)"
)]
struct Cli {
    #[command(subcommand)]
    run: Run,
}

/// The load of an upload/download run.
#[derive(clap::Args, Debug)]
struct Load {
    /// client.conf naming the trackers
    client_conf: PathBuf,
    /// bytes per file
    size: usize,
    /// client threads
    threads: usize,
    /// seconds per figure
    seconds: f64,
    /// how requests are put on the wire: rfdfs, libfdfsclient, java or py3fdfs
    #[arg(long = "client", default_value = "rfdfs", value_parser = parse_personality)]
    personality: Personality,
    /// leave the uploaded files in place (they are deleted at the end otherwise)
    #[arg(long)]
    keep: bool,
    /// `name=pid` of a daemon whose CPU per operation to print beside each figure
    /// (repeatable: `--cpu tracker=PID --cpu storage=PID`)
    #[arg(long = "cpu")]
    cpu: Vec<String>,
}

#[derive(clap::Subcommand, Debug)]
enum Run {
    /// upload files for the given seconds
    Upload(Load),
    /// upload a set of files, then download them for the given seconds
    Download(Load),
    /// both figures, one after the other
    Both(Load),
    /// download over a storage's HTTP port (keep-alive)
    Http {
        #[command(flatten)]
        load: Load,
        /// the storage's (or nginx's) host:port
        http: String,
    },
    /// upload files of 0 B to 5 MiB into a group, then time until every member holds them
    Replication {
        client_conf: PathBuf,
        count: usize,
        threads: usize,
        /// every member's base path, to look for the files
        #[arg(required = true)]
        store_paths: Vec<String>,
    },
    /// hold idle connections on both daemons while clients keep working
    Soak {
        client_conf: PathBuf,
        seconds: u64,
        /// idle connections per daemon
        idle: usize,
        /// the storage's host:port
        storage: String,
    },
    /// simulate storage servers in groups against real trackers; time beats, queries, joins
    /// and leader failover
    Fleet(crate::fleet::FleetArgs),
    /// PUT or GET objects of one size through an S3 endpoint (rfdfs's or another's)
    S3(crate::s3_bench::S3Args),
    /// the machine's loopback sendfile rate, a reference for download figures
    Sendfile {
        #[arg(default_value_t = 100 << 20)]
        bytes: usize,
        #[arg(default_value_t = 3.0)]
        seconds: f64,
        #[arg(default_value_t = 1)]
        streams: usize,
    },
}

fn parse_personality(name: &str) -> Result<Personality, String> {
    Personality::parse(name).ok_or_else(|| {
        let names: Vec<&str> = Personality::ALL.iter().map(|p| p.name()).collect();
        format!("one of {}", names.join(", "))
    })
}

/// A client with persistent connections, as a production client keeps them.
fn bench_client(conf: &Path) -> Result<Arc<Client>, i32> {
    crate::logging::init();
    match Client::from_conf(conf) {
        Ok(mut c) => {
            c.cfg.use_connection_pool = true;
            Ok(Arc::new(c))
        }
        Err(e) => {
            eprintln!("{e}");
            Err(e.code)
        }
    }
}

pub fn main(args: &[String]) -> i32 {
    let cli = match crate::command_line::parse_command_line::<Cli>(args) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let (op, load, http) = match cli.run {
        Run::Fleet(args) => return crate::fleet::run(args),
        Run::S3(args) => return crate::s3_bench::main(args),
        Run::Sendfile {
            bytes,
            seconds,
            streams,
        } => {
            return match loopback_sendfile(bytes, seconds, streams) {
                Ok(mbs) => {
                    println!(
                        "loopback sendfile {bytes:>9} B x {streams:>2} streams: {mbs:>9.1} MB/s"
                    );
                    0
                }
                Err(e) => {
                    eprintln!("loopback sendfile: {e}");
                    1
                }
            };
        }
        Run::Soak {
            client_conf,
            seconds,
            idle,
            storage,
        } => {
            return match bench_client(&client_conf) {
                Ok(client) => soak(client, seconds, idle, &storage),
                Err(code) => code,
            }
        }
        Run::Replication {
            client_conf,
            count,
            threads,
            store_paths,
        } => {
            return match bench_client(&client_conf) {
                Ok(client) => replication(client, count, threads, &store_paths),
                Err(code) => code,
            }
        }
        Run::Upload(l) => ("upload", l, None),
        Run::Download(l) => ("download", l, None),
        Run::Both(l) => ("both", l, None),
        Run::Http { load, http } => ("http", load, Some(http)),
    };
    let daemons = match DaemonCpu::parse(&load.cpu) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("rfdfs_bench: {e}");
            return 2;
        }
    };
    let client = match bench_client(&load.client_conf) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let Load {
        size,
        threads,
        seconds: secs,
        personality,
        keep,
        ..
    } = load;
    let duration = Duration::from_secs_f64(secs);
    let cpu = daemons.snapshot();
    let (up, ids) = upload(
        Arc::clone(&client),
        personality,
        size,
        threads,
        if op == "download" || op == "http" {
            Duration::from_secs_f64(secs.min(2.0))
        } else {
            duration
        },
    );
    if op != "download" && op != "http" {
        let line = up.line("upload", size, threads);
        println!("{line}{}", daemons.per_op(&cpu, up.ops));
    }
    if let (Some(base), false) = (&http, ids.is_empty()) {
        let cpu = daemons.snapshot();
        let r = http_download(base, Arc::new(ids.clone()), threads, duration);
        let line = r.line("http get", size, threads);
        println!("{line}{}", daemons.per_op(&cpu, r.ops));
    }
    if (op == "download" || op == "both") && !ids.is_empty() {
        let ids = Arc::new(ids.clone());
        let cpu = daemons.snapshot();
        let down = download(
            Arc::clone(&client),
            personality,
            Arc::clone(&ids),
            threads,
            duration,
        );
        let line = down.line("download", size, threads);
        println!("{line}{}", daemons.per_op(&cpu, down.ops));
    }
    for id in ids.iter().filter(|_| !keep) {
        let _ = client.delete(id);
    }
    if up.errors > 0 && up.ops == 0 {
        return 1;
    }
    0
}
