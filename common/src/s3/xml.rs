//! The XML S3 answers with: a small writer (every document S3 sends is elements and text, no
//! attributes but the namespace on the root) and the error document.

/// S3's namespace, on the root element of every answer.
pub const NAMESPACE: &str = "http://s3.amazonaws.com/doc/2006-03-01/";

/// `s` as XML text: the five markup characters as entities, and the control characters XML 1.0
/// cannot carry as character references (a key may hold any byte S3 allows).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {
                out.push_str(&format!("&#x{:X};", c as u32))
            }
            '\r' => out.push_str("&#xD;"),
            c => out.push(c),
        }
    }
    out
}

/// A document being written.
pub struct Xml {
    out: String,
}

impl Xml {
    /// A document whose root is `root` (in S3's namespace).
    pub fn new(root: &str) -> Xml {
        Xml {
            out: format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{root} xmlns=\"{NAMESPACE}\">"
            ),
        }
    }

    /// A document whose root carries no namespace (S3's error document).
    pub fn plain(root: &str) -> Xml {
        Xml {
            out: format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{root}>"),
        }
    }

    pub fn open(&mut self, tag: &str) -> &mut Xml {
        self.out.push('<');
        self.out.push_str(tag);
        self.out.push('>');
        self
    }

    pub fn close(&mut self, tag: &str) -> &mut Xml {
        self.out.push_str("</");
        self.out.push_str(tag);
        self.out.push('>');
        self
    }

    /// `<tag>text</tag>`, the text escaped.
    pub fn elem(&mut self, tag: &str, text: impl AsRef<str>) -> &mut Xml {
        self.open(tag);
        self.out.push_str(&escape(text.as_ref()));
        self.close(tag)
    }

    /// The document, its root closed.
    pub fn finish(mut self, root: &str) -> String {
        self.close(root);
        self.out
    }
}

/// S3's error document.
pub fn error_document(code: &str, message: &str, resource: &str, request_id: &str) -> String {
    let mut x = Xml::plain("Error");
    x.elem("Code", code)
        .elem("Message", message)
        .elem("Resource", resource)
        .elem("RequestId", request_id);
    x.finish("Error")
}

/// The texts of every `<tag>` element of `doc`, unescaped (for the few request documents
/// S3 clients send: DeleteObjects, CompleteMultipartUpload, CreateBucketConfiguration).
pub fn all_texts<'a>(doc: &'a str, tag: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut out = Vec::new();
    let mut rest: &'a str = doc;
    while let Some(a) = rest.find(&open) {
        let after = &rest[a + open.len()..];
        let Some(b) = after.find(&close) else { break };
        out.push(unescape(&after[..b]));
        rest = &after[b + close.len()..];
    }
    out
}

/// XML text back to characters: the five entities and numeric references.
pub fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let Some(end) = tail.find(';') else {
            out.push_str(tail);
            return out;
        };
        let ent = &tail[1..end];
        let c = match ent {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => ent
                .strip_prefix("#x")
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| ent.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match c {
            Some(c) => {
                out.push(c);
                rest = &tail[end + 1..];
            }
            None => {
                out.push('&');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// A unix time as S3's documents write times (`2026-12-08T01:02:03.000Z`).
pub fn iso8601(ts: i64) -> String {
    chrono::DateTime::from_timestamp(ts, 0)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S.000Z")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_escapes_and_reads_back() {
        let key = "a&b <c> \"d\" 'e' é\u{1}\r";
        let esc = escape(key);
        assert_eq!(
            esc,
            "a&amp;b &lt;c&gt; &quot;d&quot; &apos;e&apos; é&#x1;&#xD;"
        );
        assert_eq!(unescape(&esc), key);
    }

    #[test]
    fn a_document_is_written_and_its_elements_read() {
        let mut x = Xml::new("Delete");
        x.open("Object").elem("Key", "x&y").close("Object");
        x.open("Object").elem("Key", "z").close("Object");
        let doc = x.finish("Delete");
        assert!(doc.starts_with("<?xml"));
        assert_eq!(all_texts(&doc, "Key"), vec!["x&y", "z"]);
        let e = error_document("NoSuchKey", "gone", "/b/k", "1");
        assert!(e.contains("<Code>NoSuchKey</Code>"));
    }
}
