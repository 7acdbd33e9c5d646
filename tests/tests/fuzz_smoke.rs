//! A smoke run of every decoder under mutated input (issue 6): packet bodies, file IDs, config
//! files, storage_ids.conf, binlog and mark lines, HTTP request heads and Range headers. Seeds:
//! the committed corpus in tests/fuzz-corpus/ and every recorded packet body of the golden
//! vectors. Each target runs `RFDFS_FUZZ_MS` milliseconds (default 700); a panic fails the test
//! and its input is written to target/fuzz-crashes/ for replay.

use rfdfs_tests::Rng;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A mutation of one or two seeds: flips, interesting bytes, inserts, deletes, truncation,
/// splices, duplicated runs.
fn mutate(r: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut v = seeds[r.index(seeds.len())].clone();
    for _ in 0..1 + r.index(6) {
        let n = v.len();
        match r.index(8) {
            0 if n > 0 => {
                let i = r.index(n);
                v[i] ^= 1 << r.index(8);
            }
            1 if n > 0 => {
                let i = r.index(n);
                v[i] = [0u8, 0xff, 0x7f, 0x80, b'/', b'.', b'\n', b'=', b'%', b' '][r.index(10)];
            }
            2 => {
                let i = r.index(n + 1);
                v.insert(i, r.next_u64() as u8);
            }
            3 if n > 0 => {
                let i = r.index(n);
                v.remove(i);
            }
            4 => v.truncate(r.index(n + 1)),
            5 => {
                let other = &seeds[r.index(seeds.len())];
                let cut = r.index(other.len() + 1);
                v.extend_from_slice(&other[cut..]);
            }
            6 if n > 0 => {
                let a = r.index(n);
                let b = (a + r.index(16)).min(n);
                let run = v[a..b].to_vec();
                let i = r.index(v.len() + 1);
                v.splice(i..i, run);
            }
            _ if n >= 8 => {
                let i = r.index(n - 7);
                v[i..i + 8].copy_from_slice(&(r.next_u64() as i64).to_be_bytes());
            }
            _ => {}
        }
    }
    v
}

fn corpus(name: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz-corpus")
        .join(name);
    let mut v: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("seed corpus {}: {e}", dir.display()))
        .flatten()
        .map(|e| std::fs::read(e.path()).unwrap())
        .collect();
    v.push(Vec::new());
    v
}

/// Every recorded request and response body of the golden vectors.
fn packet_seeds() -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("golden");
    let mut seeds = vec![Vec::new()];
    for f in ["client-commands.json", "cluster-commands.json"] {
        let text = std::fs::read_to_string(dir.join(f)).expect("golden vectors");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        for x in v["exchanges"].as_array().unwrap() {
            for k in ["request_hex", "response_hex"] {
                if let Some(h) = x[k].as_str() {
                    let b: Vec<u8> = (0..h.len() / 2)
                        .map(|i| u8::from_str_radix(&h[2 * i..2 * i + 2], 16).unwrap_or(0))
                        .collect();
                    if b.len() > 10 && b.len() < 64 * 1024 {
                        seeds.push(b[10..].to_vec());
                    }
                }
            }
        }
    }
    seeds
}

fn run(name: &str, seeds: &[Vec<u8>], target: impl Fn(&[u8])) -> usize {
    let ms: u64 = std::env::var("RFDFS_FUZZ_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(700);
    let mut r = Rng(0x0f0f_1234 ^ name.len() as u64);
    let end = Instant::now() + Duration::from_millis(ms);
    let mut n = 0;
    for s in seeds {
        check(name, s, &target);
    }
    while Instant::now() < end {
        let input = mutate(&mut r, seeds);
        check(name, &input, &target);
        n += 1;
    }
    eprintln!("fuzz {name}: {n} inputs, no panic");
    n
}

fn check(name: &str, input: &[u8], target: &impl Fn(&[u8])) {
    if catch_unwind(AssertUnwindSafe(|| target(input))).is_err() {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/fuzz-crashes");
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join(format!("{name}-{:08x}", crc32fast::hash(input)));
        let _ = std::fs::write(&path, input);
        panic!("fuzz target {name} panicked on {}", path.display());
    }
}

fn run_target(name: &str, seeds: &[Vec<u8>]) -> usize {
    run(
        name,
        seeds,
        rfdfs_tests::fuzz::target(name).expect("a fuzz target"),
    )
}

#[test]
fn packet_decoders() {
    run_target("packets", &packet_seeds());
}

#[test]
fn file_ids() {
    run_target("file_id", &corpus("file_id"));
}

#[test]
fn config_files() {
    run_target("config", &corpus("config"));
    run_target("storage_ids", &corpus("storage_ids"));
}

#[test]
fn binlog_and_mark_lines() {
    run_target("binlog", &corpus("binlog"));
    run_target("mark", &corpus("mark"));
}

#[test]
fn http_requests() {
    run_target("http_request", &corpus("http_request"));
}

/// The cargo-fuzz crate (not built by the suite: it needs libFuzzer) stays in step with the
/// targets here: one `[[bin]]` per target calling the same function, all run by scripts/fuzz.sh.
#[test]
fn every_target_has_seeds_and_a_cargo_fuzz_target() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifest = std::fs::read_to_string(root.join("fuzz/Cargo.toml")).unwrap();
    let script = std::fs::read_to_string(root.join("../scripts/fuzz.sh")).unwrap();
    for name in rfdfs_tests::fuzz::TARGETS {
        assert!(rfdfs_tests::fuzz::target(name).is_some());
        if name != "packets" {
            assert!(corpus(name).len() > 1, "{name}: no seeds");
        }
        let src = std::fs::read_to_string(root.join(format!("fuzz/fuzz_targets/{name}.rs")))
            .unwrap_or_else(|e| panic!("cargo-fuzz target {name}: {e}"));
        assert!(
            src.contains(&format!("rfdfs_tests::fuzz::{name}(data)")),
            "{name}"
        );
        assert!(
            manifest.contains(&format!("name = \"{name}\"")),
            "{name} in Cargo.toml"
        );
        assert!(
            script.contains(&format!(" {name}")),
            "{name} in scripts/fuzz.sh"
        );
    }
}
