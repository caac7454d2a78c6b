//! pcapng Decryption Secrets Blocks (block type `0x0000000A`): reading them out of a capture before its packets
//! are analysed (a first pass over the file, so that keys stored after the packets they open still count), and
//! writing a pcapng that carries a key log in a DSB before its packets (`telltale keylog inject`, the convention
//! of Wireshark's `editcap --inject-secrets`).

use std::io::{self, Read};
use std::path::Path;

use pcap_parser::pcapng::Block;
use pcap_parser::traits::PcapReaderIterator;
use pcap_parser::{PcapBlockOwned, PcapError};

use crate::error::Error;

/// The secrets type of a TLS key log (`TLSK`).
pub const SECRETS_TLS_KEYLOG: u32 = 0x544c_534b;
/// The secrets type of a WireGuard key log (`WGKL`), named in messages only.
pub const SECRETS_WIREGUARD: u32 = 0x5747_4b4c;
/// Largest DSB payload taken (a key log of a few hundred thousand connections).
pub const MAX_SECRETS_BYTES: usize = 64 << 20;

/// One Decryption Secrets Block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretsBlock {
    /// The secrets type (`TLSK` for a TLS key log).
    pub secrets_type: u32,
    /// The secrets (empty when `skipped`).
    pub data: Vec<u8>,
    /// Index of the block among the file's DSBs (0-based).
    pub index: usize,
    /// The block's length when it was not taken: the blocks before it already held [`MAX_SECRETS_BYTES`].
    pub skipped: Option<usize>,
}

/// Every DSB of a capture file (pcapng, possibly gzip-compressed); a classic pcap has none. Damage in the file ends
/// the search quietly: the packet pass reports it.
pub fn read_secrets(path: &Path) -> Result<Vec<SecretsBlock>, Error> {
    let io_err = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io_err)?;
    let mut head = [0u8; 4];
    let n = file.read(&mut head).map_err(io_err)?;
    let chained = io::Cursor::new(head[..n].to_vec()).chain(file);
    if n >= 2 && head[..2] == [0x1f, 0x8b] {
        let mut gz = flate2::read::MultiGzDecoder::new(io::BufReader::new(chained));
        let mut magic = [0u8; 4];
        let got = read_up_to(&mut gz, &mut magic).map_err(io_err)?;
        if magic[..got] != [0x0a, 0x0d, 0x0d, 0x0a] {
            return Ok(Vec::new());
        }
        return Ok(scan(io::Cursor::new(magic[..got].to_vec()).chain(gz)));
    }
    if head[..n] != [0x0a, 0x0d, 0x0d, 0x0a] {
        return Ok(Vec::new());
    }
    Ok(scan(chained))
}

/// Every DSB of a pcapng held in memory.
pub fn secrets_from_bytes(bytes: &[u8]) -> Vec<SecretsBlock> {
    if bytes.get(..4) != Some(&[0x0a, 0x0d, 0x0d, 0x0a][..]) {
        return Vec::new();
    }
    scan(io::Cursor::new(bytes.to_vec()))
}

