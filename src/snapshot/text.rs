//! The text form of a privacy snapshot: an insta-compatible `.snap` file.
//!
//! A file is insta's header — a YAML mapping between two `---` lines, here with `source` (the
//! scenario file) and `expression` (what the snapshot is of) — then the body, then one newline.
//! That is byte for byte what insta's `Snapshot::save` writes for the same metadata and contents
//! (scalars quoted exactly when insta's YAML emitter quotes them, the body without trailing
//! whitespace), so `cargo insta accept`, which re-saves a pending snapshot, leaves it unchanged.
//!
//! The body has one fact per line, indented by two spaces per level:
//!
//! ```text
//! phase consent_declined
//!   lookup sync.kestrel.example
//!   to sync.kestrel.example  upload <1KiB
//!     http POST /v2/sync
//!       contacts[0]  sha1>hex
//!       imei  base64
//!     tls
//!       email  raw  received
//! ```
//!
//! * `phase NAME` — phases in run order, a blank line between them;
//! * `lookup NAME` — a DNS name asked for in that phase;
//! * `to DESTINATION [upload BUCKET] [unread REASON,…]` — a destination, with the bucket of its largest
//!   upload and the reasons of what the device sent there that telltale could not read;
//! * `PROTOCOL [METHOD PATH[?KEY&KEY…]]` — a protocol or an HTTP request to it;
//! * `CANARY ENCODING [received]` — a canary found there (`received`: in what the server sent).
//!
//! Every value is one token (whitespace escaped as `%XX`). Blank lines and lines starting with
//! `#` are ignored when reading.

use thiserror::Error;

use super::normalize::UploadBucket;
use super::{CanaryUse, Channel, ChannelSnapshot, PhaseSnapshot, PrivacySnapshot, RequestLine};

/// Longest excerpt of an offending line kept in an error.
const EXCERPT: usize = 120;
/// What a line at the destination level may be.
const TO_LINE: &str =
    "expected `lookup NAME` or `to DESTINATION [upload BUCKET] [unread REASON,REASON…]`";

/// A snapshot file or body that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SnapError {
    /// The text does not start with a `---` line.
    #[error("not a snapshot file: the first line must be `---`")]
    MissingHeader,
    /// No `---` line closes the header.
    #[error("the snapshot header is not closed by a second `---` line")]
    UnterminatedHeader,
    /// The header is not a YAML mapping.
    #[error("invalid snapshot header: {0}")]
    BadHeader(String),
    /// A body line that does not fit the format.
    #[error("line {line}: {reason}: `{text}`")]
    BadLine {
        /// 1-based line number (in the file when read from a file, else in the body).
        line: usize,
        /// What is wrong.
        reason: &'static str,
        /// The line (cut to 120 characters).
        text: String,
    },
}

/// A `.snap` file read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapFile {
    /// `source:` of the header.
    pub source: Option<String>,
    /// `expression:` of the header.
    pub expression: Option<String>,
    /// The body, as insta reads it (lines joined by `\n`, trailing whitespace removed).
    pub body: String,
    /// 1-based line number of the body's first line in the file.
    pub body_line: usize,
}

impl SnapFile {
    /// Reads a `.snap` file's text the way insta does (new-style header only).
    pub fn parse(text: &str) -> Result<SnapFile, SnapError> {
        let mut lines = text.lines();
        match lines.next() {
            Some(first) if first.trim_end() == "---" => {}
            _ => return Err(SnapError::MissingHeader),
        }
        let mut header = String::new();
        let mut closed = false;
        let mut body_line = 2usize;
        for line in lines.by_ref() {
            body_line = body_line.saturating_add(1);
            if line.trim_end() == "---" {
                closed = true;
                break;
            }
            header.push_str(line);
            header.push('\n');
        }
        if !closed {
            return Err(SnapError::UnterminatedHeader);
        }
        let value: serde_yaml::Value =
            serde_yaml::from_str(&header).map_err(|e| SnapError::BadHeader(e.to_string()))?;
        let map = value
            .as_mapping()
            .ok_or_else(|| SnapError::BadHeader("the header is not a mapping".to_string()))?;
        let field = |k: &str| map.get(k).and_then(|v| v.as_str()).map(str::to_string);
        let body = lines.collect::<Vec<&str>>().join("\n");
        Ok(SnapFile {
            source: field("source"),
            expression: field("expression"),
            body: body.trim_end().to_string(),
            body_line,
        })
    }

