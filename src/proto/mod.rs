//! Protocol parsers, all sans-IO: DNS, HTTP/1.x, TLS handshakes (ClientHello, JA4), QUIC Initial packets
//! (decrypted to read the ClientHello), DHCP.
//!
//! Each parser takes bytes of one datagram or one direction of a reassembled stream and returns values or events;
//! none of them reads files or sockets, and none panics on malformed input.

pub mod dhcp;
pub mod dns;
pub mod http;
pub mod keylog;
pub mod quic;
pub mod tls;
pub mod tls_decrypt;
