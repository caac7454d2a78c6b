//! DNS over TCP (RFC 1035 §4.2.2): splitting one direction of a stream into messages by their
//! 2-byte length prefix.

use super::{parse_dns, DnsError, DnsMessage};

/// Splits a DNS-over-TCP byte stream (one direction) into messages.
///
/// Sans-IO push parser: feed bytes in order with [`DnsTcpFramer::push`];
/// each complete frame is parsed with [`parse_dns`] and its result appended
/// to `out`. At most one frame (≤ 65535 bytes, the largest length the 2-byte
/// prefix can announce) is buffered.
#[derive(Debug, Default)]
pub struct DnsTcpFramer {
    /// Bytes of the length prefix received so far.
    prefix: [u8; 2],
    prefix_len: usize,
    /// Length announced by the current prefix (valid when `prefix_len == 2`).
    frame_len: usize,
    /// Body bytes of the current frame received so far.
    frame: Vec<u8>,
    /// Bytes discarded by the last [`DnsTcpFramer::gap`], reported at the next push.
    discarded: usize,
}

impl DnsTcpFramer {
    /// Creates a framer positioned at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds the next bytes of the stream; appends one result per completed
    /// frame to `out` (plus [`DnsError::Gap`] first if the previous
    /// [`DnsTcpFramer::gap`] discarded a partial frame).
    pub fn push(&mut self, data: &[u8], out: &mut Vec<Result<DnsMessage, DnsError>>) {
        if self.discarded > 0 {
            out.push(Err(DnsError::Gap(self.discarded)));
            self.discarded = 0;
        }
        let mut rest = data;
        while !rest.is_empty() {
            if self.prefix_len < 2 {
                let take = (2 - self.prefix_len).min(rest.len());
                let (head, tail) = rest.split_at(take);
                for &b in head {
                    self.prefix[self.prefix_len] = b;
                    self.prefix_len += 1;
                }
                rest = tail;
                if self.prefix_len == 2 {
                    self.frame_len = usize::from(u16::from_be_bytes(self.prefix));
                    if self.frame_len == 0 {
                        out.push(Err(DnsError::EmptyFrame));
                        self.prefix_len = 0;
                    }
                }
                continue;
            }
            let missing = self.frame_len.saturating_sub(self.frame.len());
            if self.frame.is_empty() && rest.len() >= missing {
                // Whole frame available: parse in place, no copy.
                let (body, tail) = rest.split_at(missing);
                out.push(parse_dns(body));
                rest = tail;
                self.prefix_len = 0;
                continue;
            }
            let take = missing.min(rest.len());
            let (head, tail) = rest.split_at(take);
            if self.frame.capacity() < self.frame_len {
                self.frame.reserve_exact(self.frame_len - self.frame.len());
            }
            self.frame.extend_from_slice(head);
            rest = tail;
            if self.frame.len() == self.frame_len {
                out.push(parse_dns(&self.frame));
                self.frame.clear();
                self.prefix_len = 0;
            }
        }
    }

    /// Signals missing bytes in the stream (TCP gap). The partial frame, if
    /// any, is dropped (reported as [`DnsError::Gap`] at the next push), and
    /// the next pushed byte is taken as the start of a new length prefix.
    pub fn gap(&mut self) {
        let buffered = self.prefix_len + self.frame.len();
        if buffered > 0 {
            self.discarded = self.discarded.saturating_add(buffered);
        }
        self.prefix_len = 0;
        self.frame_len = 0;
        self.frame.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::dns::testutil::*;

    fn frames(msgs: &[Vec<u8>]) -> Vec<u8> {
        let mut stream = Vec::new();
        for m in msgs {
            stream.extend_from_slice(&(m.len() as u16).to_be_bytes());
            stream.extend_from_slice(m);
        }
        stream
    }

    #[test]
    fn tcp_framing_split_at_every_position() {
        let m1 = query(&[b"one", b"example"], 1);
        let m2 = query(&[b"two", b"example"], 28);
        let stream = frames(&[m1, m2]);
        for split in 0..=stream.len() {
            let mut framer = DnsTcpFramer::new();
            let mut out = Vec::new();
            framer.push(&stream[..split], &mut out);
            framer.push(&stream[split..], &mut out);
            let names: Vec<_> = out
                .iter()
                .map(|r| r.as_ref().unwrap().questions[0].name.clone())
                .collect();
            assert_eq!(names, ["one.example", "two.example"], "split {split}");
        }
        // Byte by byte.
        let mut framer = DnsTcpFramer::new();
        let mut out = Vec::new();
        for b in &stream {
            framer.push(std::slice::from_ref(b), &mut out);
        }
        assert_eq!(out.len(), 2);
        assert_eq!(out[1].as_ref().unwrap().questions[0].qtype, "AAAA");
    }

    #[test]
    fn tcp_framing_errors_and_gaps() {
        let m1 = query(&[b"one", b"example"], 1);
        let mut framer = DnsTcpFramer::new();
        let mut out = Vec::new();
        // Empty frame, then a junk frame, then a good one.
        framer.push(&[0, 0, 0, 3, 1, 2, 3], &mut out);
        framer.push(&frames(std::slice::from_ref(&m1)), &mut out);
        assert_eq!(out[0], Err(DnsError::EmptyFrame));
        assert_eq!(out[1], Err(DnsError::TooShort(3)));
        assert_eq!(out[2].as_ref().unwrap().questions[0].name, "one.example");
        // Gap in the middle of a frame: discarded, reported, then resync on
        // the next pushed frame.
        out.clear();
        let stream = frames(std::slice::from_ref(&m1));
        framer.push(&stream[..10], &mut out);
        framer.gap();
        framer.push(&stream, &mut out);
        assert_eq!(out[0], Err(DnsError::Gap(10)));
        assert_eq!(out[1].as_ref().unwrap().questions[0].name, "one.example");
        assert_eq!(out.len(), 2);
        // Largest possible frame is buffered and parsed.
        out.clear();
        let mut big = query(&[b"big"], 1);
        big.resize(65535, 0);
        let stream = frames(&[big]);
        framer.push(&stream[..30000], &mut out);
        framer.push(&stream[30000..], &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].as_ref().unwrap().questions[0].name, "big");
        assert!(framer.frame.capacity() <= 65535);
    }
}
