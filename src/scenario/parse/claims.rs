//! The `claims:` section: a patch's claims, each with a unique id, its words and a `forbid` rule.

use super::{Cx, R};
use crate::scenario::error::ScenarioErrorKind as K;
use crate::scenario::*;
use crate::yaml::Node;

const CLAIM_KEYS: [&str; 3] = ["id", "says", "forbid"];

impl Cx<'_> {
    pub(super) fn claims(&mut self, n: &Node) -> R<Vec<Claim>> {
        let mut out: Vec<Claim> = Vec::new();
        for item in self.seq(n, "claims")? {
            let f = self.fields(item, item.pos, "a claim", &CLAIM_KEYS)?;
            let id_node = self.req(&f, "id", "`id: CVE-2014-0001`")?;
            let id = self.nonempty(id_node, "id")?;
            if let Some(prev) = out.iter().find(|c| c.id == id) {
                return Err(self.err(
                    K::Duplicate,
                    id_node.pos,
                    "duplicate claim id",
                    format!("claim `{id}` is already defined on line {}", prev.line),
                ));
            }
            let says = self.nonempty(
                self.req(&f, "says", "`says: \"what the patch fixes\"`")?,
                "says",
            )?;
            let fnode = self.req(
                &f,
                "forbid",
                "`forbid: { canaries: [contacts], phases: [consent_declined] }`",
            )?;
            let forbid = self.rule(
                fnode,
                f.key_pos("forbid").unwrap_or(item.pos),
                "a claim's `forbid`",
            )?;
            out.push(Claim {
                id,
                says,
                forbid,
                line: item.pos.line,
            });
        }
        Ok(out)
    }
}
