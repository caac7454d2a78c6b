//! Building captures: the project's own tool for writing test and benchmark pcaps.
//!
//! Tests never use captures they did not make; they describe traffic with this module — TCP conversations with a
//! real three-way handshake, any segmentation, reordering and retransmission, UDP datagrams, DNS messages — and
//! get the bytes of a pcap file. Frames are built by etherparse with correct checksums, so other tools (tshark)
//! read them too.

use std::io::Write;
use std::net::{IpAddr, SocketAddr};

use etherparse::PacketBuilder;

use crate::capture::writer::{linktype, PcapWriter};

/// A capture being built, in memory (the default) or streamed to any writer.
pub struct Synth<W: Write = Vec<u8>> {
    out: PcapWriter<W>,
    link: u32,
    ts: u64,
    step: u64,
}

/// Which end of a TCP conversation sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The device.
    Client,
    /// The remote end.
    Server,
}

/// One TCP segment of a planned transmission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seg {
    /// Sequence number.
    pub seq: u32,
    /// Payload.
    pub data: Vec<u8>,
}

impl Synth<Vec<u8>> {
    /// A new Ethernet capture (LINKTYPE_ETHERNET), timestamps starting at 2024-01-01 00:00:00 UTC.
    pub fn ethernet() -> Self {
        Self::with_link(linktype::ETHERNET)
    }

    /// A new raw-IP capture (LINKTYPE_RAW).
    pub fn raw_ip() -> Self {
        Self::with_link(linktype::RAW)
    }

    fn with_link(link: u32) -> Self {
        Synth::to_writer(Vec::new(), link)
            .unwrap_or_else(|_| unreachable!("writing to a Vec cannot fail"))
    }

    /// The finished pcap file.
    pub fn finish(self) -> Vec<u8> {
        self.out.into_inner().unwrap_or_default()
    }
}

impl<W: Write> Synth<W> {
    /// A capture of link type `link` streamed into `w`.
    pub fn to_writer(w: W, link: u32) -> std::io::Result<Self> {
        Ok(Synth {
            out: PcapWriter::new(w, link, false)?,
            link,
            ts: 1_704_067_200_000_000_000,
            step: 1_000_000,
        })
    }

    /// The writer (e.g. to ask how much was written).
    pub fn writer(&self) -> &W {
        self.out.get_ref()
    }

    /// Flushes and returns the writer.
    pub fn into_inner(self) -> std::io::Result<W> {
        self.out.into_inner()
    }

    /// Frames written so far.
    pub fn frames(&self) -> u64 {
        self.out.frames()
    }

    /// Appends an already built frame.
    pub fn frame(&mut self, frame: &[u8]) {
        self.ts += self.step;
        let _ = self.out.write_frame(self.ts, frame);
    }

    /// Appends a frame of which only the first `keep` bytes are captured (snap length).
    pub fn truncated_frame(&mut self, frame: &[u8], keep: usize) {
        self.ts += self.step;
        let keep = keep.min(frame.len());
        let _ = self
            .out
            .write_truncated(self.ts, &frame[..keep], frame.len());
    }

    fn builder(
        &self,
        src: IpAddr,
        dst: IpAddr,
    ) -> etherparse::PacketBuilderStep<etherparse::IpHeaders> {
        let (smac, dmac) = ([0x02, 0, 0, 0, 0, 1], [0x02, 0, 0, 0, 0, 2]);
        match (src, dst, self.link) {
            (IpAddr::V4(s), IpAddr::V4(d), linktype::ETHERNET) => {
                PacketBuilder::ethernet2(smac, dmac).ipv4(s.octets(), d.octets(), 64)
            }
            (IpAddr::V4(s), IpAddr::V4(d), _) => PacketBuilder::ipv4(s.octets(), d.octets(), 64),
            (IpAddr::V6(s), IpAddr::V6(d), linktype::ETHERNET) => {
                PacketBuilder::ethernet2(smac, dmac).ipv6(s.octets(), d.octets(), 64)
            }
            (IpAddr::V6(s), IpAddr::V6(d), _) => PacketBuilder::ipv6(s.octets(), d.octets(), 64),
            _ => panic!("synth: source and destination must be of the same IP version"),
        }
    }

