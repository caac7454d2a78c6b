//! Reading captures: pcap and pcapng, optionally gzip-compressed, streamed in constant memory.
//!
//! This module owns the only file I/O of the analysis path. It turns a file (or any `Read`) into a sequence of
//! [`Packet`]s, each with its frame number (1-based, as Wireshark counts), timestamp, link type and the byte offset
//! of its record in the file. Parsing of the container format is pcap-parser's; this module adds interface
//! bookkeeping for pcapng (per-interface link types and timestamp resolutions), gzip detection, and turns every kind
//! of damage (truncation, corrupt blocks, oversized records) into a [`Damage`] that names the byte offset.
//! Damage does not end reading: the reader resynchronises on the next plausible pcap record header (plausible
//! lengths and timestamp, and the record after it plausible too) or pcapng block (known type, aligned length, the
//! trailing length repeating the leading one), and says how many bytes it skipped ([`Damage::skipped`]). Only
//! damage with nothing readable after it (truncation at the end, an unreadable stream) ends reading.

pub mod secrets;
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

/// Damage found in a capture: everything before it stands; when [`Damage::resumed`], reading went on after
/// `skipped` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    /// Byte offset of the damaged record (in the decompressed stream for `.gz` files).
    pub offset: u64,
    /// What is wrong.
    pub message: String,
    /// Bytes skipped from `offset` (to the next plausible record, or to the end of the file).
    pub skipped: u64,
    /// Reading resumed at `offset + skipped`: call [`CaptureReader::next_packet`] again for more packets.
    pub resumed: bool,
}

