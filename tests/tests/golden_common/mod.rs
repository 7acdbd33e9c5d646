//! What the golden tests share: the captured vectors of `tests/golden/` and their hex frames.

use fdfs_common::proto::Header;
use serde_json::Value;
use std::path::{Path, PathBuf};

pub fn vectors() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("golden");
    assert!(
        p.is_dir(),
        "golden vectors missing at {} (they are part of the test suite)",
        p.display()
    );
    p
}

pub fn load(name: &str) -> Value {
    let text = std::fs::read_to_string(vectors().join(name)).expect("read vectors");
    serde_json::from_str(&text).expect("parse vectors")
}

pub fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

pub fn split_frame(f: &[u8]) -> (Header, &[u8]) {
    (Header::decode(&f[..10]).unwrap(), &f[10..])
}
