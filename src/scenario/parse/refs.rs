//! Names that other parts of the scenario must define: `{{name}}` templates and canary
//! selections (checked against the identity once it is known) and phases (checked against the
//! `phase` steps and the capture target's phases).

use super::{Cx, R};
use crate::diag::list;
use crate::scenario::error::ScenarioErrorKind as K;
use crate::scenario::*;
use crate::yaml::Node;

impl Cx<'_> {
    pub(super) fn template(&mut self, n: &Node, key: &str) -> R<Template> {
        let s = self.string(n, key)?;
        match Template::parse(&s) {
            Ok(t) => {
                for v in t.vars() {
                    let pos = yaml::pos_of_nth(self.text, n, &s, "{{", v.nth);
                    self.refs.push(NameRef::Template(v.clone(), pos));
                }
                Ok(t)
            }
            Err(e) => {
                let pos = yaml::pos_of_nth(self.text, n, &s, "{{", e.nth);
                Err(self.err(K::InvalidTemplate, pos, "invalid template", e.message))
            }
        }
    }

    pub(super) fn phase_name(&self, n: &Node, key: &str) -> R<String> {
        self.label(n, key)
    }

    /// A phase used by policy, claims (`earlier_than: None`) or an `expect_no_upload` step
    /// (declared by a step before `earlier_than`).
    pub(super) fn known_phase(
        &self,
        n: &Node,
        key: &str,
        earlier_than: Option<usize>,
    ) -> R<String> {
        let p = self.phase_name(n, key)?;
        if p == INITIAL_PHASE {
            return Ok(p);
        }
        let declared: Vec<&str> = std::iter::once(INITIAL_PHASE)
            .chain(self.target_phases.iter().map(String::as_str))
            .chain(
                self.phases
                    .iter()
                    .filter(|(_, i)| earlier_than.is_none_or(|e| *i < e))
                    .map(|(p, _)| p.as_str()),
            )
            .collect();
        if declared.contains(&p.as_str()) {
            return Ok(p);
        }
        let later = earlier_than.is_some() && self.all_phases.contains(&p);
        let msg = if later {
            format!("phase `{p}` is declared only by a later step; an `expect_no_upload` step can check phases that have already begun")
        } else {
            let h = match crate::diag::did_you_mean(&p, declared.iter().copied()) {
                Some(c) => format!("; did you mean `{c}`?"),
                None => format!(
                    "; declared phases: {} (declare one with a `- phase: {p}` step)",
                    list(&declared)
                ),
            };
            format!("no step declares phase `{p}`{h}")
        };
        Err(self.err(K::UnknownPhase, n.pos, "unknown phase", msg))
    }

    pub(super) fn canaries(&mut self, n: &Node, key: &str) -> R<CanarySelection> {
        if n.scalar() == Some("all") {
            return Ok(CanarySelection::All);
        }
        let items = self.seq(n, key)?;
        if items.is_empty() {
            return Err(self.err(
                K::InvalidValue,
                n.pos,
                "empty canary list",
                format!(
                    "`{key}` is empty; name identity values (`[imei, contacts]`) or write `[all]`"
                ),
            ));
        }
        let mut names = Vec::new();
        for i in items {
            let s = self.nonempty(i, key)?;
            if s == "all" {
                if items.len() > 1 {
                    return Err(self.err(
                        K::InvalidValue,
                        i.pos,
                        "`all` with other names",
                        "`all` already covers every canary; remove the other names or `all`"
                            .to_string(),
                    ));
                }
                return Ok(CanarySelection::All);
            }
            self.refs.push(NameRef::Canary(s.clone(), i.pos));
            names.push(s);
        }
        Ok(CanarySelection::Names(names))
    }
}
