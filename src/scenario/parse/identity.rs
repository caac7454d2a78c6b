//! The `identity:` section: an identity file's path, or an inline identity (`seed`, `generate`,
//! `values`) converted from the scenario's tree and held to the identity rules
//! (`Identity::plant`, shared with identity files).

use super::{Cx, R};
use crate::canary::identity::Refusal;
use crate::canary::{Identity, MIN_VALUE_LEN};
use crate::diag::hint;
use crate::scenario::error::ScenarioErrorKind as K;
use crate::scenario::generate::{Generate, DEFAULT_CONTACTS, MAX_CONTACTS};
use crate::scenario::template::VarValue;
use crate::scenario::*;
use crate::yaml::{Node, NodeKind, Pos};

const IDENTITY_KEYS: [&str; 3] = ["seed", "generate", "values"];

/// One identity entry before validation: key, values with their positions, list or scalar, and
/// whether it was generated (and by which `generate` item).
pub(super) struct Entry {
    key: String,
    key_pos: Pos,
    values: Vec<(String, Pos)>,
    list: bool,
    generated: bool,
}

impl Cx<'_> {
    pub(super) fn identity(&mut self, n: &Node, at: Pos) -> R<(IdentitySpec, Option<Vec<Entry>>)> {
        match &n.kind {
            NodeKind::Scalar { .. } => {
                let p = self.path(n, "identity", "identity file")?;
                return Ok((IdentitySpec::File(p), None));
            }
            NodeKind::Map(m) if !m.is_empty() => {}
            _ => {
                return Err(self.err(
                    K::WrongType,
                    n.pos,
                    "invalid identity",
                    format!("`identity` is either the path of an identity file (`identity: ids.yaml`) or a mapping with `seed`, `generate` and/or `values`, not {}", n.describe()),
                ))
            }
        }
        let f = self.fields(n, at, "`identity`", &IDENTITY_KEYS)?;
        let seed = f
            .get("seed")
            .map(|s| self.uint(s, "seed", 0, u64::MAX))
            .transpose()?;
        let mut generate: Vec<(Generate, Pos)> = Vec::new();
        match (f.get("generate"), seed) {
            (Some(g), None) => {
                return Err(self.err(
                    K::MissingKey,
                    f.key_pos("generate").unwrap_or(g.pos),
                    "missing key",
                    "generated values are derived from a seed: add `seed:` (any number, e.g. `seed: 1`) to `identity`".to_string(),
                ))
            }
            (Some(g), Some(_)) => {
                for item in self.seq(g, "generate")? {
                    let (kind, pos) = self.generate_item(item)?;
                    if let Some((_, first)) = generate.iter().find(|(k, _)| k.key() == kind.key()) {
                        return Err(self.err(
                            K::Duplicate,
                            pos,
                            "duplicate generated value",
                            format!(
                                "`{}` is already listed in `generate` (column {})",
                                kind.key(),
                                first.col
                            ),
                        ));
                    }
                    generate.push((kind, pos));
                }
            }
            (None, Some(_)) => {
                let p = f.key_pos("seed").unwrap_or(n.pos);
                generate = vec![
                    (Generate::Imei, p),
                    (Generate::Phone, p),
                    (Generate::Email, p),
                    (Generate::Contacts(DEFAULT_CONTACTS), p),
                ];
            }
            (None, None) => {}
        }
        let mut entries: Vec<Entry> = Vec::new();
        if let Some(s) = seed {
            for (g, pos) in &generate {
                let (values, list) = match g.value(s) {
                    VarValue::One(v) => (vec![(v, *pos)], false),
                    VarValue::List(v) => (v.into_iter().map(|x| (x, *pos)).collect(), true),
                };
                entries.push(Entry {
                    key: g.key().to_string(),
                    key_pos: *pos,
                    values,
                    list,
                    generated: true,
                });
            }
        }
        let mut given: Vec<(String, VarValue)> = Vec::new();
        if let Some(v) = f.get("values") {
            let vf = match &v.kind {
                NodeKind::Map(m) if !m.is_empty() => m,
                _ => {
                    return Err(self.err(
                        K::WrongType,
                        v.pos,
                        "expected a mapping",
                        format!(
                        "`values` must be a mapping of name: value (like an identity file), not {}",
                        v.describe()
                    ),
                    ))
                }
            };
            for (k, val) in vf {
                let key = k.scalar().unwrap_or("").to_string();
                if let Some(e) = entries.iter().find(|e| e.key == key) {
                    return Err(self.err(
                        K::Duplicate,
                        k.pos,
                        "duplicate identity key",
                        format!(
                            "`{key}` is also generated (line {}); remove it from `values` or from `generate`",
                            e.key_pos.line
                        ),
                    ));
                }
                let entry = self.identity_value(&key, k.pos, val)?;
                given.push((
                    key,
                    if entry.list {
                        VarValue::List(entry.values.iter().map(|(s, _)| s.clone()).collect())
                    } else {
                        VarValue::One(
                            entry
                                .values
                                .first()
                                .map(|(s, _)| s.clone())
                                .unwrap_or_default(),
                        )
                    },
                ));
                entries.push(entry);
            }
        }
        if entries.is_empty() {
            return Err(self.err(
                K::MissingKey,
                at,
                "empty identity",
                "`identity` defines no canaries: add `seed:` (generated values) or `values:`"
                    .to_string(),
            ));
        }
        let spec = IdentitySpec::Inline(InlineIdentity {
            seed,
            generate: generate.into_iter().map(|(g, _)| g).collect(),
            values: given,
        });
        Ok((spec, Some(entries)))
    }

    fn generate_item(&self, n: &Node) -> R<(Generate, Pos)> {
        if let NodeKind::Map(m) = &n.kind {
            if let [(k, v)] = m.as_slice() {
                if k.scalar() == Some("contacts") {
                    let c = self.uint(v, "contacts", 1, MAX_CONTACTS as u64)?;
                    return Ok((Generate::Contacts(c as usize), n.pos));
                }
                let key = k.scalar().unwrap_or("");
                return Err(self.err(
                    K::InvalidValue,
                    k.pos,
                    "invalid generated value",
                    format!(
                        "only `contacts` takes a count (`{{contacts: 5}}`); `{key}` cannot{}",
                        hint(key, &["contacts"])
                    ),
                ));
            }
        }
        let name = self.one_of(n, "generate", &Generate::NAMES)?;
        let g = match name {
            "imei" => Generate::Imei,
            "phone" => Generate::Phone,
            "email" => Generate::Email,
            _ => Generate::Contacts(DEFAULT_CONTACTS),
        };
        Ok((g, n.pos))
    }

    /// One `values:` entry, shaped like an identity-file entry.
    fn identity_value(&self, key: &str, key_pos: Pos, n: &Node) -> R<Entry> {
        let scalar = |item: &Node, name: &str| -> R<(String, Pos)> {
            match &item.kind {
                NodeKind::Scalar { text, .. } => Ok((text.trim().to_string(), item.pos)),
                NodeKind::Null => Err(self.err(
                    K::Identity,
                    item.pos,
                    "identity value missing",
                    format!("`{name}` has no value; write the planted value, or remove it"),
                )),
                _ => Err(self.err(
                    K::Identity,
                    item.pos,
                    "nested value in identity",
                    format!(
                        "`{name}` is not a scalar; values must be a scalar or a list of scalars"
                    ),
                )),
            }
        };
        let (values, list) = match &n.kind {
            NodeKind::Seq(items) => {
                if items.is_empty() {
                    return Err(self.err(
                        K::Identity,
                        n.pos,
                        "empty identity list",
                        format!("`{key}` is an empty list; add values or remove it"),
                    ));
                }
                let v = items
                    .iter()
                    .enumerate()
                    .map(|(i, it)| scalar(it, &format!("{key}[{i}]")))
                    .collect::<R<Vec<_>>>()?;
                (v, true)
            }
            _ => (vec![scalar(n, key)?], false),
        };
        Ok(Entry {
            key: key.to_string(),
            key_pos,
            values,
            list,
            generated: false,
        })
    }

    /// Build the [`Identity`] under the identity rules ([`Identity::plant`], the same rules as
    /// identity files), with errors located at each value and naming generated values.
    pub(super) fn build_identity(&self, entries: Vec<Entry>) -> R<Identity> {
        let mut id = Identity::default();
        let mut lines: Vec<usize> = Vec::new();
        for e in &entries {
            for (i, (value, pos)) in e.values.iter().enumerate() {
                let name = if e.list {
                    format!("{}[{i}]", e.key)
                } else {
                    e.key.clone()
                };
                let origin = if e.generated { " (generated)" } else { "" };
                match id.plant(&e.key, name.clone(), value) {
                    Ok(()) => lines.push(pos.line),
                    Err(Refusal::TooShort) => return Err(self.err(
                        K::Identity,
                        *pos,
                        "identity value too short",
                        format!("`{name}`{origin}: canary values must be at least {MIN_VALUE_LEN} bytes long, or every packet would match; use a longer fake value"),
                    )),
                    Err(Refusal::TooPlain) => return Err(self.err(
                        K::Identity,
                        *pos,
                        "identity value too plain",
                        format!("`{name}`{origin}: {}", crate::canary::identity::TOO_PLAIN),
                    )),
                    Err(Refusal::SameAs(j)) => return Err(self.err(
                        K::Identity,
                        *pos,
                        "duplicate identity value",
                        format!("`{name}`{origin} has the same value as `{}` (line {}); every canary needs a distinct value so a hit names one canary{}",
                            id.canaries[j].name,
                            lines.get(j).copied().unwrap_or(0),
                            if e.generated { "; pick another seed" } else { "" }),
                    )),
                }
            }
        }
        Ok(id)
    }
}
