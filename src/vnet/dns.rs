//! The vnet's DNS server: every name resolves, to an address telltale owns.
//!
//! This module owns the answers: a synthetic IPv4 address per name from a reserved pool
//! (198.18.0.0/15 by default, RFC 2544's benchmarking range, never routed), chosen by a
//! hash of the lower-cased name so that the same name gets the same address in every run
//! whatever the order of queries; per-scenario fixed addresses and NXDOMAIN patterns;
//! empty AAAA answers (the segment has no IPv6). It also keeps the reverse map (address →
//! name) that lets the TCP sink name the destination of a connection that carries no
//! Host header or SNI. Sans-IO: a query payload in, a response payload out.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use super::prefix_mask;

use serde::Serialize;
use simple_dns::rdata::{RData, A};
use simple_dns::{Packet, PacketFlag, ResourceRecord, CLASS, QTYPE, RCODE, TYPE};

/// DNS behaviour of one vnet.
#[derive(Debug, Clone)]
pub struct DnsConfig {
    /// First address of the synthetic pool.
    pub pool_base: Ipv4Addr,
    /// Prefix length of the pool (15 → 131,072 addresses).
    pub pool_prefix: u8,
    /// Fixed answers: `(pattern, address)`; the first matching pattern wins. Patterns are
    /// host names, `*.` wildcards (`*.example` matches `a.example` and `a.b.example`) or `*`.
    pub overrides: Vec<(String, Ipv4Addr)>,
    /// Names (same pattern syntax) answered with NXDOMAIN.
    pub nxdomain: Vec<String>,
    /// TTL of every answer, in seconds.
    pub ttl: u32,
}

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig {
            pool_base: crate::net::SYNTHETIC_POOL,
            pool_prefix: crate::net::SYNTHETIC_POOL_PREFIX,
            overrides: Vec::new(),
            nxdomain: Vec::new(),
            ttl: 300,
        }
    }
}

/// What a query was answered with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DnsOutcome {
    /// These addresses (type A).
    Addresses(Vec<Ipv4Addr>),
    /// NXDOMAIN (a configured pattern matched).
    Nxdomain,
    /// NOERROR with no answer records (AAAA and every other type).
    Empty,
    /// The query could not be parsed; answered FORMERR when the header was readable.
    Malformed,
}

/// One answered question.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DnsAnswered {
    /// The name as queried (case preserved).
    pub name: String,
    /// Query type mnemonic (`A`, `AAAA`, `HTTPS`, …).
    pub qtype: String,
    /// The answer given.
    pub outcome: DnsOutcome,
}

/// Matches a host name against a pattern: exact (case-insensitive), `*` (anything), or
/// `*.suffix` (any name strictly below `suffix`).
pub fn host_matches(pattern: &str, name: &str) -> bool {
    let pattern = pattern.trim_end_matches('.');
    let name = name.trim_end_matches('.');
    if pattern == "*" {
        return true;
    }
    if let Some(suffix) = pattern.strip_prefix("*.") {
        let n = name.len();
        let s = suffix.len();
        return n > s + 1
            && name.is_char_boundary(n - s)
            && name[n - s..].eq_ignore_ascii_case(suffix)
            && name.as_bytes()[n - s - 1] == b'.';
    }
    pattern.eq_ignore_ascii_case(name)
}

/// The DNS server state: the address allocation and the reverse map.
#[derive(Debug)]
pub struct DnsServer {
    config: DnsConfig,
    /// Lower-cased name → synthetic address.
    by_name: HashMap<String, Ipv4Addr>,
    /// Address → name it was last given for (synthetic or override).
    by_addr: HashMap<Ipv4Addr, String>,
    /// Every pool address is taken: new names share one (by their hash) and are not remembered, so a guest
    /// that asks for endless names cannot grow the tables past the pool's size, nor make each answer cost a
    /// walk over the whole pool.
    full: bool,
}

impl DnsServer {
    /// A server with no names allocated yet.
    pub fn new(config: DnsConfig) -> DnsServer {
        DnsServer {
            config,
            by_name: HashMap::new(),
            by_addr: HashMap::new(),
            full: false,
        }
    }

