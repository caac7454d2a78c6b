//! MQTT 3.1, 3.1.1 and 5, one direction at a time: control packets framed by their remaining length; CONNECT
//! (client id, will topic and payload, user name, password, v5 properties), PUBLISH (topic, payload, v5 properties)
//! and every other packet's body handed out as units named `mqtt.client_id`, `mqtt.publish[TOPIC]`, ….
//!
//! The protocol level comes from the client's CONNECT; the server's direction is told it by the engine (a v5
//! PUBLISH carries properties a 3.1.1 one does not). Cap: [`MAX_PACKET`] (a larger packet is skipped and counted).

use super::stream::{take_into, SkipReason, StreamEvent, Unit};

/// Packets with a larger remaining length are skipped (the protocol allows 256 MiB).
pub const MAX_PACKET: usize = 4 << 20;
/// Characters of a topic used in a field name.
const TOPIC_IN_FIELD: usize = 80;

/// Whether `b` starts like an MQTT CONNECT packet (`0x10`, a remaining length, the protocol name `MQTT` or
/// `MQIsdp`): `Some(true)` yes, `Some(false)` no, `None` too short to say.
pub fn looks_like_connect(b: &[u8]) -> Option<bool> {
    if b.first()? != &0x10 {
        return Some(false);
    }
    let mut i = 1;
    loop {
        let x = *b.get(i)?;
        i += 1;
        if x & 0x80 == 0 {
            break;
        }
        if i > 4 {
            return Some(false);
        }
    }
    let name_len = u16::from_be_bytes([*b.get(i)?, *b.get(i + 1)?]) as usize;
    if name_len != 4 && name_len != 6 {
        return Some(false);
    }
    let name = b.get(i + 2..i + 2 + name_len)?;
    Some(name == b"MQTT" || name == b"MQIsdp")
}

/// Reads one direction of an MQTT connection.
pub struct MqttParser {
    client: bool,
    level: u8,
    /// The current packet: fixed header, then its body.
    buf: Vec<u8>,
    /// (fixed header length, body length) once known.
    sizes: Option<(usize, usize)>,
    skip: u64,
    failed: bool,
}

fn unit(field: String, bytes: &[u8]) -> StreamEvent {
    StreamEvent::Unit(Unit {
        field,
        chain: "mqtt".into(),
        stream: 0,
        bytes: bytes.to_vec(),
    })
}

/// A reader over a packet body.
struct Cur<'a>(&'a [u8]);

impl<'a> Cur<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }
    /// A length-prefixed string or binary field.
    fn bin(&mut self) -> Option<&'a [u8]> {
        let n = self.u16()?;
        self.take(usize::from(n))
    }
    fn varint(&mut self) -> Option<usize> {
        let mut v = 0usize;
        for i in 0..4 {
            let b = self.u8()?;
            v |= usize::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }
    /// v5 properties: their bytes.
    fn props(&mut self) -> Option<&'a [u8]> {
        let n = self.varint()?;
        self.take(n)
    }
}

impl MqttParser {
    /// A reader of the client's direction or of the server's.
    pub fn new(client: bool) -> MqttParser {
        MqttParser {
            client,
            level: 0,
            buf: Vec::new(),
            sizes: None,
            skip: 0,
            failed: false,
        }
    }

    /// The protocol level from the client's CONNECT (3, 4 = 3.1.1, 5), 0 before it.
    pub fn level(&self) -> u8 {
        self.level
    }

