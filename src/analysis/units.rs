//! Searching one unit of readable bytes through the decoding graph ([`crate::layers::explore`]).
//!
//! A *unit* is a piece of bytes with a known place (flow, direction, protocol, field): a UDP or ICMP payload, a
//! decoded HTTP body, a header value, a query value, a DNS name, a window of an unknown TCP stream — and, from
//! other parsers, HTTP/2 header values and bodies, WebSocket and MQTT payloads, decrypted TLS. Every unit goes
//! through [`Analyzer::search_unit`]: the unit itself is searched (or was, by the caller's scan), then every layer
//! the graph opens is searched, and a canary is reported from a decoded layer only when its parent did not show
//! it already. Findings name the full chain, outermost first, ending with the matcher's form of the innermost
//! hit (`multipart[report]>gzip>raw`, `base64>zlib>raw`). What the graph left unopened (a budget, the
//! decompression cap, the depth limit on bytes that still look encoded) becomes an unread span.

use rustc_hash::FxHashMap;

use super::collect::{excerpt, Raw};
use super::{Analyzer, At};
use crate::layers::{self, Hint, Stop};
use crate::report::UnreadReason;

/// Units shorter than this are not explored (no layer fits a canary in fewer bytes).
const MIN_UNIT: usize = 8;

/// One unit of readable bytes and its place.
pub(super) struct Unit<'a> {
    pub flow: usize,
    pub dir: usize,
    pub protocol: &'static str,
    /// The field (`body`, `header:Cookie`, `query:id`, …); a decoded layer's own field path is appended.
    pub field: Option<&'a str>,
    /// Layers the caller already undid, outermost first (e.g. `h2>hpack`), prefixed to every chain.
    pub prefix: Option<&'a str>,
    /// What the HTTP layer decoded (`chunked+gzip`), for the finding's `decoded_from`.
    pub decoded_from: Option<&'a str>,
    /// HTTP method and path of the message the unit belongs to.
    pub http: Option<(String, String)>,
    pub bytes: &'a [u8],
    pub hint: Hint<'a>,
    pub at: At,
    /// Search and report the unit's own bytes too (false when the caller's scan did already).
    pub report_root: bool,
    /// Canaries already reported for these bytes.
    pub found: &'a [usize],
    /// The destination when it is not the flow's server (a DNS name's zone), for every finding of the unit.
    pub zone: Option<String>,
    /// How the unit's decoded layers are judged for an encrypted payload.
    pub judge: Judge,
}

/// How [`Analyzer::search_unit`] judges a unit for encrypted payloads (`layers::opaque`). Only the device's
/// direction (0) is judged: downloads are not leaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Judge {
    /// Every decoded layer that is opaque and that no decompressor opened (base64 of ciphertext in a JSON
    /// field, a hex blob of it in a header) is an unread span; the unit itself was judged by the caller.
    Layers,
    /// As `Layers`, and the unit itself is judged too (a unit no caller judges: an HTTP/2, WebSocket or MQTT
    /// message).
    Whole,
    /// A multipart upload the caller did not judge as a whole (`tcp::BodySniff`): as `Layers`, and the bytes
    /// in no part (preamble, part headers, epilogue, parts past the parser's limit, or the whole body when
    /// nothing is framed) are judged too.
    Parts,
    /// The caller reported the whole unit as an encrypted payload already: nothing more is judged.
    Done,
}

/// Whether a child labelled `label` shows that its parent `parent` is a compressed stream or an archive read
/// whole from its first byte: high entropy that was read, not ciphertext. Formats with a magic at the start
/// (gzip, zstd, xz, bzip2, zip) are never judged opaque ([`layers::opaque::classify`]), and their detectors find
/// them anywhere, so they exempt nothing here (ciphertext with a gzip stream appended is still ciphertext).
/// zlib opens only at offset 0 (bytes after its end are a `zlib-trailer` child, judged on their own), raw
/// deflate only when it decodes to the end, tar only with its `ustar` header where the parent starts. The label
/// is checked against the parent's bytes, so that a multipart part named `a>tar[b` proves nothing.
fn unpacks(label: &str, parent: &[u8]) -> bool {
    match label {
        "zlib" => parent.first() == Some(&0x78),
        "deflate" => true,
        l if l.starts_with("tar[") => parent.get(257..262) == Some(b"ustar"),
        _ => false,
    }
}

