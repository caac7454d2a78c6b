//! Containers: multipart bodies (each part with its own headers: name, transfer and content encodings), zip
//! members (the zip crate's streaming reader over local headers, in memory) and tar members (the tar crate).
//!
//! Multipart is split by hand with memchr: the crates that exist (`multer`, `multipart`) are async or tied to
//! a server framework's request types, and the job here is only to cut a complete in-memory body at its
//! boundary lines and read each part's few headers.

use std::io::{Cursor, Read};

use memchr::memmem;

use super::graph::{Cx, Hint};
use super::Child;

/// Parts read per multipart body at most: one past what the graph opens, so that a cut shows there as children
/// past its limit (`graph::MAX_CHILDREN`).
const MAX_PARTS: usize = super::graph::MAX_CHILDREN + 1;
/// Members read per archive at most (as [`MAX_PARTS`]).
const MAX_MEMBERS: usize = super::graph::MAX_CHILDREN + 1;

/// The boundary named by a Content-Type's `boundary=` parameter.
fn boundary_param(ct: &str) -> Option<&str> {
    let lower = ct.to_ascii_lowercase();
    if !lower.starts_with("multipart/") {
        return None;
    }
    let at = lower.find("boundary=")? + "boundary=".len();
    let rest = ct.get(at..)?;
    let v = rest.split(';').next()?.trim().trim_matches('"');
    (!v.is_empty() && v.len() <= 200).then_some(v)
}

/// The boundary a body starts with (`--boundary` on the first non-empty line).
fn sniff_boundary(b: &[u8]) -> Option<&[u8]> {
    let start = b.iter().position(|&c| c != b'\r' && c != b'\n')?;
    let b = b.get(start..)?;
    if !b.starts_with(b"--") {
        return None;
    }
    let line_end = memchr::memchr(b'\n', b)?;
    let line = b.get(2..line_end)?;
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let ok = (1..=200).contains(&line.len())
        && line.iter().all(|&c| c.is_ascii_graphic() || c == b' ')
        && !line.ends_with(b"--");
    ok.then_some(line)
}

/// One part of a multipart body: its headers and its body, as ranges of the whole body.
struct PartSpan {
    headers: std::ops::Range<usize>,
    body: std::ops::Range<usize>,
}

/// The boundary of a multipart body: the Content-Type's `boundary=` parameter, else the body's first line.
fn boundary_of<'a>(b: &'a [u8], content_type: Option<&'a str>) -> Option<&'a [u8]> {
    match content_type.and_then(boundary_param) {
        Some(h) => Some(h.as_bytes()),
        None => sniff_boundary(b),
    }
}

/// Cuts a multipart body at its delimiter lines (at most [`MAX_PARTS`] parts; what follows the last one read
/// is the epilogue). After a delimiter: the rest of its line; then the part's headers up to a blank line
/// (none when there is no blank line); before the next delimiter: a line break.
fn split_parts(b: &[u8], boundary: &[u8]) -> (Vec<PartSpan>, bool) {
    let mut delim = b"--".to_vec();
    delim.extend_from_slice(boundary);
    let finder = memmem::Finder::new(&delim);
    let positions: Vec<usize> = finder.find_iter(b).take(MAX_PARTS + 1).collect();
    // The delimiters past the cap were never looked at.
    let cut = positions.len() > MAX_PARTS;
    let mut out = Vec::new();
    for w in positions.windows(2) {
        let (a, z) = (w[0] + delim.len(), w[1]);
        let Some(part) = b.get(a..z) else {
            continue;
        };
        let Some(nl) = memchr::memchr(b'\n', part) else {
            continue;
        };
        let start = a + nl + 1;
        let part = b.get(start..z).unwrap_or_default();
        let len = part
            .strip_suffix(b"\r\n")
            .or_else(|| part.strip_suffix(b"\n"))
            .unwrap_or(part)
            .len();
        let part = part.get(..len).unwrap_or_default();
        let (headers, body) = match memmem::find(part, b"\r\n\r\n") {
            Some(h) => (0..h, h + 4..len),
            None => match memmem::find(part, b"\n\n") {
                Some(h) => (0..h, h + 2..len),
                None => (0..0, 0..len),
            },
        };
        out.push(PartSpan {
            headers: start + headers.start..start + headers.end,
            body: start + body.start..start + body.end,
        });
    }
    (out, cut)
}

/// The bytes of a multipart body that are in no part's body: the preamble, the delimiter lines, every part's
/// headers, the epilogue and whatever follows the last part read. A body without a boundary is all residue.
/// Used by the analysis to judge these bytes for an encrypted payload: a multipart body is judged part by part
/// (see `analysis::units`), so ciphertext put between the parts, or under a multipart Content-Type that does
/// not frame anything, must still be seen.
pub fn multipart_residue<'a>(b: &'a [u8], content_type: Option<&str>) -> Vec<&'a [u8]> {
    let Some(boundary) = boundary_of(b, content_type) else {
        return vec![b];
    };
    let mut out = Vec::new();
    let mut at = 0;
    for p in split_parts(b, boundary).0 {
        if let Some(gap) = b.get(at..p.body.start).filter(|g| !g.is_empty()) {
            out.push(gap);
        }
        at = p.body.end.max(at);
    }
    if let Some(rest) = b.get(at..).filter(|r| !r.is_empty()) {
        out.push(rest);
    }
    out
}

