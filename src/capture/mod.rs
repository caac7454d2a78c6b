//! Reading captures: pcap and pcapng, optionally gzip-compressed, streamed in constant memory.
//!
//! This module owns the only file I/O of the analysis path. It turns a file (or any `Read`) into a sequence of
//! [`Packet`]s, each with its frame number (1-based, as Wireshark counts), timestamp, link type and the byte offset
//! of its record in the file. Parsing of the container format is pcap-parser's; this module adds interface
//! bookkeeping for pcapng (per-interface link types and timestamp resolutions), gzip detection, and turns every kind
//! of damage (truncation, corrupt blocks, oversized records) into a [`Damage`] that names the byte offset, so the
//! caller can keep everything read before it.

pub mod writer;

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use pcap_parser::pcapng::Block;
use pcap_parser::traits::PcapReaderIterator;
use pcap_parser::{PcapBlockOwned, PcapError};

use crate::error::Error;

/// Size of the reader's buffer. A single record larger than this is reported as damage.
pub const READ_BUFFER: usize = 4 << 20;

/// One captured frame.
#[derive(Debug, Clone, Copy)]
pub struct Packet<'a> {
    /// Frame number, 1-based, counting every packet record in the file (as `frame.number` in Wireshark).
    pub number: u64,
    /// Capture time in nanoseconds since the Unix epoch (0 when the format carries none).
    pub ts_nanos: u64,
    /// LINKTYPE_* of the interface the frame was captured on.
    pub link_type: u32,
    /// The captured bytes (possibly fewer than were on the wire).
    pub data: &'a [u8],
    /// Length of the frame on the wire.
    pub orig_len: u32,
}

/// Damage found in a capture: reading stops here, everything before it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    /// Byte offset of the damaged record (in the decompressed stream for `.gz` files).
    pub offset: u64,
    /// What is wrong.
    pub message: String,
}

/// The container format of a capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Classic libpcap.
    Pcap,
    /// pcapng.
    Pcapng,
}

#[derive(Debug, Clone, Copy)]
struct Interface {
    link_type: u32,
    /// Timestamp units per second, or None when the resolution is unusable.
    units_per_sec: Option<u128>,
    offset_secs: i64,
}

/// Streaming reader over a capture file.
pub struct CaptureReader {
    inner: Box<dyn PcapReaderIterator + Send>,
    name: PathBuf,
    format: Format,
    gzip: bool,
    interfaces: Vec<Interface>,
    legacy_link: u32,
    legacy_nanos: bool,
    pending_consume: usize,
    number: u64,
    stalled_refills: u8,
    done: bool,
}

impl std::fmt::Debug for CaptureReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaptureReader")
            .field("name", &self.name)
            .field("format", &self.format)
            .field("gzip", &self.gzip)
            .field("number", &self.number)
            .finish()
    }
}

impl CaptureReader {
    /// Opens a capture file; gzip compression is detected by content, not by name.
    pub fn open(path: &Path) -> Result<Self, Error> {
        let io_err = |source| Error::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut file = File::open(path).map_err(io_err)?;
        let mut magic = [0u8; 2];
        let n = read_up_to(&mut file, &mut magic).map_err(io_err)?;
        let head = magic[..n].to_vec();
        let chained = std::io::Cursor::new(head).chain(file);
        if n == 2 && magic == [0x1f, 0x8b] {
            let gz =
                flate2::read::MultiGzDecoder::new(BufReader::with_capacity(256 << 10, chained));
            Self::from_reader(FullRead(gz), path, true)
        } else {
            Self::from_reader(FullRead(chained), path, false)
        }
    }

