//! Interpolation of compose files: `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`,
//! `${VAR:?error}`, `${VAR?error}`, `${VAR:+alternative}`, `${VAR+alternative}` and `$$`,
//! as the compose-spec's interpolation chapter has them, nested forms included. Applied to
//! values only, never to keys, per file before files are merged.

use std::collections::BTreeMap;

use serde_yaml_ng::Value;

use super::{path_text, ComposeError};

/// The variables a file is interpolated with: the process environment over the `.env`
/// file beside the first compose file.
pub type Variables = BTreeMap<String, String>;

/// What interpolating a file met that was not an error: variables used but unset (each
/// replaced by the empty string, as compose does, with a warning).
#[derive(Debug, Default)]
pub struct Unset(pub Vec<String>);

/// Interpolates every string value of `value` in place. `file` names the file in errors.
pub fn interpolate_value(
    value: &mut Value,
    variables: &Variables,
    file: &str,
    unset: &mut Unset,
) -> Result<(), ComposeError> {
    let mut path = Vec::new();
    walk(value, variables, file, &mut path, unset)
}

fn walk(
    value: &mut Value,
    variables: &Variables,
    file: &str,
    path: &mut Vec<String>,
    unset: &mut Unset,
) -> Result<(), ComposeError> {
    match value {
        Value::String(text) => {
            *text = interpolate(text, variables, unset).map_err(|reason| {
                ComposeError::Interpolation {
                    file: file.to_string(),
                    path: path_text(path),
                    reason,
                }
            })?;
        }
        Value::Sequence(items) => {
            for (index, item) in items.iter_mut().enumerate() {
                path.push(index.to_string());
                walk(item, variables, file, path, unset)?;
                path.pop();
            }
        }
        Value::Mapping(map) => {
            for (key, item) in map.iter_mut() {
                path.push(key_text(key));
                walk(item, variables, file, path, unset)?;
                path.pop();
            }
        }
        Value::Tagged(tagged) => walk(&mut tagged.value, variables, file, path, unset)?,
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
    Ok(())
}

/// A mapping key as text, for paths in messages.
pub fn key_text(key: &Value) -> String {
    match key {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => serde_yaml_ng::to_string(other)
            .unwrap_or_default()
            .trim()
            .to_string(),
    }
}

/// One string interpolated; the error is the reason (a required variable's message, a
/// malformed `${`).
pub fn interpolate(text: &str, variables: &Variables, unset: &mut Unset) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(braced) = after.strip_prefix('{') {
            let end = closing_brace(braced).ok_or_else(|| {
                format!("invalid interpolation format for {text:?}: no closing brace")
            })?;
            out.push_str(&expand(&braced[..end], variables, unset, text)?);
            rest = &braced[end + 1..];
        } else {
            let name_len = after
                .char_indices()
                .take_while(|(i, c)| {
                    c.is_ascii_alphanumeric() && !(*i == 0 && c.is_ascii_digit()) || *c == '_'
                })
                .count();
            if name_len == 0 {
                // Not a variable: the `$` stays, as compose keeps it.
                out.push('$');
                rest = after;
            } else {
                let name = &after[..name_len];
                out.push_str(&lookup(name, variables, unset));
                rest = &after[name_len..];
            }
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Where the `}` that closes a `${` is, counting nested `${...}`.
fn closing_brace(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'$' if bytes.get(i + 1) == Some(&b'{') => {
                depth += 1;
                i += 1;
            }
            b'}' if depth == 0 => return Some(i),
            b'}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    None
}

fn lookup(name: &str, variables: &Variables, unset: &mut Unset) -> String {
    match variables.get(name) {
        Some(value) => value.clone(),
        None => {
            if !unset.0.iter().any(|n| n == name) {
                unset.0.push(name.to_string());
            }
            String::new()
        }
    }
}

/// The inside of `${...}`: a name and perhaps an operator with its word (itself
/// interpolated, lazily: only when used).
fn expand(
    inner: &str,
    variables: &Variables,
    unset: &mut Unset,
    whole: &str,
) -> Result<String, String> {
    let name_len = inner
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(inner.len());
    let name = &inner[..name_len];
    let operator = &inner[name_len..];
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(format!(
            "invalid interpolation format for {whole:?}: {:?} is not a variable name",
            format!("${{{inner}}}")
        ));
    }
    let value = variables.get(name);
    let set = value.is_some();
    let non_empty = value.is_some_and(|v| !v.is_empty());
    let word = |unset: &mut Unset, skip: usize| interpolate(&operator[skip..], variables, unset);
    if operator.is_empty() {
        return Ok(lookup(name, variables, unset));
    }
    let value = value.cloned().unwrap_or_default();
    Ok(match operator {
        o if o.starts_with(":-") => {
            if non_empty {
                value
            } else {
                word(unset, 2)?
            }
        }
        o if o.starts_with('-') => {
            if set {
                value
            } else {
                word(unset, 1)?
            }
        }
        o if o.starts_with(":+") => {
            if non_empty {
                word(unset, 2)?
            } else {
                String::new()
            }
        }
        o if o.starts_with('+') => {
            if set {
                word(unset, 1)?
            } else {
                String::new()
            }
        }
        o if o.starts_with(":?") => {
            if non_empty {
                value
            } else {
                return Err(required(name, &word(unset, 2)?, "is missing a value"));
            }
        }
        o if o.starts_with('?') => {
            if set {
                value
            } else {
                return Err(required(name, &word(unset, 1)?, "is not set"));
            }
        }
        _ => {
            return Err(format!(
                "invalid interpolation format for {whole:?}: {:?} is not one of compose's forms",
                format!("${{{inner}}}")
            ))
        }
    })
}

fn required(name: &str, message: &str, what: &str) -> String {
    if message.is_empty() {
        format!("required variable {name} {what}")
    } else {
        format!("required variable {name} {what}: {message}")
    }
}

/// The variables of a `.env` file (or an `env_file`): `NAME=VALUE` lines, `#` comments,
/// an optional `export `, values in single quotes kept as written, in double quotes
/// with `\n` and `\"` escapes, unquoted ones cut at ` #`. Earlier variables (and
/// `base`) interpolate later values, as compose's dotenv does.
pub fn parse_env_file(text: &str, base: &Variables) -> Result<Vec<(String, String)>, String> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line).trim_start();
        let Some((name, value)) = line.split_once('=') else {
            // A bare name takes its value from the environment, when set.
            if let Some(value) = base.get(line) {
                out.push((line.to_string(), value.clone()));
            }
            continue;
        };
        let name = name.trim();
        if name.is_empty() || name.contains(char::is_whitespace) {
            return Err(format!(
                "line {}: {name:?} is not a variable name",
                number + 1
            ));
        }
        let value = value.trim();
        let value = if let Some(quoted) = value.strip_prefix('\'') {
            quoted.strip_suffix('\'').unwrap_or(quoted).to_string()
        } else {
            let (value, expand) = if let Some(quoted) = value.strip_prefix('"') {
                let inner = quoted.strip_suffix('"').unwrap_or(quoted);
                (
                    inner
                        .replace("\\n", "\n")
                        .replace("\\\"", "\"")
                        .replace("\\\\", "\\"),
                    true,
                )
            } else {
                let cut = value.find(" #").map_or(value, |at| &value[..at]);
                (cut.trim_end().to_string(), true)
            };
            if expand {
                let mut known = base.clone();
                known.extend(out.iter().cloned());
                interpolate(&value, &known, &mut Unset::default())
                    .map_err(|e| format!("line {}: {e}", number + 1))?
            } else {
                value
            }
        };
        out.push((name.to_string(), value));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Variables {
        [("SET", "value"), ("EMPTY", ""), ("OTHER", "o")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn run(text: &str) -> Result<String, String> {
        interpolate(text, &vars(), &mut Unset::default())
    }

    #[test]
    fn every_form_of_the_spec() {
        assert_eq!(run("${SET}/$SET/$$SET").unwrap(), "value/value/$SET");
        assert_eq!(
            run("${UNSET:-d} ${EMPTY:-d} ${SET:-d}").unwrap(),
            "d d value"
        );
        assert_eq!(run("${UNSET-d} ${EMPTY-d} ${SET-d}").unwrap(), "d  value");
        assert_eq!(run("${UNSET:+a} ${EMPTY:+a} ${SET:+a}").unwrap(), "  a");
        assert_eq!(run("${UNSET+a} ${EMPTY+a}").unwrap(), " a");
        assert_eq!(run("${EMPTY?e}").unwrap(), "");
        assert_eq!(run("${SET:?e}").unwrap(), "value");
        assert_eq!(
            run("${EMPTY:?needs it}").unwrap_err(),
            "required variable EMPTY is missing a value: needs it"
        );
        assert_eq!(
            run("${UNSET?gone}").unwrap_err(),
            "required variable UNSET is not set: gone"
        );
        assert_eq!(run("a $ b $1 ${UNSET:-${OTHER}}").unwrap(), "a $ b $1 o");
        assert_eq!(run("${UNSET:-${NOPE:-deep}}x").unwrap(), "deepx");
        assert!(run("${SET").is_err());
        assert!(run("${SET/a/b}").is_err());
    }

    #[test]
    fn unset_variables_are_empty_and_named() {
        let mut unset = Unset::default();
        assert_eq!(
            interpolate("[$NOPE${NOPE}]", &vars(), &mut unset).unwrap(),
            "[]"
        );
        assert_eq!(unset.0, ["NOPE"]);
    }

    #[test]
    fn env_files_as_compose_reads_them() {
        let text = "# c\nA=1\nexport B = two # note\nC='$A lit'\nD=\"x\\ny $A\"\nE=${A}b\n";
        let parsed = parse_env_file(text, &Variables::new()).unwrap();
        assert_eq!(
            parsed,
            [
                ("A".into(), "1".into()),
                ("B".into(), "two".into()),
                ("C".into(), "$A lit".into()),
                ("D".into(), "x\ny 1".into()),
                ("E".into(), "1b".into()),
            ]
        );
    }
}