    /// Builds (without appending) a UDP frame.
    pub fn udp_frame(&self, src: SocketAddr, dst: SocketAddr, payload: &[u8]) -> Vec<u8> {
        let b = self.builder(src.ip(), dst.ip()).udp(src.port(), dst.port());
        let mut v = Vec::with_capacity(b.size(payload.len()));
        let _ = b.write(&mut v, payload);
        v
    }

    /// Appends a UDP datagram.
    pub fn udp(&mut self, src: SocketAddr, dst: SocketAddr, payload: &[u8]) {
        let f = self.udp_frame(src, dst, payload);
        self.frame(&f);
    }

    /// Builds (without appending) an IP packet of protocol `proto` carrying `payload` (e.g. SCTP = 132, or a
    /// protocol number nothing parses).
    pub fn ip_frame(&self, src: IpAddr, dst: IpAddr, proto: u8, payload: &[u8]) -> Vec<u8> {
        let b = self.builder(src, dst);
        let mut v = Vec::with_capacity(b.size(payload.len()));
        let _ = b.write(&mut v, etherparse::IpNumber(proto), payload);
        v
    }

    /// Appends an IP packet of protocol `proto`.
    pub fn ip(&mut self, src: IpAddr, dst: IpAddr, proto: u8, payload: &[u8]) {
        let f = self.ip_frame(src, dst, proto, payload);
        self.frame(&f);
    }

    /// Appends an ICMP (IPv4) or ICMPv6 (IPv6) echo request carrying `data`.
    pub fn icmp_echo(&mut self, src: IpAddr, dst: IpAddr, data: &[u8]) {
        let b = self.builder(src, dst);
        let mut v = Vec::new();
        if src.is_ipv4() {
            let _ = b.icmpv4_echo_request(1, 1).write(&mut v, data);
        } else {
            let _ = b.icmpv6_echo_request(1, 1).write(&mut v, data);
        }
        self.frame(&v);
    }

    /// Appends an ICMP destination-unreachable (port unreachable) message quoting `quoted` (an IP packet).
    pub fn icmp_unreachable(&mut self, src: IpAddr, dst: IpAddr, quoted: &[u8]) {
        let b = self
            .builder(src, dst)
            .icmpv4(etherparse::Icmpv4Type::DestinationUnreachable(
                etherparse::icmpv4::DestUnreachableHeader::Port,
            ));
        let mut v = Vec::with_capacity(b.size(quoted.len()));
        let _ = b.write(&mut v, quoted);
        self.frame(&v);
    }

    /// Appends an Ethernet frame of the given EtherType (not IP: ARP, LLDP, a vendor type) carrying `payload`.
    /// Only for Ethernet captures.
    pub fn ether(&mut self, ether_type: u16, payload: &[u8]) {
        let mut v = vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1];
        v.extend_from_slice(&ether_type.to_be_bytes());
        v.extend_from_slice(payload);
        self.frame(&v);
    }

    /// Builds (without appending) a TCP frame. `flags` is a string of `S`, `A`, `F`, `R`, `P`.
    pub fn tcp_frame(
        &self,
        src: SocketAddr,
        dst: SocketAddr,
        seq: u32,
        ack: u32,
        flags: &str,
        payload: &[u8],
    ) -> Vec<u8> {
        let mut b = self
            .builder(src.ip(), dst.ip())
            .tcp(src.port(), dst.port(), seq, 65535);
        for f in flags.chars() {
            b = match f {
                'S' => b.syn(),
                'A' => b.ack(ack),
                'F' => b.fin(),
                'R' => b.rst(),
                'P' => b.psh(),
                _ => b,
            };
        }
        let mut v = Vec::with_capacity(b.size(payload.len()));
        let _ = b.write(&mut v, payload);
        v
    }
}

/// A TCP conversation being written into a [`Synth`].
#[derive(Debug, Clone)]
pub struct Tcp {
    /// The device's address.
    pub client: SocketAddr,
    /// The server's address.
    pub server: SocketAddr,
    /// Next sequence number of the client.
    pub cseq: u32,
    /// Next sequence number of the server.
    pub sseq: u32,
}

