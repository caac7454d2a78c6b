//! WebSocket (RFC 6455) after an HTTP/1.1 upgrade, one direction at a time: frames, client masks undone,
//! fragments joined into messages, and permessage-deflate (RFC 7692) inflated with the shared window kept
//! between messages (context takeover; a message that ends the deflate stream starts a fresh one, which also
//! covers `no_context_takeover`). Text and binary messages, and control frames' payloads, are handed out as units.
//!
//! Caps: [`MAX_FRAME`] (a larger frame is skipped), [`MAX_MESSAGE`] (joined fragments), [`MAX_INFLATED`]
//! (inflate output per message). A compressed message that was cut or did not inflate leaves the shared window
//! unknown, so later compressed messages are reported as skipped (and still handed out as sent).

use flate2::{Decompress, FlushDecompress, Status};

use super::stream::{take_into, SkipReason, StreamEvent, Unit};

/// Frames with a larger payload are skipped.
pub const MAX_FRAME: u64 = 4 << 20;
/// A message's joined fragments beyond this are skipped.
pub const MAX_MESSAGE: usize = 8 << 20;
/// Inflated bytes per message.
pub const MAX_INFLATED: usize = 16 << 20;

/// Reads one direction of a WebSocket connection.
pub struct WsParser {
    head: Vec<u8>,
    /// Payload of the current frame (unmasked when complete).
    payload: Vec<u8>,
    /// The current frame: (FIN+RSV1+opcode byte, payload length, mask).
    frame: Option<(u8, u64, Option<[u8; 4]>)>,
    skip: u64,
    /// The message being joined: (opcode, compressed, bytes, bytes dropped).
    message: Option<(u8, bool, Vec<u8>, u64)>,
    inflate: Decompress,
    /// The shared deflate window is unknown (a compressed message was cut or corrupt).
    window_lost: bool,
    failed: bool,
}

impl Default for WsParser {
    fn default() -> Self {
        WsParser {
            head: Vec::new(),
            payload: Vec::new(),
            frame: None,
            skip: 0,
            message: None,
            inflate: Decompress::new(false),
            window_lost: false,
            failed: false,
        }
    }
}

fn unit(chain: &str, field: &str, bytes: Vec<u8>) -> StreamEvent {
    StreamEvent::Unit(Unit {
        field: field.to_owned(),
        chain: chain.to_owned(),
        stream: 0,
        bytes,
    })
}

