//! TLS session keys in the NSS key log format (`SSLKEYLOGFILE`, OpenSSL's `-keylogfile`, a pcapng Decryption
//! Secrets Block of type `TLSK`), sans-IO: text in, a table of secrets by ClientHello random out.
//!
//! Every line is `LABEL <client random, 64 hex digits> <secret, hex>`; `#` starts a comment. Known labels:
//! `CLIENT_RANDOM` (TLS 1.2 master secret), `CLIENT_HANDSHAKE_TRAFFIC_SECRET`, `SERVER_HANDSHAKE_TRAFFIC_SECRET`,
//! `CLIENT_TRAFFIC_SECRET_0`, `SERVER_TRAFFIC_SECRET_0`, `EXPORTER_SECRET`, `CLIENT_EARLY_TRAFFIC_SECRET`,
//! `EARLY_EXPORTER_SECRET`. Lines that are not of that shape are counted with their line number and source (never
//! silently dropped); labels of other kinds (`RSA`, `ECH_SECRET`, QUIC's) are counted as ignored. Several sources
//! merge into one [`KeyLog`]; the first source to give a secret for a client random is named as its origin.

use std::collections::HashMap;
use std::sync::Arc;

/// Longest secret accepted (SHA-384 traffic secrets and TLS 1.2 master secrets are 48 bytes).
pub const MAX_SECRET_LEN: usize = 64;
/// At most this many garbage lines are kept with their text; the rest are counted.
pub const GARBAGE_KEPT: usize = 20;

/// The secrets of one TLS connection, by label.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Secrets {
    /// `CLIENT_RANDOM`: the TLS 1.2 (or earlier) master secret.
    pub master: Option<Vec<u8>>,
    /// `CLIENT_HANDSHAKE_TRAFFIC_SECRET`.
    pub client_handshake: Option<Vec<u8>>,
    /// `SERVER_HANDSHAKE_TRAFFIC_SECRET`.
    pub server_handshake: Option<Vec<u8>>,
    /// `CLIENT_TRAFFIC_SECRET_0`.
    pub client_traffic: Option<Vec<u8>>,
    /// `SERVER_TRAFFIC_SECRET_0`.
    pub server_traffic: Option<Vec<u8>>,
    /// `CLIENT_EARLY_TRAFFIC_SECRET` (0-RTT data).
    pub client_early: Option<Vec<u8>>,
    /// `EXPORTER_SECRET` (kept for completeness; not used to decrypt).
    pub exporter: Option<Vec<u8>>,
    /// Where these secrets came from (e.g. `key log keys.txt`, `pcapng decryption secrets block`).
    pub source: Arc<str>,
}

/// A line of a key log that is not a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLine {
    /// The source (file name or block) it came from.
    pub source: Arc<str>,
    /// 1-based line number.
    pub line: usize,
    /// What is wrong with it.
    pub problem: String,
}

/// Secrets by ClientHello random, merged from any number of sources.
#[derive(Debug, Clone, Default)]
pub struct KeyLog {
    by_random: HashMap<[u8; 32], Secrets>,
    /// Garbage lines (the first [`GARBAGE_KEPT`]).
    pub bad_lines: Vec<BadLine>,
    /// All garbage lines, counted.
    pub bad_count: usize,
    /// Lines with a well-formed but unused label (`RSA`, QUIC, ECH…), counted.
    pub ignored: usize,
    /// Every source added, with the number of secrets it gave.
    pub sources: Vec<(Arc<str>, usize)>,
}

impl KeyLog {
    /// An empty key log.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether no secret is known.
    pub fn is_empty(&self) -> bool {
        self.by_random.is_empty()
    }

    /// Number of connections (client randoms) with at least one secret.
    pub fn len(&self) -> usize {
        self.by_random.len()
    }

    /// The secrets for a ClientHello random.
    pub fn get(&self, client_random: &[u8; 32]) -> Option<&Secrets> {
        self.by_random.get(client_random)
    }

    /// Every client random known, with the source of its secrets.
    pub fn randoms(&self) -> impl Iterator<Item = (&[u8; 32], &Arc<str>)> {
        self.by_random.iter().map(|(r, s)| (r, &s.source))
    }

