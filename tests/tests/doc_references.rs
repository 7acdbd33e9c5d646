//! A clone of the repository alone is enough to read the code (issue 30): every `*.md` file a
//! source, script or document names, and every relative link of a document, exists in the
//! repository. A name with a `/` is looked up from the repository's root and from the citing
//! file's folder; a bare name (`copies.md`) from the citing file's folder, the root, `docs/`
//! and its sub-folders.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Files whose text is checked: sources, scripts, manifests and documents, outside build output
/// and the fuzz corpus.
fn cited_from(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if p.is_dir() {
            if !name.starts_with('.') && !["target", "fuzz-corpus", "golden"].contains(&&*name) {
                cited_from(&p, out);
            }
        } else if ["rs", "sh", "toml", "md", "py", "yml", "c", "service"]
            .iter()
            .any(|x| name.ends_with(&format!(".{x}")))
        {
            out.push(p);
        }
    }
}

/// The names in `text` ending in `ext`: runs of path characters ending there, `./` taken off.
fn names_ending_in(text: &str, ext: &str) -> Vec<String> {
    let path_char = |c: char| c.is_ascii_alphanumeric() || "_./-".contains(c);
    let mut out = Vec::new();
    for (i, _) in text.match_indices(ext) {
        let after = text[i + ext.len()..].chars().next();
        if after.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        let start = text[..i]
            .char_indices()
            .rev()
            .take_while(|&(_, c)| path_char(c))
            .last()
            .map_or(i, |(j, _)| j);
        out.push(
            text[start..i + ext.len()]
                .trim_start_matches("./")
                .to_string(),
        );
    }
    out
}

/// The `*.md` names in `text`.
fn md_names(text: &str) -> Vec<String> {
    names_ending_in(text, ".md")
        .into_iter()
        .filter(|n| n.len() > 3 && !n.starts_with('.'))
        .collect()
}

/// Source files a document names by path (`storage/src/copies.rs`, `scripts/test.sh`): a
/// name with a `/`, ending in `.rs` or `.sh`.
fn source_paths(text: &str) -> Vec<String> {
    [".rs", ".sh"]
        .iter()
        .flat_map(|ext| names_ending_in(text, ext))
        .filter(|n| n.contains('/') && !n.starts_with('/') && !n.contains("://"))
        .collect()
}

/// Relative targets of markdown links `[text](target)` in a document.
fn md_links(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (i, _) in text.match_indices("](") {
        let rest = &text[i + 2..];
        let Some(end) = rest.find(')') else { continue };
        let target = rest[..end].split('#').next().unwrap_or("");
        if !target.is_empty() && !target.contains("://") && !target.starts_with("mailto:") {
            out.push(target.to_string());
        }
    }
    out
}

fn resolves(root: &Path, from: &Path, name: &str) -> bool {
    let dir = from.parent().unwrap();
    // `tests/write_ack.rs` is the tests crate's test file tests/tests/write_ack.rs
    let mut places = vec![dir.to_path_buf(), root.to_path_buf(), root.join("tests")];
    if !name.contains('/') {
        places.push(root.join("docs"));
        for e in std::fs::read_dir(root.join("docs")).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                places.push(p);
            }
        }
    }
    places.iter().any(|p| p.join(name).exists())
}

#[test]
fn every_cited_document_is_in_the_repository() {
    let root = root();
    let mut files = Vec::new();
    cited_from(&root, &mut files);
    assert!(files.len() > 100, "only {} files read", files.len());
    let mut cited = 0;
    let mut missing = Vec::new();
    // this file's own examples name real documents, so it is read like any other
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let mut names = md_names(&text);
        if f.extension().is_some_and(|x| x == "md") {
            names.extend(md_links(&text));
            names.extend(source_paths(&text));
        }
        for name in names {
            cited += 1;
            if !resolves(&root, f, &name) {
                let rel = f.strip_prefix(&root).unwrap_or(f);
                missing.push(format!("{} cites {name}", rel.display()));
            }
        }
    }
    assert!(cited > 100, "only {cited} citations found");
    assert!(
        missing.is_empty(),
        "not in the repository:\n{}",
        missing.join("\n")
    );
}

#[test]
fn the_documentation_index_links_every_page() {
    let root = root();
    let index = std::fs::read_to_string(root.join("docs/README.md")).unwrap();
    let linked = md_links(&index);
    let mut unlinked = Vec::new();
    for dir in ["docs", "docs/decisions", "docs/protocol"] {
        for e in std::fs::read_dir(root.join(dir)).unwrap() {
            let p = e.unwrap().path();
            let rel = p
                .strip_prefix(root.join("docs"))
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if rel.ends_with(".md") && rel != "README.md" && !linked.contains(&rel) {
                unlinked.push(rel);
            }
        }
    }
    assert!(
        unlinked.is_empty(),
        "docs/README.md does not link {unlinked:?}"
    );
}

#[test]
fn names_and_links_are_found_in_text() {
    assert_eq!(
        md_names("see docs/protocol/cluster-protocol.md 2.13, and copies.md. Not copies.mdx"),
        ["docs/protocol/cluster-protocol.md", "copies.md"]
    );
    assert_eq!(
        md_links(
            "[a](docs/decisions/epoll-workers.md#why) [b](https://github.com/happyfish100/fastdfs)"
        ),
        ["docs/decisions/epoll-workers.md"]
    );
}
