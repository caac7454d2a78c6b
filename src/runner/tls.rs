//! The run's side of TLS ended in the vnet: the run's CA in the run folder, the variables and
//! templates that let a target trust it, and what the vnet's TLS log adds to the analysis.
//!
//! This module owns:
//! - writing the run's CA ([`crate::vnet::RunCa`]) as `tls-ca.pem` and `tls-ca.der` into the run
//!   folder, and the environment a `netns` target gets so common clients trust it
//!   ([`ca_env`]: `SSL_CERT_FILE`, `REQUESTS_CA_BUNDLE`, `NODE_EXTRA_CA_CERTS`, `CURL_CA_BUNDLE`);
//! - the run-time templates `{{tls_ca_pem}}` (the CA, PEM text) and `{{tls_ca_file}}` (the path
//!   of `tls-ca.pem` on the host), filled in step texts and a `netns` target's command and
//!   environment ([`fill_run_templates`]);
//! - [`add_vnet_tls`]: after the capture's analysis, (1) every refusal the vnet classified becomes
//!   an unread span `tls_refused` with its destination (so a claim over it is INCONCLUSIVE, never
//!   PASS), and (2) for an intercepted connection the analysis could NOT decrypt, the plaintext
//!   the vnet's sink read (request targets and bodies, up to the vnet's body cap) is searched for
//!   canaries; what is found there is a finding of protocol `https` on the connection's flow.
//!
//! The one path for intercepted TLS is the analysis: the vnet writes every session's secrets into
//! the capture (pcapng Decryption Secrets Blocks), and the analysis decrypts the connection from
//! them like any auditor's capture with a key log. (2) is a fallback only: the capture's account
//! is left as it is, so an intercepted connection the analysis could not decrypt stays unread
//! (`tls_ciphertext`…) and the run is INCONCLUSIVE where nothing was found, FAIL where the sink's
//! copy showed a canary.

use std::collections::HashMap;
use std::net::{SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};

use crate::canary::matcher::Matcher;
use crate::canary::{excerpt_at, Hit};
use crate::record::PhaseSpan;
use crate::report::{Direction, Finding, Report, Transport, UnreadReason, UnreadSpan};
use crate::vnet::{RunCa, VnetEvent};

/// The CA's file names in the run folder.
pub const CA_PEM_FILE: &str = "tls-ca.pem";
/// See [`CA_PEM_FILE`].
pub const CA_DER_FILE: &str = "tls-ca.der";

/// Writes the CA into the run folder; returns the PEM file's path.
pub fn write_ca(ca: &RunCa, dir: &Path) -> std::io::Result<PathBuf> {
    let pem = dir.join(CA_PEM_FILE);
    crate::record::write_atomic(&pem, ca.pem().as_bytes())?;
    crate::record::write_atomic(&dir.join(CA_DER_FILE), &ca.der())?;
    Ok(pem)
}

/// The environment variables that make common TLS clients (OpenSSL, curl, Python requests,
/// Node) trust the CA at `pem`.
pub fn ca_env(pem: &Path) -> Vec<(String, String)> {
    let p = pem.display().to_string();
    [
        "SSL_CERT_FILE",
        "REQUESTS_CA_BUNDLE",
        "NODE_EXTRA_CA_CERTS",
        "CURL_CA_BUNDLE",
    ]
    .iter()
    .map(|k| (k.to_string(), p.clone()))
    .collect()
}

/// Fills `{{tls_ca_pem}}` and `{{tls_ca_file}}` (left in place by the scenario's templates) with
/// the CA at `pem`. Without a CA file the text is returned unchanged.
pub fn fill_run_templates(text: &str, pem: &Path) -> String {
    if !text.contains("{{") {
        return text.to_string();
    }
    let mut out = text.replace("{{tls_ca_file}}", &pem.display().to_string());
    if out.contains("{{tls_ca_pem}}") {
        if let Ok(p) = std::fs::read_to_string(pem) {
            out = out.replace("{{tls_ca_pem}}", &p);
        }
    }
    out
}

/// Per connection of the vnet: the client and server ends, and whether TLS was ended there.
#[derive(Default)]
struct Conn {
    client: Option<SocketAddrV4>,
    server: Option<SocketAddrV4>,
    intercepted: Option<String>,
    bytes_in: u64,
}

