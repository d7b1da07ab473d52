//! `--format` with Go-template syntax, as Docker's CLI takes it (`{{.State.Status}}`,
//! `{{json .Config}}`, `{{index .Config.Labels "k"}}`, `{{range}}`), rendered by gtmpl
//! over the same JSON the command prints with `--format json`, with Docker's functions
//! (`json`, `join`, `split`, `lower`, `upper`, `title`, `truncate`, `pad`) and values
//! printed as Go prints them (`[a b]`, `map[k:v]`, `<nil>`, `<no value>`). A listing's
//! `table {{.A}}\t{{.B}}` prints a header row and aligns its columns as Docker does.
//!
//! A template is code its user runs: gtmpl (kept in `vendor/gtmpl` with fixes) bounds
//! how deep it nests and recurses, how many steps it takes, how wide a `printf` pads and
//! how much its functions make; here each rendering's output is bounded too, and every
//! error becomes one line of bounded length.

mod functions;
mod table;

use functions::*;
use table::*;
#[cfg(test)]
mod tests;

use anyhow::{anyhow, bail, Result};
use gtmpl::{Context, Func, FuncError, Template, Value};
use serde_json::Value as Json;
use std::collections::HashMap;
use std::io::Write;

/// The key under which a listing's row carries its labels as a map, for Docker's
/// `{{.Label "com.example"}}` (its `Labels` field is the `k=v,k2=v2` text). No
/// template can name it, and no JSON output shows it.
pub(crate) const LABELS: &str = "\u{0}labels";

/// Docker's template functions (docker/cli `templates.basicFunctions`), beside Go's own.
const FUNCTIONS: &[(&str, Func)] = &[
    ("json", json_func),
    ("split", split_func),
    ("join", join_func),
    ("title", title_func),
    ("lower", lower_func),
    ("upper", upper_func),
    ("pad", pad_func),
    ("truncate", truncate_func),
];

/// What a table's header row is rendered with (docker/cli `templates.HeaderFunctions`):
/// a column's name stays whole whatever its cells go through; `pad` still pads, so that
/// the header lines up with the cells.
const HEADER_FUNCTIONS: &[(&str, Func)] = &[
    ("json", first_arg),
    ("split", first_arg),
    ("join", first_arg),
    ("title", first_arg),
    ("lower", first_arg),
    ("upper", first_arg),
    ("truncate", first_arg),
    ("pad", pad_func),
];

/// A compiled `--format` template.
pub(crate) struct Format {
    template: Template,
}

impl Format {
    pub(crate) fn parse(text: &str) -> Result<Format> {
        Ok(Format {
            template: compile(text, FUNCTIONS)?,
        })
    }

    /// The template applied to one item, as one line of output.
    pub(crate) fn render(&self, item: &Json) -> Result<String> {
        let mut output = BoundedOutput::default();
        execute(&self.template, &to_template(item), &mut output)?;
        output.into_string()
    }
}

fn compile(text: &str, functions: &[(&str, Func)]) -> Result<Template> {
    let mut template = Template::default();
    template.add_funcs(functions);
    template.parse(text).map_err(|e| {
        anyhow!(
            "invalid --format template {}: {}",
            one_line(&format!("{text:?}")),
            one_line(&e.to_string())
        )
    })?;
    Ok(template)
}

fn execute(template: &Template, item: &Value, output: &mut BoundedOutput) -> Result<()> {
    template
        .execute(output, &Context::from(item.clone()))
        .map_err(|e| anyhow!("--format: {}", one_line(&e.to_string())))
}

/// `--format` of a listing: `table` (the default), `json`, or a Go template applied to
/// each row's JSON (`{{.Names}}\t{{.Status}}`), as Docker's CLI takes it; a template
/// after `table` (`table {{.ID}}\t{{.Names}}`) prints a header row and aligned columns.
pub(crate) enum ListFormat {
    Table,
    Json,
    Template(Format),
    CustomTable(TableFormat),
}

