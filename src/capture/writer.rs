//! Writing classic pcap files (microsecond or nanosecond timestamps) and pcapng files with Decryption
//! Secrets Blocks (the vnet's capture).
//!
//! Used by the virtual network to record every frame, and by tests and benchmarks to build their own captures.
//! The format is tiny (a 24-byte file header, then a 16-byte record header per frame), so it is written here
//! directly rather than through a serialisation crate.

use std::io::{self, Write};

/// Link type numbers (LINKTYPE_*) that telltale writes.
pub mod linktype {
    /// Ethernet.
    pub const ETHERNET: u32 = 1;
    /// Raw IPv4/IPv6, no link header.
    pub const RAW: u32 = 101;
    /// Linux cooked capture v1.
    pub const LINUX_SLL: u32 = 113;
    /// Linux cooked capture v2.
    pub const LINUX_SLL2: u32 = 276;
    /// BSD loopback.
    pub const NULL: u32 = 0;
}

/// Streams frames into a classic pcap file.
pub struct PcapWriter<W: Write> {
    out: W,
    nanos: bool,
    frames: u64,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the file header. `snaplen` is advisory; `nanos` selects nanosecond timestamps.
    pub fn new(mut out: W, link_type: u32, nanos: bool) -> io::Result<Self> {
        let magic: u32 = if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 };
        let mut hdr = [0u8; 24];
        hdr[0..4].copy_from_slice(&magic.to_le_bytes());
        hdr[4..6].copy_from_slice(&2u16.to_le_bytes());
        hdr[6..8].copy_from_slice(&4u16.to_le_bytes());
        hdr[16..20].copy_from_slice(&262_144u32.to_le_bytes());
        hdr[20..24].copy_from_slice(&link_type.to_le_bytes());
        out.write_all(&hdr)?;
        Ok(PcapWriter {
            out,
            nanos,
            frames: 0,
        })
    }

    /// Appends one frame captured whole at `ts_nanos` nanoseconds since the Unix epoch.
    pub fn write_frame(&mut self, ts_nanos: u64, frame: &[u8]) -> io::Result<()> {
        self.write_truncated(ts_nanos, frame, frame.len())
    }

    /// Appends a frame of which only `frame` was captured out of `orig_len` bytes on the wire.
    pub fn write_truncated(
        &mut self,
        ts_nanos: u64,
        frame: &[u8],
        orig_len: usize,
    ) -> io::Result<()> {
        let secs = (ts_nanos / 1_000_000_000) as u32;
        let sub = ts_nanos % 1_000_000_000;
        let frac = if self.nanos { sub } else { sub / 1000 } as u32;
        let caplen = u32::try_from(frame.len()).map_err(|_| io::Error::other("frame too large"))?;
        let orig = u32::try_from(orig_len.max(frame.len())).unwrap_or(u32::MAX);
        let mut rec = [0u8; 16];
        rec[0..4].copy_from_slice(&secs.to_le_bytes());
        rec[4..8].copy_from_slice(&frac.to_le_bytes());
        rec[8..12].copy_from_slice(&caplen.to_le_bytes());
        rec[12..16].copy_from_slice(&orig.to_le_bytes());
        self.out.write_all(&rec)?;
        self.out.write_all(frame)?;
        self.frames += 1;
        Ok(())
    }

    /// The underlying writer (e.g. to flush it).
    pub fn writer_mut(&mut self) -> &mut W {
        &mut self.out
    }

    /// Frames written so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// The underlying writer.
    pub fn get_ref(&self) -> &W {
        &self.out
    }

    /// Flushes and returns the underlying writer.
    pub fn into_inner(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

/// `secrets_type` of a Decryption Secrets Block holding an NSS key log (`TLSK`).
pub const DSB_TLS_KEY_LOG: u32 = super::secrets::SECRETS_TLS_KEYLOG;

/// Streams frames into a pcapng file: one section, one interface (nanosecond timestamps),
/// Enhanced Packet Blocks, and Decryption Secrets Blocks placed where they are written, so
/// that secrets come before the packets they decrypt. Little-endian; written here directly
/// for the same reason as [`PcapWriter`] (four block layouts of a few fields each).
pub struct PcapngWriter<W: Write> {
    out: W,
    frames: u64,
    secrets: u64,
    /// Link type of each interface written, by interface id.
    links: Vec<u32>,
}

impl<W: Write> PcapngWriter<W> {
    /// Writes the Section Header Block and one Interface Description Block of `link_type`
    /// with `if_tsresol` = 9 (nanoseconds).
    pub fn new(out: W, link_type: u32, snaplen: u32) -> io::Result<Self> {
        let mut w = PcapngWriter::section(out)?;
        w.interface(link_type, snaplen)?;
        Ok(w)
    }

    /// Writes the Section Header Block only; interfaces come with [`PcapngWriter::interface`] (or as
    /// [`PcapngWriter::packet`] needs them).
    pub fn section(mut out: W) -> io::Result<Self> {
        let mut shb = Vec::with_capacity(28);
        shb.extend_from_slice(&0x0A0D_0D0Au32.to_le_bytes());
        shb.extend_from_slice(&28u32.to_le_bytes());
        shb.extend_from_slice(&0x1A2B_3C4Du32.to_le_bytes());
        shb.extend_from_slice(&1u16.to_le_bytes());
        shb.extend_from_slice(&0u16.to_le_bytes());
        shb.extend_from_slice(&(-1i64).to_le_bytes());
        shb.extend_from_slice(&28u32.to_le_bytes());
        out.write_all(&shb)?;
        Ok(PcapngWriter {
            out,
            frames: 0,
            secrets: 0,
            links: Vec::new(),
        })
    }

    /// Writes an Interface Description Block of `link_type` (`if_tsresol` = 9, nanoseconds); returns
    /// its interface id.
    pub fn interface(&mut self, link_type: u32, snaplen: u32) -> io::Result<u32> {
        let link = u16::try_from(link_type).map_err(|_| io::Error::other("link type too large"))?;
        let mut idb = Vec::with_capacity(32);
        idb.extend_from_slice(&1u32.to_le_bytes());
        idb.extend_from_slice(&32u32.to_le_bytes());
        idb.extend_from_slice(&link.to_le_bytes());
        idb.extend_from_slice(&0u16.to_le_bytes());
        idb.extend_from_slice(&snaplen.to_le_bytes());
        // if_tsresol (9): 10^-9 seconds, padded to 4 bytes; then opt_endofopt.
        idb.extend_from_slice(&[9, 0, 1, 0, 9, 0, 0, 0, 0, 0, 0, 0]);
        idb.extend_from_slice(&32u32.to_le_bytes());
        self.out.write_all(&idb)?;
        self.links.push(link_type);
        Ok(self.links.len() as u32 - 1)
    }

    /// Appends one frame of `link_type` (its interface written first if it is new): `data` as
    /// captured, `orig_len` its length on the wire, at `ts_nanos` nanoseconds since the epoch.
    pub fn packet(
        &mut self,
        link_type: u32,
        ts_nanos: u64,
        data: &[u8],
        orig_len: u32,
    ) -> io::Result<()> {
        let iface = match self.links.iter().position(|&l| l == link_type) {
            Some(i) => i as u32,
            None => self.interface(link_type, 262_144)?,
        };
        self.enhanced(iface, ts_nanos, data, orig_len)
    }

    /// Appends one frame captured whole at `ts_nanos` nanoseconds since the Unix epoch, on the
    /// first interface.
    pub fn write_frame(&mut self, ts_nanos: u64, frame: &[u8]) -> io::Result<()> {
        let caplen = u32::try_from(frame.len()).map_err(|_| io::Error::other("frame too large"))?;
        self.enhanced(0, ts_nanos, frame, caplen)
    }

    fn enhanced(
        &mut self,
        iface: u32,
        ts_nanos: u64,
        data: &[u8],
        orig_len: u32,
    ) -> io::Result<()> {
        let caplen = u32::try_from(data.len()).map_err(|_| io::Error::other("frame too large"))?;
        let pad = (4 - data.len() % 4) % 4;
        let total = 32 + data.len() + pad;
        let total = u32::try_from(total).map_err(|_| io::Error::other("frame too large"))?;
        let mut hdr = [0u8; 28];
        hdr[0..4].copy_from_slice(&6u32.to_le_bytes());
        hdr[4..8].copy_from_slice(&total.to_le_bytes());
        hdr[8..12].copy_from_slice(&iface.to_le_bytes());
        hdr[12..16].copy_from_slice(&((ts_nanos >> 32) as u32).to_le_bytes());
        hdr[16..20].copy_from_slice(&(ts_nanos as u32).to_le_bytes());
        hdr[20..24].copy_from_slice(&caplen.to_le_bytes());
        hdr[24..28].copy_from_slice(&orig_len.max(caplen).to_le_bytes());
        self.out.write_all(&hdr)?;
        self.out.write_all(data)?;
        self.out.write_all(&[0u8; 3][..pad])?;
        self.out.write_all(&total.to_le_bytes())?;
        self.frames += 1;
        Ok(())
    }

    /// Appends a Decryption Secrets Block of `secrets_type` (e.g. [`DSB_TLS_KEY_LOG`]).
    pub fn write_secrets(&mut self, secrets_type: u32, data: &[u8]) -> io::Result<()> {
        let len = u32::try_from(data.len()).map_err(|_| io::Error::other("secrets too large"))?;
        let pad = (4 - data.len() % 4) % 4;
        let total = u32::try_from(20 + data.len() + pad)
            .map_err(|_| io::Error::other("secrets too large"))?;
        let mut hdr = [0u8; 16];
        hdr[0..4].copy_from_slice(&0x0Au32.to_le_bytes());
        hdr[4..8].copy_from_slice(&total.to_le_bytes());
        hdr[8..12].copy_from_slice(&secrets_type.to_le_bytes());
        hdr[12..16].copy_from_slice(&len.to_le_bytes());
        self.out.write_all(&hdr)?;
        self.out.write_all(data)?;
        self.out.write_all(&[0u8; 3][..pad])?;
        self.out.write_all(&total.to_le_bytes())?;
        self.secrets += 1;
        Ok(())
    }

    /// The underlying writer (e.g. to flush it).
    pub fn writer_mut(&mut self) -> &mut W {
        &mut self.out
    }

    /// The underlying writer.
    pub fn into_inner(self) -> W {
        self.out
    }

    /// Frames written so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Decryption Secrets Blocks written so far.
    pub fn secrets_blocks(&self) -> u64 {
        self.secrets
    }
}

#[cfg(test)]
mod pcapng_tests {
    use super::*;

    #[test]
    fn pcapng_with_secrets_reads_back_in_order() {
        let mut w = PcapngWriter::new(Vec::new(), linktype::ETHERNET, 262_144).unwrap();
        w.write_frame(1_700_000_000_123_456_789, &[1u8; 61])
            .unwrap();
        w.write_secrets(DSB_TLS_KEY_LOG, b"CLIENT_RANDOM 00 11\n")
            .unwrap();
        w.write_frame(1_700_000_001_000_000_001, &[2u8; 64])
            .unwrap();
        let bytes = w.writer_mut().clone();
        assert_eq!(bytes.len() % 4, 0);
        let mut rd = pcap_parser::PcapNGReader::new(1 << 16, &bytes[..]).unwrap();
        use pcap_parser::traits::PcapReaderIterator;
        use pcap_parser::{Block, PcapBlockOwned};
        let mut seen = Vec::new();
        loop {
            match rd.next() {
                Ok((n, block)) => {
                    if let PcapBlockOwned::NG(b) = block {
                        seen.push(match b {
                            Block::SectionHeader(_) => "shb".to_string(),
                            Block::InterfaceDescription(i) => format!("idb {}", i.if_tsresol),
                            Block::EnhancedPacket(e) => {
                                format!("epb {} {}:{}", e.caplen, e.ts_high, e.ts_low)
                            }
                            Block::DecryptionSecrets(d) => format!(
                                "dsb {:x} {}",
                                d.secrets_type.0,
                                String::from_utf8_lossy(&d.data[..d.secrets_len as usize])
                            ),
                            _ => "other".into(),
                        });
                    }
                    rd.consume(n);
                }
                Err(pcap_parser::PcapError::Eof) => break,
                Err(pcap_parser::PcapError::Incomplete(_)) => rd.refill().unwrap(),
                Err(e) => panic!("{e:?}"),
            }
        }
        let t1: u64 = 1_700_000_000_123_456_789;
        assert_eq!(
            seen,
            [
                "shb".to_string(),
                "idb 9".into(),
                format!("epb 61 {}:{}", t1 >> 32, t1 as u32),
                "dsb 544c534b CLIENT_RANDOM 00 11\n".into(),
                format!(
                    "epb 64 {}:{}",
                    1_700_000_001_000_000_001u64 >> 32,
                    1_700_000_001_000_000_001u64 as u32
                ),
            ]
        );
        assert_eq!(w.frames(), 2);
        assert_eq!(w.secrets_blocks(), 1);
    }
}