impl Analyzer {
    /// Searches a unit and every layer the decoding graph opens in it; returns the canaries reported.
    pub(super) fn search_unit(&mut self, u: Unit<'_>) -> Vec<usize> {
        let matcher = self.matcher.clone();
        let mut reported: Vec<usize> = Vec::new();
        let link = |form: &str, chain: &str| -> String {
            let mut s = String::new();
            for part in [u.prefix.unwrap_or(""), chain] {
                if !part.is_empty() {
                    s.push_str(part);
                    s.push('>');
                }
            }
            s.push_str(form);
            s
        };
        let mut raws: Vec<Raw> = Vec::new();
        let make =
            |canary: usize, encoding: String, field: Option<String>, ex: String, off: usize| Raw {
                flow: u.flow,
                canary,
                encoding,
                dir: u.dir,
                protocol: u.protocol,
                field,
                decoded_from: u.decoded_from.map(str::to_string),
                http: u.http.clone(),
                packet: u.at.packet,
                ts: u.at.ts,
                offset: off as u64,
                excerpt: ex,
                zone: u.zone.clone(),
            };
        let mut hits = Vec::new();
        // Canaries visible in the unit itself: computed now when reported, lazily otherwise (only when a layer
        // shows a canary), so that the path without layers costs no second search.
        let mut root: Option<Vec<usize>> = None;
        if u.report_root {
            matcher.find_all(u.bytes, &mut hits);
            let mut seen = u.found.to_vec();
            for h in &hits {
                if !u.found.contains(&h.canary) {
                    let enc = link(&h.encoding, "");
                    raws.push(make(
                        h.canary,
                        enc,
                        u.field.map(str::to_string),
                        excerpt(u.bytes, h.start, h.end),
                        h.start,
                    ));
                    reported.push(h.canary);
                }
                seen.push(h.canary);
            }
            root = Some(seen);
        }
        let mut explored = layers::Explored::default();
        let mut opaque_parts: Vec<(u64, layers::opaque::Opaque, String)> = Vec::new();
        let judge_layers = u.dir == 0 && u.judge != Judge::Done;
        let mut candidates: Vec<(usize, u64, layers::opaque::Opaque, String, Vec<u8>)> = Vec::new();
        let mut small_parts: Vec<u8> = Vec::new();
        // (parent, label) of every node: which layers opened which node.
        let mut unpacked: Vec<(usize, String)> = Vec::new();
        if u.bytes.len() >= MIN_UNIT {
            // The parent of every node, and the canaries each node showed (for the rule: reported from a layer
            // only when no ancestor showed the canary).
            let mut parent_of: FxHashMap<usize, usize> = FxHashMap::default();
            let mut shown: FxHashMap<usize, Vec<usize>> = FxHashMap::default();
            let mut budget = std::mem::take(&mut self.budget);
            explored = layers::explore(u.bytes, u.hint, &self.cfg.layers, &mut budget, &mut |n| {
                parent_of.insert(n.id, n.parent);
                // Decoded layers are judged for an encrypted payload (a multipart upload part by part, see
                // `tcp::BodySniff`); a candidate is dropped at the end if a decompressor opened it.
                if u.judge == Judge::Parts && n.depth == 1 && n.chain.starts_with("multipart[") {
                    // Parts too short to judge alone are judged together (ciphertext cut into small parts).
                    if (n.bytes.len() as u64) < layers::opaque::MIN_ENTROPY_LEN {
                        small_parts.extend_from_slice(n.bytes);
                    }
                }
                if judge_layers && n.depth >= 1 {
                    if let Some(o) = layers::opaque::classify(n.bytes) {
                        // The first bytes kept: what `unpacks` checks of a parent.
                        let head = n.bytes.get(..262).unwrap_or(n.bytes).to_vec();
                        candidates.push((n.id, n.bytes.len() as u64, o, n.chain.to_string(), head));
                    }
                }
                if let Some(label) = n
                    .chain
                    .rsplit('>')
                    .next()
                    .filter(|l| matches!(*l, "zlib" | "deflate") || l.starts_with("tar["))
                {
                    unpacked.push((n.parent, label.to_string()));
                }
                hits.clear();
                matcher.find_all(n.bytes, &mut hits);
                if hits.is_empty() {
                    return;
                }
                let r = root.get_or_insert_with(|| {
                    let mut v = u.found.to_vec();
                    let mut h0 = Vec::new();
                    matcher.find_all(u.bytes, &mut h0);
                    v.extend(h0.iter().map(|h| h.canary));
                    v
                });
                let mut above: Vec<usize> = r.clone();
                let mut p = n.parent;
                while p != 0 {
                    if let Some(s) = shown.get(&p) {
                        above.extend_from_slice(s);
                    }
                    p = parent_of.get(&p).copied().unwrap_or(0);
                }
                for h in &hits {
                    if !above.contains(&h.canary) && !reported.contains(&h.canary) {
                        let field = match (u.field, n.field) {
                            (Some(a), Some(b)) => Some(format!("{a}/{b}")),
                            (a, b) => b.or(a).map(str::to_string),
                        };
                        raws.push(make(
                            h.canary,
                            link(&h.encoding, n.chain),
                            field,
                            excerpt(n.bytes, h.start, h.end),
                            h.start,
                        ));
                        reported.push(h.canary);
                    }
                }
                shown.insert(n.id, hits.iter().map(|h| h.canary).collect());
            });
            self.budget = budget;
        }
        for (id, len, o, chain, head) in candidates {
            if !unpacked
                .iter()
                .any(|(parent, label)| *parent == id && unpacks(label, &head))
            {
                opaque_parts.push((len, o, chain));
            }
        }
        if u.dir == 0 && u.judge == Judge::Whole {
            if let Some(o) = layers::opaque::classify(u.bytes) {
                opaque_parts.push((u.bytes.len() as u64, o, "message".into()));
            }
        }
        if u.dir == 0 && u.judge == Judge::Parts {
            // What no part holds: judged piece by piece, and as a whole (ciphertext cut into small pieces).
            let ct = match u.hint {
                Hint::ContentType(ct) => Some(ct),
                _ => None,
            };
            let residue = layers::container::multipart_residue(u.bytes, ct);
            let mut all = Vec::new();
            for piece in &residue {
                if let Some(o) = layers::opaque::classify(piece) {
                    opaque_parts.push((piece.len() as u64, o, "(between the parts)".into()));
                } else {
                    all.extend_from_slice(piece);
                }
            }
            if residue.len() > 1 {
                if let Some(o) = layers::opaque::classify(&all) {
                    opaque_parts.push((all.len() as u64, o, "(between the parts)".into()));
                }
            }
            if let Some(o) = layers::opaque::classify(&small_parts) {
                opaque_parts.push((
                    small_parts.len() as u64,
                    o,
                    "(its short parts together)".into(),
                ));
            }
        }
        if (layers::xor::MIN_LEN..=layers::xor::MAX_LEN).contains(&u.bytes.len()) {
            // A value under a single-byte XOR, any key (the graph's XOR opener guesses only keys that turn text
            // into binary): searched once per key the differences show.
            for key in matcher.xor_keys(u.bytes) {
                let plain: Vec<u8> = u.bytes.iter().map(|b| b ^ key).collect();
                hits.clear();
                matcher.find_all(&plain, &mut hits);
                let chain = format!("xor[{key:#04x}]");
                for h in &hits {
                    let seen = root
                        .as_ref()
                        .map_or(u.found.contains(&h.canary), |r| r.contains(&h.canary));
                    if !seen && !reported.contains(&h.canary) {
                        raws.push(make(
                            h.canary,
                            link(&h.encoding, &chain),
                            u.field.map(str::to_string),
                            excerpt(&plain, h.start, h.end),
                            h.start,
                        ));
                        reported.push(h.canary);
                    }
                }
            }
        }
        for r in raws {
            self.out.finding(r);
        }
        for (bytes, o, chain) in opaque_parts {
            self.out.unread(
                u.flow,
                u.dir,
                UnreadReason::EncryptedPayload,
                bytes,
                u.at.ts,
            );
            let msg = format!(
                "flow {} ({}): {}{} {chain} ({bytes} bytes) is an encrypted payload ({}, {:.2} bits/byte); it was not read",
                u.flow,
                self.flows.get(u.flow).map(|f| f.destination()).unwrap_or_default(),
                u.protocol,
                u.field.map(|f| format!(" {f}")).unwrap_or_default(),
                o.kind.as_str(),
                o.entropy
            );
            self.out.warn("encrypted-payload", msg, None);
        }
        for un in explored.unopened {
            let reason = match un.reason {
                Stop::Budget => UnreadReason::DecodeBudget,
                Stop::Cap => UnreadReason::DecodeCap,
                Stop::Depth => UnreadReason::DecodeDepth,
            };
            self.out.unread(u.flow, u.dir, reason, un.bytes, u.at.ts);
        }
        reported
    }
}
