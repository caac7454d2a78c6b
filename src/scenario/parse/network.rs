//! The `network:` section: DNS overrides and NXDOMAIN names, IPv6, the HTTP sink's answers, and
//! TLS interception (`tls: intercept|off`, or a mapping with `mode` and `except`).

use super::{Cx, R};
use crate::scenario::error::ScenarioErrorKind as K;
use crate::scenario::values;
use crate::scenario::*;
use crate::yaml::{Node, NodeKind, Pos};

const NETWORK_KEYS: [&str; 4] = ["dns", "ipv6", "responses", "tls"];
const TLS_KEYS: [&str; 2] = ["mode", "except"];
const DNS_KEYS: [&str; 2] = ["overrides", "nxdomain"];
const RESPONSE_KEYS: [&str; 5] = ["host", "path", "status", "body", "content_type"];

impl Cx<'_> {
    pub(super) fn network(&mut self, n: &Node, at: Pos) -> R<NetworkSpec> {
        let f = self.fields(n, at, "`network`", &NETWORK_KEYS)?;
        let mut net = NetworkSpec::default();
        if let Some(d) = f.get("dns") {
            let df = self.fields(
                d,
                f.key_pos("dns").unwrap_or(at),
                "`network.dns`",
                &DNS_KEYS,
            )?;
            if let Some(o) = df.get("overrides") {
                let entries: &[(Node, Node)] = match &o.kind {
                    NodeKind::Map(m) => m,
                    NodeKind::Null => &[],
                    _ => {
                        return Err(self.err(
                            K::WrongType,
                            o.pos,
                            "expected a mapping",
                            format!(
                                "`overrides` must be a mapping of host: address, not {}",
                                o.describe()
                            ),
                        ))
                    }
                };
                for (k, v) in entries {
                    let host = self.host_glob(k, "overrides")?;
                    let ip_text = self.string(v, "overrides")?;
                    let ip: IpAddr = ip_text.trim().parse().map_err(|_| {
                        self.err(
                            K::InvalidValue,
                            v.pos,
                            "invalid IP address",
                            format!("`{ip_text}` is not an IP address; write e.g. `198.51.100.7` or `2001:db8::7`"),
                        )
                    })?;
                    net.dns.overrides.push((host, ip));
                }
            }
            if let Some(x) = df.get("nxdomain") {
                net.dns.nxdomain = self.host_globs(x, "nxdomain")?;
            }
        }
        if let Some(v) = f.get("ipv6") {
            net.ipv6 = self.boolean(v, "ipv6")?;
        }
        if let Some(r) = f.get("responses") {
            for item in self.seq(r, "responses")? {
                let rf = self.fields(item, item.pos, "a response", &RESPONSE_KEYS)?;
                let mut resp = HttpResponse {
                    host: self.host_glob(
                        self.req(&rf, "host", "`host: api.vendor.example` (globs allowed)")?,
                        "host",
                    )?,
                    ..HttpResponse::default()
                };
                if let Some(p) = rf.get("path") {
                    let s = self.string(p, "path")?;
                    resp.path = Some(values::check_path_glob(&s).map_err(|m| {
                        self.err(K::InvalidValue, p.pos, "invalid path pattern", m)
                    })?);
                }
                if let Some(s) = rf.get("status") {
                    resp.status = self.uint(s, "status", 100, 599)? as u16;
                }
                if let Some(b) = rf.get("body") {
                    resp.body = self.string(b, "body")?;
                }
                if let Some(c) = rf.get("content_type") {
                    resp.content_type = self.nonempty(c, "content_type")?;
                }
                net.responses.push(resp);
            }
        }
        if let Some(t) = f.get("tls") {
            net.tls = self.tls(t, f.key_pos("tls").unwrap_or(at))?;
        }
        Ok(net)
    }

    fn tls_mode(&self, n: &Node, key: &str) -> R<bool> {
        let s = self.string(n, key)?;
        match s.trim() {
            "intercept" => Ok(true),
            "off" => Ok(false),
            other => Err(self.err(
                K::InvalidValue,
                n.pos,
                "invalid TLS mode",
                format!("`{other}` is not a TLS mode; write `intercept` (the default) or `off`"),
            )),
        }
    }

    fn tls(&mut self, n: &Node, at: Pos) -> R<TlsSpec> {
        if !matches!(n.kind, NodeKind::Map(_)) {
            return Ok(TlsSpec {
                intercept: self.tls_mode(n, "tls")?,
                except: Vec::new(),
            });
        }
        let f = self.fields(n, at, "`network.tls`", &TLS_KEYS)?;
        let mut spec = TlsSpec::default();
        if let Some(m) = f.get("mode") {
            spec.intercept = self.tls_mode(m, "mode")?;
        }
        if let Some(x) = f.get("except") {
            for item in self.seq(x, "except")? {
                let s = self.string(item, "except")?;
                let s = s.trim();
                if s.parse::<std::net::Ipv4Addr>().is_ok() {
                    spec.except.push(s.to_string());
                } else {
                    let g = values::check_host_glob(s).map_err(|m| {
                        self.err(K::InvalidValue, item.pos, "invalid host pattern", m)
                    })?;
                    spec.except.push(g.as_str().to_string());
                }
            }
        }
        Ok(spec)
    }
}