    /// Sets the protocol level (for the server's direction).
    pub fn set_level(&mut self, level: u8) {
        if level != 0 {
            self.level = level;
        }
    }

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
            let Some((head, len)) = self.sizes else {
                // Fixed header: type/flags, then a remaining length of 1..4 bytes.
                let want = self.buf.len() + 1;
                if !take_into(&mut self.buf, want, &mut b) {
                    break;
                }
                let n = self.buf.len();
                if n == 1 {
                    if self.buf[0] >> 4 == 0 {
                        return self.fail("packet type 0", total - b.len() - 1, out);
                    }
                    continue;
                }
                let last = self.buf[n - 1];
                if last & 0x80 != 0 {
                    if n == 5 {
                        return self.fail(
                            "remaining length too long",
                            (total - b.len()).saturating_sub(5),
                            out,
                        );
                    }
                    continue;
                }
                let len = self.buf[1..]
                    .iter()
                    .enumerate()
                    .fold(0usize, |a, (i, &x)| a | (usize::from(x & 0x7f) << (7 * i)));
                if len > MAX_PACKET {
                    out.push(StreamEvent::Skipped {
                        reason: SkipReason::Cap,
                        what: format!("mqtt packet size cap ({} MiB)", MAX_PACKET >> 20),
                        bytes: len as u64,
                    });
                    self.buf.clear();
                    self.skip = len as u64;
                    continue;
                }
                self.sizes = Some((n, len));
                continue;
            };
            if !take_into(&mut self.buf, head + len, &mut b) {
                break;
            }
            let packet = std::mem::take(&mut self.buf);
            self.sizes = None;
            let first = packet[0];
            if let Err(reason) = self.packet(first, &packet[head..], out) {
                // A malformed packet of known length: its body is still handed out, the framing holds.
                out.push(unit(format!("mqtt.{reason}"), &packet[head..]));
            }
        }
    }

    fn fail(&mut self, reason: &str, consumed: usize, out: &mut Vec<StreamEvent>) {
        self.failed = true;
        out.push(StreamEvent::Failed {
            reason: format!("MQTT: {reason}"),
            consumed,
        });
    }

    /// The direction ended: a partial packet is handed out as it is.
    pub fn finish(&mut self, out: &mut Vec<StreamEvent>) {
        if let Some((head, _)) = self.sizes.take() {
            let held = std::mem::take(&mut self.buf);
            if let Some(body) = held.get(head..).filter(|b| !b.is_empty()) {
                out.push(unit("mqtt.truncated".into(), body));
            }
        }
    }

    fn packet(
        &mut self,
        first: u8,
        body: &[u8],
        out: &mut Vec<StreamEvent>,
    ) -> Result<(), &'static str> {
        let kind = first >> 4;
        match kind {
            1 if self.client => self.connect(body, out).ok_or("connect"),
            3 => self.publish(first, body, out).ok_or("publish"),
            _ => {
                let name = match kind {
                    2 => "connack",
                    8 => "subscribe",
                    10 => "unsubscribe",
                    14 => "disconnect",
                    15 => "auth",
                    _ => "packet",
                };
                if !body.is_empty() {
                    out.push(unit(format!("mqtt.{name}"), body));
                }
                Ok(())
            }
        }
    }

    fn connect(&mut self, body: &[u8], out: &mut Vec<StreamEvent>) -> Option<()> {
        let mut c = Cur(body);
        let name = c.bin()?;
        if name != b"MQTT" && name != b"MQIsdp" {
            return None;
        }
        self.level = c.u8()?;
        let v5 = self.level >= 5;
        let flags = c.u8()?;
        c.u16()?;
        let mut units = Vec::new();
        if v5 {
            units.push(("mqtt.connect.properties", c.props()?));
        }
        units.push(("mqtt.client_id", c.bin()?));
        if flags & 0x04 != 0 {
            if v5 {
                units.push(("mqtt.will.properties", c.props()?));
            }
            units.push(("mqtt.will_topic", c.bin()?));
            units.push(("mqtt.will_payload", c.bin()?));
        }
        if flags & 0x80 != 0 {
            units.push(("mqtt.user_name", c.bin()?));
        }
        if flags & 0x40 != 0 {
            units.push(("mqtt.password", c.bin()?));
        }
        if !c.0.is_empty() {
            units.push(("mqtt.connect.trailing", c.0));
        }
        for (field, bytes) in units.into_iter().filter(|(_, b)| !b.is_empty()) {
            out.push(unit(field.into(), bytes));
        }
        Some(())
    }

    fn publish(&mut self, first: u8, body: &[u8], out: &mut Vec<StreamEvent>) -> Option<()> {
        let mut c = Cur(body);
        let topic = c.bin()?;
        if (first >> 1) & 3 != 0 {
            c.u16()?;
        }
        let props = if self.level >= 5 {
            Some(c.props()?)
        } else {
            None
        };
        let name: String = String::from_utf8_lossy(topic)
            .chars()
            .take(TOPIC_IN_FIELD)
            .collect();
        if !topic.is_empty() {
            out.push(unit("mqtt.topic".into(), topic));
        }
        if let Some(p) = props.filter(|p| !p.is_empty()) {
            out.push(unit("mqtt.publish.properties".into(), p));
        }
        if !c.0.is_empty() {
            out.push(unit(format!("mqtt.publish[{name}]"), c.0));
        }
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(b: &[u8]) -> Vec<u8> {
        let mut v = (b.len() as u16).to_be_bytes().to_vec();
        v.extend_from_slice(b);
        v
    }

    fn packet(first: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![first];
        let mut n = body.len();
        loop {
            let mut x = (n & 0x7f) as u8;
            n >>= 7;
            if n > 0 {
                x |= 0x80;
            }
            v.push(x);
            if n == 0 {
                break;
            }
        }
        v.extend_from_slice(body);
        v
    }

    fn units(ev: &[StreamEvent]) -> Vec<(String, Vec<u8>)> {
        ev.iter()
            .filter_map(|e| match e {
                StreamEvent::Unit(u) => Some((u.field.clone(), u.bytes.clone())),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn v5_connect_and_publish_byte_by_byte() {
        let mut body = s(b"MQTT");
        body.extend([5, 0xc6, 0, 60, 0]);
        body.extend(s(b"dev-1"));
        body.extend([0]);
        body.extend(s(b"will/t"));
        body.extend(s(b"bye"));
        body.extend(s(b"user"));
        body.extend(s(b"pw"));
        let mut wire = packet(0x10, &body);
        assert_eq!(looks_like_connect(&wire), Some(true));
        assert_eq!(looks_like_connect(&wire[..5]), None);
        let mut publish = s(b"a/b");
        publish.extend([0, 7, 0]);
        publish.extend(vec![b'x'; 200]);
        wire.extend(packet(0x32, &publish));
        let mut p = MqttParser::new(true);
        let mut ev = Vec::new();
        for b in wire.chunks(1) {
            p.feed(b, &mut ev);
        }
        assert_eq!(p.level(), 5);
        let u = units(&ev);
        let fields: Vec<&str> = u.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            fields,
            [
                "mqtt.client_id",
                "mqtt.will_topic",
                "mqtt.will_payload",
                "mqtt.user_name",
                "mqtt.password",
                "mqtt.topic",
                "mqtt.publish[a/b]"
            ]
        );
        assert_eq!(u[6].1, vec![b'x'; 200]);
    }

    #[test]
    fn garbage_fails() {
        let mut p = MqttParser::new(true);
        let mut ev = Vec::new();
        p.feed(b"\x00\x01", &mut ev);
        assert!(matches!(
            ev.last(),
            Some(StreamEvent::Failed { consumed: 0, .. })
        ));
        assert_eq!(looks_like_connect(b"GET / HTTP/1.1"), Some(false));
    }
}
