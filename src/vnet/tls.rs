//! TLS ended in the vnet: the run's certificate authority, a leaf per server name, and the
//! server side of every intercepted TLS connection, sans-IO.
//!
//! This module owns everything the catch-all needs to be the TLS server a device talks to:
//! - [`RunCa`]: a certificate authority made for one run (rcgen, ECDSA P-256), written into
//!   the run folder so targets can trust it;
//! - [`TlsInterceptor`]: the state shared by the connections of a segment — the policy
//!   (intercept or not, per destination), the leaf certificates (one per name: the SNI, else
//!   the DNS name the vnet handed the address out for, else the address as an IP SAN, cached
//!   per name up to [`MAX_LEAVES`]), the session secrets rustls hands its [`KeyLog`] (NSS
//!   key log lines, taken by the driver for `sslkeylog.txt` and the capture's Decryption
//!   Secrets Blocks) and the destinations that refused telltale's certificate;
//! - [`Session`]: one connection, rustls 0.23 driven without I/O (`Acceptor` → ClientHello →
//!   choice of certificate and ALPN → `ServerConnection`); the plaintext goes into a nested
//!   [`App`], the same sink as cleartext connections;
//! - the classification of a client's refusal ([`RefusalKind`]): an alert about our
//!   certificate, a close right after our Certificate, a completed handshake followed by
//!   silence, or no common version or cipher suite.
//!
//! ALPN: `http/1.1` when the client offers it; a client that offers only other protocols
//! other than `h2` (MQTT over TLS…) gets its first one and is read as a raw stream; `h2` is
//! never selected (HTTP/2 is not served: a client offering `h2` and `http/1.1` gets
//! `http/1.1`, one offering only `h2` gets no ALPN).

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io::{self, Read, Write};
use std::net::SocketAddrV4;
use std::sync::{Arc, Mutex};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{Acceptor, ServerConfig, ServerConnection};
use rustls::{AlertDescription, KeyLog};

use super::dns::host_matches;
use super::event::VnetEvent;
use super::sink::{After, App, Ctx};

/// Leaf certificates kept per run; names beyond get a fresh leaf per connection (counted in
/// [`TlsInterceptor::uncached_leaves`]).
pub const MAX_LEAVES: usize = 1024;
/// Plaintext bytes read from rustls at a time.
const PLAINTEXT_CHUNK: usize = 16 * 1024;

/// Errors making the run's CA or a leaf.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// rcgen refused the parameters or the key.
    #[error("certificate: {0}")]
    Cert(#[from] rcgen::Error),
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

/// A certificate authority made for one run.
pub struct RunCa {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl fmt::Debug for RunCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunCa").finish_non_exhaustive()
    }
}

impl RunCa {
    /// A fresh CA (new key, self-signed), named `telltale run CA`.
    pub fn generate() -> Result<RunCa, TlsError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "telltale run CA");
        params
            .distinguished_name
            .push(DnType::OrganizationName, "telltale");
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key)?;
        Ok(RunCa { cert, key })
    }

    /// The CA certificate, PEM.
    pub fn pem(&self) -> String {
        self.cert.pem()
    }

    /// The CA certificate, DER.
    pub fn der(&self) -> Vec<u8> {
        self.cert.der().to_vec()
    }

    /// A leaf for `name` (a DNS name, or an IP address → IP SAN), signed by this CA, with
    /// the given key.
    fn leaf(&self, name: &str, key: &KeyPair) -> Result<CertificateDer<'static>, TlsError> {
        let mut params = CertificateParams::new(vec![name.to_string()])?;
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        Ok(params.signed_by(key, &self.cert, &self.key)?.der().clone())
    }
}

/// Whether the vnet ends TLS, and where not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsPolicy {
    /// End TLS with the run's CA (`network.tls: intercept`, the default).
    pub intercept: bool,
    /// Destinations never intercepted: host patterns (exact, `*.suffix`, `*`) matched against
    /// the SNI or the vnet's DNS name, or IPv4 addresses.
    pub except: Vec<String>,
}