fn scan<R: Read>(mut r: R) -> Vec<SecretsBlock> {
    let mut out = Vec::new();
    // The pcapng reader checks the section header in its first read, which must hold all of it: a reader
    // chained after the sniffed magic would give it 4 bytes.
    let mut first = vec![0u8; HEAD_BYTES];
    let Ok(n) = read_up_to(&mut r, &mut first) else {
        return out;
    };
    first.truncate(n);
    let r = io::Cursor::new(first).chain(r);
    let Ok(mut reader) = pcap_parser::pcapng::PcapNGReader::new(super::READ_BUFFER, r) else {
        return out;
    };
    let mut total = 0usize;
    let mut stalled = 0;
    loop {
        match reader.next() {
            Ok((used, block)) => {
                stalled = 0;
                if let PcapBlockOwned::NG(Block::DecryptionSecrets(d)) = block {
                    let len = (d.secrets_len as usize).min(d.data.len());
                    let taken = total + len <= MAX_SECRETS_BYTES;
                    if taken {
                        total += len;
                    }
                    out.push(SecretsBlock {
                        secrets_type: d.secrets_type.0,
                        data: if taken {
                            d.data[..len].to_vec()
                        } else {
                            Vec::new()
                        },
                        index: out.len(),
                        skipped: (!taken).then_some(len),
                    });
                }
                reader.consume(used);
            }
            Err(PcapError::Incomplete(_)) => {
                stalled += 1;
                if stalled > 2 || reader.refill().is_err() {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    out
}

/// Bytes read before the pcapng reader starts (a section header and more).
const HEAD_BYTES: usize = 64 << 10;

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Copies every packet of `reader` into a new pcapng on `out`, with `keylog` (if not empty) in one Decryption
/// Secrets Block before the first packet; the reader's own secrets blocks are not copied. Returns the writer
/// (to flush) and the packets copied. Damage the reader resumed after is skipped; damage it could not resume
/// after is an `InvalidData` error with the reader's message.
pub fn copy_with_secrets<W: io::Write>(
    reader: &mut super::CaptureReader,
    keylog: &[u8],
    out: W,
) -> io::Result<(super::writer::PcapngWriter<W>, u64)> {
    let mut w = super::writer::PcapngWriter::section(out)?;
    if !keylog.is_empty() {
        w.write_secrets(SECRETS_TLS_KEYLOG, keylog)?;
    }
    let mut packets = 0;
    loop {
        match reader.next_packet() {
            Ok(Some(p)) => {
                w.packet(p.link_type, p.ts_nanos, p.data, p.orig_len)?;
                packets += 1;
            }
            Ok(None) => return Ok((w, packets)),
            Err(d) if d.resumed => continue,
            Err(d) => return Err(io::Error::new(io::ErrorKind::InvalidData, d.message)),
        }
    }
}

/// Rewrites the pcapng at `path` with all of `keylog` in one secrets block at the front (through a temporary file
/// beside it, renamed over it), so that tools that read secrets only before the packets they open (tshark) see
/// every key: a TLS 1.2 session's master secret exists only after the client's key exchange, which arrives in the
/// frame that also carries the client's encrypted Finished.
pub fn secrets_first(path: &Path, keylog: &[u8]) -> io::Result<u64> {
    let mut reader =
        super::CaptureReader::open(path).map_err(|e| io::Error::other(e.to_string()))?;
    let tmp = path.with_extension("secrets-first.tmp");
    let done = (|| {
        let file = std::fs::File::create(&tmp)?;
        let (mut w, packets) = copy_with_secrets(&mut reader, keylog, io::BufWriter::new(file))?;
        io::Write::flush(w.writer_mut())?;
        drop(w);
        std::fs::rename(&tmp, path)?;
        Ok(packets)
    })();
    if done.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    done
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_dsb_is_read_back_and_packets_still_parse() {
        let mut w = super::super::writer::PcapngWriter::section(Vec::new()).unwrap();
        w.write_secrets(SECRETS_TLS_KEYLOG, b"CLIENT_RANDOM aa bb\n")
            .unwrap();
        w.packet(101, 1_700_000_000_123_456_789, &[0x45, 0, 0, 20], 20)
            .unwrap();
        let bytes = w.into_inner();
        let s = secrets_from_bytes(&bytes);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].secrets_type, SECRETS_TLS_KEYLOG);
        assert_eq!(s[0].data, b"CLIENT_RANDOM aa bb\n");
        let mut r = super::super::CaptureReader::from_reader(
            io::Cursor::new(bytes),
            Path::new("t.pcapng"),
            false,
        )
        .unwrap();
        let p = r.next_packet().unwrap().expect("a packet");
        assert_eq!(p.ts_nanos, 1_700_000_000_123_456_789);
        assert_eq!(p.link_type, 101);
        assert!(r.next_packet().unwrap().is_none());
    }

    /// Past MAX_SECRETS_BYTES a block is not taken but still listed (with its length), so the analysis says so;
    /// the blocks after it are still seen.
    #[test]
    fn blocks_past_the_total_cap_are_listed_as_skipped() {
        let mut w = super::super::writer::PcapngWriter::section(Vec::new()).unwrap();
        let block = vec![b'#'; 3 << 20];
        let n = MAX_SECRETS_BYTES / block.len() + 2;
        for _ in 0..n {
            w.write_secrets(SECRETS_TLS_KEYLOG, &block).unwrap();
        }
        let s = secrets_from_bytes(&w.into_inner());
        assert_eq!(s.len(), n);
        let taken: usize = s.iter().map(|b| b.data.len()).sum();
        assert!(taken <= MAX_SECRETS_BYTES, "{taken}");
        let skipped: Vec<_> = s.iter().filter_map(|b| b.skipped).collect();
        assert_eq!(
            skipped,
            vec![block.len(); n - MAX_SECRETS_BYTES / block.len()]
        );
    }
}
