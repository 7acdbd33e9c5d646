//! The crates' module graphs have no import circles (issues 14 and 30). Every module is a node:
//! the crate root (`crate`, lib.rs), each file module (`sync`), each folder module (`proto`,
//! its `mod.rs`) and each file inside a folder (`proto::cluster`). A module that names a path
//! (`crate::a::b::X`, `super::X`, `self::b::X`, or `b::X` for a child module `b`) depends on the
//! deepest module that path names (`a::b` if it is a module, else `a`; the crate root for an
//! item of lib.rs). No module may depend on itself through others.
//! `cargo test --test module_graph -- --nocapture` prints the graphs.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Graph = BTreeMap<String, BTreeSet<String>>;

const ROOT: &str = "crate";

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            if p.file_name().is_some_and(|n| n != "bin") {
                rust_files(&p, out);
            }
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The module a file is: `crate` for lib.rs, `a` for a.rs or a/mod.rs, `a::b` for a/b.rs.
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|l| l == "mod") {
        parts.pop();
    }
    if parts == ["lib"] || parts == ["main"] || parts.is_empty() {
        return ROOT.to_string();
    }
    parts.join("::")
}

/// Code without comments and without the unit tests at the end of the file.
fn code_of(text: &str) -> String {
    let text = match text.find("#[cfg(test)]") {
        Some(i) => &text[..i],
        None => text,
    };
    text.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Every path of two segments or more in `code`, use groups spelled out:
/// `use crate::{a, b::{C, D}}` gives `crate::a`, `crate::b::C`, `crate::b::D`.
fn paths_in(code: &str) -> Vec<Vec<String>> {
    fn ident_at(s: &str) -> &str {
        let n = s.find(|c: char| !is_ident(c)).unwrap_or(s.len());
        &s[..n]
    }
    /// Reads the rest of a path after `prefix` at `s`; returns the bytes read.
    fn walk(s: &str, prefix: Vec<String>, out: &mut Vec<Vec<String>>) -> usize {
        let mut at = 0;
        let mut path = prefix;
        loop {
            let rest = &s[at..];
            let Some(after) = rest.strip_prefix("::") else {
                break;
            };
            at += 2;
            let after_ws = after.trim_start();
            at += after.len() - after_ws.len();
            if let Some(group) = after_ws.strip_prefix('{') {
                at += 1;
                let mut i = 0;
                loop {
                    let g = &group[i..];
                    let t = g.trim_start();
                    i += g.len() - t.len();
                    if t.starts_with('}') {
                        i += 1;
                        break;
                    }
                    if t.starts_with(',') {
                        i += 1;
                        continue;
                    }
                    let id = ident_at(t);
                    if id.is_empty() {
                        i += t.chars().next().map_or(1, char::len_utf8);
                        continue;
                    }
                    let mut p = path.clone();
                    p.push(id.to_string());
                    i += id.len();
                    i += walk(&group[i..], p, out);
                }
                return at + i;
            }
            let id = ident_at(after_ws);
            if id.is_empty() {
                break;
            }
            path.push(id.to_string());
            at += id.len();
        }
        if path.len() > 1 {
            out.push(path);
        }
        at
    }
    let mut out = Vec::new();
    let mut i = 0;
    while i < code.len() {
        let c = code[i..].chars().next().unwrap();
        let before = code[..i].chars().last();
        if is_ident(c) && !before.is_some_and(|b| is_ident(b) || b == ':') {
            let id = ident_at(&code[i..]);
            i += id.len();
            i += walk(&code[i..], vec![id.to_string()], &mut out);
        } else {
            i += c.len_utf8();
        }
    }
    out
}

fn parent(m: &str) -> String {
    match m.rsplit_once("::") {
        Some((p, _)) => p.to_string(),
        None => ROOT.to_string(),
    }
}

fn join(base: &str, name: &str) -> String {
    if base == ROOT {
        name.to_string()
    } else {
        format!("{base}::{name}")
    }
}

/// The module `path`, named inside module `me`, depends on; `None` for another crate's path or
/// an item's own path (`Ordering::Relaxed`).
fn target(modules: &BTreeSet<String>, me: &str, path: &[String]) -> Option<String> {
    let (mut base, mut rest) = match path[0].as_str() {
        "crate" => (ROOT.to_string(), &path[1..]),
        "self" => (me.to_string(), &path[1..]),
        "super" => (parent(me), &path[1..]),
        first if modules.contains(&join(me, first)) => (me.to_string(), path),
        _ => return None,
    };
    while rest.first().is_some_and(|s| s == "super") {
        base = parent(&base);
        rest = &rest[1..];
    }
    for seg in rest {
        let next = join(&base, seg);
        if !modules.contains(&next) {
            break;
        }
        base = next;
    }
    Some(base)
}

fn graph_of(krate: &str) -> Graph {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(krate)
        .join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let modules: BTreeSet<String> = files.iter().map(|f| module_of(&src, f)).collect();
    let mut g = Graph::new();
    for f in &files {
        let me = module_of(&src, f);
        let code = code_of(&std::fs::read_to_string(f).unwrap());
        let deps = g.entry(me.clone()).or_default();
        for p in paths_in(&code) {
            if let Some(t) = target(&modules, &me, &p) {
                if t != me {
                    deps.insert(t);
                }
            }
        }
    }
    g
}

/// Modules that reach themselves again, each circle once (Tarjan's strongly connected sets).
fn circles(g: &Graph) -> Vec<Vec<String>> {
    struct T<'a> {
        g: &'a Graph,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(t: &mut T<'a>, v: &'a str) {
        let n = t.index.len();
        t.index.insert(v, n);
        t.low.insert(v, n);
        t.stack.push(v);
        for w in t.g.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !t.index.contains_key(w) {
                visit(t, w);
                let lw = t.low[w];
                let lv = t.low.get_mut(v).unwrap();
                *lv = (*lv).min(lw);
            } else if t.stack.contains(&w) {
                let iw = t.index[w];
                let lv = t.low.get_mut(v).unwrap();
                *lv = (*lv).min(iw);
            }
        }
        if t.low[v] == t.index[v] {
            let mut set = Vec::new();
            while let Some(w) = t.stack.pop() {
                set.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if set.len() > 1 {
                set.sort();
                t.out.push(set);
            }
        }
    }
    let mut t = T {
        g,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        out: Vec::new(),
    };
    for v in g.keys() {
        if !t.index.contains_key(v.as_str()) {
            visit(&mut t, v);
        }
    }
    t.out
}

