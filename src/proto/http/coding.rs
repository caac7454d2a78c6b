//! Content-Encoding / Transfer-Encoding decoding of bodies: `gzip`/`x-gzip` (multi-member),
//! `deflate` (zlib-wrapped or raw), `br` and `zstd`, stacked codings undone in reverse, and gzip
//! bodies sent without a `Content-Encoding` header (sniffed). Decoding is incremental, in bounded
//! output steps, with a cap on decoded bytes per message; decoded pieces are emitted as
//! [`HttpEvent::Body`].

use super::body::clamp_len;
use super::HttpEvent;

/// Default cap on decoded body bytes delivered per message.
pub const DEFAULT_DECODED_CAP: u64 = 64 * 1024 * 1024;

const OUT_CHUNK: usize = 32 * 1024;
const ZSTD_WINDOW_LOG_MAX: u32 = 24;
const GZIP_MAGIC: [u8; 3] = [0x1f, 0x8b, 0x08];

/// Why body decoding failed or stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum DecodeError {
    #[error("gzip: {0}")]
    Gzip(String),
    #[error("deflate: {0}")]
    Deflate(String),
    #[error("br: {0}")]
    Brotli(String),
    #[error("zstd: {0}")]
    Zstd(String),
    #[error("unsupported coding {0:?}")]
    Unsupported(String),
    #[error("capture gap inside an encoded body")]
    Gap,
}

pub(super) enum Decode {
    /// Not transformed: bytes are only counted.
    Raw,
    /// No coding declared: holding the first bytes to look for the gzip magic.
    Sniff {
        held: [u8; 3],
        n: usize,
        first_wire: u64,
        chunked: bool,
    },
    /// Transformed: decoded bytes are emitted.
    Pipe(Pipeline),
}

/// Sets up decoding for a body: `applied` lists codings in the order they were applied.
pub(super) fn build_decode(
    chunked: bool,
    applied: &[String],
    cap: u64,
) -> (Decode, Option<DecodeError>) {
    let codings: Vec<&str> = applied
        .iter()
        .map(String::as_str)
        .filter(|c| *c != "identity")
        .collect();
    if codings.is_empty() {
        let decode = Decode::Sniff {
            held: [0; 3],
            n: 0,
            first_wire: 0,
            chunked,
        };
        return (decode, None);
    }
    let mut stages = Vec::new();
    let mut names: Vec<&str> = Vec::new();
    if chunked {
        names.push("chunked");
    }
    let mut error = None;
    for c in codings.iter().rev() {
        let made = match *c {
            "gzip" | "x-gzip" => Ok((Decoder::Gzip(GzipDec::new()), "gzip")),
            "deflate" => Ok((Decoder::Deflate(DeflateDec::new()), "deflate")),
            "br" => Ok((Decoder::Brotli(Box::new(BrotliDec::new())), "br")),
            "zstd" => ZstdDec::new().map(|d| (Decoder::Zstd(d), "zstd")),
            other => Err(DecodeError::Unsupported(other.to_owned())),
        };
        match made {
            Ok((dec, name)) => {
                stages.push(Stage::new(dec));
                names.push(name);
            }
            Err(e) => {
                error = Some(e);
                break;
            }
        }
    }
    let decode = if names.is_empty() {
        Decode::Raw
    } else {
        Decode::Pipe(Pipeline::new(names.join("+"), stages, cap))
    };
    (decode, error)
}