    /// Reads a capture from any byte stream. `name` is used in messages only.
    pub fn from_reader<R: Read + Send + 'static>(
        reader: R,
        name: &Path,
        gzip: bool,
    ) -> Result<Self, Error> {
        let not_capture = |detail: String| Error::NotACapture {
            path: name.to_path_buf(),
            detail,
        };
        let inner = match pcap_parser::create_reader(READ_BUFFER, reader) {
            Ok(r) => r,
            Err(PcapError::Eof) => return Err(not_capture("the file is empty".into())),
            Err(PcapError::ReadError) => {
                return Err(not_capture(if gzip {
                    "the gzip stream is corrupt".into()
                } else {
                    "it could not be read".into()
                }))
            }
            Err(PcapError::Incomplete(_)) => {
                return Err(not_capture(
                    "the file is shorter than a capture file header".into(),
                ))
            }
            Err(_) => {
                return Err(not_capture(
                    "its first bytes are neither a pcap nor a pcapng header".into(),
                ))
            }
        };
        Ok(CaptureReader {
            inner,
            name: name.to_path_buf(),
            format: Format::Pcap,
            gzip,
            interfaces: Vec::new(),
            legacy_link: 1,
            legacy_nanos: false,
            pending_consume: 0,
            number: 0,
            stalled_refills: 0,
            done: false,
        })
    }

    /// The container format (known after the first call to [`CaptureReader::next_packet`]).
    pub fn format(&self) -> Format {
        self.format
    }

    /// The name given when opening.
    pub fn name(&self) -> &Path {
        &self.name
    }

    /// Whether the file was gzip-compressed.
    pub fn gzip(&self) -> bool {
        self.gzip
    }

    /// Bytes of the (decompressed) stream consumed so far.
    pub fn offset(&self) -> u64 {
        (self.inner.consumed() + self.pending_consume) as u64
    }

    /// The next packet, `Ok(None)` at the end, or the damage that ends reading.
    /// After `Ok(None)` or `Err`, further calls return `Ok(None)`.
    pub fn next_packet(&mut self) -> Result<Option<Packet<'_>>, Damage> {
        if self.pending_consume > 0 {
            self.inner.consume(self.pending_consume);
            self.pending_consume = 0;
        }
        loop {
            if self.done {
                return Ok(None);
            }
            let offset = self.inner.consumed() as u64;
            // Parse one block. Borrow juggling: decide what to do with owned data, then act.
            let step = match self.inner.next() {
                Ok((len, block)) => Step::Block(len, classify(block)),
                Err(PcapError::Eof) => Step::End,
                Err(PcapError::Incomplete(_)) => Step::Refill,
                Err(PcapError::UnexpectedEof) => Step::Damage(format!(
                    "the capture is truncated: the record at byte {offset} is cut off by the end of the file"
                )),
                Err(PcapError::BufferTooSmall) => Step::Damage(format!(
                    "the record at byte {offset} is larger than {} MiB (corrupt length field?)",
                    READ_BUFFER >> 20
                )),
                Err(PcapError::ReadError) => Step::Damage(format!(
                    "reading failed after byte {offset}{}",
                    if self.gzip { " (corrupt or truncated gzip stream)" } else { "" }
                )),
                Err(e) => Step::Damage(format!("corrupt record at byte {offset}: {e:?}")),
            };
            match step {
                Step::End => {
                    self.done = true;
                    return Ok(None);
                }
                Step::Refill => {
                    let before = self.inner.data().len();
                    if self.inner.refill().is_err() {
                        self.done = true;
                        return Err(Damage {
                            offset,
                            message: format!("reading failed after byte {offset}"),
                        });
                    }
                    if self.inner.data().len() == before {
                        self.stalled_refills += 1;
                        if self.stalled_refills > 2 {
                            self.done = true;
                            return Err(Damage {
                                offset,
                                message: format!(
                                    "the capture is truncated: the record at byte {offset} is cut off by the end of the file"
                                ),
                            });
                        }
                    } else {
                        self.stalled_refills = 0;
                    }
                }
                Step::Damage(message) => {
                    self.done = true;
                    return Err(Damage { offset, message });
                }
                Step::Block(len, kind) => {
                    self.stalled_refills = 0;
                    match kind {
                        Kind::LegacyHeader { link, nanos } => {
                            self.format = Format::Pcap;
                            self.legacy_link = link;
                            self.legacy_nanos = nanos;
                            self.inner.consume(len);
                        }
                        Kind::Section => {
                            self.format = Format::Pcapng;
                            self.interfaces.clear();
                            self.inner.consume(len);
                        }
                        Kind::Interface(i) => {
                            self.interfaces.push(i);
                            self.inner.consume(len);
                        }
                        Kind::Other => self.inner.consume(len),
                        Kind::Legacy | Kind::Enhanced | Kind::Simple => {
                            // Re-borrow the block to hand out its data without copying.
                            self.pending_consume = len;
                            self.number += 1;
                            return Ok(Some(self.current_packet(kind)?));
                        }
                    }
                }
            }
        }
    }

    fn current_packet(&mut self, kind: Kind) -> Result<Packet<'_>, Damage> {
        let number = self.number;
        let legacy_link = self.legacy_link;
        let legacy_nanos = self.legacy_nanos;
        let interfaces = &self.interfaces;
        let offset = self.inner.consumed() as u64;
        let _ = kind;
        // The block was classified by a first parse; parsing it again (cheap: a record header) hands out its data
        // borrowed, which a loop that also refills the buffer cannot do in one pass under today's borrow checker.
        // Dispatch again on the real parser to obtain borrowed data.
        match self.inner.next() {
            Ok((_, PcapBlockOwned::Legacy(b))) => {
                let ts_nanos = u64::from(b.ts_sec) * 1_000_000_000
                    + if legacy_nanos {
                        u64::from(b.ts_usec)
                    } else {
                        u64::from(b.ts_usec) * 1000
                    };
                Ok(Packet {
                    number,
                    ts_nanos,
                    link_type: legacy_link,
                    data: b.data,
                    orig_len: b.origlen,
                })
            }
            Ok((_, PcapBlockOwned::NG(Block::EnhancedPacket(b)))) => {
                let iface = interfaces.get(b.if_id as usize).copied().ok_or(Damage {
                    offset,
                    message: format!(
                        "packet {number} at byte {offset} names interface {} but the file describes only {}",
                        b.if_id,
                        interfaces.len()
                    ),
                })?;
                let raw = (u64::from(b.ts_high) << 32) | u64::from(b.ts_low);
                let ts_nanos = iface
                    .units_per_sec
                    .map(|units| {
                        let ns = u128::from(raw) * 1_000_000_000 / units;
                        let off = i128::from(iface.offset_secs) * 1_000_000_000;
                        u64::try_from((ns as i128 + off).max(0)).unwrap_or(u64::MAX)
                    })
                    .unwrap_or(0);
                let caplen = (b.caplen as usize).min(b.data.len());
                Ok(Packet {
                    number,
                    ts_nanos,
                    link_type: iface.link_type,
                    data: &b.data[..caplen],
                    orig_len: b.origlen,
                })
            }
            Ok((_, PcapBlockOwned::NG(Block::SimplePacket(b)))) => {
                let iface = interfaces.first().copied().ok_or(Damage {
                    offset,
                    message: format!(
                        "packet {number} at byte {offset} comes before any interface description"
                    ),
                })?;
                let caplen = (b.origlen as usize).min(b.data.len());
                Ok(Packet {
                    number,
                    ts_nanos: 0,
                    link_type: iface.link_type,
                    data: &b.data[..caplen],
                    orig_len: b.origlen,
                })
            }
            _ => Err(Damage {
                offset,
                message: format!("record at byte {offset} changed while being read"),
            }),
        }
    }
}

