//! The `network:` section: DNS overrides and NXDOMAIN names, IPv6, and the HTTP sink's answers.

use super::{Cx, R};
use crate::scenario::error::ScenarioErrorKind as K;
use crate::scenario::values;
use crate::scenario::*;
use crate::yaml::{Node, NodeKind, Pos};

const NETWORK_KEYS: [&str; 3] = ["dns", "ipv6", "responses"];
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
        Ok(net)
    }
}