impl Tcp {
    /// A conversation with the given initial sequence numbers.
    pub fn new(client: SocketAddr, server: SocketAddr, isn_client: u32, isn_server: u32) -> Self {
        Tcp {
            client,
            server,
            cseq: isn_client,
            sseq: isn_server,
        }
    }

    fn ends(&self, side: Side) -> (SocketAddr, SocketAddr, u32, u32) {
        match side {
            Side::Client => (self.client, self.server, self.cseq, self.sseq),
            Side::Server => (self.server, self.client, self.sseq, self.cseq),
        }
    }

    fn advance(&mut self, side: Side, n: u32) {
        match side {
            Side::Client => self.cseq = self.cseq.wrapping_add(n),
            Side::Server => self.sseq = self.sseq.wrapping_add(n),
        }
    }

    /// Writes the three-way handshake.
    pub fn open<W: Write>(&mut self, s: &mut Synth<W>) {
        let f = s.tcp_frame(self.client, self.server, self.cseq, 0, "S", b"");
        s.frame(&f);
        self.advance(Side::Client, 1);
        let f = s.tcp_frame(self.server, self.client, self.sseq, self.cseq, "SA", b"");
        s.frame(&f);
        self.advance(Side::Server, 1);
        let f = s.tcp_frame(self.client, self.server, self.cseq, self.sseq, "A", b"");
        s.frame(&f);
    }

    /// Plans `data` from `side` as segments of at most `mss` bytes, starting at the side's next sequence number.
    pub fn plan(&self, side: Side, data: &[u8], mss: usize) -> Vec<Seg> {
        let (_, _, mut seq, _) = self.ends(side);
        data.chunks(mss.max(1))
            .map(|c| {
                let s = Seg {
                    seq,
                    data: c.to_vec(),
                };
                seq = seq.wrapping_add(c.len() as u32);
                s
            })
            .collect()
    }

    /// Writes planned segments in the order given (reordered, duplicated — as the test wants), then advances
    /// the side's sequence number past `data_len` bytes.
    pub fn write<W: Write>(&mut self, s: &mut Synth<W>, side: Side, segs: &[Seg], data_len: usize) {
        let (src, dst, _, ack) = self.ends(side);
        for seg in segs {
            let f = s.tcp_frame(src, dst, seg.seq, ack, "AP", &seg.data);
            s.frame(&f);
        }
        self.advance(side, data_len as u32);
    }

    /// Sends `data` in order in segments of `mss` bytes.
    pub fn send<W: Write>(&mut self, s: &mut Synth<W>, side: Side, data: &[u8], mss: usize) {
        let segs = self.plan(side, data, mss);
        self.write(s, side, &segs, data.len());
    }

    /// Writes a FIN from each side and the final ACKs.
    pub fn close<W: Write>(&mut self, s: &mut Synth<W>) {
        for side in [Side::Client, Side::Server] {
            let (src, dst, seq, ack) = self.ends(side);
            let f = s.tcp_frame(src, dst, seq, ack, "FA", b"");
            s.frame(&f);
            self.advance(side, 1);
        }
        let f = s.tcp_frame(self.client, self.server, self.cseq, self.sseq, "A", b"");
        s.frame(&f);
    }
}

/// An SCTP packet (common header and one DATA chunk carrying `data`). The checksum is not computed: nothing in
/// telltale checks it.
pub fn sctp_data(src_port: u16, dst_port: u16, data: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(28 + data.len());
    v.extend_from_slice(&src_port.to_be_bytes());
    v.extend_from_slice(&dst_port.to_be_bytes());
    v.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0]); // verification tag, checksum
    let len = 16 + data.len();
    v.extend_from_slice(&[0, 0x03]); // DATA, flags B|E
    v.extend_from_slice(&(len as u16).to_be_bytes());
    v.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]); // TSN, stream id/seq, PPID
    v.extend_from_slice(data);
    while v.len() % 4 != 0 {
        v.push(0);
    }
    v
}