/// A multipart body (by the Content-Type hint's boundary, or by its first line): one child per part, labelled
/// `multipart[NAME]` (the Content-Disposition name, else the file name, else the part's index).
pub fn multipart(b: &[u8], cx: &mut Cx<'_>) -> Option<Vec<Child>> {
    let hint = match cx.hint {
        Hint::ContentType(ct) => Some(ct),
        _ => None,
    };
    let boundary = boundary_of(b, hint)?;
    let mut out = Vec::new();
    let (parts, cut) = split_parts(b, boundary);
    cx.exceeded |= cut;
    for (i, p) in parts.into_iter().enumerate() {
        let headers = b.get(p.headers).unwrap_or_default();
        let body = b.get(p.body).unwrap_or_default();
        let mut name = None;
        let mut filename = None;
        let mut encoding = None;
        for line in String::from_utf8_lossy(headers).lines() {
            let Some((k, v)) = line.split_once(':') else {
                continue;
            };
            let k = k.trim().to_ascii_lowercase();
            if k == "content-disposition" {
                name = param(v, "name");
                filename = param(v, "filename");
            } else if k == "content-encoding" {
                encoding = Some(v.trim().to_ascii_lowercase());
            }
        }
        let label_name = name
            .clone()
            .or_else(|| filename.clone())
            .unwrap_or_else(|| i.to_string());
        let mut bytes = body.to_vec();
        let mut label = format!("multipart[{label_name}]");
        if encoding.as_deref() == Some("br") {
            // Brotli has no magic: opened only where a part declares it.
            let mut dec = Vec::new();
            let r = brotli_decompressor::Decompressor::new(body, 4096);
            let limit = u64::try_from(cx.cap).unwrap_or(u64::MAX).saturating_add(1);
            if r.take(limit).read_to_end(&mut dec).is_ok() || !dec.is_empty() {
                if dec.len() > cx.cap {
                    dec.truncate(cx.cap);
                    cx.truncated = true;
                }
                bytes = dec;
                label.push_str(">br");
            }
        }
        out.push(Child {
            label,
            field: Some(match filename {
                Some(f) if name.is_some() => format!("{label_name}({f})"),
                _ => label_name,
            }),
            bytes,
        });
    }
    (!out.is_empty()).then_some(out)
}

/// A parameter of a header value (`name="x"`, `filename=y`), not matching `filename` for `name`.
fn param(v: &str, key: &str) -> Option<String> {
    for p in v.split(';') {
        let Some((k, val)) = p.split_once('=') else {
            continue;
        };
        if k.trim().eq_ignore_ascii_case(key) {
            return Some(val.trim().trim_matches('"').chars().take(128).collect());
        }
    }
    None
}

/// zip members, from the first local file header on (streaming reader: no central directory needed, so a
/// truncated archive still yields its complete members).
pub fn zip(b: &[u8], cx: &mut Cx<'_>) -> Option<Vec<Child>> {
    let at = memmem::find(b, b"PK\x03\x04")?;
    let mut r = Cursor::new(b.get(at..)?);
    let mut out = Vec::new();
    for n in 0..=MAX_MEMBERS {
        if n == MAX_MEMBERS {
            // Members past the cap are not read: the archive is reported.
            cx.exceeded = true;
            break;
        }
        let Ok(Some(mut f)) = ::zip::read::read_zipfile_from_stream(&mut r) else {
            break;
        };
        let name: String = f.name().chars().take(128).collect();
        let mut data = Vec::new();
        let limit = u64::try_from(cx.cap).unwrap_or(u64::MAX).saturating_add(1);
        let _ = (&mut f).take(limit).read_to_end(&mut data);
        if data.len() > cx.cap {
            data.truncate(cx.cap);
            cx.truncated = true;
        }
        drop(f);
        out.push(Child {
            label: format!("zip[{name}]"),
            field: Some(name),
            bytes: data,
        });
    }
    (!out.is_empty()).then_some(out)
}

/// tar members (a ustar header at the start).
pub fn tar(b: &[u8], cx: &mut Cx<'_>) -> Option<Vec<Child>> {
    if b.get(257..262) != Some(b"ustar") {
        return None;
    }
    let mut a = ::tar::Archive::new(b);
    let mut out = Vec::new();
    let mut entries = a.entries().ok()?;
    for e in entries.by_ref().take(MAX_MEMBERS) {
        let Ok(mut e) = e else {
            break;
        };
        let name: String = e
            .path()
            .map(|p| p.to_string_lossy().chars().take(128).collect())
            .unwrap_or_default();
        let mut data = Vec::new();
        let limit = u64::try_from(cx.cap).unwrap_or(u64::MAX).saturating_add(1);
        let _ = (&mut e).take(limit).read_to_end(&mut data);
        if data.len() > cx.cap {
            data.truncate(cx.cap);
            cx.truncated = true;
        }
        out.push(Child {
            label: format!("tar[{name}]"),
            field: Some(name),
            bytes: data,
        });
    }
    if entries.next().is_some() {
        // Members past the cap are not read: the archive is reported.
        cx.exceeded = true;
    }
    (!out.is_empty()).then_some(out)
}