#[test]
fn the_reader_sees_every_form_of_path() {
    let code = "use crate::a::X;\nuse crate::{b, c::{D, E}, d};\nlet x = crate::e::f();\n\
                fdfs_crate::z; super::{F, g::H}; Ordering::Relaxed";
    let paths: Vec<String> = paths_in(code).iter().map(|p| p.join("::")).collect();
    assert_eq!(
        paths,
        [
            "crate::a::X",
            "crate::b",
            "crate::c::D",
            "crate::c::E",
            "crate::d",
            "crate::e::f",
            "fdfs_crate::z",
            "super::F",
            "super::g::H",
            "Ordering::Relaxed"
        ]
    );
    let modules: BTreeSet<String> = ["crate", "a", "proto", "proto::cluster", "proto::sync"]
        .map(String::from)
        .into();
    let t = |me: &str, p: &str| {
        let p: Vec<String> = p.split("::").map(String::from).collect();
        target(&modules, me, &p)
    };
    assert_eq!(
        t("a", "crate::proto::cluster::Join").as_deref(),
        Some("proto::cluster")
    );
    assert_eq!(t("a", "crate::proto::VERSION").as_deref(), Some("proto"));
    assert_eq!(t("a", "crate::now").as_deref(), Some("crate"));
    assert_eq!(
        t("proto::sync", "super::cluster::Join").as_deref(),
        Some("proto::cluster")
    );
    assert_eq!(
        t("proto::sync", "super::GROUP_NAME_MAX").as_deref(),
        Some("proto")
    );
    assert_eq!(
        t("proto", "cluster::Join").as_deref(),
        Some("proto::cluster")
    );
    assert_eq!(t("crate", "a::run").as_deref(), Some("a"));
    assert_eq!(t("a", "Ordering::Relaxed"), None);

    let mut g = Graph::new();
    g.entry("a".into()).or_default().insert("b".into());
    g.entry("b".into()).or_default().insert("a".into());
    g.entry("c".into()).or_default().insert("a".into());
    assert_eq!(circles(&g), [["a", "b"]]);
}

#[test]
fn no_crate_has_an_import_circle() {
    let mut found = Vec::new();
    for krate in ["common", "tracker", "storage", "client"] {
        let g = graph_of(krate);
        let folders: BTreeSet<String> = g
            .keys()
            .filter(|m| m.contains("::"))
            .map(|m| parent(m))
            .collect();
        println!(
            "{krate}: {} modules, crate root included; folder modules {folders:?}",
            g.len()
        );
        for (m, deps) in &g {
            let deps: Vec<&str> = deps.iter().map(String::as_str).collect();
            println!("  {m} -> {}", deps.join(", "));
        }
        assert!(g.contains_key(ROOT), "{krate}: no crate root read");
        for c in circles(&g) {
            found.push(format!("{krate}: {}", c.join(" <-> ")));
        }
    }
    assert!(found.is_empty(), "import circles: {found:?}");
}