impl Default for TlsPolicy {
    fn default() -> Self {
        TlsPolicy {
            intercept: true,
            except: Vec::new(),
        }
    }
}

/// How a client refused telltale's certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalKind {
    /// The client sent an alert about the certificate (unknown_ca, bad_certificate,
    /// certificate_unknown…).
    Alert,
    /// The client closed (or reset) the connection during the handshake, after our
    /// Certificate.
    ClosedAfterCertificate,
    /// The handshake completed, then the client closed without sending anything (a client
    /// that checks a pin after the handshake).
    SilentAfterHandshake,
    /// No protocol version or cipher suite in common (or a ClientHello rustls rejects).
    NoCommonParameters,
}

impl RefusalKind {
    /// The kind as the log names it.
    pub fn as_str(self) -> &'static str {
        match self {
            RefusalKind::Alert => "alert",
            RefusalKind::ClosedAfterCertificate => "closed_after_certificate",
            RefusalKind::SilentAfterHandshake => "silent_after_handshake",
            RefusalKind::NoCommonParameters => "no_common_parameters",
        }
    }
}

/// Collects the secrets rustls derives, as NSS key log lines.
#[derive(Debug, Default)]
struct KeyCollector {
    lines: Mutex<Vec<String>>,
}

impl KeyLog for KeyCollector {
    fn log(&self, label: &str, client_random: &[u8], secret: &[u8]) {
        let line = format!(
            "{label} {} {}",
            hex::encode(client_random),
            hex::encode(secret)
        );
        if let Ok(mut l) = self.lines.lock() {
            l.push(line);
        }
    }
}

/// The TLS state shared by every connection of a segment. See the module docs.
pub struct TlsInterceptor {
    policy: TlsPolicy,
    ca: Arc<RunCa>,
    leaf_key: KeyPair,
    provider: Arc<rustls::crypto::CryptoProvider>,
    configs: HashMap<(String, Option<Vec<u8>>), Arc<ServerConfig>>,
    leaves: HashMap<String, CertificateDer<'static>>,
    keys: Arc<KeyCollector>,
    refused: HashSet<String>,
    /// Leaves made but not cached because [`MAX_LEAVES`] names were cached already.
    pub uncached_leaves: u64,
}

impl fmt::Debug for TlsInterceptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsInterceptor")
            .field("policy", &self.policy)
            .field("leaves", &self.leaves.len())
            .field("refused", &self.refused)
            .finish_non_exhaustive()
    }
}

impl TlsInterceptor {
    /// An interceptor with this policy and CA.
    pub fn new(policy: TlsPolicy, ca: Arc<RunCa>) -> Result<TlsInterceptor, TlsError> {
        Ok(TlsInterceptor {
            policy,
            ca,
            leaf_key: KeyPair::generate()?,
            // ring rather than aws-lc-rs: it builds without cmake. rustls deprecates it for lacking
            // post-quantum key exchange, which a lab server that logs its keys does not need
            // (clients that offer X25519MLKEM768 also offer X25519).
            #[allow(deprecated)]
            provider: Arc::new(rustls::crypto::ring::default_provider()),
            configs: HashMap::new(),
            leaves: HashMap::new(),
            keys: Arc::new(KeyCollector::default()),
            refused: HashSet::new(),
            uncached_leaves: 0,
        })
    }

    /// The run's CA.
    pub fn ca(&self) -> &Arc<RunCa> {
        &self.ca
    }

    /// Takes the NSS key log lines collected since the last call.
    pub fn take_key_log(&mut self) -> Vec<String> {
        match self.keys.lines.lock() {
            Ok(mut l) => std::mem::take(&mut *l),
            Err(_) => Vec::new(),
        }
    }

    /// Destinations that refused telltale's certificate so far.
    pub fn refused(&self) -> impl Iterator<Item = &str> {
        self.refused.iter().map(String::as_str)
    }