impl Decode {
    pub(super) fn feed(
        &mut self,
        bytes: &[u8],
        wire: u64,
        cap: u64,
        out: &mut dyn FnMut(HttpEvent<'_>),
    ) {
        match self {
            Decode::Raw => {}
            Decode::Pipe(p) => p.push(bytes, wire, out),
            Decode::Sniff {
                held,
                n,
                first_wire,
                chunked,
            } => {
                if bytes.is_empty() {
                    return;
                }
                if *n == 0 {
                    *first_wire = wire;
                }
                let mut used = 0usize;
                while let (Some(slot), Some(&b)) = (held.get_mut(*n), bytes.get(used)) {
                    *slot = b;
                    *n += 1;
                    used += 1;
                    if held.get(..*n) != GZIP_MAGIC.get(..*n) {
                        break;
                    }
                }
                let is_gzip = held.get(..*n) == GZIP_MAGIC.get(..*n);
                if is_gzip && *n < GZIP_MAGIC.len() {
                    return;
                }
                let (h, hn, fw, ch) = (*held, *n, *first_wire, *chunked);
                *self = Decode::after_sniff(is_gzip, ch, cap);
                if let Decode::Pipe(p) = self {
                    p.push(h.get(..hn).unwrap_or_default(), fw, out);
                    p.push(
                        bytes.get(used..).unwrap_or_default(),
                        wire.saturating_add(used as u64),
                        out,
                    );
                }
            }
        }
    }

    fn after_sniff(is_gzip: bool, chunked: bool, cap: u64) -> Decode {
        match (is_gzip, chunked) {
            (true, true) => Decode::Pipe(Pipeline::new(
                "chunked+gzip-sniffed".into(),
                vec![Stage::new(Decoder::Gzip(GzipDec::new()))],
                cap,
            )),
            (true, false) => Decode::Pipe(Pipeline::new(
                "gzip-sniffed".into(),
                vec![Stage::new(Decoder::Gzip(GzipDec::new()))],
                cap,
            )),
            (false, true) => Decode::Pipe(Pipeline::new("chunked".into(), Vec::new(), cap)),
            (false, false) => Decode::Raw,
        }
    }

    /// The body ended: flushes the decoders. Returns the decoded length (`wire_len` when the body
    /// is not transformed), whether the cap cut decoding off, and the first decoding error.
    pub(super) fn finish(
        &mut self,
        wire_len: u64,
        cap: u64,
        out: &mut dyn FnMut(HttpEvent<'_>),
    ) -> (u64, bool, Option<DecodeError>) {
        self.resolve_sniff(cap, out);
        match self {
            Decode::Pipe(p) => {
                p.finish(out);
                (p.decoded_pos, p.capped, p.error.take())
            }
            _ => (wire_len, false, None),
        }
    }

    /// Ends sniffing early (body ended or gapped before three bytes): not gzip.
    fn resolve_sniff(&mut self, cap: u64, out: &mut dyn FnMut(HttpEvent<'_>)) {
        if let Decode::Sniff {
            held,
            n,
            first_wire,
            chunked,
        } = self
        {
            let (h, hn, fw, ch) = (*held, *n, *first_wire, *chunked);
            *self = Decode::after_sniff(false, ch, cap);
            if let Decode::Pipe(p) = self {
                p.push(h.get(..hn).unwrap_or_default(), fw, out);
            }
        }
    }

    pub(super) fn gap(&mut self, len: u64, cap: u64, out: &mut dyn FnMut(HttpEvent<'_>)) {
        self.resolve_sniff(cap, out);
        if let Decode::Pipe(p) = self {
            p.gap(len);
        }
    }
}

/// A whole body decoded at once (for protocols that hand over complete messages: HTTP/2 streams, gRPC messages).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decoded {
    /// The decoded bytes (the input itself when nothing was undone).
    pub bytes: Vec<u8>,
    /// What was undone, in order (`gzip`, `br`, `gzip-sniffed`), empty when nothing was.
    pub layers: String,
    /// Decoding stopped at `cap` decoded bytes.
    pub capped: bool,
    /// Why decoding failed (corrupt data, unsupported coding); `bytes` holds what was decoded before.
    pub error: Option<String>,
}

/// Decodes `body`, encoded with `applied` (content codings in the order applied, as in a `Content-Encoding`
/// header; empty: only a gzip magic is sniffed), keeping at most `cap` decoded bytes.
pub fn decode_whole(applied: &[String], body: &[u8], cap: u64) -> Decoded {
    let (mut decode, error) = build_decode(false, applied, cap);
    let mut out = Decoded {
        error: error.map(|e| e.to_string()),
        ..Decoded::default()
    };
    let mut sink = |e: HttpEvent<'_>| {
        if let HttpEvent::Body {
            decoded, layers, ..
        } = e
        {
            out.bytes.extend_from_slice(decoded);
            if out.layers.is_empty() {
                out.layers = layers.to_owned();
            }
        }
    };
    decode.feed(body, 0, cap, &mut sink);
    let (_, capped, err) = decode.finish(body.len() as u64, cap, &mut sink);
    if matches!(decode, Decode::Raw) {
        out.bytes = body.to_vec();
    }
    out.capped = capped;
    if out.error.is_none() {
        out.error = err.map(|e| e.to_string());
    }
    out
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Flow {
    Go,
    Stop,
}

struct Stage {
    dec: Decoder,
    out: Vec<u8>,
    produced: u64,
}

impl Stage {
    fn new(dec: Decoder) -> Self {
        Stage {
            dec,
            out: Vec::new(),
            produced: 0,
        }
    }
}

/// A stack of decoders (in undo order) whose final output is emitted as [`HttpEvent::Body`].
pub(super) struct Pipeline {
    layers: String,
    stages: Vec<Stage>,
    /// Decoded offset of the next emitted byte (gaps in un-compressed bodies advance it).
    decoded_pos: u64,
    /// Decoded bytes emitted (counted against the cap).
    emitted: u64,
    cap: u64,
    capped: bool,
    stopped: bool,
    fed: bool,
    error: Option<DecodeError>,
    last_wire: u64,
}

impl Pipeline {
    fn new(layers: String, stages: Vec<Stage>, cap: u64) -> Self {
        Pipeline {
            layers,
            stages,
            decoded_pos: 0,
            emitted: 0,
            cap,
            capped: false,
            stopped: false,
            fed: false,
            error: None,
            last_wire: 0,
        }
    }

    fn push(&mut self, input: &[u8], wire: u64, out: &mut dyn FnMut(HttpEvent<'_>)) {
        if self.stopped || input.is_empty() {
            return;
        }
        self.fed = true;
        self.last_wire = wire.saturating_add(input.len() as u64);
        let Pipeline {
            layers,
            stages,
            decoded_pos,
            emitted,
            cap,
            ..
        } = self;
        let cap = *cap;
        let mut sink =
            |piece: &[u8], w: u64| emit(piece, w, layers, decoded_pos, emitted, cap, out);
        let result = run_stages(stages, input, wire, true, cap, &mut sink);
        self.settle(
            result
                .map(|f| (f, None))
                .unwrap_or_else(|e| (Flow::Go, Some(e))),
        );
    }

    fn finish(&mut self, out: &mut dyn FnMut(HttpEvent<'_>)) {
        if self.stopped || !self.fed {
            return;
        }
        let Pipeline {
            layers,
            stages,
            decoded_pos,
            emitted,
            cap,
            last_wire,
            ..
        } = self;
        let cap = *cap;
        let mut sink =
            |piece: &[u8], w: u64| emit(piece, w, layers, decoded_pos, emitted, cap, out);
        let result = finish_stages(stages, *last_wire, cap, &mut sink);
        self.settle(result);
        self.stopped = true;
    }

    fn settle(&mut self, (flow, err): (Flow, Option<DecodeError>)) {
        if let Some(e) = err {
            self.error.get_or_insert(e);
            self.stopped = true;
            self.stages.clear();
        }
        if flow == Flow::Stop {
            self.capped = true;
            self.stopped = true;
            self.stages.clear();
        }
    }

    fn gap(&mut self, len: u64) {
        if self.stopped {
            return;
        }
        if self.stages.is_empty() {
            self.decoded_pos = self.decoded_pos.saturating_add(len);
        } else {
            self.error.get_or_insert(DecodeError::Gap);
            self.stopped = true;
            self.stages.clear();
        }
    }
}

/// Emits one decoded piece, respecting the cap. `Stop` when output was cut off by the cap.
fn emit(
    piece: &[u8],
    wire: u64,
    layers: &str,
    decoded_pos: &mut u64,
    emitted: &mut u64,
    cap: u64,
    out: &mut dyn FnMut(HttpEvent<'_>),
) -> Flow {
    let room = cap.saturating_sub(*emitted);
    let take = clamp_len(room, piece.len());
    if take > 0 {
        out(HttpEvent::Body {
            decoded: piece.get(..take).unwrap_or_default(),
            decoded_offset: *decoded_pos,
            wire_offset: wire,
            layers,
        });
        *emitted = emitted.saturating_add(take as u64);
        *decoded_pos = decoded_pos.saturating_add(take as u64);
    }
    if take < piece.len() {
        Flow::Stop
    } else {
        Flow::Go
    }
}

type Sink<'s> = dyn FnMut(&[u8], u64) -> Flow + 's;

/// Pushes `input` through `stages`, forwarding each stage's bounded output to the next stage
/// and the last stage's output to `sink`. `top`: `wire` is the offset of `input[0]`.
fn run_stages(
    stages: &mut [Stage],
    input: &[u8],
    wire: u64,
    top: bool,
    cap: u64,
    sink: &mut Sink<'_>,
) -> Result<Flow, DecodeError> {
    let Some((first, rest)) = stages.split_first_mut() else {
        return Ok(sink(input, wire));
    };
    let mut pos = 0usize;
    loop {
        let remaining = input.get(pos..).unwrap_or_default();
        first.out.clear();
        let (consumed, progress) = first.dec.decode(remaining, &mut first.out)?;
        let piece_wire = if top {
            wire.saturating_add(pos as u64)
        } else {
            wire
        };
        pos += consumed.min(remaining.len());
        if !first.out.is_empty() {
            if let Flow::Stop = forward(first, rest, piece_wire, cap, sink)? {
                return Ok(Flow::Stop);
            }
        }
        if !progress {
            return Ok(Flow::Go);
        }
    }
}

/// Sends `first.out` on to the remaining stages (or the sink), enforcing the cap on
/// intermediate stages.
fn forward(
    first: &mut Stage,
    rest: &mut [Stage],
    wire: u64,
    cap: u64,
    sink: &mut Sink<'_>,
) -> Result<Flow, DecodeError> {
    first.produced = first.produced.saturating_add(first.out.len() as u64);
    if !rest.is_empty() && first.produced > cap {
        return Ok(Flow::Stop);
    }
    run_stages(rest, &first.out, wire, false, cap, sink)
}

/// Flushes every stage at the end of the body. Returns the flow and the first error.
fn finish_stages(
    stages: &mut [Stage],
    wire: u64,
    cap: u64,
    sink: &mut Sink<'_>,
) -> (Flow, Option<DecodeError>) {
    let Some((first, rest)) = stages.split_first_mut() else {
        return (Flow::Go, None);
    };
    let mut err = None;
    loop {
        first.out.clear();
        match first.dec.finish_step(&mut first.out) {
            Ok(more) => {
                if !first.out.is_empty() {
                    match forward(first, rest, wire, cap, sink) {
                        Ok(Flow::Go) => {}
                        Ok(Flow::Stop) => return (Flow::Stop, None),
                        Err(e) => return (Flow::Go, Some(e)),
                    }
                }
                if !more {
                    break;
                }
            }
            Err(e) => {
                err = Some(e);
                break;
            }
        }
    }
    let (flow, later) = finish_stages(rest, wire, cap, sink);
    (flow, err.or(later))
}

enum Decoder {
    Gzip(GzipDec),
    Deflate(DeflateDec),
    Brotli(Box<BrotliDec>),
    Zstd(ZstdDec),
}

impl Decoder {
    /// Decodes some of `input` into `out` (empty on entry; at most about [`OUT_CHUNK`] bytes
    /// are added). Returns the input bytes consumed and whether anything happened; call again
    /// (with the rest, possibly empty) while it reports progress.
    fn decode(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(usize, bool), DecodeError> {
        match self {
            Decoder::Gzip(d) => d.decode(input, out),
            Decoder::Deflate(d) => d.decode(input, out),
            Decoder::Brotli(d) => d.decode(input, out),
            Decoder::Zstd(d) => d.decode(input, out),
        }
    }

    /// No more input: flushes pending output into `out`. Returns whether to call again.
    /// Errors when the stream is truncated or corrupt.
    fn finish_step(&mut self, out: &mut Vec<u8>) -> Result<bool, DecodeError> {
        match self {
            Decoder::Gzip(d) => d.finish_step(out),
            Decoder::Deflate(d) => d.finish_step(out),
            Decoder::Brotli(d) => d.finish_step(out),
            Decoder::Zstd(d) => d.finish_step(out),
        }
    }
}

/// gzip (RFC 1952, multi-member): the member framing (header, CRC-32 and length trailer) is read here, the
/// deflate data by `flate2::Decompress` into a scratch buffer that is allocated and zeroed once. (flate2's
/// `Vec`-based APIs zero their spare capacity on every call: for a body fed one TCP segment at a time that was
/// 22 times the data in `memset`.)
///
/// Why the header is parsed here rather than by `flate2::write::MultiGzDecoder` (checked against flate2 1.1):
/// that decoder would change behaviour and lose the bounds. Its header parser keeps the file name and comment
/// in unbounded `Vec`s (no [`MAX_GZIP_HEADER`] cap), rejects reserved flag bits and verifies FHCRC, both of
/// which this decoder tolerates; after a member it reads any further bytes as a new header and fails, where this
/// decoder ignores trailing bytes after a complete member ([`GzState::Trailing`]); its errors are `io::Error`s
/// with other texts than the reported `decode_error`s; and it inflates through `decompress_vec` into a 32 KiB
/// `Vec`, which with the default miniz_oxide backend zeroes that buffer on every write (the `memset` cost
/// above), handing the output on only at the next write or flush.
struct GzipDec {
    state: GzState,
    inflate: flate2::Decompress,
    crc: flate2::Crc,
    scratch: Box<[u8]>,
    members: u32,
}

enum GzState {
    /// Expecting a member (the first one, or after a complete member).
    Between,
    /// Collecting a member header (bounded).
    Header(Vec<u8>),
    Body,
    /// Collecting the 8-byte trailer.
    Trailer(Vec<u8>),
    /// Bytes after the last member that are not another member: ignored.
    Trailing,
}

/// Longest gzip header accepted (the optional name, comment and extra fields included).
const MAX_GZIP_HEADER: usize = 64 * 1024;

/// Length of a complete gzip member header at the start of `b`, `Ok(None)` while more bytes are needed.
fn gzip_header_len(b: &[u8]) -> Result<Option<usize>, DecodeError> {
    if b.len() < 10 {
        return Ok(None);
    }
    if b[0] != 0x1f || b[1] != 0x8b || b[2] != 8 {
        return Err(DecodeError::Gzip("invalid gzip header".into()));
    }
    let flags = b[3];
    let mut at = 10usize;
    if flags & 0x04 != 0 {
        let Some(x) = b.get(at..at + 2) else {
            return Ok(None);
        };
        at += 2 + usize::from(u16::from_le_bytes([x[0], x[1]]));
    }
    for bit in [0x08u8, 0x10] {
        if flags & bit != 0 {
            match b.get(at..).and_then(|r| r.iter().position(|&c| c == 0)) {
                Some(nul) => at += nul + 1,
                None => return Ok(None),
            }
        }
    }
    if flags & 0x02 != 0 {
        at += 2;
    }
    Ok((at <= b.len()).then_some(at))
}

impl GzipDec {
    fn new() -> Self {
        GzipDec {
            state: GzState::Between,
            inflate: flate2::Decompress::new(false),
            crc: flate2::Crc::new(),
            scratch: vec![0u8; OUT_CHUNK].into_boxed_slice(),
            members: 0,
        }
    }

    /// Inflates from `input` into `out`; returns (input consumed, output produced, stream end).
    fn inflate(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(usize, usize, bool), DecodeError> {
        let (in0, out0) = (self.inflate.total_in(), self.inflate.total_out());
        let status = self
            .inflate
            .decompress(input, &mut self.scratch, flate2::FlushDecompress::None)
            .map_err(|e| DecodeError::Gzip(e.to_string()))?;
        let cin = usize::try_from(self.inflate.total_in() - in0)
            .unwrap_or(usize::MAX)
            .min(input.len());
        let cout = usize::try_from(self.inflate.total_out() - out0)
            .unwrap_or(0)
            .min(self.scratch.len());
        let produced = self.scratch.get(..cout).unwrap_or_default();
        self.crc.update(produced);
        out.extend_from_slice(produced);
        Ok((cin, cout, status == flate2::Status::StreamEnd))
    }

    fn decode(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(usize, bool), DecodeError> {
        match &mut self.state {
            GzState::Trailing => Ok((input.len(), !input.is_empty())),
            GzState::Between => match input.first() {
                None => Ok((0, false)),
                Some(&0x1f) => {
                    self.state = GzState::Header(Vec::new());
                    Ok((0, true))
                }
                Some(_) if self.members > 0 => {
                    self.state = GzState::Trailing;
                    Ok((input.len(), true))
                }
                Some(_) => Err(DecodeError::Gzip("invalid gzip header".into())),
            },
            GzState::Header(buf) => {
                let before = buf.len();
                let take = input.len().min(MAX_GZIP_HEADER + 1 - before);
                buf.extend_from_slice(&input[..take]);
                match gzip_header_len(buf)? {
                    Some(hlen) => {
                        let used = hlen - before;
                        self.state = GzState::Body;
                        Ok((used, true))
                    }
                    None if buf.len() > MAX_GZIP_HEADER => {
                        Err(DecodeError::Gzip("gzip header too long".into()))
                    }
                    None => Ok((take, take > 0)),
                }
            }
            GzState::Body => {
                let (cin, cout, end) = self.inflate(input, out)?;
                if end {
                    self.state = GzState::Trailer(Vec::with_capacity(8));
                }
                Ok((cin, cin > 0 || cout > 0 || end))
            }
            GzState::Trailer(t) => {
                let take = input.len().min(8 - t.len());
                t.extend_from_slice(&input[..take]);
                if t.len() < 8 {
                    return Ok((take, take > 0));
                }
                let crc = u32::from_le_bytes([t[0], t[1], t[2], t[3]]);
                let size = u32::from_le_bytes([t[4], t[5], t[6], t[7]]);
                if crc != self.crc.sum() || size != self.crc.amount() {
                    return Err(DecodeError::Gzip(
                        "corrupt gzip member (CRC or length mismatch)".into(),
                    ));
                }
                self.members = self.members.saturating_add(1);
                self.inflate.reset(false);
                self.crc.reset();
                self.state = GzState::Between;
                Ok((take, true))
            }
        }
    }

    fn finish_step(&mut self, out: &mut Vec<u8>) -> Result<bool, DecodeError> {
        match &self.state {
            GzState::Between | GzState::Trailing => Ok(false),
            GzState::Header(_) => Err(DecodeError::Gzip("truncated gzip header".into())),
            GzState::Trailer(_) => Err(DecodeError::Gzip(
                "truncated or corrupt stream (missing CRC trailer)".into(),
            )),
            GzState::Body => {
                let (_, cout, end) = self.inflate(&[], out)?;
                if end {
                    self.state = GzState::Trailer(Vec::with_capacity(8));
                    return Ok(true);
                }
                if cout > 0 {
                    return Ok(true);
                }
                Err(DecodeError::Gzip("truncated or corrupt stream".into()))
            }
        }
    }
}

/// deflate: zlib-wrapped or raw (decided from the first two bytes, as browsers do).
struct DeflateDec {
    hdr: [u8; 2],
    hdr_len: usize,
    /// How many of `hdr` have been fed to the decompressor.
    hdr_fed: usize,
    dec: Option<flate2::Decompress>,
    done: bool,
    scratch: Option<Box<[u8]>>,
}

impl DeflateDec {
    fn new() -> Self {
        DeflateDec {
            hdr: [0; 2],
            hdr_len: 0,
            hdr_fed: 0,
            dec: None,
            done: false,
            scratch: None,
        }
    }

    fn is_zlib(h: [u8; 2]) -> bool {
        let [cmf, flg] = h;
        cmf & 0x0f == 8 && cmf >> 4 <= 7 && (u16::from(cmf) << 8 | u16::from(flg)) % 31 == 0
    }

    fn run(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(usize, usize), DecodeError> {
        let Some(d) = &mut self.dec else {
            return Ok((0, 0));
        };
        // Into a scratch buffer zeroed once: flate2's `decompress_vec` zeroes spare capacity on every call.
        let scratch = self
            .scratch
            .get_or_insert_with(|| vec![0u8; OUT_CHUNK].into_boxed_slice());
        let (in0, out0) = (d.total_in(), d.total_out());
        let status = d
            .decompress(input, scratch, flate2::FlushDecompress::None)
            .map_err(|e| DecodeError::Deflate(e.to_string()))?;
        if status == flate2::Status::StreamEnd {
            self.done = true;
        }
        let cin = usize::try_from(d.total_in().saturating_sub(in0)).unwrap_or(usize::MAX);
        let cout = usize::try_from(d.total_out().saturating_sub(out0))
            .unwrap_or(usize::MAX)
            .min(scratch.len());
        out.extend_from_slice(scratch.get(..cout).unwrap_or_default());
        Ok((cin.min(input.len()), cout))
    }

    fn decode(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(usize, bool), DecodeError> {
        if self.done {
            // Data after the end of the deflate stream is ignored.
            return Ok((input.len(), !input.is_empty()));
        }
        let mut used = 0usize;
        if self.dec.is_none() {
            while self.hdr_len < 2 {
                let Some(&b) = input.get(used) else { break };
                if let Some(slot) = self.hdr.get_mut(self.hdr_len) {
                    *slot = b;
                }
                self.hdr_len += 1;
                used += 1;
            }
            if self.hdr_len < 2 {
                return Ok((used, used > 0));
            }
            self.dec = Some(flate2::Decompress::new(Self::is_zlib(self.hdr)));
        }
        if self.hdr_fed < 2 {
            let hdr = self.hdr;
            let pending = hdr.get(self.hdr_fed..).unwrap_or_default();
            let (cin, cout) = self.run(pending, out)?;
            self.hdr_fed += cin;
            return Ok((used, used > 0 || cin > 0 || cout > 0));
        }
        let (cin, cout) = self.run(input.get(used..).unwrap_or_default(), out)?;
        used += cin;
        Ok((used, used > 0 || cout > 0))
    }

    fn finish_step(&mut self, out: &mut Vec<u8>) -> Result<bool, DecodeError> {
        if self.done {
            return Ok(false);
        }
        if self.dec.is_none() {
            return if self.hdr_len == 0 {
                Ok(false)
            } else {
                Err(DecodeError::Deflate("truncated stream".into()))
            };
        }
        let (_, progress) = self.decode(&[], out)?;
        if progress {
            return Ok(true);
        }
        if self.done {
            Ok(false)
        } else {
            Err(DecodeError::Deflate("truncated stream".into()))
        }
    }
}

type BrotliState = brotli_decompressor::BrotliState<
    brotli_decompressor::StandardAlloc,
    brotli_decompressor::StandardAlloc,
    brotli_decompressor::StandardAlloc,
>;

/// br via brotli-decompressor's streaming state machine (large-window streams refused).
struct BrotliDec {
    state: BrotliState,
    total_out: usize,
    done: bool,
}

impl BrotliDec {
    fn new() -> Self {
        use brotli_decompressor::StandardAlloc;
        BrotliDec {
            state: BrotliState::new_strict(
                StandardAlloc::default(),
                StandardAlloc::default(),
                StandardAlloc::default(),
            ),
            total_out: 0,
            done: false,
        }
    }

    fn run(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(usize, usize), DecodeError> {
        use brotli_decompressor::BrotliResult;
        out.resize(OUT_CHUNK, 0);
        let mut avail_in = input.len();
        let mut in_off = 0usize;
        let mut avail_out = out.len();
        let mut out_off = 0usize;
        let result = brotli_decompressor::BrotliDecompressStream(
            &mut avail_in,
            &mut in_off,
            input,
            &mut avail_out,
            &mut out_off,
            out.as_mut_slice(),
            &mut self.total_out,
            &mut self.state,
        );
        out.truncate(out_off);
        match result {
            BrotliResult::ResultFailure => {
                return Err(DecodeError::Brotli(format!("{:?}", self.state.error_code)));
            }
            BrotliResult::ResultSuccess => self.done = true,
            BrotliResult::NeedsMoreInput | BrotliResult::NeedsMoreOutput => {}
        }
        Ok((in_off.min(input.len()), out_off))
    }

    fn decode(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(usize, bool), DecodeError> {
        if self.done {
            // Data after the end of the brotli stream is ignored.
            return Ok((input.len(), !input.is_empty()));
        }
        let (cin, cout) = self.run(input, out)?;
        Ok((cin, cin > 0 || cout > 0 || self.done))
    }

    fn finish_step(&mut self, out: &mut Vec<u8>) -> Result<bool, DecodeError> {
        if self.done {
            return Ok(false);
        }
        let (_, cout) = self.run(&[], out)?;
        if cout > 0 {
            Ok(true)
        } else if self.done {
            Ok(false)
        } else {
            Err(DecodeError::Brotli("truncated stream".into()))
        }
    }
}

/// zstd via the crate's raw streaming decoder (window limited to 16 MiB).
struct ZstdDec {
    dec: zstd::stream::raw::Decoder<'static>,
    in_frame: bool,
}

impl ZstdDec {
    fn new() -> Result<Self, DecodeError> {
        let mut dec =
            zstd::stream::raw::Decoder::new().map_err(|e| DecodeError::Zstd(e.to_string()))?;
        dec.set_parameter(zstd::stream::raw::DParameter::WindowLogMax(
            ZSTD_WINDOW_LOG_MAX,
        ))
        .map_err(|e| DecodeError::Zstd(e.to_string()))?;
        Ok(ZstdDec {
            dec,
            in_frame: false,
        })
    }

    fn run(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(usize, usize), DecodeError> {
        use zstd::stream::raw::Operation as _;
        out.resize(OUT_CHUNK, 0);
        let status = self
            .dec
            .run_on_buffers(input, out.as_mut_slice())
            .map_err(|e| DecodeError::Zstd(e.to_string()));
        let status = match status {
            Ok(s) => s,
            Err(e) => {
                out.clear();
                return Err(e);
            }
        };
        let written = status.bytes_written.min(OUT_CHUNK);
        out.truncate(written);
        let read = status.bytes_read.min(input.len());
        if read > 0 || written > 0 {
            self.in_frame = status.remaining != 0;
        }
        Ok((read, written))
    }

    fn decode(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(usize, bool), DecodeError> {
        let (read, written) = self.run(input, out)?;
        Ok((read, read > 0 || written > 0))
    }

    fn finish_step(&mut self, out: &mut Vec<u8>) -> Result<bool, DecodeError> {
        let (_, written) = self.run(&[], out)?;
        if written > 0 {
            Ok(true)
        } else if self.in_frame {
            Err(DecodeError::Zstd("truncated frame".into()))
        } else {
            Ok(false)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::http::testutil::*;
    use crate::proto::http::{HttpEvent, HttpParser, Role};

    #[test]
    fn chunked_gzip_response() {
        let payload = sample(5000);
        let body = chunk(&gzip(&payload), 300, false, "");
        let data = response(
            "Transfer-Encoding: chunked\r\nContent-Encoding: gzip\r\n",
            &body,
        );
        let evs = run(Role::Server, &data, false);
        assert_eq!(heads(&evs)[0].content_encoding, vec!["gzip".to_string()]);
        assert_eq!(bodies(&evs), vec![(payload, "chunked+gzip".to_string())]);
        assert_eq!(
            ends(&evs),
            vec![(body.len() as u64, 5000, true, None, false)]
        );
    }

    fn encoded_response(ce: &str, body: &[u8]) -> Vec<Ev> {
        let data = response(
            &format!(
                "Content-Encoding: {ce}\r\nContent-Length: {}\r\n",
                body.len()
            ),
            body,
        );
        run(Role::Server, &data, false)
    }

    #[test]
    fn content_encodings_decode() {
        let payload = sample(100_000);
        let cases: Vec<(&str, Vec<u8>, &str)> = vec![
            ("gzip", gzip(&payload), "gzip"),
            ("x-gzip", gzip(&payload), "gzip"),
            ("deflate", deflate_raw(&payload), "deflate"),
            ("deflate", zlib(&payload), "deflate"),
            ("br", brotli_enc(&payload), "br"),
            ("zstd", zstd_enc(&payload), "zstd"),
            ("identity, gzip", gzip(&payload), "gzip"),
        ];
        for (ce, enc, layers) in cases {
            let evs = encoded_response(ce, &enc);
            assert_eq!(
                bodies(&evs),
                vec![(payload.clone(), layers.to_string())],
                "{ce}"
            );
            assert_eq!(
                ends(&evs),
                vec![(enc.len() as u64, payload.len() as u64, true, None, false)],
                "{ce}"
            );
            // Pieces are bounded.
            for e in &evs {
                if let Ev::Body { data, .. } = e {
                    assert!(data.len() <= OUT_CHUNK);
                }
            }
        }
    }

    #[test]
    fn stacked_encodings_undone_in_reverse() {
        let payload = sample(20_000);
        let enc = brotli_enc(&gzip(&payload));
        let evs = encoded_response("gzip, br", &enc);
        assert_eq!(bodies(&evs), vec![(payload, "br+gzip".to_string())]);
        assert_eq!(ends(&evs)[0].3, None);
    }

    #[test]
    fn multi_member_gzip() {
        let mut enc = gzip(b"first member ");
        enc.extend_from_slice(&gzip(b"second member"));
        let evs = encoded_response("gzip", &enc);
        assert_eq!(
            bodies(&evs),
            vec![(b"first member second member".to_vec(), "gzip".to_string())]
        );
        assert_eq!(ends(&evs)[0].3, None);
    }

    #[test]
    fn every_split_position_of_chunked_gzip_request() {
        let payload = b"imei=356938035643809&phone=%2B15551234567".repeat(3);
        let mut data = b"POST /u?a=1 HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Encoding: gzip\r\n\r\n".to_vec();
        data.extend_from_slice(&chunk(&gzip(&payload), 7, true, "T: v\r\n"));
        data.extend_from_slice(b"GET /after HTTP/1.1\r\n\r\n");
        let reference = merged(&run(Role::Client, &data, true));
        assert_eq!(
            bodies(&reference),
            vec![(payload.clone(), "chunked+gzip".to_string())]
        );
        assert_eq!(heads(&reference).len(), 2);
        for i in 0..=data.len() {
            let mut p = HttpParser::new(Role::Client);
            let mut evs = Vec::new();
            feed(&mut p, &data[..i], &mut evs);
            feed(&mut p, &data[i..], &mut evs);
            p.finish(&mut |e| evs.push(own(e)));
            assert_eq!(merged(&evs), reference, "split at {i}");
        }
        let mut p = HttpParser::new(Role::Client);
        let mut evs = Vec::new();
        for b in &data {
            feed(&mut p, std::slice::from_ref(b), &mut evs);
        }
        p.finish(&mut |e| evs.push(own(e)));
        assert_eq!(merged(&evs), reference, "byte by byte");
    }

    #[test]
    fn gap_inside_compressed_body_stops_decoding() {
        let enc = gzip(&sample(50_000));
        let mut data = response(
            &format!(
                "Content-Encoding: gzip\r\nContent-Length: {}\r\n",
                enc.len()
            ),
            &enc[..100],
        );
        let mut p = HttpParser::new(Role::Server);
        let mut evs = Vec::new();
        feed(&mut p, &data, &mut evs);
        p.gap(50, &mut |e| evs.push(own(e)));
        data.clear();
        data.extend_from_slice(&enc[150..]);
        data.extend_from_slice(b"HTTP/1.1 204 No Content\r\n\r\n");
        feed(&mut p, &data, &mut evs);
        let e = ends(&evs);
        assert_eq!(e.len(), 2);
        assert!(!e[0].2);
        assert!(e[0].3.as_deref().unwrap().contains("gap"));
        assert_eq!(heads(&evs).len(), 2);
    }

    #[test]
    fn decompression_bomb_is_capped() {
        let zeros = vec![0u8; 8 << 20];
        let enc = gzip(&zeros);
        assert!(enc.len() < 100_000);
        let data = response(
            &format!(
                "Content-Encoding: gzip\r\nContent-Length: {}\r\n",
                enc.len()
            ),
            &enc,
        );
        let mut p = HttpParser::new(Role::Server);
        p.set_decoded_cap(1 << 20);
        let mut total = 0u64;
        let mut max_piece = 0usize;
        let mut end = None;
        p.feed(&data, &mut |e| match e {
            HttpEvent::Body { decoded, .. } => {
                total += decoded.len() as u64;
                max_piece = max_piece.max(decoded.len());
            }
            HttpEvent::End { .. } => end = Some(own(e)),
            _ => {}
        });
        assert_eq!(total, 1 << 20);
        assert!(max_piece <= OUT_CHUNK);
        assert_eq!(
            end,
            Some(Ev::End {
                wire: enc.len() as u64,
                decoded: 1 << 20,
                complete: true,
                err: None,
                capped: true
            })
        );
    }

    #[test]
    fn corrupt_and_truncated_compressed_bodies() {
        let mut bad = gzip(b"x")[..10].to_vec();
        bad.extend_from_slice(&[0xff; 40]);
        let mut data = response(
            &format!(
                "Content-Encoding: gzip\r\nContent-Length: {}\r\n",
                bad.len()
            ),
            &bad,
        );
        data.extend_from_slice(b"HTTP/1.1 204 No Content\r\n\r\n");
        let evs = run(Role::Server, &data, false);
        assert!(ends(&evs)[0].3.as_deref().unwrap().starts_with("gzip"));
        assert_eq!(heads(&evs).len(), 2);

        for (ce, enc) in [
            ("gzip", gzip(&sample(20_000))),
            ("deflate", zlib(&sample(20_000))),
            ("br", brotli_enc(&sample(20_000))),
            ("zstd", zstd_enc(&sample(20_000))),
        ] {
            let half = &enc[..enc.len() / 2];
            let evs = encoded_response(ce, half);
            let e = ends(&evs);
            assert!(e[0].3.is_some(), "{ce} truncation reported");
            let got = bodies(&evs)
                .into_iter()
                .next()
                .map(|b| b.0)
                .unwrap_or_default();
            assert!(
                sample(20_000).starts_with(&got),
                "{ce} partial output is a prefix"
            );
            // Corrupt bytes in every decoder: an error, never a panic.
            let mut corrupt = enc.clone();
            for b in corrupt.iter_mut().skip(4).step_by(7) {
                *b ^= 0x5a;
            }
            let evs = encoded_response(ce, &corrupt);
            assert_eq!(ends(&evs).len(), 1);
        }
    }

    #[test]
    fn gzip_sniffed_without_content_encoding() {
        let payload = sample(4000);
        let enc = gzip(&payload);
        let mut data = format!(
            "POST /upload HTTP/1.1\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
            enc.len()
        )
        .into_bytes();
        data.extend_from_slice(&enc);
        let evs = run(Role::Client, &data, false);
        assert_eq!(
            bodies(&evs),
            vec![(payload.clone(), "gzip-sniffed".to_string())]
        );
        // Byte-by-byte feeding sniffs the same.
        let mut p = HttpParser::new(Role::Client);
        let mut evs2 = Vec::new();
        for b in &data {
            feed(&mut p, std::slice::from_ref(b), &mut evs2);
        }
        assert_eq!(merged(&evs2), merged(&evs));
        // Chunked, too.
        let mut data = b"POST /u HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        data.extend_from_slice(&chunk(&enc, 1, false, ""));
        let evs = run(Role::Client, &data, false);
        assert_eq!(
            bodies(&evs),
            vec![(payload, "chunked+gzip-sniffed".to_string())]
        );
        // A body that merely starts with 0x1f is left alone.
        let evs = run(
            Role::Client,
            b"POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\n\x1f\x8b\x00",
            false,
        );
        assert!(bodies(&evs).is_empty());
        let evs = run(
            Role::Client,
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n\x1f\x8b\r\n0\r\n\r\n",
            false,
        );
        assert_eq!(
            bodies(&evs),
            vec![(b"\x1f\x8b".to_vec(), "chunked".to_string())]
        );
    }

    #[test]
    fn unsupported_coding_reports_error_and_keeps_dechunked_bytes() {
        let data = response(
            "Transfer-Encoding: chunked\r\nContent-Encoding: compress\r\n",
            b"3\r\nabc\r\n0\r\n\r\n",
        );
        let evs = run(Role::Server, &data, false);
        assert_eq!(bodies(&evs), vec![(b"abc".to_vec(), "chunked".to_string())]);
        assert!(ends(&evs)[0].3.as_deref().unwrap().contains("compress"));
    }
}