/// Adds the vnet's TLS account to the analysis of the capture (see the module docs).
pub fn add_vnet_tls(
    report: &mut Report,
    events: &[VnetEvent],
    matcher: &Matcher,
    phases: &[PhaseSpan],
) {
    let phase_at = |ns: u64| {
        phases
            .iter()
            .rev()
            .find(|p| p.start_ns <= ns)
            .or(phases.first())
            .map(|p| p.name.clone())
    };
    let mut conns: HashMap<u64, Conn> = HashMap::new();
    for e in events {
        match e {
            VnetEvent::TcpOpen {
                conn,
                client,
                server,
                ..
            } => {
                let c = conns.entry(*conn).or_default();
                c.client = Some(*client);
                c.server = Some(*server);
            }
            VnetEvent::TlsIntercepted {
                conn,
                certificate_name,
                ..
            } => conns.entry(*conn).or_default().intercepted = Some(certificate_name.clone()),
            VnetEvent::TcpClose { conn, bytes_in, .. } => {
                conns.entry(*conn).or_default().bytes_in = *bytes_in
            }
            _ => {}
        }
    }
    let flow_of = |conn: u64| -> Option<usize> {
        let c = conns.get(&conn)?;
        let (client, server) = (SocketAddr::V4(c.client?), SocketAddr::V4(c.server?));
        report
            .flows
            .iter()
            .rev()
            .find(|f| f.protocol == Transport::Tcp && f.client == client && f.server == server)
            .map(|f| f.id)
    };
    // Connections the analysis decrypted itself (with the keys the vnet wrote into the capture): their
    // plaintext was searched there, with headers and without the sink's body cap, so the sink's copy adds nothing.
    let decrypted: std::collections::HashSet<usize> = report
        .tls
        .iter()
        .filter(|t| {
            t.decryption
                .as_ref()
                .is_some_and(|d| d.state == "decrypted")
        })
        .map(|t| t.flow)
        .collect();
    let mut spans = Vec::new();
    let mut findings = Vec::new();
    for e in events {
        match e {
            VnetEvent::TlsRefused {
                ts,
                conn,
                destination,
                ..
            } => spans.push(UnreadSpan {
                reason: UnreadReason::TlsRefused,
                flow: flow_of(*conn),
                direction: Direction::Up,
                destination: destination.clone(),
                bytes: conns.get(conn).map_or(0, |c| c.bytes_in),
                first_ns: *ts,
                last_ns: *ts,
                phase: phase_at(*ts),
                capture_offset: None,
            }),
            VnetEvent::Http {
                ts,
                conn,
                server,
                method,
                target,
                body,
                ..
            } => {
                let Some(dest) = conns.get(conn).and_then(|c| c.intercepted.clone()) else {
                    continue;
                };
                let flow = flow_of(*conn).unwrap_or(usize::MAX);
                if decrypted.contains(&flow) {
                    continue;
                }
                for (field, hay) in [("path", target.as_bytes()), ("body", &body[..])] {
                    let mut hits: Vec<Hit> = Vec::new();
                    matcher.find_all(hay, &mut hits);
                    for h in hits {
                        let Some(c) = matcher.identity().canaries.get(h.canary) else {
                            continue;
                        };
                        if let Some(f) = findings.iter_mut().find(|f: &&mut Finding| {
                            f.canary == c.name
                                && f.encoding == *h.encoding
                                && f.flow == flow
                                && f.field.as_deref() == Some(field)
                                && f.phase == phase_at(*ts)
                        }) {
                            f.count += 1;
                            continue;
                        }
                        findings.push(Finding {
                            canary: c.name.clone(),
                            encoding: h.encoding.to_string(),
                            destination: dest.clone(),
                            address: SocketAddr::V4(*server),
                            protocol: "https".to_string(),
                            direction: Direction::Up,
                            http_method: Some(method.clone()),
                            http_path: Some(target.clone()),
                            field: Some(field.to_string()),
                            decoded_from: Some("tls (ended by the vnet)".to_string()),
                            flow,
                            packet: 0,
                            offset: h.start as u64,
                            time_ns: *ts,
                            phase: phase_at(*ts),
                            count: 1,
                            excerpt: excerpt_at(hay, h.start, h.end),
                            tls: Some("decrypted".to_string()),
                        });
                    }
                }
            }
            _ => {}
        }
    }
    report.unread.extend(spans);
    report.findings.extend(findings);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canary::Identity;
    use crate::report::FlowRecord;
    use std::net::Ipv4Addr;

    fn ends(conn: u64) -> (SocketAddrV4, SocketAddrV4) {
        (
            SocketAddrV4::new(Ipv4Addr::new(10, 77, 0, 10), 40000 + conn as u16),
            SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, conn as u8), 443),
        )
    }

    fn flow(id: usize, conn: u64) -> FlowRecord {
        let (c, s) = ends(conn);
        FlowRecord {
            id,
            protocol: Transport::Tcp,
            app: crate::report::App::Tls,
            client: c.into(),
            server: s.into(),
            destination: s.ip().to_string(),
            packets_up: 0,
            packets_down: 0,
            bytes_up: 0,
            bytes_down: 0,
            first_ns: 0,
            last_ns: 0,
            first_packet: 1,
            opaque_bytes: 0,
            folded: 0,
            tcp: None,
            read_up: 0,
            unread_up: 0,
            read_down: 0,
            unread_down: 0,
        }
    }

    fn open(conn: u64) -> VnetEvent {
        let (client, server) = ends(conn);
        VnetEvent::TcpOpen {
            ts: 10,
            conn,
            client,
            server,
            name: None,
        }
    }

    fn http(conn: u64, target: &str, body: &[u8]) -> VnetEvent {
        VnetEvent::Http {
            ts: 30,
            conn,
            server: ends(conn).1,
            name: None,
            method: "POST".into(),
            target: target.into(),
            host: Some("api.kestrel.example".into()),
            body_len: body.len() as u64,
            body_sha256: String::new(),
            body: body.to_vec(),
            complete: true,
            status: 200,
        }
    }

    #[test]
    fn refusals_become_unread_and_intercepted_plaintext_is_searched() {
        let id = Identity::from_yaml("imei: \"356938035643809\"\n", "ids").unwrap();
        let matcher = Matcher::new(&id);
        let mut report = Report {
            flows: vec![flow(0, 1), flow(1, 2), flow(2, 3)],
            ..Report::default()
        };
        let events = vec![
            open(1),
            VnetEvent::TlsIntercepted {
                ts: 20,
                conn: 1,
                server: ends(1).1,
                sni: Some("api.kestrel.example".into()),
                certificate_name: "api.kestrel.example".into(),
                version: "TLSv1_3".into(),
                cipher_suite: String::new(),
                alpn: Some("http/1.1".into()),
            },
            http(1, "/up?x=1", b"imei=356938035643809"),
            open(2),
            VnetEvent::TlsRefused {
                ts: 25,
                conn: 2,
                server: ends(2).1,
                sni: Some("pinned.example".into()),
                destination: "pinned.example".into(),
                kind: "alert".into(),
                detail: "unknown_ca".into(),
            },
            VnetEvent::TcpClose {
                ts: 26,
                conn: 2,
                protocol: "tls".into(),
                bytes_in: 517,
                bytes_out: 0,
            },
            // A cleartext request is the capture's to read, not this module's.
            open(3),
            http(3, "/plain", b"imei=356938035643809"),
        ];
        let phases = [
            PhaseSpan {
                name: "boot".into(),
                start_ns: 0,
                end_ns: 22,
            },
            PhaseSpan {
                name: "declined".into(),
                start_ns: 22,
                end_ns: 100,
            },
        ];
        add_vnet_tls(&mut report, &events, &matcher, &phases);
        assert_eq!(report.findings.len(), 1, "{:?}", report.findings);
        let f = &report.findings[0];
        assert_eq!(
            (
                f.canary.as_str(),
                f.protocol.as_str(),
                f.flow,
                f.field.as_deref()
            ),
            ("imei", "https", 0, Some("body"))
        );
        assert_eq!(f.destination, "api.kestrel.example");
        assert_eq!(f.phase.as_deref(), Some("declined"));
        assert_eq!(report.unread.len(), 1);
        let u = &report.unread[0];
        assert_eq!(u.reason, UnreadReason::TlsRefused);
        assert_eq!(
            (u.destination.as_str(), u.flow, u.bytes),
            ("pinned.example", Some(1), 517)
        );
        let unread = crate::runner::verdict::unread(&report, &phases);
        assert_eq!(unread[0].reason, "tls_refused");
        assert!(crate::runner::verdict::reason_words("tls_refused").contains("refused"));
    }

    #[test]
    fn run_templates_and_environment() {
        let dir = tempfile::tempdir().unwrap();
        let ca = RunCa::generate().unwrap();
        let pem = write_ca(&ca, dir.path()).unwrap();
        assert!(std::fs::read(dir.path().join(CA_DER_FILE)).unwrap() == ca.der());
        let text = fill_run_templates("cat > /ca <<E\n{{tls_ca_pem}}E\n# {{tls_ca_file}}", &pem);
        assert!(text.contains("-----BEGIN CERTIFICATE-----"), "{text}");
        assert!(text.ends_with(&format!("# {}", pem.display())));
        let env = ca_env(&pem);
        assert_eq!(env.len(), 4);
        assert!(env.iter().all(|(_, v)| Path::new(v) == pem));
    }
}