    /// Why a connection to `dest` (SNI or DNS name, and address) is not intercepted, if not.
    fn skip_reason(&self, dest: &str, addr: &SocketAddrV4) -> Option<&'static str> {
        if !self.policy.intercept {
            return Some("off");
        }
        let ip = addr.ip().to_string();
        if self
            .policy
            .except
            .iter()
            .any(|p| host_matches(p, dest) || *p == ip)
        {
            return Some("exception");
        }
        if self.refused.contains(dest) {
            return Some("refused_before");
        }
        None
    }

    fn config(&mut self, name: &str, alpn: Option<Vec<u8>>) -> Result<Arc<ServerConfig>, TlsError> {
        let key = (name.to_string(), alpn);
        if let Some(c) = self.configs.get(&key) {
            return Ok(c.clone());
        }
        let leaf = match self.leaves.get(name) {
            Some(l) => l.clone(),
            None => self.ca.leaf(name, &self.leaf_key)?,
        };
        let chain = vec![leaf.clone(), self.ca.cert.der().clone()];
        let pkcs8 = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.leaf_key.serialize_der()));
        let mut cfg = ServerConfig::builder_with_provider(self.provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
            .with_no_client_auth()
            .with_single_cert(chain, pkcs8)?;
        cfg.alpn_protocols = key.1.iter().cloned().collect();
        cfg.key_log = self.keys.clone();
        let cfg = Arc::new(cfg);
        if self.leaves.len() < MAX_LEAVES || self.leaves.contains_key(name) {
            self.leaves.insert(name.to_string(), leaf);
            self.configs.insert(key, cfg.clone());
        } else {
            self.uncached_leaves += 1;
        }
        Ok(cfg)
    }
}

/// The ALPN protocol to select from what the client offers (see the module docs).
fn choose_alpn(offered: &[Vec<u8>]) -> Option<Vec<u8>> {
    if offered.is_empty() {
        return None;
    }
    if let Some(h1) = offered.iter().find(|p| p.as_slice() == b"http/1.1") {
        return Some(h1.clone());
    }
    offered
        .iter()
        .find(|p| !p.starts_with(b"h2") && !p.starts_with(b"h3"))
        .cloned()
}

enum State {
    Accepting(Box<Acceptor>),
    Open(Box<ServerConnection>),
    /// Refused, failed or closed: bytes are read and dropped.
    Done,
}

/// The server side of one intercepted TLS connection.
pub(crate) struct Session {
    state: State,
    inner: Box<App>,
    sni: Option<String>,
    dest: String,
    handshake_done: bool,
    refused: bool,
    plaintext_in: u64,
}

impl Session {
    pub(crate) fn new() -> Session {
        Session {
            state: State::Accepting(Box::default()),
            inner: Box::new(App::nested()),
            sni: None,
            dest: String::new(),
            handshake_done: false,
            refused: false,
            plaintext_in: 0,
        }
    }

