//! Docker's template functions (`json`, `join`, `split`, `lower`, `upper`, `title`,
//! `truncate`, `pad`), each bounded in what it may make.

use super::*;

pub(super) fn one_arg<'a>(name: &str, args: &'a [Value]) -> Result<&'a Value, FuncError> {
    match args {
        [value] => Ok(value),
        _ => Err(FuncError::ExactlyXArgs(name.into(), 1)),
    }
}

/// The string Go's typed functions take: anything else is an error, as in Go.
pub(super) fn string_arg<'a>(name: &str, value: &'a Value) -> Result<&'a str, FuncError> {
    match value {
        Value::String(s) => Ok(s),
        other => Err(FuncError::Generic(format!(
            "{name}: expected a string, got {}",
            kind_of(other)
        ))),
    }
}

pub(super) fn int_arg(name: &str, value: &Value) -> Result<i64, FuncError> {
    match value {
        Value::Number(n) => n.as_i64().ok_or_else(|| {
            FuncError::Generic(format!(
                "{name}: expected an integer, got {}",
                gtmpl::sprint(value)
            ))
        }),
        other => Err(FuncError::Generic(format!(
            "{name}: expected an integer, got {}",
            kind_of(other)
        ))),
    }
}

pub(super) fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::NoValue => "no value",
        Value::Nil => "nil",
        Value::Bool(_) => "a boolean",
        Value::String(_) => "a string",
        Value::Number(_) => "a number",
        Value::Array(_) => "an array",
        Value::Map(_) | Value::Object(_) => "a map",
        Value::Function(_) => "a function",
    }
}

/// The most spaces one `pad` adds on a side: as much as `printf` pads.
pub(super) const MAX_PAD: i64 = 65535;

/// The most parts one `split` makes: each is a value of its own, far bigger than a byte.
pub(super) const MAX_PARTS: usize = 1 << 20;

/// `{{json .X}}`: the value as compact JSON.
pub(super) fn json_func(args: &[Value]) -> Result<Value, FuncError> {
    let value = one_arg("json", args)?;
    Ok(Value::String(go_json(&to_json(value))))
}

/// `{{split .Names ","}}`: Go's `strings.Split` (an empty separator splits after each
/// character).
pub(super) fn split_func(args: &[Value]) -> Result<Value, FuncError> {
    let [text, separator] = args else {
        return Err(FuncError::ExactlyXArgs("split".into(), 2));
    };
    let (text, separator) = (string_arg("split", text)?, string_arg("split", separator)?);
    let parts = if separator.is_empty() {
        text.chars().count()
    } else {
        text.matches(separator).count() + 1
    };
    if parts > MAX_PARTS {
        return Err(FuncError::Generic(format!(
            "split: more than {MAX_PARTS} parts"
        )));
    }
    let parts: Vec<Value> = if separator.is_empty() {
        text.chars().map(|c| Value::String(c.to_string())).collect()
    } else {
        text.split(separator)
            .map(|part| Value::String(part.to_string()))
            .collect()
    };
    Ok(Value::Array(parts))
}

/// `{{join .Args " "}}`: the elements of an array (or a map's values, sorted) printed
/// as Go prints them, between separators; nothing for nil.
pub(super) fn join_func(args: &[Value]) -> Result<Value, FuncError> {
    let [elements, separator] = args else {
        return Err(FuncError::ExactlyXArgs("join".into(), 2));
    };
    let separator = string_arg("join", separator)?;
    let parts: Vec<String> = match elements {
        Value::Nil | Value::NoValue => Vec::new(),
        Value::Array(items) => items.iter().map(gtmpl::sprint).collect(),
        Value::Map(map) | Value::Object(map) => {
            let mut values: Vec<String> = map.values().map(gtmpl::sprint).collect();
            values.sort();
            values
        }
        other => {
            return Err(FuncError::Generic(format!(
                "join: expected an array, got {}",
                kind_of(other)
            )))
        }
    };
    Ok(Value::String(parts.join(separator)))
}

/// `{{title .Name}}`: Go's `strings.Title`, each word's first letter upper-cased.
pub(super) fn title_func(args: &[Value]) -> Result<Value, FuncError> {
    let text = string_arg("title", one_arg("title", args)?)?;
    let mut previous = ' ';
    let titled = text
        .chars()
        .map(|c| {
            let after_separator = is_word_separator(previous);
            previous = c;
            if after_separator {
                one_char(c.to_uppercase(), c)
            } else {
                c
            }
        })
        .collect();
    Ok(Value::String(titled))
}

/// Go's `strings.isSeparator`: what ends a word for `strings.Title`.
pub(super) fn is_word_separator(c: char) -> bool {
    if c.is_ascii() {
        return !(c.is_ascii_alphanumeric() || c == '_');
    }
    !c.is_alphanumeric() && c.is_whitespace()
}

/// Go maps case one character to one character: where Rust's mapping makes several
/// (`ß` upper-cased is `SS`), Go's keeps the character.
pub(super) fn one_char(mut mapped: impl Iterator<Item = char>, original: char) -> char {
    match (mapped.next(), mapped.next()) {
        (Some(c), None) => c,
        _ => original,
    }
}

pub(super) fn upper_func(args: &[Value]) -> Result<Value, FuncError> {
    let text = string_arg("upper", one_arg("upper", args)?)?;
    Ok(Value::String(
        text.chars()
            .map(|c| one_char(c.to_uppercase(), c))
            .collect(),
    ))
}

pub(super) fn lower_func(args: &[Value]) -> Result<Value, FuncError> {
    let text = string_arg("lower", one_arg("lower", args)?)?;
    Ok(Value::String(
        text.chars()
            .map(|c| one_char(c.to_lowercase(), c))
            .collect(),
    ))
}

/// `{{pad .Name 1 2}}`: the text with spaces before and after, unless it is empty.
pub(super) fn pad_func(args: &[Value]) -> Result<Value, FuncError> {
    let [text, before, after] = args else {
        return Err(FuncError::ExactlyXArgs("pad".into(), 3));
    };
    let text = string_arg("pad", text)?;
    let (before, after) = (int_arg("pad", before)?, int_arg("pad", after)?);
    if !(0..=MAX_PAD).contains(&before) || !(0..=MAX_PAD).contains(&after) {
        return Err(FuncError::Generic(format!(
            "pad: a count must be between 0 and {MAX_PAD}"
        )));
    }
    if text.is_empty() {
        return Ok(Value::String(String::new()));
    }
    Ok(Value::String(format!(
        "{}{text}{}",
        " ".repeat(before as usize),
        " ".repeat(after as usize)
    )))
}

/// `{{truncate .ID 12}}`: the first bytes of the text (Go slices bytes; a character cut
/// in two is left out rather than split).
pub(super) fn truncate_func(args: &[Value]) -> Result<Value, FuncError> {
    let [text, length] = args else {
        return Err(FuncError::ExactlyXArgs("truncate".into(), 2));
    };
    let text = string_arg("truncate", text)?;
    let length = int_arg("truncate", length)?;
    if length < 0 {
        return Err(FuncError::Generic(
            "truncate: the length must not be negative".into(),
        ));
    }
    let mut end = text.len().min(length as usize);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Ok(Value::String(text[..end].to_string()))
}

/// A header function: the column's name as it is.
pub(super) fn first_arg(args: &[Value]) -> Result<Value, FuncError> {
    args.first()
        .cloned()
        .ok_or_else(|| FuncError::AtLeastXArgs("header".into(), 1))
}
