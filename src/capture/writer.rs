//! Writing classic pcap files (microsecond or nanosecond timestamps).
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
