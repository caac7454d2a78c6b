//! Compression layers found by their magic anywhere in a buffer (gzip, zstd, xz, bzip2) or at its start (zlib,
//! raw deflate): flate2, zstd, lzma-rs and bzip2 decode them, each capped at the child cap.

use std::io::{Read, Write};

use memchr::memmem;

use super::graph::Cx;
use super::Child;

const GZIP: &[u8] = &[0x1f, 0x8b, 0x08];
const ZSTD: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];
const XZ: &[u8] = &[0xfd, b'7', b'z', b'X', b'Z', 0x00];
/// `BZh` + block size digit, then the block magic (pi).
const BZIP2_BLOCK: &[u8] = &[0x31, 0x41, 0x59, 0x26, 0x53, 0x59];
/// Occurrences of one magic opened per buffer at most.
const MAX_PER_MAGIC: usize = 16;

/// Reads `r` to its end or to `cap` bytes; returns the bytes and whether the cap cut them.
fn read_capped(r: impl Read, cap: usize) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let limit = u64::try_from(cap).unwrap_or(u64::MAX).saturating_add(1);
    let _ = r.take(limit).read_to_end(&mut out);
    if out.len() > cap {
        out.truncate(cap);
        (out, true)
    } else {
        (out, false)
    }
}

fn each<'a>(hay: &'a [u8], magic: &'a [u8]) -> impl Iterator<Item = usize> + 'a {
    memmem::find_iter(hay, magic).take(MAX_PER_MAGIC)
}

fn push(out: &mut Vec<Child>, label: &str, (bytes, truncated): (Vec<u8>, bool), cx: &mut Cx<'_>) {
    cx.truncated |= truncated;
    if !bytes.is_empty() {
        out.push(Child {
            label: label.to_string(),
            field: None,
            bytes,
        });
    }
}

fn some(v: Vec<Child>) -> Option<Vec<Child>> {
    (!v.is_empty()).then_some(v)
}

/// gzip members starting anywhere. Bytes after a member that starts the input, and that are not another member,
/// are a child of their own (`gzip-trailer`): the input's gzip magic (which keeps it from being judged
/// ciphertext, `opaque::classify`) accounts for the member only, so what was appended is searched and judged.
pub fn gzip(b: &[u8], cx: &mut Cx<'_>) -> Option<Vec<Child>> {
    let mut out = Vec::new();
    for at in each(b, GZIP) {
        let mut d = flate2::bufread::GzDecoder::new(b.get(at..)?);
        let r = read_capped(&mut d, cx.cap);
        let complete = !r.1 && !r.0.is_empty();
        let rest = d.get_ref();
        push(&mut out, "gzip", r, cx);
        if at == 0 && complete && rest.len() > 4 && !rest.starts_with(GZIP) {
            out.push(Child {
                label: "gzip-trailer".into(),
                field: None,
                bytes: rest.to_vec(),
            });
        }
    }
    some(out)
}

/// A zlib stream at the start (valid header check).
pub fn zlib(b: &[u8], cx: &mut Cx<'_>) -> Option<Vec<Child>> {
    let (&cmf, &flg) = (b.first()?, b.get(1)?);
    if cmf & 0x0f != 8 || cmf >> 4 > 7 || (u16::from(cmf) * 256 + u16::from(flg)) % 31 != 0 {
        return None;
    }
    let mut out = Vec::new();
    let mut d = flate2::read::ZlibDecoder::new(b);
    let decoded = read_capped(&mut d, cx.cap);
    let used = usize::try_from(d.total_in()).unwrap_or(usize::MAX);
    let complete = !decoded.1;
    push(&mut out, "zlib", decoded, cx);
    // Bytes after the end of the stream are a child of their own (`zlib-trailer`): the zlib layer accounts
    // for its parent only up to there, so what was appended is searched and judged on its own.
    if let Some(rest) = b
        .get(used..)
        .filter(|r| complete && !out.is_empty() && r.len() > 4)
    {
        out.push(Child {
            label: "zlib-trailer".into(),
            field: None,
            bytes: rest.to_vec(),
        });
    }
    some(out)
}

