//! # telltale
//!
//! A privacy-behaviour regression harness for firmware releases. This crate is the library behind the `telltale`
//! binary; the binary only parses arguments and maps results to exit codes.
//!
//! Data flows one way (see ARCHITECTURE.md):
//! capture ([`capture`]) → frame decoding ([`decode`]) → conversations and TCP reassembly ([`flow`]) →
//! protocol parsers ([`proto`]) and the canary matcher ([`canary`]) driven by the engine ([`analysis`]) →
//! the report ([`report`]).
//!
//! Everything from [`decode`] on is sans-IO: bytes in, values out. File access lives in [`capture`] and in the
//! convenience entry point [`analyze_file`].

#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod analysis;
pub mod app;
pub mod attest;
pub mod canary;
pub mod capture;
pub mod decode;
pub mod diag;
pub mod driver;
pub mod error;
pub mod flow;
pub mod layers;
pub mod net;
pub mod proto;
pub mod record;
pub mod render;
pub mod report;
pub mod runner;
pub mod scenario;
pub mod snapshot;
pub mod synth;
#[cfg(test)]
mod testing;
pub mod vnet;
mod yaml;

use std::path::Path;
use std::sync::Arc;

pub use analysis::{Analyzer, Config};
pub use canary::{Identity, Matcher};
pub use error::{Error, ExitCode};
pub use report::Report;

/// Analyses a capture file (pcap, pcapng, optionally gzip-compressed).
///
/// Damage in the file (truncation, corrupt records) does not fail the call: the report covers everything before
/// it and carries a `damaged-capture` warning with the byte offset. `progress` is called now and then with the
/// number of bytes read so far (of the decompressed stream for `.gz` files).
///
/// Keys in the file's pcapng Decryption Secrets Blocks (TLS key logs) are read first, wherever they are in the
/// file, and added to `cfg.keys`.
pub fn analyze_file(
    path: &Path,
    matcher: Arc<Matcher>,
    mut cfg: Config,
    progress: impl FnMut(u64),
) -> Result<Report, Error> {
    let blocks = capture::secrets::read_secrets(path)?;
    let notes = add_secrets(&mut cfg, &blocks, &path.display().to_string());
    let reader = capture::CaptureReader::open(path)?;
    Ok(run_capture(reader, matcher, cfg, progress, notes))
}

/// Adds the TLS key logs of pcapng Decryption Secrets Blocks to `cfg.keys`; returns warnings about the others.
fn add_secrets(
    cfg: &mut Config,
    blocks: &[capture::secrets::SecretsBlock],
    file: &str,
) -> Vec<String> {
    let mut notes = Vec::new();
    for b in blocks {
        if let Some(len) = b.skipped {
            notes.push(format!(
                "pcapng decryption secrets block {} of {file} ({len} bytes) was not read: the blocks before it \
                 already hold {} MiB, the most telltale takes; connections only its keys open stay unread (no key)",
                b.index + 1,
                capture::secrets::MAX_SECRETS_BYTES >> 20
            ));
        } else if b.secrets_type == capture::secrets::SECRETS_TLS_KEYLOG {
            let source = format!("pcapng decryption secrets block {} of {file}", b.index + 1);
            Arc::make_mut(&mut cfg.keys).add_bytes(&b.data, &source);
        } else {
            let kind = match b.secrets_type {
                capture::secrets::SECRETS_WIREGUARD => "WireGuard key log".to_string(),
                t => format!("unknown type {t:#010x}"),
            };
            notes.push(format!(
                "pcapng decryption secrets block {} of {file} ({kind}, {} bytes) is not a TLS key log and was not used",
                b.index + 1,
                b.data.len()
            ));
        }
    }
    notes
}

/// Analyses capture bytes held in memory (pcap or pcapng, not compressed); `name` is used in the report.
pub fn analyze_bytes(
    bytes: Vec<u8>,
    name: &str,
    matcher: Arc<Matcher>,
    mut cfg: Config,
) -> Result<Report, Error> {
    let blocks = capture::secrets::secrets_from_bytes(&bytes);
    let notes = add_secrets(&mut cfg, &blocks, name);
    let reader =
        capture::CaptureReader::from_reader(std::io::Cursor::new(bytes), Path::new(name), false)?;
    Ok(run_capture(reader, matcher, cfg, |_| {}, notes))
}

/// Runs the engine over every packet of an opened capture.
pub fn analyze_capture(
    reader: capture::CaptureReader,
    matcher: Arc<Matcher>,
    cfg: Config,
    progress: impl FnMut(u64),
) -> Report {
    run_capture(reader, matcher, cfg, progress, Vec::new())
}

fn run_capture(
    mut reader: capture::CaptureReader,
    matcher: Arc<Matcher>,
    cfg: Config,
    mut progress: impl FnMut(u64),
    notes: Vec<String>,
) -> Report {
    let mut an = Analyzer::new(matcher, cfg);
    for n in notes {
        an.warn("dsb-not-used", n);
    }
    let mut n: u32 = 0;
    loop {
        match reader.next_packet() {
            Ok(Some(p)) => an.packet(&p),
            Ok(None) => break,
            Err(d) => {
                an.damage(&d);
                if !d.resumed {
                    break;
                }
            }
        }
        n = n.wrapping_add(1);
        if n % 8192 == 0 {
            progress(reader.offset());
        }
    }
    progress(reader.offset());
    let format = match reader.format() {
        capture::Format::Pcap => "pcap",
        capture::Format::Pcapng => "pcapng",
    };
    an.set_capture_info(&reader.name().display().to_string(), format, reader.gzip());
    an.finish()
}

/// Reads and validates an identity (canary) file.
pub fn load_identity(path: &Path) -> Result<Identity, Error> {
    let text = canary::identity::read_bounded(path, canary::identity::MAX_IDENTITY_BYTES).map_err(
        |source| Error::Io {
            path: path.to_path_buf(),
            source,
        },
    )?;
    Ok(Identity::from_yaml(&text, &path.display().to_string())?)
}