    /// Ciphertext from the client; records to send are appended to `tx`.
    pub(crate) fn on_data(&mut self, data: &[u8], cx: &mut Ctx<'_>, tx: &mut Vec<u8>) -> After {
        let mut rd = data;
        loop {
            match &mut self.state {
                State::Done => return After::Close,
                State::Accepting(acc) => {
                    if rd.is_empty() {
                        return After::Continue;
                    }
                    if acc.read_tls(&mut rd).is_err() {
                        return self.refuse(
                            RefusalKind::NoCommonParameters,
                            "unreadable ClientHello".into(),
                            cx,
                        );
                    }
                    match acc.accept() {
                        Ok(None) => continue,
                        Ok(Some(accepted)) => {
                            let hello = accepted.client_hello();
                            let sni = hello.server_name().map(str::to_string);
                            let offered: Vec<Vec<u8>> = hello
                                .alpn()
                                .map(|i| i.map(<[u8]>::to_vec).collect())
                                .unwrap_or_default();
                            cx.events.push(VnetEvent::TlsHello {
                                ts: cx.now,
                                conn: cx.conn,
                                server: cx.server,
                                name: cx.name.clone(),
                                sni: sni.clone(),
                            });
                            let dest = sni
                                .clone()
                                .or_else(|| cx.name.clone())
                                .unwrap_or_else(|| cx.server.ip().to_string());
                            self.sni = sni;
                            self.dest = dest.clone();
                            let Some(tls) = cx.tls.as_deref_mut() else {
                                self.state = State::Done;
                                return After::Close;
                            };
                            if let Some(why) = tls.skip_reason(&dest, &cx.server) {
                                cx.events.push(VnetEvent::TlsNotIntercepted {
                                    ts: cx.now,
                                    conn: cx.conn,
                                    server: cx.server,
                                    destination: dest,
                                    reason: why.into(),
                                });
                                self.state = State::Done;
                                return After::Close;
                            }
                            let alpn = choose_alpn(&offered);
                            let cfg = match tls.config(&dest, alpn) {
                                Ok(c) => c,
                                Err(e) => {
                                    cx.events.push(VnetEvent::Refused {
                                        ts: cx.now,
                                        what: format!("TLS to {dest}: no certificate: {e}"),
                                    });
                                    self.state = State::Done;
                                    return After::Close;
                                }
                            };
                            match accepted.into_connection(cfg) {
                                Ok(conn) => self.state = State::Open(Box::new(conn)),
                                Err((e, mut alert)) => {
                                    let _ = alert.write_all(tx);
                                    return self.refuse(
                                        RefusalKind::NoCommonParameters,
                                        e.to_string(),
                                        cx,
                                    );
                                }
                            }
                        }
                        Err((e, mut alert)) => {
                            let _ = alert.write_all(tx);
                            return self.refuse(RefusalKind::NoCommonParameters, e.to_string(), cx);
                        }
                    }
                }
                State::Open(_) => return self.feed_open(rd, cx, tx),
            }
        }
    }

    fn feed_open(&mut self, mut rd: &[u8], cx: &mut Ctx<'_>, tx: &mut Vec<u8>) -> After {
        let State::Open(mut conn) = std::mem::replace(&mut self.state, State::Done) else {
            return After::Close;
        };
        let mut after = After::Continue;
        loop {
            if !rd.is_empty() && conn.read_tls(&mut rd).is_err() {
                break;
            }
            if let Err(e) = conn.process_new_packets() {
                let _ = flush(&mut conn, tx);
                return match classify(&e, conn.is_handshaking()) {
                    Some(k) => self.refuse(k, e.to_string(), cx),
                    None => {
                        cx.events.push(VnetEvent::Refused {
                            ts: cx.now,
                            what: format!("TLS to {}: {e}", self.dest),
                        });
                        After::Close
                    }
                };
            }
            if !self.handshake_done && !conn.is_handshaking() {
                self.handshake_done = true;
                cx.events.push(VnetEvent::TlsIntercepted {
                    ts: cx.now,
                    conn: cx.conn,
                    server: cx.server,
                    sni: self.sni.clone(),
                    certificate_name: self.dest.clone(),
                    version: conn
                        .protocol_version()
                        .map(|v| format!("{v:?}"))
                        .unwrap_or_default(),
                    cipher_suite: conn
                        .negotiated_cipher_suite()
                        .map(|s| format!("{:?}", s.suite()))
                        .unwrap_or_default(),
                    alpn: conn
                        .alpn_protocol()
                        .map(|a| String::from_utf8_lossy(a).into_owned()),
                });
            }
            let mut buf = [0u8; PLAINTEXT_CHUNK];
            let mut reply = Vec::new();
            loop {
                match conn.reader().read(&mut buf) {
                    Ok(0) => {
                        // close_notify: the client is done.
                        if self.plaintext_in > 0 {
                            self.inner.on_eof(cx, &mut reply);
                        }
                        after = After::Close;
                        break;
                    }
                    Ok(n) => {
                        self.plaintext_in += n as u64;
                        if self.inner.on_data(&buf[..n], cx, &mut reply) == After::Close {
                            after = After::Close;
                        }
                    }
                    Err(_) => break, // WouldBlock: nothing more decrypted yet
                }
            }
            if !reply.is_empty() {
                let _ = conn.writer().write_all(&reply);
            }
            if rd.is_empty() {
                break;
            }
        }
        if after == After::Close {
            conn.send_close_notify();
            let _ = flush(&mut conn, tx);
            if self.handshake_done && self.plaintext_in == 0 {
                return self.refuse(
                    RefusalKind::SilentAfterHandshake,
                    "closed without sending data".into(),
                    cx,
                );
            }
            return After::Close;
        }
        let _ = flush(&mut conn, tx);
        self.state = State::Open(conn);
        after
    }