/// Inserts an IPv6 hop-by-hop options header carrying `option` (one option of type 0x1e, skipped by routers
/// that do not know it) into the IPv6 packet that starts at `ip_at` in `frame`. Upper-layer checksums stay
/// valid (their pseudo-header does not cover extension headers).
pub fn ipv6_with_hop_by_hop(frame: &[u8], ip_at: usize, option: &[u8]) -> Vec<u8> {
    let opt_len = option.len().min(255);
    let mut ext = vec![0u8, 0, 0x1e, opt_len as u8];
    ext.extend_from_slice(&option[..opt_len]);
    while ext.len() % 8 != 0 {
        ext.push(0); // Pad1
    }
    let Some(header) = frame.get(ip_at..ip_at + 40) else {
        return frame.to_vec();
    };
    ext[0] = header[6]; // next header
    ext[1] = (ext.len() / 8 - 1) as u8;
    let mut out = frame[..ip_at + 40].to_vec();
    out[ip_at + 6] = 0; // hop-by-hop
    let plen = u16::from_be_bytes([header[4], header[5]]) as usize + ext.len();
    out[ip_at + 4..ip_at + 6].copy_from_slice(&(plen as u16).to_be_bytes());
    out.extend_from_slice(&ext);
    out.extend_from_slice(&frame[ip_at + 40..]);
    out
}

/// A DNS query for `name` (type A) with the given id.
pub fn dns_query(id: u16, name: &str) -> Vec<u8> {
    use simple_dns::{Name, Packet, Question, CLASS, QCLASS, QTYPE, TYPE};
    let mut p = Packet::new_query(id);
    if let Ok(n) = Name::new(name) {
        p.questions.push(Question::new(
            n,
            QTYPE::TYPE(TYPE::A),
            QCLASS::CLASS(CLASS::IN),
            false,
        ));
    }
    p.build_bytes_vec().unwrap_or_default()
}

/// A DNS response for `name` answering `addr` (type A), id `id`.
pub fn dns_answer(id: u16, name: &str, addr: std::net::Ipv4Addr) -> Vec<u8> {
    use simple_dns::rdata::{RData, A};
    use simple_dns::{
        Name, Packet, PacketFlag, Question, ResourceRecord, CLASS, QCLASS, QTYPE, TYPE,
    };
    let mut p = Packet::new_reply(id);
    p.set_flags(PacketFlag::RECURSION_DESIRED | PacketFlag::RECURSION_AVAILABLE);
    if let Ok(n) = Name::new(name) {
        p.questions.push(Question::new(
            n.clone(),
            QTYPE::TYPE(TYPE::A),
            QCLASS::CLASS(CLASS::IN),
            false,
        ));
        p.answers.push(ResourceRecord::new(
            n,
            CLASS::IN,
            60,
            RData::A(A::from(addr)),
        ));
    }
    p.build_bytes_vec().unwrap_or_default()
}

/// A minimal TLS 1.2 ClientHello record with SNI `sni` (one cipher suite, no other extension), built byte by
/// byte so the tests do not depend on the parser they test.
pub fn tls_client_hello(sni: &str) -> Vec<u8> {
    let name = sni.as_bytes();
    let mut ext = vec![0, 0];
    ext.extend_from_slice(&((name.len() + 5) as u16).to_be_bytes());
    ext.extend_from_slice(&((name.len() + 3) as u16).to_be_bytes());
    ext.push(0);
    ext.extend_from_slice(&(name.len() as u16).to_be_bytes());
    ext.extend_from_slice(name);
    let mut body = vec![3, 3];
    body.extend_from_slice(&[9; 32]);
    body.extend_from_slice(&[0, 0, 2, 0x13, 0x01, 1, 0]);
    body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    body.extend_from_slice(&ext);
    let mut hs = vec![1, 0];
    hs.extend_from_slice(&(body.len() as u16).to_be_bytes());
    hs.extend_from_slice(&body);
    let mut rec = vec![0x16, 3, 1];
    rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
    rec.extend_from_slice(&hs);
    rec
}