/// Largest captured length a pcap record may claim before it is taken for damage (unless the file's snap
/// length is larger).
const MAX_CAPLEN: u32 = 256 << 10;

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
    legacy_be: bool,
    legacy_snaplen: u32,
    ng_be: bool,
    last_ts_sec: Option<u64>,
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
            legacy_be: false,
            legacy_snaplen: 0,
            ng_be: false,
            last_ts_sec: None,
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
            if let Some(why) = self.implausible_head() {
                return Err(self.resync(offset, why));
            }
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
                            skipped: 0,
                            resumed: false,
                        });
                    }
                    if self.inner.data().len() == before {
                        self.stalled_refills += 1;
                        if self.stalled_refills > 2 {
                            self.stalled_refills = 0;
                            return Err(self.resync(
                                offset,
                                format!(
                                    "the capture is truncated: the record at byte {offset} is cut off by the end of the file"
                                ),
                            ));
                        }
                    } else {
                        self.stalled_refills = 0;
                    }
                }
                Step::Damage(message) => {
                    if self.inner.data().is_empty() && self.inner.reader_exhausted() {
                        self.done = true;
                        return Err(Damage {
                            offset,
                            message,
                            skipped: 0,
                            resumed: false,
                        });
                    }
                    return Err(self.resync(offset, message));
                }
                Step::Block(len, kind) => {
                    self.stalled_refills = 0;
                    match kind {
                        Kind::LegacyHeader {
                            link,
                            nanos,
                            big_endian,
                            snaplen,
                        } => {
                            self.format = Format::Pcap;
                            self.legacy_link = link;
                            self.legacy_nanos = nanos;
                            self.legacy_be = big_endian;
                            self.legacy_snaplen = snaplen;
                            self.inner.consume(len);
                        }
                        Kind::Section { big_endian } => {
                            self.format = Format::Pcapng;
                            self.ng_be = big_endian;
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

    /// Whether the next record's header, already buffered, claims something no intact record does (checked
    /// before the parser, which would otherwise wait for gigabytes of a corrupt length).
    fn implausible_head(&self) -> Option<String> {
        let d = self.inner.data();
        let offset = self.inner.consumed();
        if self.number == 0 && self.interfaces.is_empty() && self.legacy_snaplen == 0 {
            return None; // the file header is not read yet
        }
        match self.format {
            Format::Pcap => {
                let caplen = read_u32(d, 8, self.legacy_be)?;
                (caplen > self.max_caplen()).then(|| {
                    format!("the record at byte {offset} claims {caplen} captured bytes (corrupt header)")
                })
            }
            Format::Pcapng => {
                let len = read_u32(d, 4, self.ng_be)?;
                (len < 12 || len % 4 != 0 || len as usize > READ_BUFFER).then(|| {
                    format!("the block at byte {offset} claims a length of {len} bytes (corrupt header)")
                })
            }
        }
    }

    fn max_caplen(&self) -> u32 {
        MAX_CAPLEN.max(self.legacy_snaplen.min(READ_BUFFER as u32 - 16))
    }

    /// Skips from the damaged record at `offset` to the next plausible record or block; the returned damage says
    /// how far, and whether reading can resume.
    fn resync(&mut self, offset: u64, message: String) -> Damage {
        const KEEP: usize = 64;
        let mut skipped = 0u64;
        let mut from = 1usize;
        loop {
            let d = self.inner.data();
            let found = (from..d.len()).find(|&p| self.plausible_at(d, p));
            if let Some(p) = found {
                self.inner.consume(p);
                skipped += p as u64;
                return Damage {
                    offset,
                    message: format!(
                        "{message}; skipped {skipped} bytes to the next intact record"
                    ),
                    skipped,
                    resumed: true,
                };
            }
            let exhausted = self.inner.reader_exhausted();
            let n = if exhausted {
                d.len()
            } else {
                d.len().saturating_sub(KEEP).max(from.min(d.len()))
            };
            self.inner.consume(n);
            skipped += n as u64;
            from = 0;
            if exhausted || self.inner.refill().is_err() {
                self.done = true;
                return Damage {
                    offset,
                    message,
                    skipped,
                    resumed: false,
                };
            }
        }
    }

    /// A record or block header at `d[p..]` that an intact file would have there.
    fn plausible_at(&self, d: &[u8], p: usize) -> bool {
        match self.format {
            Format::Pcap => {
                let Some(len) = self.legacy_record_at(d, p) else {
                    return false;
                };
                // The record after it must be plausible too, unless the buffer ends first.
                let next = p + 16 + len;
                next + 16 > d.len() || self.legacy_record_at(d, next).is_some()
            }
            Format::Pcapng => {
                let be = self.ng_be;
                let (Some(kind), Some(len)) = (read_u32(d, p, be), read_u32(d, p + 4, be)) else {
                    return false;
                };
                let known = matches!(kind, 1..=6 | 0xa | 0x0A0D_0D0A);
                let len = len as usize;
                if !known || len < 12 || len % 4 != 0 || len > READ_BUFFER {
                    return false;
                }
                match read_u32(d, p + len - 4, be) {
                    Some(trailer) => trailer as usize == len,
                    None => false,
                }
            }
        }
    }

    /// The captured length of a plausible pcap record header at `d[p..]`.
    fn legacy_record_at(&self, d: &[u8], p: usize) -> Option<usize> {
        let be = self.legacy_be;
        let ts_sec = read_u32(d, p, be)?;
        let frac = read_u32(d, p + 4, be)?;
        let caplen = read_u32(d, p + 8, be)?;
        let origlen = read_u32(d, p + 12, be)?;
        let frac_ok = frac
            < if self.legacy_nanos {
                1_000_000_000
            } else {
                1_000_000
            };
        let ts_ok = self
            .last_ts_sec
            .is_none_or(|last| u64::from(ts_sec).abs_diff(last) <= 86_400);
        (frac_ok && ts_ok && caplen <= origlen && caplen <= self.max_caplen() && origlen <= 1 << 20)
            .then_some(caplen as usize)
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
                self.last_ts_sec = Some(u64::from(b.ts_sec));
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
                    skipped: 0,
                    resumed: false,
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
                    skipped: 0,
                    resumed: false,
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
                skipped: 0,
                resumed: false,
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
    LegacyHeader {
        link: u32,
        nanos: bool,
        big_endian: bool,
        snaplen: u32,
    },
    Section {
        big_endian: bool,
    },
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
            big_endian: h.is_bigendian(),
            snaplen: h.snaplen,
        },
        PcapBlockOwned::Legacy(_) => Kind::Legacy,
        PcapBlockOwned::NG(Block::SectionHeader(h)) => Kind::Section {
            big_endian: h.big_endian(),
        },
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

fn read_u32(d: &[u8], at: usize, big_endian: bool) -> Option<u32> {
    let b = d.get(at..at.checked_add(4)?)?;
    let a = [b[0], b[1], b[2], b[3]];
    Some(if big_endian {
        u32::from_be_bytes(a)
    } else {
        u32::from_le_bytes(a)
    })
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