    /// The client closed its side (FIN).
    pub(crate) fn on_eof(&mut self, cx: &mut Ctx<'_>, tx: &mut Vec<u8>) -> After {
        let State::Open(mut conn) = std::mem::replace(&mut self.state, State::Done) else {
            return After::Close;
        };
        if conn.is_handshaking() {
            let _ = flush(&mut conn, tx);
            self.refuse(
                RefusalKind::ClosedAfterCertificate,
                "closed during the handshake".into(),
                cx,
            );
        } else if self.plaintext_in == 0 {
            self.refuse(
                RefusalKind::SilentAfterHandshake,
                "closed without sending data".into(),
                cx,
            );
        } else {
            let mut reply = Vec::new();
            self.inner.on_eof(cx, &mut reply);
            if !reply.is_empty() {
                let _ = conn.writer().write_all(&reply);
            }
            conn.send_close_notify();
            let _ = flush(&mut conn, tx);
        }
        After::Close
    }

    /// The connection is gone (reset, timed out): classify a handshake that never ended.
    pub(crate) fn on_gone(&mut self, cx: &mut Ctx<'_>) {
        if let State::Open(conn) = std::mem::replace(&mut self.state, State::Done) {
            if conn.is_handshaking() {
                self.refuse(
                    RefusalKind::ClosedAfterCertificate,
                    "reset during the handshake".into(),
                    cx,
                );
            } else if self.plaintext_in == 0 {
                self.refuse(
                    RefusalKind::SilentAfterHandshake,
                    "reset without sending data".into(),
                    cx,
                );
            }
        }
        self.inner.on_gone(cx);
    }

    fn refuse(&mut self, kind: RefusalKind, detail: String, cx: &mut Ctx<'_>) -> After {
        self.state = State::Done;
        if self.refused {
            return After::Close;
        }
        self.refused = true;
        let dest = if self.dest.is_empty() {
            cx.name
                .clone()
                .unwrap_or_else(|| cx.server.ip().to_string())
        } else {
            self.dest.clone()
        };
        if let Some(tls) = cx.tls.as_deref_mut() {
            tls.refused.insert(dest.clone());
        }
        cx.events.push(VnetEvent::TlsRefused {
            ts: cx.now,
            conn: cx.conn,
            server: cx.server,
            sni: self.sni.clone(),
            destination: dest,
            kind: kind.as_str().into(),
            detail,
        });
        After::Close
    }
}

/// Which refusal an error of an open connection is, if it is one.
fn classify(e: &rustls::Error, handshaking: bool) -> Option<RefusalKind> {
    match e {
        rustls::Error::AlertReceived(a) if is_certificate_alert(*a) => Some(RefusalKind::Alert),
        rustls::Error::AlertReceived(
            AlertDescription::ProtocolVersion | AlertDescription::InsufficientSecurity,
        )
        | rustls::Error::PeerIncompatible(_) => Some(RefusalKind::NoCommonParameters),
        rustls::Error::AlertReceived(_) if handshaking => Some(RefusalKind::Alert),
        _ => None,
    }
}

fn flush(conn: &mut ServerConnection, tx: &mut Vec<u8>) -> io::Result<()> {
    while conn.wants_write() {
        conn.write_tls(tx)?;
    }
    Ok(())
}

