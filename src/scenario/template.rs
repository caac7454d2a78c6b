//! `{{name}}` templates over identity values, used by `plant` contents and `shell` commands.
//!
//! `{{imei}}` is the value of identity key `imei`; for a list key, `{{contacts}}` is every item,
//! one per line, and `{{contacts[0]}}` the first item. Spaces inside the braces are ignored. Every
//! `{{` starts a variable (there is no escape); a `}}` without an opening `{{` is plain text.

use std::collections::BTreeMap;

use crate::canary::Identity;

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    source: String,
    parts: Vec<Part>,
}

/// One piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// Literal text.
    Text(String),
    /// A variable.
    Var(VarRef),
}

/// A `{{name}}` or `{{name[index]}}` reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VarRef {
    /// The identity key.
    pub name: String,
    /// The list index, for `{{name[i]}}`.
    pub index: Option<usize>,
    /// Which `{{` of the source text this is (0-based), to locate it in the scenario.
    pub nth: usize,
}

impl VarRef {
    /// `name` or `name[i]`.
    pub fn display(&self) -> String {
        match self.index {
            Some(i) => format!("{}[{i}]", self.name),
            None => self.name.clone(),
        }
    }
}

/// A malformed template: which `{{` (0-based) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SyntaxError {
    pub nth: usize,
    pub message: String,
}

impl Template {
    /// Parse a template.
    pub(crate) fn parse(source: &str) -> Result<Template, SyntaxError> {
        let mut parts = Vec::new();
        let mut rest = source;
        let mut nth = 0usize;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_string()));
            }
            let after = &rest[open + 2..];
            let Some(close) = after.find("}}") else {
                return Err(SyntaxError {
                    nth,
                    message: "`{{` is not closed; write `{{name}}`".to_string(),
                });
            };
            let inner = after[..close].trim();
            parts.push(Part::Var(parse_var(inner, nth)?));
            rest = &after[close + 2..];
            nth += 1;
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        Ok(Template {
            source: source.to_string(),
            parts,
        })
    }

    /// The template as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The pieces, in order.
    pub fn parts(&self) -> &[Part] {
        &self.parts
    }

    /// The variables, in order.
    pub fn vars(&self) -> impl Iterator<Item = &VarRef> {
        self.parts.iter().filter_map(|p| match p {
            Part::Var(v) => Some(v),
            Part::Text(_) => None,
        })
    }

    /// Fill in the variables. The error names the first variable that `vars` cannot provide.
    pub fn render(&self, vars: &TemplateVars) -> Result<String, String> {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Text(t) => out.push_str(t),
                Part::Var(v) => out.push_str(&vars.get(v)?),
            }
        }
        Ok(out)
    }
}

fn parse_var(inner: &str, nth: usize) -> Result<VarRef, SyntaxError> {
    let err = |message: String| SyntaxError { nth, message };
    let (name, index) = match inner.find('[') {
        Some(b) => {
            let Some(idx_text) = inner[b + 1..].strip_suffix(']') else {
                return Err(err(format!(
                    "`{{{{{inner}}}}}`: write a list item as `{{{{name[0]}}}}`"
                )));
            };
            let Ok(i) = idx_text.trim().parse::<usize>() else {
                return Err(err(format!(
                    "`{{{{{inner}}}}}`: the index must be a number, as in `{{{{name[0]}}}}`"
                )));
            };
            (inner[..b].trim(), Some(i))
        }
        None => (inner, None),
    };
    if name.is_empty() {
        return Err(err(
            "empty `{{}}`; name an identity value, e.g. `{{imei}}`".to_string()
        ));
    }
    if let Some(c) = name.chars().find(|c| matches!(c, '{' | '}' | '[' | ']')) {
        return Err(err(format!(
            "`{c}` cannot appear in a template name; write `{{{{name}}}}`"
        )));
    }
    Ok(VarRef {
        name: name.to_string(),
        index,
        nth,
    })
}

/// Names filled at run time rather than from the identity (unless the identity defines them):
/// `{{tls_ca_pem}}`, the run's TLS CA as PEM text, and `{{tls_ca_file}}`, the path of its PEM file
/// on the host (see `runner::tls`).
pub const RUN_VARS: [&str; 2] = ["tls_ca_pem", "tls_ca_file"];

/// The values a template can use: one entry per identity key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TemplateVars {
    vars: BTreeMap<String, VarValue>,
}

/// The value of one identity key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VarValue {
    /// A scalar key (`imei: ...`).
    One(String),
    /// A list key (`contacts: [...]`).
    List(Vec<String>),
}

impl TemplateVars {
    /// The variables of an identity: scalar canaries by key, list items (named `key[i]`) grouped
    /// under their key.
    pub fn from_identity(identity: &Identity) -> TemplateVars {
        let mut vars: BTreeMap<String, VarValue> = BTreeMap::new();
        for c in &identity.canaries {
            if c.name == c.key {
                vars.insert(c.key.clone(), VarValue::One(c.value.clone()));
            } else {
                match vars
                    .entry(c.key.clone())
                    .or_insert_with(|| VarValue::List(Vec::new()))
                {
                    VarValue::List(v) => v.push(c.value.clone()),
                    VarValue::One(_) => {}
                }
            }
        }
        TemplateVars { vars }
    }