    /// The snapshot in the body (line numbers in errors are the file's).
    pub fn snapshot(&self) -> Result<PrivacySnapshot, SnapError> {
        parse_body_at(&self.body, self.body_line.saturating_sub(1))
    }
}

/// The body of a `.snap` file's text.
pub fn parse_snap(text: &str) -> Result<String, SnapError> {
    SnapFile::parse(text).map(|f| f.body)
}

/// insta's header for these fields.
pub fn render_header(source: &str, expression: &str) -> String {
    format!(
        "---\nsource: {}\nexpression: {}\n---\n",
        yaml_scalar(source),
        yaml_scalar(expression)
    )
}

impl PrivacySnapshot {
    /// The complete `.snap` text: insta's header (`source:` the scenario file, `expression:`
    /// [`PrivacySnapshot::expression`]) and the body.
    pub fn render(&self, scenario_file: &str) -> String {
        let mut out = render_header(scenario_file, &self.expression());
        out.push_str(self.render_body().trim_end());
        out.push('\n');
        out
    }

    /// The header's `expression`: `privacy snapshot of <scenario>[@<release>]`.
    pub fn expression(&self) -> String {
        let label = self.label();
        if label.is_empty() {
            "privacy snapshot".to_string()
        } else {
            format!("privacy snapshot of {label}")
        }
    }

    /// The body: one fact per line (see the module documentation), ending in a newline.
    pub fn render_body(&self) -> String {
        let mut out = String::new();
        for (i, p) in self.phases.iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            out.push_str(&format!("phase {}\n", p.name));
            for l in &p.lookups {
                out.push_str(&format!("  lookup {l}\n"));
            }
            for (name, d) in &p.destinations {
                out.push_str(&format!("  to {name}"));
                if let Some(u) = d.upload {
                    out.push_str(&format!("  upload {u}"));
                }
                if !d.unread.is_empty() {
                    let reasons: Vec<&str> = d.unread.iter().map(String::as_str).collect();
                    out.push_str(&format!("  unread {}", reasons.join(",")));
                }
                out.push('\n');
                for (ch, facts) in &d.channels {
                    out.push_str(&format!("    {}", channel_line(ch, facts)));
                    out.push('\n');
                    for c in &facts.canaries {
                        out.push_str(&format!("      {}  {}", c.canary, c.encoding));
                        if c.received {
                            out.push_str("  received");
                        }
                        out.push('\n');
                    }
                }
            }
        }
        out
    }

    /// Reads a body written by [`PrivacySnapshot::render_body`] (or edited by hand). The
    /// result has no scenario name.
    pub fn parse_body(body: &str) -> Result<PrivacySnapshot, SnapError> {
        parse_body_at(body, 0)
    }
}

/// `http POST /v2/sync?a&b`, `tls`.
fn channel_line(ch: &Channel, facts: &ChannelSnapshot) -> String {
    let mut s = ch.to_string();
    if !facts.query_keys.is_empty() {
        s.push('?');
        s.push_str(
            &facts
                .query_keys
                .iter()
                .cloned()
                .collect::<Vec<_>>()
                .join("&"),
        );
    }
    s
}