enum Step {
    Block(usize, Kind),
    End,
    Refill,
    Damage(String),
}

#[derive(Clone, Copy)]
enum Kind {
    LegacyHeader { link: u32, nanos: bool },
    Section,
    Interface(Interface),
    Legacy,
    Enhanced,
    Simple,
    Other,
}

fn classify(block: PcapBlockOwned<'_>) -> Kind {
    match block {
        PcapBlockOwned::LegacyHeader(h) => Kind::LegacyHeader {
            link: h.network.0 as u32,
            nanos: h.is_nanosecond_precision(),
        },
        PcapBlockOwned::Legacy(_) => Kind::Legacy,
        PcapBlockOwned::NG(Block::SectionHeader(_)) => Kind::Section,
        PcapBlockOwned::NG(Block::InterfaceDescription(idb)) => Kind::Interface(Interface {
            link_type: idb.linktype.0 as u32,
            units_per_sec: units_per_sec(idb.if_tsresol),
            offset_secs: idb.if_tsoffset,
        }),
        PcapBlockOwned::NG(Block::EnhancedPacket(_)) => Kind::Enhanced,
        PcapBlockOwned::NG(Block::SimplePacket(_)) => Kind::Simple,
        PcapBlockOwned::NG(_) => Kind::Other,
    }
}

/// pcapng `if_tsresol`: high bit clear → 10^-n seconds, set → 2^-n seconds.
fn units_per_sec(tsresol: u8) -> Option<u128> {
    let n = u32::from(tsresol & 0x7f);
    if tsresol & 0x80 == 0 {
        10u128.checked_pow(n)
    } else {
        2u128.checked_pow(n)
    }
    .filter(|u| *u > 0)
}

/// Makes every `read` fill the buffer unless the stream ends: pcap-parser probes the format with a single read
/// and treats a short one as a short file, and chained or decompressing readers return short reads.
struct FullRead<R>(R);

impl<R: Read> Read for FullRead<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        read_up_to(&mut self.0, buf)
    }
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}