impl ListFormat {
    pub(crate) fn parse(text: &str) -> Result<ListFormat> {
        ListFormat::parse_with_headers(text, &[])
    }

    /// As [`ListFormat::parse`], with the names a `table` template's header row gives
    /// fields where Docker's differ from the field's name upper-cased: `("ID", "CONTAINER
    /// ID")` for `ps` and `stats`, `("ID", "IMAGE ID")` for `images`, `("ID", "NETWORK
    /// ID")` for `network ls`, `("Name", "VOLUME NAME")` for `volume ls`. Names that are
    /// the same in every Docker listing (`CreatedAt` is `CREATED AT`) need not be given.
    pub(crate) fn parse_with_headers(text: &str, headers: &[(&str, &str)]) -> Result<ListFormat> {
        if matches!(text, "" | "table" | "text") {
            return Ok(ListFormat::Table);
        }
        if text == "json" {
            return Ok(ListFormat::Json);
        }
        // As docker/cli `Format.templateString`: a leading `table` only asks for the
        // header, outer spaces go, and `\t` and `\n` typed in a shell's single quotes
        // become the tab and line break they mean.
        let (is_table, body) = match text.strip_prefix("table") {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let body = body
            .trim_matches(' ')
            .replace("\\t", "\t")
            .replace("\\n", "\n");
        if !is_table {
            return Ok(ListFormat::Template(Format::parse(&body)?));
        }
        Ok(ListFormat::CustomTable(TableFormat {
            rows: compile(&body, FUNCTIONS)?,
            header: compile(&body, HEADER_FUNCTIONS)?,
            names: header_names(&body, headers),
        }))
    }

    /// Prints `rows` as JSON or through the template; false for the default table (the
    /// caller prints it).
    pub(crate) fn print(&self, rows: &[Json]) -> Result<bool> {
        match self {
            ListFormat::Table => return Ok(false),
            ListFormat::Json => {
                for row in rows {
                    println!("{}", listing_json(row));
                }
            }
            ListFormat::Template(template) => {
                for row in rows {
                    println!("{}", template.render(row)?);
                }
            }
            ListFormat::CustomTable(table) => print!("{}", table.render(rows)?),
        }
        Ok(true)
    }
}

/// The most one rendering of a template may print: far past any real `--format`, short
/// of what would fill a terminal's scroll-back or the memory of a small machine.
const MAX_OUTPUT: usize = 16 << 20;

/// The most bytes of a template's text, or of the engine's message, an error quotes.
const MAX_ERROR: usize = 400;

/// A rendering's output, refused past [`MAX_OUTPUT`] bytes.
#[derive(Default)]
struct BoundedOutput {
    bytes: Vec<u8>,
}

impl BoundedOutput {
    fn into_string(self) -> Result<String> {
        String::from_utf8(self.bytes)
            .map_err(|_| anyhow!("--format: the template made text that is not UTF-8"))
    }
}

impl std::io::Write for BoundedOutput {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.bytes.len() + buf.len() > MAX_OUTPUT {
            return Err(std::io::Error::other(format!(
                "the template prints more than {MAX_OUTPUT} bytes"
            )));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `text` on one line (line breaks and other control characters escaped), cut after
/// [`MAX_ERROR`] bytes: an error may quote a template or a value of any size.
fn one_line(text: &str) -> String {
    let mut line = String::new();
    for c in text.chars() {
        if line.len() >= MAX_ERROR {
            line.push_str("...");
            break;
        }
        if c.is_control() {
            line.extend(c.escape_default());
        } else {
            line.push(c);
        }
    }
    line
}

/// What `inspect` prints: every item found as one JSON array at the end (like Docker,
/// even when other items were not found), or each item through `--format` as it comes.
pub(crate) struct InspectOutput {
    template: Option<Format>,
    items: Vec<Json>,
}

impl InspectOutput {
    pub(crate) fn new(format: Option<&str>) -> Result<InspectOutput> {
        Ok(InspectOutput {
            template: format.map(Format::parse).transpose()?,
            items: Vec::new(),
        })
    }

