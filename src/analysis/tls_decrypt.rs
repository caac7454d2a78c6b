//! Decryption of a TCP conversation's TLS inside the engine: the bytes of each TLS direction go to a
//! [`TlsDecryptor`] (when the configuration holds keys), and the decrypted application data goes into a second
//! [`TcpConn`] pipeline of its own, so that it meets the same parser choice (HTTP/1.x, and whatever the cleartext
//! chooser learns), attribution and canary search as cleartext. Findings made there carry `tls: "decrypted"`.
//!
//! Accounting: once keys are found for a connection, its ciphertext is accounted here, not by the raw path:
//! records that decrypt are read; records that do not (wrong key, unsupported suite, lost bytes, cut short) are
//! `tls_ciphertext` unread spans. A connection without keys is left to the raw path (all ciphertext unread).

use super::tcp::{self, TcpConn};
use super::{Analyzer, At};
use crate::proto::tls_decrypt::{Out, Status, TlsDecryptor};
use crate::report::{App, TlsDecryption, UnreadReason};

/// The decryption state of one conversation.
pub(super) struct TlsDecrypt {
    dec: TlsDecryptor,
    /// The plaintext's own pipeline (its reassemblers are unused: plaintext arrives in order).
    inner: Box<TcpConn>,
    /// Each direction's TLS bytes started reaching the decryptor.
    started: [bool; 2],
    /// The application protocol of the plaintext (the flow keeps `tls`).
    inner_app: App,
    /// The flow's report TLS record was updated with the key-match.
    matched: bool,
}

impl TlsDecrypt {
    /// Whether the decryptor accounts direction `dir`'s ciphertext (keys were found and it sees the bytes).
    pub fn owns(&self, dir: usize) -> bool {
        self.dec.has_keys() && self.started.get(dir).copied().unwrap_or(false)
    }
}

/// Feeds a delivery of direction `dir` (stream offset `start`) whose TLS bytes begin at stream offset `base`.
#[allow(clippy::too_many_arguments)]
pub(super) fn feed(
    an: &mut Analyzer,
    fi: usize,
    dir: usize,
    conn: &mut TcpConn,
    bytes: &[u8],
    start: u64,
    base: u64,
    at: At,
) {
    if an.cfg.keys.is_empty() {
        return;
    }
    let mut st = match conn.tls.take() {
        Some(st) => st,
        None => Box::new(TlsDecrypt {
            dec: TlsDecryptor::new(an.cfg.keys.clone()),
            inner: Box::new(TcpConn::new(&an.matcher, an.cfg.reassembly_cap)),
            started: [false; 2],
            inner_app: App::Unknown,
            matched: false,
        }),
    };
    if matches!(st.dec.status(), Status::NoKey) {
        conn.tls = Some(st);
        return;
    }
    let from = if st.started[dir] {
        0
    } else {
        st.started[dir] = true;
        base.saturating_sub(start) as usize
    };
    let mut out = Vec::new();
    if let Some(b) = bytes.get(from..) {
        st.dec.push(dir, b, &mut out);
        st.dec.drain_pending(&mut out);
    }
    handle(an, fi, &mut st, out, at);
    update_record(an, fi, conn.tls_index, &mut st);
    conn.tls = Some(st);
}

/// Bytes of direction `dir` were lost.
pub(super) fn gap(an: &mut Analyzer, fi: usize, dir: usize, conn: &mut TcpConn, n: u64, ts: u64) {
    let Some(mut st) = conn.tls.take() else {
        return;
    };
    if st.started[dir] && st.dec.has_keys() {
        let mut out = Vec::new();
        st.dec.gap(dir, n, &mut out);
        handle(an, fi, &mut st, out, At { packet: 0, ts });
        update_record(an, fi, conn.tls_index, &mut st);
    }
    conn.tls = Some(st);
}

/// End of the conversation: records cut short are unread, the plaintext pipeline is finished, the report's TLS
/// record gets its final state.
pub(super) fn finish(an: &mut Analyzer, fi: usize, conn: &mut TcpConn, ts: u64) {
    let Some(mut st) = conn.tls.take() else {
        return;
    };
    let mut out = Vec::new();
    st.dec.finish(&mut out);
    let at = At { packet: 0, ts };
    handle(an, fi, &mut st, out, at);
    if st.dec.has_keys() {
        with_inner(an, fi, &mut st, |an, inner| {
            for dir in 0..2 {
                tcp::finish_dir(an, fi, inner, dir, ts);
            }
        });
    }
    update_record(an, fi, conn.tls_index, &mut st);
    if let Status::KeyFailed(why) = st.dec.status() {
        let f = &an.flows[fi];
        let msg = format!(
            "flow {fi} ({}, {}): {why} (keys from {}); its ciphertext is counted unread and nothing of it was searched",
            f.destination(),
            super::sockaddr(f.server),
            st.dec.key_source().unwrap_or("?")
        );
        an.out.warn("tls-key-failed", msg, None);
    }
    conn.tls = Some(st);
}