impl WsParser {
    /// Reads the next bytes of the direction.
    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<StreamEvent>) {
        let total = bytes.len();
        let mut b = bytes;
        while !b.is_empty() && !self.failed {
            if self.skip > 0 {
                let n = self.skip.min(b.len() as u64) as usize;
                self.skip -= n as u64;
                b = &b[n..];
                continue;
            }
            let Some((first, len, mask)) = self.frame else {
                // The frame header: 2 bytes, then 2 or 8 length bytes, then 4 mask bytes.
                if !take_into(&mut self.head, 2, &mut b) {
                    break;
                }
                let (b0, b1) = (self.head[0], self.head[1]);
                let ext = match b1 & 0x7f {
                    126 => 2,
                    127 => 8,
                    _ => 0,
                };
                let masked = b1 & 0x80 != 0;
                let want = 2 + ext + if masked { 4 } else { 0 };
                if !take_into(&mut self.head, want, &mut b) {
                    break;
                }
                let opcode = b0 & 0x0f;
                if b0 & 0x30 != 0 || matches!(opcode, 3..=7 | 11..=15) {
                    let consumed = (total - b.len()).saturating_sub(want);
                    self.failed = true;
                    out.push(StreamEvent::Failed {
                        reason: format!("WebSocket: not a frame header ({b0:#04x})"),
                        consumed,
                    });
                    return;
                }
                let len = match ext {
                    2 => u64::from(u16::from_be_bytes([self.head[2], self.head[3]])),
                    8 => self.head[2..10]
                        .iter()
                        .fold(0u64, |a, &x| (a << 8) | u64::from(x)),
                    _ => u64::from(b1 & 0x7f),
                };
                let mask = masked.then(|| {
                    let m = &self.head[2 + ext..2 + ext + 4];
                    [m[0], m[1], m[2], m[3]]
                });
                self.head.clear();
                if len > MAX_FRAME {
                    out.push(StreamEvent::Skipped {
                        reason: SkipReason::Cap,
                        what: format!("websocket frame size cap ({} MiB)", MAX_FRAME >> 20),
                        bytes: len,
                    });
                    self.skip = len;
                    if let Some(m) = &mut self.message {
                        m.3 += len;
                    } else if opcode != 0 && b0 & 0x40 != 0 {
                        self.window_lost = true;
                    }
                    continue;
                }
                self.frame = Some((b0, len, mask));
                continue;
            };
            if !take_into(&mut self.payload, len as usize, &mut b) {
                break;
            }
            self.frame = None;
            let mut payload = std::mem::take(&mut self.payload);
            if let Some(m) = mask {
                for (i, x) in payload.iter_mut().enumerate() {
                    *x ^= m[i % 4];
                }
            }
            self.frame_done(first, payload, out);
        }
    }

    fn frame_done(&mut self, first: u8, payload: Vec<u8>, out: &mut Vec<StreamEvent>) {
        let (fin, opcode) = (first & 0x80 != 0, first & 0x0f);
        if opcode >= 8 {
            // Close (status + reason), ping and pong payloads.
            if !payload.is_empty() {
                out.push(unit("websocket", "control", payload));
            }
            return;
        }
        if opcode != 0 {
            if let Some(m) = self.message.take() {
                // A new message before the last one finished: hand out what there was.
                self.message_done(m, out);
            }
            self.message = Some((opcode, first & 0x40 != 0, Vec::new(), 0));
        }
        let Some(m) = &mut self.message else {
            out.push(unit("websocket", "continuation", payload));
            return;
        };
        let room = MAX_MESSAGE.saturating_sub(m.2.len());
        let keep = payload.len().min(room);
        m.2.extend_from_slice(&payload[..keep]);
        m.3 += (payload.len() - keep) as u64;
        if fin {
            if let Some(m) = self.message.take() {
                self.message_done(m, out);
            }
        }
    }

    fn message_done(
        &mut self,
        (opcode, compressed, bytes, dropped): (u8, bool, Vec<u8>, u64),
        out: &mut Vec<StreamEvent>,
    ) {
        let field = if opcode == 1 { "text" } else { "binary" };
        if dropped > 0 {
            out.push(StreamEvent::Skipped {
                reason: SkipReason::Cap,
                what: format!("websocket message cap ({} MiB)", MAX_MESSAGE >> 20),
                bytes: dropped,
            });
            if compressed {
                self.window_lost = true;
            }
        }
        if !compressed {
            out.push(unit("websocket", field, bytes));
            return;
        }
        if self.window_lost {
            out.push(StreamEvent::Skipped {
                reason: SkipReason::Failure,
                what: "websocket compressed message after the deflate window was lost".into(),
                bytes: bytes.len() as u64,
            });
            out.push(unit("websocket", field, bytes));
            return;
        }
        match self.inflate_message(&bytes) {
            Ok((plain, capped)) => {
                if capped {
                    out.push(StreamEvent::Skipped {
                        reason: SkipReason::Cap,
                        what: format!("websocket inflate cap ({} MiB)", MAX_INFLATED >> 20),
                        bytes: bytes.len() as u64,
                    });
                    self.window_lost = true;
                }
                out.push(unit("websocket>deflate", field, plain));
            }
            Err(e) => {
                self.window_lost = true;
                out.push(StreamEvent::Skipped {
                    reason: SkipReason::Failure,
                    what: format!("websocket message did not inflate ({e})"),
                    bytes: bytes.len() as u64,
                });
                out.push(unit("websocket", field, bytes));
            }
        }
    }

    /// Inflates one message (its deflate data plus the removed `00 00 ff ff` tail), keeping the window.
    fn inflate_message(&mut self, data: &[u8]) -> Result<(Vec<u8>, bool), flate2::DecompressError> {
        let mut input = data.to_vec();
        input.extend_from_slice(&[0, 0, 0xff, 0xff]);
        let mut plain = Vec::with_capacity(data.len() * 2);
        let mut at = 0usize;
        loop {
            if plain.len() >= MAX_INFLATED {
                return Ok((plain, true));
            }
            let room = (MAX_INFLATED - plain.len()).min(64 << 10);
            plain.reserve(room);
            let (in0, out0) = (self.inflate.total_in(), self.inflate.total_out());
            let status = self.inflate.decompress_vec(
                input.get(at..).unwrap_or_default(),
                &mut plain,
                FlushDecompress::Sync,
            )?;
            at += (self.inflate.total_in() - in0) as usize;
            let produced = self.inflate.total_out() - out0;
            if status == Status::StreamEnd {
                // The sender ended the deflate stream: the next message starts a fresh one.
                self.inflate = Decompress::new(false);
                return Ok((plain, false));
            }
            if at >= input.len() && produced == 0 {
                return Ok((plain, false));
            }
            if produced == 0 && self.inflate.total_in() == in0 {
                return Ok((plain, false));
            }
        }
    }

    /// The direction ended: a partial frame or message is handed out as it is.
    pub fn finish(&mut self, out: &mut Vec<StreamEvent>) {
        if !self.payload.is_empty() {
            let mut p = std::mem::take(&mut self.payload);
            if let Some((_, _, Some(m))) = self.frame {
                for (i, x) in p.iter_mut().enumerate() {
                    *x ^= m[i % 4];
                }
            }
            out.push(unit("websocket", "truncated frame", p));
        }
        if let Some(m) = self.message.take() {
            self.message_done(m, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{Compress, Compression, FlushCompress};

    fn frame(first: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
        let mut f = vec![first];
        let m = if mask.is_some() { 0x80 } else { 0 };
        match payload.len() {
            n if n < 126 => f.push(m | n as u8),
            n if n < 65536 => {
                f.push(m | 126);
                f.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                f.push(m | 127);
                f.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        match mask {
            Some(k) => {
                f.extend_from_slice(&k);
                f.extend(payload.iter().enumerate().map(|(i, b)| b ^ k[i % 4]));
            }
            None => f.extend_from_slice(payload),
        }
        f
    }

    fn deflate(c: &mut Compress, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(data.len() + 64);
        c.compress_vec(data, &mut out, FlushCompress::Sync).unwrap();
        assert!(out.ends_with(&[0, 0, 0xff, 0xff]));
        out.truncate(out.len() - 4);
        out
    }

    fn units(ev: &[StreamEvent]) -> Vec<(String, String, Vec<u8>)> {
        ev.iter()
            .filter_map(|e| match e {
                StreamEvent::Unit(u) => Some((u.chain.clone(), u.field.clone(), u.bytes.clone())),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn masked_fragments_and_deflate_with_context_takeover() {
        let k = Some([1, 2, 3, 4]);
        let mut wire = frame(0x01, b"hello ", k);
        wire.extend(frame(0x89, b"ping!", k));
        wire.extend(frame(0x80, b"world", k));
        let mut c = Compress::new(Compression::default(), false);
        let one = deflate(&mut c, b"{\"imei\":\"356938035643809\"}");
        let two = deflate(&mut c, b"{\"imei\":\"356938035643809\"}");
        assert!(
            two.len() < one.len(),
            "the second message refers to the first"
        );
        wire.extend(frame(0x42, &one[..3], k));
        wire.extend(frame(0x80, &one[3..], k));
        wire.extend(frame(0xc2, &two, k));
        let mut p = WsParser::default();
        let mut ev = Vec::new();
        for b in wire.chunks(1) {
            p.feed(b, &mut ev);
        }
        p.finish(&mut ev);
        let json = b"{\"imei\":\"356938035643809\"}".to_vec();
        assert_eq!(
            units(&ev),
            vec![
                ("websocket".into(), "control".into(), b"ping!".to_vec()),
                ("websocket".into(), "text".into(), b"hello world".to_vec()),
                ("websocket>deflate".into(), "binary".into(), json.clone()),
                ("websocket>deflate".into(), "binary".into(), json),
            ]
        );
    }

    #[test]
    fn a_bad_header_fails_and_a_corrupt_message_loses_the_window() {
        let mut p = WsParser::default();
        let mut ev = Vec::new();
        p.feed(&frame(0xc2, &[0xff, 0xff, 0xff], None), &mut ev);
        p.feed(&frame(0xc2, b"\x4b\x04\x00", None), &mut ev);
        assert_eq!(
            ev.iter()
                .filter(|e| matches!(
                    e,
                    StreamEvent::Skipped {
                        reason: SkipReason::Failure,
                        ..
                    }
                ))
                .count(),
            2,
            "{ev:?}"
        );
        p.feed(b"\x73\x00", &mut ev);
        assert!(matches!(
            ev.last(),
            Some(StreamEvent::Failed { consumed: 0, .. })
        ));
    }
}
