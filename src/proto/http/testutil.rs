//! Test helpers shared by the HTTP parser's unit tests: an owned mirror of [`HttpEvent`], a driver
//! that feeds a whole stream, event filters, and body encoders.

use std::io::Write;

use super::{Head, HeadKind, HttpEvent, HttpParser, Role};

// Test-only mirror of `HttpEvent`; size does not matter here.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Ev {
    Head(Head),
    Body {
        data: Vec<u8>,
        off: u64,
        wire: u64,
        layers: String,
    },
    End {
        wire: u64,
        decoded: u64,
        complete: bool,
        err: Option<String>,
        capped: bool,
    },
    Desync {
        off: u64,
        reason: String,
    },
}

pub(crate) fn own(ev: HttpEvent<'_>) -> Ev {
    match ev {
        HttpEvent::Head(h) => Ev::Head(h),
        HttpEvent::Body {
            decoded,
            decoded_offset,
            wire_offset,
            layers,
        } => Ev::Body {
            data: decoded.to_vec(),
            off: decoded_offset,
            wire: wire_offset,
            layers: layers.to_owned(),
        },
        HttpEvent::End {
            body_wire_len,
            body_decoded_len,
            complete,
            decode_error,
            decoded_capped,
        } => Ev::End {
            wire: body_wire_len,
            decoded: body_decoded_len,
            complete,
            err: decode_error,
            capped: decoded_capped,
        },
        HttpEvent::Desync {
            stream_offset,
            reason,
        } => Ev::Desync {
            off: stream_offset,
            reason,
        },
    }
}

pub(crate) fn feed(p: &mut HttpParser, data: &[u8], evs: &mut Vec<Ev>) {
    p.feed(data, &mut |e| evs.push(own(e)));
}

pub(crate) fn run(role: Role, data: &[u8], finish: bool) -> Vec<Ev> {
    let mut p = HttpParser::new(role);
    let mut evs = Vec::new();
    feed(&mut p, data, &mut evs);
    if finish {
        p.finish(&mut |e| evs.push(own(e)));
    }
    assert_eq!(p.offset(), data.len() as u64);
    evs
}

/// Merges consecutive Body events (checking that offsets are contiguous).
pub(crate) fn merged(evs: &[Ev]) -> Vec<Ev> {
    let mut out: Vec<Ev> = Vec::new();
    for e in evs {
        if let (
            Some(Ev::Body {
                data, off, layers, ..
            }),
            Ev::Body {
                data: d2,
                off: o2,
                layers: l2,
                ..
            },
        ) = (out.last_mut(), e)
        {
            assert_eq!(*off + data.len() as u64, *o2, "decoded offsets contiguous");
            assert_eq!(layers, l2);
            data.extend_from_slice(d2);
            continue;
        }
        let mut e = e.clone();
        if let Ev::Body { wire, .. } = &mut e {
            *wire = 0;
        }
        out.push(e);
    }
    out
}

pub(crate) fn heads(evs: &[Ev]) -> Vec<&Head> {
    evs.iter()
        .filter_map(|e| match e {
            Ev::Head(h) => Some(h),
            _ => None,
        })
        .collect()
}

pub(crate) fn bodies(evs: &[Ev]) -> Vec<(Vec<u8>, String)> {
    merged(evs)
        .into_iter()
        .filter_map(|e| match e {
            Ev::Body { data, layers, .. } => Some((data, layers)),
            _ => None,
        })
        .collect()
}

pub(crate) fn ends(evs: &[Ev]) -> Vec<(u64, u64, bool, Option<String>, bool)> {
    evs.iter()
        .filter_map(|e| match e {
            Ev::End {
                wire,
                decoded,
                complete,
                err,
                capped,
            } => Some((*wire, *decoded, *complete, err.clone(), *capped)),
            _ => None,
        })
        .collect()
}

pub(crate) fn desyncs(evs: &[Ev]) -> Vec<(u64, String)> {
    evs.iter()
        .filter_map(|e| match e {
            Ev::Desync { off, reason } => Some((*off, reason.clone())),
            _ => None,
        })
        .collect()
}

pub(crate) fn sample(n: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(n);
    let mut x: u32 = 12345;
    while v.len() < n {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        let words: [&[u8]; 5] = [
            b"imei=356938035643809 ",
            b"phone=+15551234567 ",
            b"contact ",
            b"alice ",
            b"\n",
        ];
        v.extend_from_slice(words[(x >> 16) as usize % words.len()]);
    }
    v.truncate(n);
    v
}

pub(crate) fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

pub(crate) fn deflate_raw(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

pub(crate) fn zlib(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

pub(crate) fn brotli_enc(data: &[u8]) -> Vec<u8> {
    let mut w = brotli::CompressorWriter::new(Vec::new(), 4096, 5, 22);
    w.write_all(data).unwrap();
    w.into_inner()
}

pub(crate) fn zstd_enc(data: &[u8]) -> Vec<u8> {
    zstd::encode_all(data, 3).unwrap()
}

pub(crate) fn chunk(body: &[u8], size: usize, ext: bool, trailers: &str) -> Vec<u8> {
    let mut v = Vec::new();
    for c in body.chunks(size) {
        if ext {
            v.extend_from_slice(format!("{:x};name=\"v\"\r\n", c.len()).as_bytes());
        } else {
            v.extend_from_slice(format!("{:X}\r\n", c.len()).as_bytes());
        }
        v.extend_from_slice(c);
        v.extend_from_slice(b"\r\n");
    }
    v.extend_from_slice(b"0\r\n");
    v.extend_from_slice(trailers.as_bytes());
    v.extend_from_slice(b"\r\n");
    v
}

pub(crate) fn response(headers: &str, body: &[u8]) -> Vec<u8> {
    let mut v = format!("HTTP/1.1 200 OK\r\n{headers}\r\n").into_bytes();
    v.extend_from_slice(body);
    v
}

pub(crate) fn request_heads(
    data: &[u8],
    finish: bool,
) -> Vec<(String, String, Option<String>, u8)> {
    heads(&run(Role::Client, data, finish))
        .into_iter()
        .filter_map(|h| match &h.kind {
            HeadKind::Request {
                method,
                target,
                version,
                ..
            } => Some((method.clone(), target.clone(), h.host.clone(), *version)),
            HeadKind::Response { .. } => None,
        })
        .collect()
}

pub(crate) fn req(
    m: &str,
    t: &str,
    host: Option<&str>,
    v: u8,
) -> (String, String, Option<String>, u8) {
    (m.to_owned(), t.to_owned(), host.map(str::to_owned), v)
}