    pub(crate) fn push(&mut self, item: Json) -> Result<()> {
        match &self.template {
            Some(template) => println!("{}", template.render(&item)?),
            None => self.items.push(item),
        }
        Ok(())
    }

    pub(crate) fn finish(self) -> Result<()> {
        if self.template.is_none() {
            println!("{}", serde_json::to_string_pretty(&self.items)?);
        }
        Ok(())
    }
}

fn to_template(json: &Json) -> Value {
    match json {
        Json::Null => Value::Nil,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => Value::from(i),
            (None, Some(u), _) => Value::from(u),
            (_, _, Some(f)) => float_value(f),
            _ => Value::Nil,
        },
        Json::String(s) => Value::String(s.clone()),
        Json::Array(items) => Value::Array(items.iter().map(to_template).collect()),
        Json::Object(map) => {
            let mut fields: HashMap<String, Value> = map
                .iter()
                .map(|(k, v)| (k.clone(), to_template(v)))
                .collect();
            if map.contains_key(LABELS) {
                let method = gtmpl_value::Function { f: label_method };
                fields.insert("Label".into(), Value::Function(method));
            }
            Value::Map(fields)
        }
    }
}

/// Docker's `Label` method of a listing's row: the value of one label, empty when the
/// row has no such label.
fn label_method(args: &[Value]) -> Result<Value, FuncError> {
    let [Value::Map(row), key] = args else {
        return Err(FuncError::ExactlyXArgs("Label".into(), 1));
    };
    let key = string_arg("Label", key)?;
    Ok(match row.get(LABELS) {
        Some(Value::Map(labels)) => labels.get(key).cloned(),
        _ => None,
    }
    .unwrap_or_else(|| Value::String(String::new())))
}

/// A float as a template value. gtmpl's numbers turn a float whose fraction is below
/// `f64::EPSILON` into an integer (saturating: `-1.5` would print `-1`, `1e21`
/// `18446744073709551615`), so what it cannot hold whole is kept as the text Go prints.
fn float_value(f: f64) -> Value {
    if f.fract() == 0.0 && f.abs() < 9.0e18 {
        return Value::from(f as i64);
    }
    if f.fract() >= f64::EPSILON {
        return Value::from(f);
    }
    Value::String(gtmpl::go_float(f))
}

fn to_json(value: &Value) -> Json {
    match value {
        Value::NoValue | Value::Nil | Value::Function(_) => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::String(s) => Json::String(s.clone()),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => Json::from(i),
            (None, Some(u), _) => Json::from(u),
            (_, _, Some(f)) => Json::from(f),
            _ => Json::Null,
        },
        Value::Array(items) => Json::Array(items.iter().map(to_json).collect()),
        Value::Object(map) | Value::Map(map) => {
            // A row's methods and what they read are no fields of its JSON.
            let sorted: std::collections::BTreeMap<_, _> = map
                .iter()
                .filter(|(k, v)| *k != LABELS && !matches!(v, Value::Function(_)))
                .map(|(k, v)| (k.clone(), to_json(v)))
                .collect();
            Json::Object(sorted.into_iter().collect())
        }
    }
}

/// `value` as Go's `encoding/json` writes it with HTML escaping off, as Docker's `json`
/// function and `--format json` do: compact, map keys in order.
fn go_json(value: &Json) -> String {
    // serde_json's map keeps keys sorted; Go escapes the two line separators JavaScript
    // reads as line breaks, which serde_json leaves as they are.
    value
        .to_string()
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

/// A listing's row for `--format json`: Docker's rows marshal themselves with
/// `json.Marshal`, which writes `<`, `>` and `&` escaped (`"\u003cnone\u003e"`).
fn listing_json(row: &Json) -> String {
    let shown = match row {
        Json::Object(fields) if fields.contains_key(LABELS) => {
            let mut fields = fields.clone();
            fields.remove(LABELS);
            Json::Object(fields)
        }
        _ => row.clone(),
    };
    go_json(&shown)
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}