    /// The key names.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.vars.keys().map(String::as_str)
    }

    /// The value of one key.
    pub fn value(&self, name: &str) -> Option<&VarValue> {
        self.vars.get(name)
    }

    /// The text for `{{name}}` / `{{name[i]}}`, or why there is none (with a suggestion).
    pub fn get(&self, v: &VarRef) -> Result<String, String> {
        if v.index.is_none()
            && !self.vars.contains_key(&v.name)
            && RUN_VARS.contains(&v.name.as_str())
        {
            // Filled by the runner once the run's CA exists: left as written until then.
            return Ok(format!("{{{{{}}}}}", v.name));
        }
        let Some(val) = self.vars.get(&v.name) else {
            let names: Vec<&str> = self.names().collect();
            let hint = match crate::diag::did_you_mean(&v.name, names.iter().copied()) {
                Some(c) => format!("; did you mean `{c}`?"),
                None if names.is_empty() => "; the identity defines no values".to_string(),
                None => format!("; the identity defines {}", crate::diag::list(&names)),
            };
            return Err(format!(
                "`{{{{{}}}}}`: the identity has no value `{}`{hint}",
                v.display(),
                v.name
            ));
        };
        match (val, v.index) {
            (VarValue::One(s), None) => Ok(s.clone()),
            (VarValue::List(items), None) => Ok(items.join("\n")),
            (VarValue::List(items), Some(i)) => items.get(i).cloned().ok_or_else(|| {
                format!(
                    "`{{{{{}}}}}`: `{}` has {} item{} (indices start at 0)",
                    v.display(),
                    v.name,
                    items.len(),
                    if items.len() == 1 { "" } else { "s" }
                )
            }),
            (VarValue::One(_), Some(_)) => Err(format!(
                "`{{{{{}}}}}`: `{}` is a single value, not a list; write `{{{{{}}}}}`",
                v.display(),
                v.name,
                v.name
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> TemplateVars {
        let id = Identity::from_yaml(
            "imei: \"356938035643809\"\ncontacts: [\"Ottoline Vanstone\", \"Casimir Ormsby\"]\n",
            "ids",
        )
        .unwrap();
        TemplateVars::from_identity(&id)
    }

    #[test]
    fn parses_and_renders() {
        let t = Template::parse("IMEI={{imei}};first={{ contacts[1] }}\n{{contacts}}").unwrap();
        assert_eq!(
            Template::parse("ca={{tls_ca_pem}} at {{ tls_ca_file }}")
                .unwrap()
                .render(&vars())
                .unwrap(),
            "ca={{tls_ca_pem}} at {{tls_ca_file}}",
            "run-time names are left for the runner"
        );
        assert_eq!(t.vars().count(), 3);
        assert_eq!(t.vars().nth(1).unwrap().index, Some(1));
        assert_eq!(t.vars().nth(2).unwrap().nth, 2);
        assert_eq!(
            t.render(&vars()).unwrap(),
            "IMEI=356938035643809;first=Casimir Ormsby\nOttoline Vanstone\nCasimir Ormsby"
        );
        let plain = Template::parse("no vars }} here").unwrap();
        assert_eq!(
            plain.render(&TemplateVars::default()).unwrap(),
            "no vars }} here"
        );
        assert_eq!(plain.as_str(), "no vars }} here");
    }

    #[test]
    fn syntax_errors_name_the_brace() {
        let e = Template::parse("a {{imei}} b {{imei").unwrap_err();
        assert_eq!(e.nth, 1);
        assert!(e.message.contains("not closed"));
        assert!(Template::parse("{{}}")
            .unwrap_err()
            .message
            .contains("empty"));
        assert!(Template::parse("{{a[x]}}")
            .unwrap_err()
            .message
            .contains("number"));
        assert!(Template::parse("{{a[1}}").is_err());
        assert!(Template::parse("{{{a}}}").is_err());
    }

    #[test]
    fn render_errors_suggest() {
        let v = vars();
        let t = Template::parse("{{imie}}").unwrap();
        let e = t.render(&v).unwrap_err();
        assert!(e.ends_with("did you mean `imei`?"), "{e}");
        let e = Template::parse("{{contacts[2]}}")
            .unwrap()
            .render(&v)
            .unwrap_err();
        assert!(e.contains("has 2 items"), "{e}");
        let e = Template::parse("{{imei[0]}}")
            .unwrap()
            .render(&v)
            .unwrap_err();
        assert!(e.contains("single value"), "{e}");
        let e = Template::parse("{{serialnumber}}")
            .unwrap()
            .render(&v)
            .unwrap_err();
        assert!(e.contains("defines `contacts`, `imei`"), "{e}");
    }
}
