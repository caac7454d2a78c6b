//! The key log commands: reading `--keylog` files for `analyze`, and `telltale keylog inject` (a capture
//! rewritten as pcapng with its key log in a Decryption Secrets Block before the packets).

use std::path::{Path, PathBuf};

use crate::capture::secrets;
use crate::capture::CaptureReader;
use crate::error::Error;
use crate::proto::keylog::KeyLog;

/// Largest key log file read.
pub const MAX_KEYLOG_BYTES: u64 = 256 << 20;

/// Reads and merges key log files (each named as its source in the report). An unreadable file is an error;
/// garbage lines are kept in the key log's count and reported as warnings of the analysis.
pub fn load_keylogs(paths: &[PathBuf]) -> Result<KeyLog, Error> {
    let mut keys = KeyLog::new();
    for p in paths {
        let io_err = |source| Error::Io {
            path: p.clone(),
            source,
        };
        let len = std::fs::metadata(p).map_err(io_err)?.len();
        if len > MAX_KEYLOG_BYTES {
            return Err(Error::Usage(format!(
                "{} is {len} bytes, more than the {} MiB a key log may have",
                p.display(),
                MAX_KEYLOG_BYTES >> 20
            )));
        }
        let bytes = std::fs::read(p).map_err(io_err)?;
        keys.add_bytes(&bytes, &format!("key log {}", p.display()));
    }
    Ok(keys)
}

/// What `keylog inject` wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Injected {
    /// Packets copied.
    pub packets: u64,
    /// Key lines written into the block.
    pub keys: usize,
    /// Connections (client randoms) they are for.
    pub connections: usize,
    /// Garbage lines of the key logs (not written), as messages.
    pub bad_lines: Vec<String>,
}

/// `telltale keylog inject CAPTURE KEYLOG… -o OUT`.
pub fn keylog_inject(capture: &Path, keylogs: &[PathBuf], out: &Path) -> Result<Injected, Error> {
    let mut keys = load_keylogs(keylogs)?;
    for b in secrets::read_secrets(capture)? {
        if b.secrets_type == secrets::SECRETS_TLS_KEYLOG {
            keys.add_bytes(&b.data, "capture's own secrets block");
        }
    }
    if keys.is_empty() {
        return Err(Error::Usage(format!(
            "no key in {}: a key log has lines like `CLIENT_RANDOM <64 hex digits> <96 hex digits>`",
            keylogs
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let text = keys.to_text();
    let mut reader = CaptureReader::open(capture)?;
    let out_err = |source| Error::Io {
        path: out.to_path_buf(),
        source,
    };
    let file = std::fs::File::create(out).map_err(out_err)?;
    let (w, packets) =
        secrets::copy_with_secrets(&mut reader, text.as_bytes(), std::io::BufWriter::new(file))
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::InvalidData => Error::NotACapture {
                    path: capture.to_path_buf(),
                    detail: e.to_string(),
                },
                _ => out_err(e),
            })?;
    use std::io::Write;
    w.into_inner().flush().map_err(out_err)?;
    Ok(Injected {
        packets,
        keys: text.lines().count(),
        connections: keys.len(),
        bad_lines: keys
            .bad_lines
            .iter()
            .map(|b| format!("{} line {}: {}", b.source, b.line, b.problem))
            .collect(),
    })
}