/// A raw deflate stream that is the whole buffer (binary-looking, decodes to its end).
pub fn deflate(b: &[u8], cx: &mut Cx<'_>) -> Option<Vec<Child>> {
    if b.len() < 8 {
        return None;
    }
    let head = b.get(..64).unwrap_or(b);
    let binary = head
        .iter()
        .filter(|&&c| c >= 0x80 || (c < 0x20 && !matches!(c, b'\t' | b'\r' | b'\n')))
        .count();
    if binary * 8 < head.len() {
        return None;
    }
    let mut d = flate2::Decompress::new(false);
    // Decoded into `out`'s spare room, grown 32 KiB at a time: most inputs tried here are not deflate and fail
    // in the first bytes, before any large buffer was touched.
    let mut out: Vec<u8> = Vec::new();
    let mut input = b;
    loop {
        if out.len() >= cx.cap {
            out.truncate(cx.cap);
            cx.truncated = true;
            break;
        }
        out.reserve((cx.cap - out.len()).min(32 << 10));
        let before_in = d.total_in();
        let before_out = out.len();
        let status = d
            .decompress_vec(input, &mut out, flate2::FlushDecompress::None)
            .ok()?;
        let used = usize::try_from(d.total_in() - before_in).ok()?;
        let made = out.len() - before_out;
        input = input.get(used..)?;
        match status {
            flate2::Status::StreamEnd => break,
            _ if used == 0 && made == 0 => return None, // input ended before the stream did
            _ => {}
        }
    }
    if out.len() > cx.cap {
        out.truncate(cx.cap);
        cx.truncated = true;
    }
    // The stream must account for (nearly) the whole buffer: random bytes rarely form one.
    if input.len() > 8 || out.is_empty() {
        return None;
    }
    Some(vec![Child {
        label: "deflate".into(),
        field: None,
        bytes: out,
    }])
}

/// zstd frames starting anywhere.
pub fn zstd(b: &[u8], cx: &mut Cx<'_>) -> Option<Vec<Child>> {
    let mut out = Vec::new();
    for at in each(b, ZSTD) {
        let Ok(dec) = zstd::stream::read::Decoder::new(b.get(at..)?) else {
            continue;
        };
        push(&mut out, "zstd", read_capped(dec, cx.cap), cx);
    }
    some(out)
}

/// A writer that stops at a cap (lzma-rs writes into it).
struct CappedWriter {
    out: Vec<u8>,
    cap: usize,
    hit: bool,
}

impl Write for CappedWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let room = self.cap.saturating_sub(self.out.len());
        if room == 0 {
            self.hit = true;
            return Err(std::io::Error::other("cap"));
        }
        let n = buf.len().min(room);
        self.out.extend_from_slice(buf.get(..n).unwrap_or_default());
        if n < buf.len() {
            self.hit = true;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// xz streams starting anywhere (lzma-rs keeps what it decoded before an error).
pub fn xz(b: &[u8], cx: &mut Cx<'_>) -> Option<Vec<Child>> {
    let mut out = Vec::new();
    for at in each(b, XZ) {
        let mut w = CappedWriter {
            out: Vec::new(),
            cap: cx.cap,
            hit: false,
        };
        let mut r = std::io::BufReader::new(b.get(at..)?);
        let _ = lzma_rs::xz_decompress(&mut r, &mut w);
        push(&mut out, "xz", (w.out, w.hit), cx);
    }
    some(out)
}

/// bzip2 streams starting anywhere (`BZh1`..`BZh9` followed by the block magic).
pub fn bzip2(b: &[u8], cx: &mut Cx<'_>) -> Option<Vec<Child>> {
    let mut out = Vec::new();
    for at in each(b, BZIP2_BLOCK) {
        let Some(start) = at.checked_sub(4) else {
            continue;
        };
        let head = b.get(start..at)?;
        if !(head.starts_with(b"BZh") && matches!(head.get(3), Some(b'1'..=b'9'))) {
            continue;
        }
        let r = read_capped(bzip2::read::BzDecoder::new(b.get(start..)?), cx.cap);
        push(&mut out, "bzip2", r, cx);
    }
    some(out)
}

/// Whether `b` starts with a compression or archive magic.
pub fn has_magic(b: &[u8]) -> bool {
    [GZIP, ZSTD, XZ, b"BZh", b"PK\x03\x04"]
        .iter()
        .any(|m| b.starts_with(m))
        || (b.len() > 262 && b.get(257..262) == Some(b"ustar"))
}

/// Whether a compression or archive magic occurs anywhere in `b`.
pub fn find_magic(b: &[u8]) -> bool {
    [GZIP, ZSTD, XZ, BZIP2_BLOCK, b"PK\x03\x04"]
        .iter()
        .any(|m| memmem::find(b, m).is_some())
}