    /// The name an address was handed out for, if any.
    pub fn name_of(&self, addr: Ipv4Addr) -> Option<&str> {
        self.by_addr.get(&addr).map(String::as_str)
    }

    /// Whether `addr` lies in the synthetic pool.
    pub fn in_pool(&self, addr: Ipv4Addr) -> bool {
        let mask = prefix_mask(self.config.pool_prefix);
        u32::from(addr) & mask == u32::from(self.config.pool_base) & mask
    }

    /// The address `name` resolves to (allocating a synthetic one if needed), or `None` for
    /// an NXDOMAIN name.
    pub fn resolve(&mut self, name: &str) -> Option<Ipv4Addr> {
        let lower = name.trim_end_matches('.').to_ascii_lowercase();
        if self.config.nxdomain.iter().any(|p| host_matches(p, &lower)) {
            return None;
        }
        if let Some((_, addr)) = self
            .config
            .overrides
            .iter()
            .find(|(p, _)| host_matches(p, &lower))
        {
            let addr = *addr;
            self.by_addr.insert(addr, lower);
            return Some(addr);
        }
        if let Some(addr) = self.by_name.get(&lower) {
            return Some(*addr);
        }
        if !self.full {
            if let Some(addr) = self.allocate(&lower) {
                self.by_name.insert(lower.clone(), addr);
                self.by_addr.insert(addr, lower);
                return Some(addr);
            }
            self.full = true;
        }
        let (base, size, h) = self.pool_hash(&lower);
        Some(Ipv4Addr::from(base.wrapping_add((h % size) as u32)))
    }

    /// The pool's first address and size, and the name's FNV-1a hash.
    fn pool_hash(&self, name: &str) -> (u32, u64, u64) {
        let size = 1u64 << (32 - u32::from(self.config.pool_prefix.clamp(8, 30)));
        let base = u32::from(self.config.pool_base) & prefix_mask(self.config.pool_prefix);
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in name.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        (base, size, h)
    }

    /// A pool address for `name`: FNV-1a of the name, then linear probing past addresses
    /// already taken and past the all-zeros / all-ones host parts of each /24. `None` when every
    /// address is taken.
    fn allocate(&self, name: &str) -> Option<Ipv4Addr> {
        let (base, size, h) = self.pool_hash(name);
        let mut off = h % size;
        for _ in 0..size {
            let addr = Ipv4Addr::from(base.wrapping_add(off as u32));
            let last = addr.octets()[3];
            if last != 0 && last != 255 && !self.by_addr.contains_key(&addr) {
                return Some(addr);
            }
            off = (off + 1) % size;
        }
        None
    }

    /// Answers one DNS query payload. Returns the response payload (`None` when the message
    /// is not a query or too broken to answer) and what each question was answered with.
    pub fn answer(&mut self, query: &[u8]) -> (Option<Vec<u8>>, Vec<DnsAnswered>) {
        let packet = match Packet::parse(query) {
            Ok(p) => p,
            Err(_) => return (formerr(query), Vec::new()),
        };
        if packet.has_flags(PacketFlag::RESPONSE) {
            return (None, Vec::new());
        }
        let mut reply = Packet::new_reply(packet.id());
        let mut flags = PacketFlag::AUTHORITATIVE_ANSWER | PacketFlag::RECURSION_AVAILABLE;
        if packet.has_flags(PacketFlag::RECURSION_DESIRED) {
            flags |= PacketFlag::RECURSION_DESIRED;
        }
        reply.set_flags(flags);
        let mut answered = Vec::new();
        let mut nx = false;
        for q in &packet.questions {
            let name = q.qname.to_string();
            let qtype = qtype_name(q.qtype);
            reply.questions.push(q.clone());
            let outcome = match q.qtype {
                QTYPE::TYPE(TYPE::A) | QTYPE::ANY => match self.resolve(&name) {
                    Some(addr) => {
                        reply.answers.push(ResourceRecord::new(
                            q.qname.clone(),
                            CLASS::IN,
                            self.config.ttl,
                            RData::A(A::from(addr)),
                        ));
                        DnsOutcome::Addresses(vec![addr])
                    }
                    None => {
                        nx = true;
                        DnsOutcome::Nxdomain
                    }
                },
                _ => {
                    let lower = name.to_ascii_lowercase();
                    if self.config.nxdomain.iter().any(|p| host_matches(p, &lower)) {
                        nx = true;
                        DnsOutcome::Nxdomain
                    } else {
                        DnsOutcome::Empty
                    }
                }
            };
            answered.push(DnsAnswered {
                name,
                qtype,
                outcome,
            });
        }
        if nx {
            *reply.rcode_mut() = RCODE::NameError;
        }
        (reply.build_bytes_vec().ok(), answered)
    }
}

