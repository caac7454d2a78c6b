//! The typed vocabulary of a conversation in the report: its transport ([`Transport`]) and the application
//! protocol recognised on it ([`App`]). Both are written in the JSON as the same lowercase words as before
//! (`"tcp"`, `"ip-47"`, `"http2"`, `""` for an unknown application), so the contract is unchanged; reading a
//! word that is not one of them is an error naming the word, never a silent default.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A conversation's transport: the IP protocol of its packets, or `Link` for a pseudo-conversation of frames
/// that are not IP (ARP, vendor EtherTypes, 802.11 management).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Transport {
    /// TCP (IP protocol 6).
    Tcp,
    /// UDP (17).
    Udp,
    /// ICMP (1).
    Icmp,
    /// ICMPv6 (58).
    Icmpv6,
    /// SCTP (132).
    Sctp,
    /// Frames that are not IP.
    Link,
    /// Any other IP protocol, by number (written `ip-N`).
    Ip(u8),
}

impl Transport {
    /// The transport of IP protocol number `n`.
    pub fn from_ip_protocol(n: u8) -> Transport {
        match n {
            6 => Transport::Tcp,
            17 => Transport::Udp,
            1 => Transport::Icmp,
            58 => Transport::Icmpv6,
            132 => Transport::Sctp,
            n => Transport::Ip(n),
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Transport::Tcp => f.write_str("tcp"),
            Transport::Udp => f.write_str("udp"),
            Transport::Icmp => f.write_str("icmp"),
            Transport::Icmpv6 => f.write_str("icmpv6"),
            Transport::Sctp => f.write_str("sctp"),
            Transport::Link => f.write_str("link"),
            Transport::Ip(n) => write!(f, "ip-{n}"),
        }
    }
}

impl FromStr for Transport {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "tcp" => Transport::Tcp,
            "udp" => Transport::Udp,
            "icmp" => Transport::Icmp,
            "icmpv6" => Transport::Icmpv6,
            "sctp" => Transport::Sctp,
            "link" => Transport::Link,
            other => match other.strip_prefix("ip-").and_then(|n| n.parse::<u8>().ok()) {
                Some(n) => Transport::from_ip_protocol(n),
                None => {
                    return Err(format!(
                        "unknown transport `{other}` (expected tcp, udp, icmp, icmpv6, sctp, link or ip-N)"
                    ))
                }
            },
        })
    }
}

/// The application protocol recognised on a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum App {
    /// Nothing recognised (written `""`): the bytes are searched raw and through the decoding graph.
    #[default]
    Unknown,
    /// HTTP/1.x.
    Http,
    /// HTTP/2.
    Http2,
    /// WebSocket after an HTTP/1.1 upgrade.
    WebSocket,
    /// MQTT.
    Mqtt,
    /// TLS.
    Tls,
    /// A SOCKS proxy handshake.
    Socks,
    /// DNS.
    Dns,
    /// DHCP.
    Dhcp,
    /// SSDP.
    Ssdp,
    /// QUIC.
    Quic,
    /// ICMP messages.
    Icmp,
    /// ICMPv6 messages.
    Icmpv6,
    /// SCTP chunks.
    Sctp,
    /// The payload of another IP protocol, or IP fragments.
    Ip,
    /// ARP.
    Arp,
    /// Other frames that are not IP.
    Link,
}

impl App {
    /// Every application, in the order of the schema's list (`schemas/report.schema.json`).
    pub const ALL: [App; 17] = [
        App::Unknown,
        App::Http,
        App::Http2,
        App::WebSocket,
        App::Mqtt,
        App::Tls,
        App::Socks,
        App::Dns,
        App::Dhcp,
        App::Ssdp,
        App::Quic,
        App::Icmp,
        App::Icmpv6,
        App::Sctp,
        App::Ip,
        App::Arp,
        App::Link,
    ];

    /// The word in the report (`""` for [`App::Unknown`]); also a finding's `protocol` for bytes of this
    /// application.
    pub fn as_str(self) -> &'static str {
        match self {
            App::Unknown => "",
            App::Http => "http",
            App::Http2 => "http2",
            App::WebSocket => "websocket",
            App::Mqtt => "mqtt",
            App::Tls => "tls",
            App::Socks => "socks",
            App::Dns => "dns",
            App::Dhcp => "dhcp",
            App::Ssdp => "ssdp",
            App::Quic => "quic",
            App::Icmp => "icmp",
            App::Icmpv6 => "icmpv6",
            App::Sctp => "sctp",
            App::Ip => "ip",
            App::Arp => "arp",
            App::Link => "link",
        }
    }

    /// Whether nothing was recognised.
    pub fn is_unknown(self) -> bool {
        self == App::Unknown
    }
}

impl fmt::Display for App {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for App {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        App::ALL
            .iter()
            .copied()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| {
                let known: Vec<&str> = App::ALL[1..].iter().map(|a| a.as_str()).collect();
                format!(
                    "unknown application protocol `{s}` (expected \"\" or one of {})",
                    known.join(", ")
                )
            })
    }
}

macro_rules! serde_as_word {
    ($t:ty) => {
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let word = std::borrow::Cow::<'de, str>::deserialize(d)?;
                word.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}
serde_as_word!(Transport);
serde_as_word!(App);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_word_reads_back_as_what_wrote_it() {
        for a in App::ALL {
            assert_eq!(a.as_str().parse::<App>(), Ok(a));
            let json = serde_json::to_string(&a).unwrap();
            assert_eq!(serde_json::from_str::<App>(&json).unwrap(), a);
        }
        for n in 0..=255u8 {
            let t = Transport::from_ip_protocol(n);
            assert_eq!(t.to_string().parse::<Transport>(), Ok(t), "{n}");
        }
        assert_eq!(Transport::Link.to_string().parse(), Ok(Transport::Link));
        assert_eq!(Transport::from_ip_protocol(47).to_string(), "ip-47");
        assert_eq!("ip-6".parse(), Ok(Transport::Tcp));
    }

    #[test]
    fn an_unknown_word_is_an_error_that_names_it() {
        let e = serde_json::from_str::<App>("\"gopher\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("`gopher`") && e.contains("http2"), "{e}");
        let e = serde_json::from_str::<Transport>("\"ip-300\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("`ip-300`"), "{e}");
        assert!(serde_json::from_str::<Transport>("\"TCP\"").is_err());
    }
}