/// Runs `f` over the plaintext pipeline with the engine marking findings as decrypted and the flow's
/// application protocol being the plaintext's.
fn with_inner(
    an: &mut Analyzer,
    fi: usize,
    st: &mut TlsDecrypt,
    f: impl FnOnce(&mut Analyzer, &mut TcpConn),
) {
    let outer_app = an.flows[fi].app;
    an.flows[fi].app = st.inner_app;
    an.out.decrypting = true;
    f(an, &mut st.inner);
    an.out.decrypting = false;
    st.inner_app = an.flows[fi].app;
    an.flows[fi].app = outer_app;
}

fn handle(an: &mut Analyzer, fi: usize, st: &mut TlsDecrypt, out: Vec<Out>, at: At) {
    for o in out {
        match o {
            Out::AppData(dir, plain) => {
                with_inner(an, fi, st, |an, inner| {
                    tcp::data(an, fi, dir, inner, &plain, at)
                });
            }
            Out::Handshake(dir, msg) => {
                an.out.decrypting = true;
                an.scan_bytes(fi, dir, "tls", Some("handshake"), &msg, at, &[]);
                an.out.decrypting = false;
            }
            Out::Unread(dir, n) => {
                an.flows[fi].opaque_bytes += n;
                // The reason is the connection's state after this batch (a wrong key, a suite, lost bytes).
                let reason = match st.dec.status() {
                    Status::KeyFailed(_) => UnreadReason::TlsKeyFailed,
                    Status::UnsupportedSuite(_) => UnreadReason::TlsUnsupportedSuite,
                    Status::Truncated(_) => UnreadReason::TlsTruncated,
                    Status::Waiting | Status::NoKey | Status::Decrypting => {
                        UnreadReason::TlsCiphertext
                    }
                };
                an.out.unread(fi, dir, reason, n, at.ts);
            }
        }
    }
}

/// Writes the decryption state into the flow's TLS record.
fn update_record(an: &mut Analyzer, _fi: usize, index: Option<usize>, st: &mut TlsDecrypt) {
    if !st.matched && st.dec.has_keys() {
        if let Some(r) = st.dec.client_random() {
            an.keys_matched.insert(r);
            st.matched = true;
        }
    }
    let Some(rec) = index.and_then(|i| an.out.tls_mut(i)) else {
        return;
    };
    let (c, s) = (st.dec.counts(0), st.dec.counts(1));
    let (state, detail) = match st.dec.status() {
        Status::Waiting => (
            "truncated",
            Some("the ClientHello was not read".to_string()),
        ),
        Status::NoKey => (
            "no_key",
            Some("no key logged for this connection's ClientHello random".to_string()),
        ),
        Status::Decrypting if c.records + s.records == 0 => (
            "truncated",
            Some("keys were found but no encrypted record was seen".to_string()),
        ),
        Status::Decrypting => ("decrypted", None),
        Status::KeyFailed(w) => ("key_failed", Some(w.clone())),
        Status::UnsupportedSuite(n) => (
            "unsupported_suite",
            Some(format!("{n} is not a suite telltale decrypts")),
        ),
        Status::Truncated(w) => ("truncated", Some(w.clone())),
    };
    rec.decryption = Some(TlsDecryption {
        state: state.into(),
        detail,
        key_source: st.dec.key_source().map(str::to_string),
        cipher_suite: st.dec.suite_id().map(crate::proto::tls_decrypt::suite_name),
        records: c.records + s.records,
        plaintext_bytes: c.app_bytes + s.app_bytes,
        unread_bytes: c.unread + s.unread,
    });
}

impl Analyzer {
    /// Warnings about the key logs: garbage lines, and key logs that matched no connection.
    pub(super) fn keylog_warnings(&mut self) {
        let keys = self.cfg.keys.clone();
        for b in &keys.bad_lines {
            let msg = format!("{} line {}: {} (line ignored)", b.source, b.line, b.problem);
            self.out.warn("keylog-bad-line", msg, None);
        }
        if keys.bad_count > keys.bad_lines.len() {
            let msg = format!(
                "{} more unreadable key log lines not listed",
                keys.bad_count - keys.bad_lines.len()
            );
            self.out.warn("keylog-bad-line", msg, None);
        }
        for (source, taken) in &keys.sources {
            let matched = keys
                .randoms()
                .filter(|(r, s)| Arc::ptr_eq(s, source) && self.keys_matched.contains(*r))
                .count();
            if *taken > 0 && matched == 0 {
                let msg = format!(
                    "{source}: {taken} keys, none for a TLS connection of this capture (a key log of another capture, or connections not captured)"
                );
                self.out.warn("keylog-unmatched", msg, None);
            } else if *taken == 0 {
                let msg = format!("{source}: no keys in it");
                self.out.warn("keylog-unmatched", msg, None);
            }
        }
    }
}

use std::sync::Arc;
