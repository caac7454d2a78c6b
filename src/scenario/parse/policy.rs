//! The `policy:` section: forbidden uploads, allowed destinations and upload byte limits; its
//! `forbid` rule is also the body of every claim.

use super::{Cx, R};
use crate::scenario::error::ScenarioErrorKind as K;
use crate::scenario::values;
use crate::scenario::*;
use crate::yaml::{Node, NodeKind, Pos};

const POLICY_KEYS: [&str; 4] = [
    "forbid",
    "allow_destinations",
    "max_upload_bytes",
    "accept_unread",
];
const ACCEPT_KEYS: [&str; 3] = ["destinations", "reasons", "max_bytes"];
/// Reasons an unread span can have (the report's words).
pub(crate) const UNREAD_REASONS: [&str; 19] = [
    "tls_ciphertext",
    "quic_ciphertext",
    "tcp_gap",
    "snap_length",
    "capture_damage",
    "tunnel_depth",
    "encrypted_link",
    "tls_refused",
    "decode_budget",
    "decode_cap",
    "decode_depth",
    "encrypted_payload",
    "http_cap",
    "tls_key_failed",
    "tls_unsupported_suite",
    "tls_truncated",
    "stream_cap",
    "stream_undecoded",
    "state_cap",
];
const RULE_KEYS: [&str; 3] = ["canaries", "destinations", "phases"];

impl Cx<'_> {
    pub(super) fn rule(&mut self, n: &Node, at: Pos, what: &'static str) -> R<ForbidRule> {
        let f = self.fields(n, at, what, &RULE_KEYS)?;
        let canaries = self.canaries(
            self.req(
                &f,
                "canaries",
                "`canaries: [imei, contacts]` or `canaries: [all]`",
            )?,
            "canaries",
        )?;
        let destinations = f
            .get("destinations")
            .map(|d| self.host_globs(d, "destinations"))
            .transpose()?
            .unwrap_or_default();
        let mut phases = Vec::new();
        if let Some(p) = f.get("phases") {
            for item in self.seq(p, "phases")? {
                phases.push(self.known_phase(item, "phases", None)?);
            }
        }
        Ok(ForbidRule {
            canaries,
            destinations,
            phases,
            line: n.pos.line,
        })
    }

    pub(super) fn policy(&mut self, n: &Node, at: Pos) -> R<Policy> {
        let f = self.fields(n, at, "`policy`", &POLICY_KEYS)?;
        let mut p = Policy::default();
        if let Some(list) = f.get("forbid") {
            for item in self.seq(list, "forbid")? {
                let r = self.rule(item, item.pos, "a `forbid` rule")?;
                p.forbid.push(r);
            }
        }
        if let Some(a) = f.get("allow_destinations") {
            p.allow_destinations = Some(self.host_globs(a, "allow_destinations")?);
        }
        if let Some(m) = f.get("max_upload_bytes") {
            let NodeKind::Map(entries) = &m.kind else {
                return Err(self.err(
                    K::WrongType,
                    m.pos,
                    "expected a mapping",
                    format!(
                        "`max_upload_bytes` must be a mapping of host: bytes, not {}",
                        m.describe()
                    ),
                ));
            };
            for (k, v) in entries {
                let host = self.host_glob(k, "max_upload_bytes")?;
                let text = self.string(v, "max_upload_bytes")?;
                let bytes = values::parse_bytes(&text)
                    .map_err(|msg| self.err(K::InvalidValue, v.pos, "invalid byte count", msg))?;
                p.max_upload_bytes.push((host, bytes));
            }
        }
        if let Some(list) = f.get("accept_unread") {
            for item in self.seq(list, "accept_unread")? {
                let a = self.fields(item, item.pos, "an `accept_unread` entry", &ACCEPT_KEYS)?;
                let destinations = a
                    .get("destinations")
                    .map(|d| self.host_globs(d, "destinations"))
                    .transpose()?
                    .unwrap_or_default();
                let mut reasons = Vec::new();
                if let Some(r) = a.get("reasons") {
                    for x in self.seq(r, "reasons")? {
                        let word = self.string(x, "reasons")?;
                        if !UNREAD_REASONS.contains(&word.as_str()) {
                            return Err(self.err(
                                K::InvalidValue,
                                x.pos,
                                "unknown unread reason",
                                format!(
                                    "`{word}` is not a reason telltale reports; use one of {}",
                                    UNREAD_REASONS.join(", ")
                                ),
                            ));
                        }
                        reasons.push(word);
                    }
                }
                let max_bytes = match a.get("max_bytes") {
                    Some(v) => {
                        let text = self.string(v, "max_bytes")?;
                        Some(values::parse_bytes(&text).map_err(|msg| {
                            self.err(K::InvalidValue, v.pos, "invalid byte count", msg)
                        })?)
                    }
                    None => None,
                };
                p.accept_unread.push(AcceptUnread {
                    destinations,
                    reasons,
                    max_bytes,
                    line: item.pos.line,
                });
            }
        }
        Ok(p)
    }
}