/// A FORMERR response echoing the id of an unparseable query, if it has a header.
fn formerr(query: &[u8]) -> Option<Vec<u8>> {
    if query.len() < 12 || query[2] & 0x80 != 0 {
        return None;
    }
    let mut r = vec![0u8; 12];
    r[0] = query[0];
    r[1] = query[1];
    r[2] = 0x80 | (query[2] & 0x79); // QR, keep opcode and RD
    r[3] = 0x01; // FORMERR
    Some(r)
}

fn qtype_name(q: QTYPE) -> String {
    match q {
        QTYPE::TYPE(t) => {
            let s = format!("{t:?}");
            if s.starts_with("Unknown") {
                format!("TYPE{}", u16::from(t))
            } else {
                s
            }
        }
        QTYPE::ANY => "ANY".into(),
        QTYPE::AXFR => "AXFR".into(),
        QTYPE::IXFR => "IXFR".into(),
        QTYPE::MAILA => "MAILA".into(),
        QTYPE::MAILB => "MAILB".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::dns::{parse_dns, DnsData};

    fn query(name: &str, qtype: TYPE) -> Vec<u8> {
        use simple_dns::{Name, Question, QCLASS};
        let mut p = Packet::new_query(0x4242);
        p.set_flags(PacketFlag::RECURSION_DESIRED);
        p.questions.push(Question::new(
            Name::new(name).unwrap(),
            QTYPE::TYPE(qtype),
            QCLASS::CLASS(CLASS::IN),
            false,
        ));
        p.build_bytes_vec().unwrap()
    }

    #[test]
    fn every_name_gets_a_stable_pool_address() {
        let mut a = DnsServer::new(DnsConfig::default());
        let mut b = DnsServer::new(DnsConfig::default());
        // Different query orders, same answers.
        let x1 = a.resolve("api.account.kestrel.example").unwrap();
        let y1 = a.resolve("sync.kestrel.example").unwrap();
        let y2 = b.resolve("sync.kestrel.example").unwrap();
        let x2 = b.resolve("API.Account.Kestrel.Example.").unwrap();
        assert_eq!(x1, x2);
        assert_eq!(y1, y2);
        assert_ne!(x1, y1);
        assert!(a.in_pool(x1) && a.in_pool(y1));
        assert_eq!(a.name_of(x1), Some("api.account.kestrel.example"));
    }

    /// Past a full pool, new names share addresses and are not remembered: the tables stop growing.
    #[test]
    fn a_full_pool_stops_the_tables_from_growing() {
        let mut s = DnsServer::new(DnsConfig {
            pool_prefix: 28,
            ..DnsConfig::default()
        });
        for i in 0..10_000 {
            let a = s.resolve(&format!("n{i}.flood.example")).unwrap();
            assert!(s.in_pool(a), "{a}");
        }
        // The pool's first /28 (198.18.0.0–15): 16 addresses, all but .0 usable.
        assert_eq!(s.by_addr.len(), 15);
        assert_eq!(s.by_name.len(), 15);
        assert!(s.full);
        // Names handed out before the pool filled keep their address.
        let first = s.resolve("n0.flood.example").unwrap();
        assert_eq!(s.name_of(first), Some("n0.flood.example"));
    }

    #[test]
    fn thousands_of_names_get_distinct_addresses() {
        let mut s = DnsServer::new(DnsConfig::default());
        let mut seen = std::collections::HashSet::new();
        for i in 0..5000 {
            let a = s.resolve(&format!("host{i}.example")).unwrap();
            assert!(seen.insert(a), "address {a} given twice");
            assert!(a.octets()[3] != 0 && a.octets()[3] != 255);
        }
    }

    #[test]
    fn overrides_and_nxdomain() {
        let cfg = DnsConfig {
            overrides: vec![(
                "time.kestrel.example".into(),
                Ipv4Addr::new(198, 51, 100, 7),
            )],
            nxdomain: vec!["*.tracker.example".into(), "ads.kestrel.example".into()],
            ..DnsConfig::default()
        };
        let mut s = DnsServer::new(cfg);
        assert_eq!(
            s.resolve("TIME.kestrel.example"),
            Some(Ipv4Addr::new(198, 51, 100, 7))
        );
        assert_eq!(s.resolve("a.b.tracker.example"), None);
        assert_eq!(s.resolve("ads.kestrel.example"), None);
        assert!(
            s.resolve("tracker.example").is_some(),
            "*. is strictly below"
        );
    }

    #[test]
    fn answers_a_queries_on_the_wire() {
        let mut s = DnsServer::new(DnsConfig::default());
        let (resp, answered) = s.answer(&query("Api.Example", TYPE::A));
        let resp = parse_dns(&resp.unwrap()).unwrap();
        assert!(resp.is_response);
        assert_eq!(resp.id, 0x4242);
        assert_eq!(resp.rcode, 0);
        assert_eq!(
            resp.questions[0].name, "Api.Example",
            "question echoed as asked"
        );
        let expected = s.resolve("api.example").unwrap();
        assert_eq!(resp.answers[0].data, DnsData::A(expected));
        assert_eq!(
            answered,
            vec![DnsAnswered {
                name: "Api.Example".into(),
                qtype: "A".into(),
                outcome: DnsOutcome::Addresses(vec![expected])
            }]
        );
    }

    #[test]
    fn aaaa_is_empty_and_nxdomain_sets_rcode() {
        let mut s = DnsServer::new(DnsConfig {
            nxdomain: vec!["blocked.example".into()],
            ..DnsConfig::default()
        });
        let (resp, answered) = s.answer(&query("api.example", TYPE::AAAA));
        let resp = parse_dns(&resp.unwrap()).unwrap();
        assert_eq!(resp.rcode, 0);
        assert!(resp.answers.is_empty());
        assert_eq!(answered[0].outcome, DnsOutcome::Empty);
        let (resp, answered) = s.answer(&query("blocked.example", TYPE::A));
        assert_eq!(parse_dns(&resp.unwrap()).unwrap().rcode, 3);
        assert_eq!(answered[0].outcome, DnsOutcome::Nxdomain);
    }

    #[test]
    fn https_and_svcb_get_no_data_so_no_ech_configuration_is_handed_out() {
        let mut s = DnsServer::new(DnsConfig::default());
        for t in [TYPE::HTTPS, TYPE::SVCB] {
            let (resp, answered) = s.answer(&query("api.example", t));
            let resp = parse_dns(&resp.unwrap()).unwrap();
            assert_eq!(resp.rcode, 0);
            assert!(resp.answers.is_empty());
            assert_eq!(answered[0].outcome, DnsOutcome::Empty);
            assert_eq!(answered[0].qtype, format!("{t:?}"));
        }
    }

    #[test]
    fn garbage_gets_formerr_or_nothing() {
        let mut s = DnsServer::new(DnsConfig::default());
        let mut bad = query("api.example", TYPE::A);
        bad.truncate(20);
        let (resp, answered) = s.answer(&bad);
        assert!(answered.is_empty());
        let resp = resp.unwrap();
        assert_eq!(&resp[0..2], &[0x42, 0x42]);
        assert_eq!(resp[3] & 0x0f, 1);
        assert_eq!(s.answer(&[1, 2, 3]).0, None);
    }

    #[test]
    fn host_patterns() {
        assert!(host_matches("*", "anything"));
        assert!(host_matches("*.example", "a.example"));
        assert!(host_matches("*.example", "a.b.EXAMPLE"));
        assert!(!host_matches("*.example", "example"));
        assert!(!host_matches("*.example", "badexample"));
        assert!(host_matches("Api.Example", "api.example."));
    }
}