    /// Adds every key of `text` (one key log), naming it `source`. Returns the number of secrets taken.
    pub fn add_text(&mut self, text: &str, source: &str) -> usize {
        let source: Arc<str> = Arc::from(source);
        let mut taken = 0;
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            match parse_line(line) {
                Ok(Some((label, random, secret))) => {
                    let entry = self.by_random.entry(random).or_insert_with(|| Secrets {
                        source: source.clone(),
                        ..Secrets::default()
                    });
                    let slot = match label {
                        Label::Master => &mut entry.master,
                        Label::ClientHandshake => &mut entry.client_handshake,
                        Label::ServerHandshake => &mut entry.server_handshake,
                        Label::ClientTraffic => &mut entry.client_traffic,
                        Label::ServerTraffic => &mut entry.server_traffic,
                        Label::ClientEarly => &mut entry.client_early,
                        Label::Exporter => &mut entry.exporter,
                    };
                    if slot.is_none() {
                        *slot = Some(secret);
                    }
                    taken += 1;
                }
                Ok(None) => self.ignored += 1,
                Err(problem) => {
                    self.bad_count += 1;
                    if self.bad_lines.len() < GARBAGE_KEPT {
                        self.bad_lines.push(BadLine {
                            source: source.clone(),
                            line: i + 1,
                            problem,
                        });
                    }
                }
            }
        }
        self.sources.push((source, taken));
        taken
    }

    /// Adds the bytes of a key log that may not be UTF-8 (a pcapng block): invalid bytes make their line garbage.
    pub fn add_bytes(&mut self, bytes: &[u8], source: &str) -> usize {
        self.add_text(&String::from_utf8_lossy(bytes), source)
    }

    /// Merges another key log into this one (secrets already known are kept).
    pub fn merge(&mut self, other: KeyLog) {
        for (random, s) in other.by_random {
            match self.by_random.get_mut(&random) {
                None => {
                    self.by_random.insert(random, s);
                }
                Some(mine) => {
                    let pairs = [
                        (&mut mine.master, s.master),
                        (&mut mine.client_handshake, s.client_handshake),
                        (&mut mine.server_handshake, s.server_handshake),
                        (&mut mine.client_traffic, s.client_traffic),
                        (&mut mine.server_traffic, s.server_traffic),
                        (&mut mine.client_early, s.client_early),
                        (&mut mine.exporter, s.exporter),
                    ];
                    for (slot, v) in pairs {
                        if slot.is_none() {
                            *slot = v;
                        }
                    }
                }
            }
        }
        let kept = GARBAGE_KEPT.saturating_sub(self.bad_lines.len());
        self.bad_lines
            .extend(other.bad_lines.into_iter().take(kept));
        self.bad_count += other.bad_count;
        self.ignored += other.ignored;
        self.sources.extend(other.sources);
    }

    /// The key log as NSS key log text (for writing into a pcapng block), in a stable order.
    pub fn to_text(&self) -> String {
        let mut randoms: Vec<&[u8; 32]> = self.by_random.keys().collect();
        randoms.sort();
        let mut out = String::new();
        for r in randoms {
            let Some(s) = self.by_random.get(r) else {
                continue;
            };
            let lines = [
                ("CLIENT_RANDOM", &s.master),
                ("CLIENT_EARLY_TRAFFIC_SECRET", &s.client_early),
                ("CLIENT_HANDSHAKE_TRAFFIC_SECRET", &s.client_handshake),
                ("SERVER_HANDSHAKE_TRAFFIC_SECRET", &s.server_handshake),
                ("CLIENT_TRAFFIC_SECRET_0", &s.client_traffic),
                ("SERVER_TRAFFIC_SECRET_0", &s.server_traffic),
                ("EXPORTER_SECRET", &s.exporter),
            ];
            for (label, v) in lines {
                if let Some(v) = v {
                    out.push_str(&format!("{label} {} {}\n", hex::encode(r), hex::encode(v)));
                }
            }
        }
        out
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Label {
    Master,
    ClientHandshake,
    ServerHandshake,
    ClientTraffic,
    ServerTraffic,
    ClientEarly,
    Exporter,
}

/// One line: `Ok(Some)` a key, `Ok(None)` a well-formed line of a label not used here, `Err` garbage.
/// A key line: its label, client random and secret.
type KeyLine = (Label, [u8; 32], Vec<u8>);

fn parse_line(line: &str) -> Result<Option<KeyLine>, String> {
    let mut parts = line.split_ascii_whitespace();
    let (Some(label), Some(random), Some(secret), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("not of the form `LABEL <client random> <secret>`".into());
    };
    let label = match label {
        "CLIENT_RANDOM" => Label::Master,
        "CLIENT_HANDSHAKE_TRAFFIC_SECRET" => Label::ClientHandshake,
        "SERVER_HANDSHAKE_TRAFFIC_SECRET" => Label::ServerHandshake,
        "CLIENT_TRAFFIC_SECRET_0" => Label::ClientTraffic,
        "SERVER_TRAFFIC_SECRET_0" => Label::ServerTraffic,
        "CLIENT_EARLY_TRAFFIC_SECRET" => Label::ClientEarly,
        "EXPORTER_SECRET" => Label::Exporter,
        l if l
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_') =>
        {
            return Ok(None);
        }
        l => {
            let shown: String = l.chars().take(40).collect();
            return Err(format!("unknown label `{shown}`"));
        }
    };
    let random = hex::decode(random)
        .ok()
        .and_then(|r| <[u8; 32]>::try_from(r).ok())
        .ok_or_else(|| "the client random is not 64 hex digits".to_string())?;
    let secret = hex::decode(secret)
        .ok()
        .filter(|s| !s.is_empty() && s.len() <= MAX_SECRET_LEN)
        .ok_or_else(|| format!("the secret is not 1 to {MAX_SECRET_LEN} bytes of hex"))?;
    if label == Label::Master && secret.len() != 48 {
        return Err("a CLIENT_RANDOM master secret is 48 bytes (96 hex digits)".into());
    }
    Ok(Some((label, random, secret)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const R: &str = "1111111111111111111111111111111111111111111111111111111111111111";

    #[test]
    fn labels_are_read_and_garbage_is_counted_with_line_numbers() {
        let text = format!(
            "# comment\n\nCLIENT_RANDOM {R} {}\nCLIENT_TRAFFIC_SECRET_0 {R} {}\nhello world\nRSA 00 11\nSERVER_TRAFFIC_SECRET_0 zz {}\n",
            "ab".repeat(48),
            "cd".repeat(32),
            "ef".repeat(32)
        );
        let mut k = KeyLog::new();
        assert_eq!(k.add_text(&text, "a.log"), 2);
        let s = k.get(&[0x11; 32]).expect("secrets");
        assert_eq!(s.master.as_deref(), Some(&[0xab; 48][..]));
        assert_eq!(s.client_traffic.as_deref(), Some(&[0xcd; 32][..]));
        assert_eq!(&*s.source, "a.log");
        assert_eq!(k.bad_count, 2);
        assert_eq!(k.ignored, 1);
        assert_eq!(k.bad_lines[0].line, 5);
        assert_eq!(k.bad_lines[1].line, 7);
        assert!(k.bad_lines[1].problem.contains("client random"));
    }

    #[test]
    fn sources_merge_and_round_trip_as_text() {
        let mut a = KeyLog::new();
        a.add_text(
            &format!("CLIENT_TRAFFIC_SECRET_0 {R} {}\n", "01".repeat(32)),
            "a",
        );
        let mut b = KeyLog::new();
        b.add_text(
            &format!("SERVER_TRAFFIC_SECRET_0 {R} {}\n", "02".repeat(32)),
            "b",
        );
        a.merge(b);
        let s = a.get(&[0x11; 32]).expect("merged");
        assert!(s.client_traffic.is_some() && s.server_traffic.is_some());
        let mut c = KeyLog::new();
        c.add_text(&a.to_text(), "c");
        assert_eq!(
            c.get(&[0x11; 32]).map(|s| s.server_traffic.clone()),
            Some(s.server_traffic.clone())
        );
        assert_eq!(a.sources.len(), 2);
    }
}