fn parse_body_at(body: &str, offset: usize) -> Result<PrivacySnapshot, SnapError> {
    let mut snap = PrivacySnapshot::default();
    // Where the next deeper line goes: phase index, destination, channel.
    let mut phase: Option<usize> = None;
    let mut dest: Option<String> = None;
    let mut channel: Option<Channel> = None;
    for (i, raw) in body.lines().enumerate() {
        let number = offset.saturating_add(i).saturating_add(1);
        let bad = |reason: &'static str| SnapError::BadLine {
            line: number,
            reason,
            text: raw.chars().take(EXCERPT).collect(),
        };
        let line = raw.trim_end();
        let content = line.trim_start_matches(' ');
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        if content.starts_with('\t') {
            return Err(bad("indentation must be spaces"));
        }
        let indent = line.len().saturating_sub(content.len());
        let t: Vec<&str> = content.split_whitespace().collect();
        match (indent, t.as_slice()) {
            (0, ["phase", name]) => {
                let at = match snap.phases.iter().position(|p| p.name == *name) {
                    Some(at) => at,
                    None => {
                        snap.phases.push(PhaseSnapshot {
                            name: name.to_string(),
                            ..PhaseSnapshot::default()
                        });
                        snap.phases.len().saturating_sub(1)
                    }
                };
                phase = Some(at);
                dest = None;
                channel = None;
            }
            (0, _) => return Err(bad("expected `phase NAME`")),
            (2, rest) => {
                let p = phase
                    .and_then(|at| snap.phases.get_mut(at))
                    .ok_or_else(|| bad("a line outside any phase"))?;
                channel = None;
                match rest {
                    ["lookup", name] => {
                        p.lookups.insert(name.to_string());
                        dest = None;
                    }
                    ["to", name, tail @ ..] if tail.len() % 2 == 0 && tail.len() <= 4 => {
                        let mut upload = None;
                        let mut unread = Vec::new();
                        for kv in tail.chunks(2) {
                            match kv {
                                ["upload", label] if upload.is_none() && unread.is_empty() => {
                                    upload = Some(
                                        UploadBucket::from_label(label)
                                            .ok_or_else(|| bad("unknown upload bucket"))?,
                                    );
                                }
                                ["unread", reasons] if unread.is_empty() => {
                                    unread = reasons
                                        .split(',')
                                        .filter(|r| !r.is_empty())
                                        .map(str::to_string)
                                        .collect();
                                }
                                _ => return Err(bad(TO_LINE)),
                            }
                        }
                        let d = p.destinations.entry(name.to_string()).or_default();
                        d.upload = d.upload.max(upload);
                        d.unread.extend(unread);
                        dest = Some(name.to_string());
                    }
                    _ => return Err(bad(TO_LINE)),
                }
            }
            (4, rest) => {
                let d = match (phase.and_then(|at| snap.phases.get_mut(at)), &dest) {
                    (Some(p), Some(name)) => p.destinations.get_mut(name),
                    _ => None,
                }
                .ok_or_else(|| bad("a protocol line outside any destination"))?;
                let (ch, keys) = match rest {
                    [protocol] => (
                        Channel {
                            protocol: protocol.to_string(),
                            request: None,
                        },
                        Vec::new(),
                    ),
                    [protocol, method, target] => {
                        let (path, keys) = match target.split_once('?') {
                            Some((p, q)) => (
                                p,
                                q.split('&')
                                    .filter(|k| !k.is_empty())
                                    .map(str::to_string)
                                    .collect(),
                            ),
                            None => (*target, Vec::new()),
                        };
                        (
                            Channel {
                                protocol: protocol.to_string(),
                                request: Some(RequestLine {
                                    method: method.to_string(),
                                    path: path.to_string(),
                                }),
                            },
                            keys,
                        )
                    }
                    _ => return Err(bad("expected `PROTOCOL [METHOD PATH]`")),
                };
                d.channels
                    .entry(ch.clone())
                    .or_default()
                    .query_keys
                    .extend(keys);
                channel = Some(ch);
            }
            (6, rest) => {
                let c = match (
                    phase.and_then(|at| snap.phases.get_mut(at)),
                    &dest,
                    &channel,
                ) {
                    (Some(p), Some(name), Some(ch)) => p
                        .destinations
                        .get_mut(name)
                        .and_then(|d| d.channels.get_mut(ch)),
                    _ => None,
                }
                .ok_or_else(|| bad("a canary line outside any protocol"))?;
                let (canary, encoding, received) = match rest {
                    [canary, encoding] => (canary, encoding, false),
                    [canary, encoding, "received"] => (canary, encoding, true),
                    _ => return Err(bad("expected `CANARY ENCODING [received]`")),
                };
                c.canaries.insert(CanaryUse {
                    canary: canary.to_string(),
                    encoding: encoding.to_string(),
                    received,
                });
            }
            _ => return Err(bad("unexpected indentation")),
        }
    }
    Ok(snap)
}