fn is_certificate_alert(a: AlertDescription) -> bool {
    matches!(
        a,
        AlertDescription::UnknownCA
            | AlertDescription::BadCertificate
            | AlertDescription::CertificateUnknown
            | AlertDescription::UnsupportedCertificate
            | AlertDescription::CertificateExpired
            | AlertDescription::CertificateRevoked
            | AlertDescription::AccessDenied
            | AlertDescription::DecryptError
            | AlertDescription::HandshakeFailure
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vnet::dns::{DnsConfig, DnsServer};
    use rustls::pki_types::ServerName;
    use rustls::{ClientConfig, ClientConnection, RootCertStore};
    use std::net::Ipv4Addr;

    struct Net {
        dns: DnsServer,
        events: Vec<VnetEvent>,
        tls: TlsInterceptor,
        next: u64,
    }

    #[allow(deprecated)]
    fn provider() -> Arc<rustls::crypto::CryptoProvider> {
        Arc::new(rustls::crypto::ring::default_provider())
    }

    fn client_config(
        trust: Option<&RunCa>,
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        if let Some(ca) = trust {
            roots.add(CertificateDer::from(ca.der())).unwrap();
        }
        let mut cfg = ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        cfg.key_log = Arc::new(KeyCollector::default());
        Arc::new(cfg)
    }

    impl Net {
        fn new(policy: TlsPolicy) -> Net {
            Net {
                dns: DnsServer::new(DnsConfig::default()),
                events: Vec::new(),
                tls: TlsInterceptor::new(policy, Arc::new(RunCa::generate().unwrap())).unwrap(),
                next: 1,
            }
        }

        /// Runs a client connection to `server` through an [`App`] until nothing moves; returns
        /// the client, whether the server side closed, and the plaintext the client got.
        fn connect(
            &mut self,
            mut client: ClientConnection,
            server: SocketAddrV4,
            upload: &[u8],
            close_after: bool,
        ) -> (ClientConnection, bool, Vec<u8>) {
            let conn = self.next;
            self.next += 1;
            let name = self.dns.name_of(*server.ip()).map(str::to_string);
            let mut app = App::new();
            let mut sent = false;
            let mut closed = false;
            let mut got = Vec::new();
            for _ in 0..50 {
                let mut wire = Vec::new();
                while client.wants_write() {
                    client.write_tls(&mut wire).unwrap();
                }
                let mut cx = Ctx {
                    now: 1,
                    conn,
                    client: SocketAddrV4::new(Ipv4Addr::new(10, 77, 0, 10), 40000),
                    server,
                    name: name.clone(),
                    dns: &mut self.dns,
                    responses: &[],
                    events: &mut self.events,
                    keep_body: 1 << 20,
                    tls: Some(&mut self.tls),
                };
                let mut back = Vec::new();
                if !wire.is_empty() && !closed {
                    closed |= app.on_data(&wire, &mut cx, &mut back) == After::Close;
                } else if !closed && !client.is_handshaking() && sent && close_after {
                    app.on_eof(&mut cx, &mut back);
                    closed = true;
                }
                if back.is_empty() && wire.is_empty() && (closed || sent) {
                    if closed {
                        app.on_gone(&mut cx);
                    }
                    break;
                }
                let mut rd = &back[..];
                while !rd.is_empty() {
                    if client.read_tls(&mut rd).is_err() {
                        break;
                    }
                }
                if client.process_new_packets().is_err() {
                    let mut alert = Vec::new();
                    while client.wants_write() {
                        client.write_tls(&mut alert).unwrap();
                    }
                    let mut cx = Ctx {
                        now: 1,
                        conn,
                        client: SocketAddrV4::new(Ipv4Addr::new(10, 77, 0, 10), 40000),
                        server,
                        name: name.clone(),
                        dns: &mut self.dns,
                        responses: &[],
                        events: &mut self.events,
                        keep_body: 1 << 20,
                        tls: Some(&mut self.tls),
                    };
                    let mut ignored = Vec::new();
                    if !alert.is_empty() && !closed {
                        app.on_data(&alert, &mut cx, &mut ignored);
                    }
                    app.on_gone(&mut cx);
                    return (client, true, got);
                }
                let mut buf = [0u8; 4096];
                while let Ok(n) = client.reader().read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    got.extend_from_slice(&buf[..n]);
                }
                if !client.is_handshaking() && !sent {
                    client.writer().write_all(upload).unwrap();
                    sent = true;
                }
            }
            (client, closed, got)
        }

        fn events_of(&self, conn: u64) -> Vec<&VnetEvent> {
            self.events
                .iter()
                .filter(|e| match e {
                    VnetEvent::TlsHello { conn: c, .. }
                    | VnetEvent::TlsIntercepted { conn: c, .. }
                    | VnetEvent::TlsRefused { conn: c, .. }
                    | VnetEvent::TlsNotIntercepted { conn: c, .. }
                    | VnetEvent::Http { conn: c, .. } => *c == conn,
                    _ => false,
                })
                .collect()
        }
    }

    const UPLOAD: &[u8] =
        b"POST /v1/upload HTTP/1.1\r\nHost: api.kestrel.example\r\nContent-Length: 11\r\n\r\nimei=123456";

    fn server() -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::new(198, 18, 3, 4), 443)
    }

    #[test]
    fn tls13_and_tls12_uploads_reach_the_sink_and_the_key_log_has_the_session() {
        for (versions, label) in [
            (&[&rustls::version::TLS13][..], "CLIENT_TRAFFIC_SECRET_0"),
            (&[&rustls::version::TLS12][..], "CLIENT_RANDOM"),
        ] {
            let mut net = Net::new(TlsPolicy::default());
            let ca = net.tls.ca().clone();
            let cfg = client_config(Some(&ca), versions);
            let client = ClientConnection::new(
                cfg.clone(),
                ServerName::try_from("api.kestrel.example").unwrap(),
            )
            .unwrap();
            let (client, _, got) = net.connect(client, server(), UPLOAD, false);
            let reply = String::from_utf8_lossy(&got);
            assert!(reply.starts_with("HTTP/1.1 200 OK"), "{label}: {reply}");
            assert_eq!(client.alpn_protocol(), Some(&b"http/1.1"[..]));
            let evs = net.events_of(1);
            assert!(
                evs.iter().any(|e| matches!(e, VnetEvent::TlsIntercepted { certificate_name, sni, .. }
                    if certificate_name == "api.kestrel.example" && sni.as_deref() == Some("api.kestrel.example"))),
                "{evs:?}"
            );
            assert!(
                evs.iter()
                    .any(|e| matches!(e, VnetEvent::Http { body, method, target, .. }
                    if body == b"imei=123456" && method == "POST" && target == "/v1/upload")),
                "{evs:?}"
            );
            let lines = net.tls.take_key_log();
            assert!(lines.iter().any(|l| l.starts_with(label)), "{lines:?}");
            // The client's own key log holds the same secrets: they decrypt this session.
            let ours: Vec<String> = lines
                .iter()
                .map(|l| l.split(' ').nth(1).unwrap().to_string())
                .collect();
            assert!(ours.iter().all(|r| r.len() == 64));
            assert!(net.tls.take_key_log().is_empty(), "taken once");
        }
    }

    #[test]
    fn a_client_not_trusting_the_ca_is_a_refusal_and_the_destination_is_then_passed_over() {
        let mut net = Net::new(TlsPolicy::default());
        let cfg = client_config(None, &[&rustls::version::TLS13]);
        let client =
            ClientConnection::new(cfg.clone(), ServerName::try_from("pinned.example").unwrap())
                .unwrap();
        let (_, closed, got) = net.connect(client, server(), UPLOAD, false);
        assert!(closed && got.is_empty());
        let evs = net.events_of(1);
        assert!(
            evs.iter().any(
                |e| matches!(e, VnetEvent::TlsRefused { destination, kind, .. }
                if destination == "pinned.example" && kind == "alert")
            ),
            "{evs:?}"
        );
        assert!(!evs.iter().any(|e| matches!(e, VnetEvent::Http { .. })));
        assert_eq!(net.tls.refused().collect::<Vec<_>>(), ["pinned.example"]);
        // The next connection to it is not intercepted (and says why).
        let client =
            ClientConnection::new(cfg, ServerName::try_from("pinned.example").unwrap()).unwrap();
        net.connect(client, server(), UPLOAD, false);
        let evs = net.events_of(2);
        assert!(
            evs.iter().any(|e| matches!(e, VnetEvent::TlsNotIntercepted { reason, .. } if reason == "refused_before")),
            "{evs:?}"
        );
        assert!(!evs
            .iter()
            .any(|e| matches!(e, VnetEvent::TlsIntercepted { .. })));
    }

    #[test]
    fn silence_after_the_handshake_is_a_refusal() {
        let mut net = Net::new(TlsPolicy::default());
        let ca = net.tls.ca().clone();
        let cfg = client_config(Some(&ca), &[&rustls::version::TLS13]);
        let client =
            ClientConnection::new(cfg, ServerName::try_from("pin.example").unwrap()).unwrap();
        let (_, closed, _) = net.connect(client, server(), b"", true);
        assert!(closed);
        assert!(
            net.events.iter().any(|e| matches!(e, VnetEvent::TlsRefused { kind, .. } if kind == "silent_after_handshake")),
            "{:?}",
            net.events
        );
    }

    #[test]
    fn no_sni_gets_the_dns_name_or_an_ip_san_leaf() {
        let mut net = Net::new(TlsPolicy::default());
        let ca = net.tls.ca().clone();
        let cfg = client_config(Some(&ca), &[&rustls::version::TLS13]);
        // An address nobody looked up: the leaf names the address (rustls sends no SNI for IPs).
        let ip = Ipv4Addr::new(203, 0, 113, 7);
        let client = ClientConnection::new(
            cfg.clone(),
            ServerName::IpAddress(std::net::IpAddr::V4(ip).into()),
        )
        .unwrap();
        let (_, _, got) = net.connect(client, SocketAddrV4::new(ip, 443), UPLOAD, false);
        assert!(String::from_utf8_lossy(&got).starts_with("HTTP/1.1 200"));
        assert!(net.events.iter().any(|e| matches!(e, VnetEvent::TlsIntercepted { certificate_name, sni: None, .. } if certificate_name == "203.0.113.7")), "{:?}", net.events);
    }

    #[test]
    fn policy_off_and_exceptions_are_not_intercepted() {
        for (policy, host, why) in [
            (
                TlsPolicy {
                    intercept: false,
                    except: vec![],
                },
                "a.example",
                "off",
            ),
            (
                TlsPolicy {
                    intercept: true,
                    except: vec!["*.bank.example".into()],
                },
                "www.bank.example",
                "exception",
            ),
        ] {
            let mut net = Net::new(policy);
            let ca = net.tls.ca().clone();
            let cfg = client_config(Some(&ca), &[&rustls::version::TLS13]);
            let client = ClientConnection::new(cfg, ServerName::try_from(host).unwrap()).unwrap();
            net.connect(client, server(), UPLOAD, false);
            assert!(net.events.iter().any(|e| matches!(e, VnetEvent::TlsNotIntercepted { reason, destination, .. } if reason == why && destination == host)), "{:?}", net.events);
            assert!(!net
                .events
                .iter()
                .any(|e| matches!(e, VnetEvent::Http { .. })));
            assert!(net.tls.take_key_log().is_empty());
        }
    }

    #[test]
    fn alpn_choice() {
        let v = |l: &[&[u8]]| l.iter().map(|p| p.to_vec()).collect::<Vec<_>>();
        assert_eq!(
            choose_alpn(&v(&[b"h2", b"http/1.1"])),
            Some(b"http/1.1".to_vec())
        );
        assert_eq!(choose_alpn(&v(&[b"h2"])), None);
        assert_eq!(choose_alpn(&v(&[b"mqtt"])), Some(b"mqtt".to_vec()));
        assert_eq!(choose_alpn(&[]), None);
    }
}
