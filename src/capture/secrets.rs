//! pcapng Decryption Secrets Blocks (block type `0x0000000A`): reading them out of a capture before its packets
//! are analysed (a first pass over the file, so that keys stored after the packets they open still count), and
//! writing a pcapng that carries a key log in a DSB before its packets (`telltale keylog inject`, the convention
//! of Wireshark's `editcap --inject-secrets`).

use std::io::{self, Read, Write};
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
    /// The secrets.
    pub data: Vec<u8>,
    /// Index of the block among the file's DSBs (0-based).
    pub index: usize,
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
                    if total + len <= MAX_SECRETS_BYTES {
                        total += len;
                        out.push(SecretsBlock {
                            secrets_type: d.secrets_type.0,
                            data: d.data[..len].to_vec(),
                            index: out.len(),
                        });
                    }
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

/// Writes a little-endian pcapng: a section header, a DSB with `keylog` (if not empty), then the packets with
/// one interface per link type (nanosecond timestamps).
pub struct PcapngWriter<W: Write> {
    out: W,
    links: Vec<u32>,
}

fn block(out: &mut impl Write, kind: u32, body: &[u8]) -> io::Result<()> {
    let pad = (4 - body.len() % 4) % 4;
    let len = (12 + body.len() + pad) as u32;
    out.write_all(&kind.to_le_bytes())?;
    out.write_all(&len.to_le_bytes())?;
    out.write_all(body)?;
    out.write_all(&[0u8; 3][..pad])?;
    out.write_all(&len.to_le_bytes())
}

impl<W: Write> PcapngWriter<W> {
    /// Writes the section header and, when `keylog` is not empty, a TLS key log DSB.
    pub fn new(mut out: W, keylog: &[u8]) -> io::Result<Self> {
        let mut shb = Vec::new();
        shb.extend_from_slice(&0x1a2b_3c4du32.to_le_bytes());
        shb.extend_from_slice(&1u16.to_le_bytes());
        shb.extend_from_slice(&0u16.to_le_bytes());
        shb.extend_from_slice(&u64::MAX.to_le_bytes()); // section length unknown
        block(&mut out, 0x0a0d_0d0a, &shb)?;
        if !keylog.is_empty() {
            let mut dsb = Vec::new();
            dsb.extend_from_slice(&SECRETS_TLS_KEYLOG.to_le_bytes());
            dsb.extend_from_slice(&(keylog.len() as u32).to_le_bytes());
            dsb.extend_from_slice(keylog);
            dsb.extend_from_slice(&[0u8; 3][..(4 - keylog.len() % 4) % 4]);
            block(&mut out, 0x0000_000a, &dsb)?;
        }
        Ok(PcapngWriter {
            out,
            links: Vec::new(),
        })
    }

    /// Writes one packet (captured bytes `data`, original length `orig_len`, time in ns since the epoch).
    pub fn packet(
        &mut self,
        link_type: u32,
        ts_nanos: u64,
        data: &[u8],
        orig_len: u32,
    ) -> io::Result<()> {
        let iface = match self.links.iter().position(|&l| l == link_type) {
            Some(i) => i,
            None => {
                let mut idb = Vec::new();
                idb.extend_from_slice(&(link_type as u16).to_le_bytes());
                idb.extend_from_slice(&0u16.to_le_bytes());
                idb.extend_from_slice(&262_144u32.to_le_bytes());
                // if_tsresol = 9 (nanoseconds), then opt_endofopt.
                idb.extend_from_slice(&9u16.to_le_bytes());
                idb.extend_from_slice(&1u16.to_le_bytes());
                idb.extend_from_slice(&[9, 0, 0, 0]);
                idb.extend_from_slice(&[0, 0, 0, 0]);
                block(&mut self.out, 1, &idb)?;
                self.links.push(link_type);
                self.links.len() - 1
            }
        };
        let mut epb = Vec::with_capacity(20 + data.len() + 3);
        epb.extend_from_slice(&(iface as u32).to_le_bytes());
        epb.extend_from_slice(&((ts_nanos >> 32) as u32).to_le_bytes());
        epb.extend_from_slice(&(ts_nanos as u32).to_le_bytes());
        epb.extend_from_slice(&(data.len() as u32).to_le_bytes());
        epb.extend_from_slice(&orig_len.max(data.len() as u32).to_le_bytes());
        epb.extend_from_slice(data);
        epb.extend_from_slice(&[0u8; 3][..(4 - data.len() % 4) % 4]);
        block(&mut self.out, 6, &epb)
    }

    /// The underlying writer.
    pub fn into_inner(self) -> W {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_dsb_is_read_back_and_packets_still_parse() {
        let mut w = PcapngWriter::new(Vec::new(), b"CLIENT_RANDOM aa bb\n").unwrap();
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
}