/// A YAML scalar as insta's emitter writes it: plain unless it needs quotes, then in double
/// quotes with JSON-style escapes. Control characters are replaced by `?` first (insta would
/// write some of them unquoted, which no YAML reader takes back).
pub fn yaml_scalar(value: &str) -> String {
    let v: String = value
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if !needs_quotes(&v) {
        return v;
    }
    let mut out = String::with_capacity(v.len().saturating_add(2));
    out.push('"');
    for c in v.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// insta's rule (its vendored YAML emitter's `need_quotes`), for values without control
/// characters.
fn needs_quotes(s: &str) -> bool {
    const WORDS: [&str; 22] = [
        "yes", "Yes", "YES", "no", "No", "NO", "True", "TRUE", "true", "False", "FALSE", "false",
        "on", "On", "ON", "off", "Off", "OFF", "null", "Null", "NULL", "~",
    ];
    s.is_empty()
        || s.starts_with(' ')
        || s.ends_with(' ')
        || s.starts_with(['&', '*', '?', '|', '-', '<', '>', '=', '!', '%', '@'])
        || s.contains([':', '{', '}', '[', ']', ',', '#', '`', '"', '\'', '\\'])
        || WORDS.contains(&s)
        || s.starts_with('.')
        || s.starts_with("0x")
        || s.parse::<i64>().is_ok()
        || s.parse::<f64>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::fixtures::v2_fix_like;

    #[test]
    fn render_writes_insta_header_then_body_and_one_newline() {
        let snap = PrivacySnapshot::from_run(&v2_fix_like(7, 0));
        let text = snap.render("scenarios/cloudsync-v2-fix.yaml");
        assert!(text.starts_with(
            "---\nsource: scenarios/cloudsync-v2-fix.yaml\nexpression: privacy snapshot of cloudsync-v2-fix@v2-fix\n---\nphase boot\n"
        ));
        assert!(text.ends_with("imei  base64\n"));
        assert!(!text.ends_with("\n\n"));
    }

    #[test]
    fn to_line_takes_upload_and_unread_in_order() {
        let s = PrivacySnapshot::parse_body(
            "phase a\n  to x  upload <1KiB  unread encrypted_payload,tls_ciphertext\n  to y  unread tcp_gap\n",
        )
        .unwrap();
        let p = s.phase("a").unwrap();
        let x = &p.destinations["x"];
        assert_eq!(x.upload, Some(UploadBucket::Under1KiB));
        assert_eq!(
            x.unread.iter().map(String::as_str).collect::<Vec<_>>(),
            ["encrypted_payload", "tls_ciphertext"]
        );
        assert_eq!(p.destinations["y"].upload, None);
        assert_eq!(s.render_body(), "phase a\n  to x  upload <1KiB  unread encrypted_payload,tls_ciphertext\n  to y  unread tcp_gap\n");
        for bad in [
            "phase a\n  to x  unread tcp_gap  upload <1KiB\n",
            "phase a\n  to x  upload\n",
            "phase a\n  to x  size <1KiB\n",
        ] {
            assert!(PrivacySnapshot::parse_body(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn snap_round_trip() {
        let snap = PrivacySnapshot::from_run(&v2_fix_like(7, 0));
        let text = snap.render("scenarios/cloudsync-v2-fix.yaml");
        let file = SnapFile::parse(&text).unwrap();
        assert_eq!(
            file.source.as_deref(),
            Some("scenarios/cloudsync-v2-fix.yaml")
        );
        assert_eq!(
            file.expression.as_deref(),
            Some("privacy snapshot of cloudsync-v2-fix@v2-fix")
        );
        assert_eq!(file.body_line, 5);
        assert_eq!(file.body, snap.render_body().trim_end());
        assert_eq!(parse_snap(&text).unwrap(), file.body);
        let back = file.snapshot().unwrap();
        assert_eq!(back.phases, snap.phases);
        assert_eq!(back.render_body(), snap.render_body());
    }

    #[test]
    fn reads_headers_insta_writes_for_pending_snapshots() {
        // insta's `.snap.new` carries `assertion_line`; its expressions are often quoted.
        let text = "---\nsource: tests/x.rs\nassertion_line: 12\nexpression: \"show(&[\\\"a\\\"])\"\n---\nphase boot\n";
        let f = SnapFile::parse(text).unwrap();
        assert_eq!(f.source.as_deref(), Some("tests/x.rs"));
        assert_eq!(f.expression.as_deref(), Some("show(&[\"a\"])"));
        assert_eq!(f.body, "phase boot");
        assert_eq!(f.body_line, 6);
    }

    #[test]
    fn crlf_and_trailing_whitespace_read_like_insta() {
        let text = "---\r\nsource: a.yaml\r\nexpression: x\r\n---\r\nphase boot\r\n  to a.example\r\n\r\n\r\n";
        let f = SnapFile::parse(text).unwrap();
        assert_eq!(f.source.as_deref(), Some("a.yaml"));
        assert_eq!(f.body, "phase boot\n  to a.example");
    }

    #[test]
    fn header_values_are_quoted_like_insta() {
        assert_eq!(yaml_scalar("scenarios/a.yaml"), "scenarios/a.yaml");
        assert_eq!(
            yaml_scalar("privacy snapshot of a@b"),
            "privacy snapshot of a@b"
        );
        assert_eq!(yaml_scalar("@odd.yaml"), "\"@odd.yaml\"");
        assert_eq!(yaml_scalar("a: b"), "\"a: b\"");
        assert_eq!(yaml_scalar("C:\\x\"y"), "\"C:\\\\x\\\"y\"");
        assert_eq!(yaml_scalar("123"), "\"123\"");
        assert_eq!(yaml_scalar("1.5"), "\"1.5\"");
        assert_eq!(yaml_scalar("true"), "\"true\"");
        assert_eq!(yaml_scalar(""), "\"\"");
        assert_eq!(yaml_scalar("a\nb"), "a?b");
        // Quoted values read back.
        let text = format!("{}phase boot\n", render_header("a: b.yaml", "x, y"));
        let f = SnapFile::parse(&text).unwrap();
        assert_eq!(f.source.as_deref(), Some("a: b.yaml"));
        assert_eq!(f.expression.as_deref(), Some("x, y"));
    }

    #[test]
    fn malformed_files_are_errors_not_panics() {
        assert_eq!(SnapFile::parse(""), Err(SnapError::MissingHeader));
        assert_eq!(
            SnapFile::parse("phase boot\n"),
            Err(SnapError::MissingHeader)
        );
        assert_eq!(
            SnapFile::parse("---\nsource: a\n"),
            Err(SnapError::UnterminatedHeader)
        );
        assert!(matches!(
            SnapFile::parse("---\n---\nphase boot\n"),
            Err(SnapError::BadHeader(_))
        ));
        assert!(matches!(
            SnapFile::parse("---\nsource: [a\n---\n"),
            Err(SnapError::BadHeader(_))
        ));
        // Errors in the body carry the file's line numbers.
        let e = SnapFile::parse("---\nsource: a\n---\nphase boot\n  bogus line here\n")
            .unwrap()
            .snapshot()
            .unwrap_err();
        assert!(matches!(e, SnapError::BadLine { line: 5, .. }), "{e:?}");
    }

    #[test]
    fn body_errors_name_the_problem() {
        let cases: [(&str, &str); 8] = [
            ("  to a.example\n", "a line outside any phase"),
            (
                "phase boot\n    http\n",
                "a protocol line outside any destination",
            ),
            (
                "phase boot\n  lookup a\n      imei  raw\n",
                "a canary line outside any protocol",
            ),
            (
                "phase boot\n  to a  upload <2KiB\n",
                "unknown upload bucket",
            ),
            ("phase boot\n   to a\n", "unexpected indentation"),
            ("phase boot\n\tto a\n", "indentation must be spaces"),
            ("phase\n", "expected `phase NAME`"),
            (
                "phase boot\n  to a\n    tls\n      imei  raw  sent\n",
                "expected `CANARY ENCODING [received]`",
            ),
        ];
        for (body, reason) in cases {
            match PrivacySnapshot::parse_body(body) {
                Err(SnapError::BadLine { reason: r, .. }) => assert_eq!(r, reason, "{body:?}"),
                other => panic!("{body:?}: {other:?}"),
            }
        }
        let long = format!("phase boot\n  {}\n", "x ".repeat(500));
        match PrivacySnapshot::parse_body(&long) {
            Err(SnapError::BadLine { text, line, .. }) => {
                assert_eq!(text.chars().count(), EXCERPT);
                assert_eq!(line, 2);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn hand_edited_bodies_merge_and_skip_comments() {
        let body = "# accepted 2026-06-11\nphase a\n  to x  upload <1KiB\n    http GET /p?k\n\nphase a\n  to x  upload <16KiB\n    http GET /p?j\n      imei  raw  received\n";
        let s = PrivacySnapshot::parse_body(body).unwrap();
        assert_eq!(s.phases.len(), 1);
        let d = &s.phases[0].destinations["x"];
        assert_eq!(d.upload, Some(UploadBucket::Under16KiB));
        let (ch, facts) = d.channels.iter().next().unwrap();
        assert_eq!(ch.to_string(), "http GET /p");
        assert_eq!(
            facts.query_keys.iter().cloned().collect::<Vec<_>>(),
            vec!["j", "k"]
        );
        assert!(facts.canaries.iter().all(|c| c.received));
        assert_eq!(
            s.render_body(),
            "phase a\n  to x  upload <16KiB\n    http GET /p?j&k\n      imei  raw  received\n"
        );
    }

    #[test]
    fn empty_snapshot_renders_and_reads_back() {
        let s = PrivacySnapshot::default();
        let text = s.render("s.yaml");
        assert_eq!(
            text,
            "---\nsource: s.yaml\nexpression: privacy snapshot\n---\n\n"
        );
        let f = SnapFile::parse(&text).unwrap();
        assert_eq!(f.body, "");
        assert!(f.snapshot().unwrap().phases.is_empty());
    }
}
