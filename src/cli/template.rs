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

/// A listing's `table {{...}}`: the header row, then one row per item, in columns.
pub(crate) struct TableFormat {
    rows: Template,
    header: Template,
    names: HashMap<String, String>,
}

impl TableFormat {
    /// The whole table, aligned as Docker's `tabwriter.NewWriter(out, 10, 1, 3, ' ', 0)`.
    fn render(&self, rows: &[Json]) -> Result<String> {
        let mut names = self.names.clone();
        for row in rows {
            if let Json::Object(fields) = row {
                for key in fields.keys() {
                    names
                        .entry(key.clone())
                        .or_insert_with(|| default_header(key));
                }
            }
        }
        let header = Value::Map(
            names
                .into_iter()
                .map(|(field, name)| (field, Value::String(name)))
                .collect(),
        );
        let mut output = BoundedOutput::default();
        // Docker prints what the header's template made before any error, and goes on:
        // a header cell that cannot be made (`{{range .Ports}}`) is no reason to fail.
        let _ = execute(&self.header, &header, &mut output);
        output.write_all(b"\n")?;
        for row in rows {
            execute(&self.rows, &to_template(row), &mut output)?;
            output.write_all(b"\n")?;
        }
        align(&output.into_string()?)
    }
}

/// The header name of each field a template names (`.Names`, `.State.Status`, `$x.ID`):
/// the caller's, else Docker's common one, else the field's name upper-cased.
fn header_names(text: &str, headers: &[(&str, &str)]) -> HashMap<String, String> {
    let mut names: HashMap<String, String> = COMMON_HEADERS
        .iter()
        .chain(headers)
        .map(|(field, name)| (field.to_string(), name.to_string()))
        .collect();
    let mut rest = text;
    while let Some(dot) = rest.find('.') {
        rest = &rest[dot + 1..];
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        let field = &rest[..end];
        if !field.is_empty() && !field.starts_with(|c: char| c.is_ascii_digit()) {
            names
                .entry(field.to_string())
                .or_insert_with(|| default_header(field));
        }
        rest = &rest[end..];
    }
    names
}

fn default_header(field: &str) -> String {
    field.to_uppercase()
}

/// Header names Docker's listings share that are not their field's name upper-cased
/// (docker/cli `cli/command/formatter`, `formatter_stats.go`).
const COMMON_HEADERS: &[(&str, &str)] = &[
    ("CreatedAt", "CREATED AT"),
    ("CreatedSince", "CREATED"),
    ("RunningFor", "CREATED"),
    ("LocalVolumes", "LOCAL VOLUMES"),
    ("HealthStatus", "HEALTH STATUS"),
    ("SharedSize", "SHARED SIZE"),
    ("UniqueSize", "UNIQUE SIZE"),
    ("TotalCount", "TOTAL"),
    ("CPUPerc", "CPU %"),
    ("MemUsage", "MEM USAGE / LIMIT"),
    ("MemPerc", "MEM %"),
    ("NetIO", "NET I/O"),
    ("BlockIO", "BLOCK I/O"),
    ("CacheType", "CACHE TYPE"),
    ("LastUsedSince", "LAST USED"),
    ("UsageCount", "USAGE"),
    ("InUse", "IN USE"),
    ("DockerEndpoint", "DOCKER ENDPOINT"),
];

/// The most columns a table's row may have: aligning recurses once per column.
const MAX_COLUMNS: usize = 1000;

/// `text` in columns as Go's `text/tabwriter` (Docker's copy of it) makes them with
/// minimum width 10, padding 3, spaces and no flags: each tab-ended cell is padded to
/// its column's widest cell in the block of adjacent lines that have that column; a
/// line's last cell is not padded; a line without tabs ends the block.
fn align(text: &str) -> Result<String> {
    let mut columns = Columns::default();
    let mut out = String::with_capacity(text.len());
    let mut start = 0;
    for (i, byte) in text.bytes().enumerate() {
        if matches!(byte, b'\t' | b'\x0b' | b'\n' | b'\x0c') {
            let cells = columns.end_cell(&text[start..i]);
            if cells > MAX_COLUMNS {
                bail!("--format: a table row has more than {MAX_COLUMNS} columns");
            }
            start = i + 1;
            if byte == b'\n' || byte == b'\x0c' {
                columns.lines.push(Vec::new());
                if byte == b'\x0c' || cells == 1 {
                    columns.flush(&mut out);
                }
            }
        }
    }
    columns.last = text[start..].to_string();
    columns.flush(&mut out);
    Ok(out)
}

/// A cell: its text and its width on a terminal.
struct Cell {
    text: String,
    width: usize,
}

/// Lines not yet written, as `text/tabwriter` keeps them.
struct Columns {
    lines: Vec<Vec<Cell>>,
    widths: Vec<usize>,
    /// Text after the last line break.
    last: String,
}

impl Default for Columns {
    fn default() -> Columns {
        Columns {
            lines: vec![Vec::new()],
            widths: Vec::new(),
            last: String::new(),
        }
    }
}

impl Columns {
    const MIN_WIDTH: usize = 10;
    const PADDING: usize = 3;

    /// Ends a cell of the current line; how many cells the line has.
    fn end_cell(&mut self, text: &str) -> usize {
        let line = self.lines.last_mut().expect("a current line");
        line.push(Cell {
            text: text.to_string(),
            width: display_width(text),
        });
        line.len()
    }

    fn flush(&mut self, out: &mut String) {
        let lines = self.lines.len();
        self.format(out, 0, lines);
        *self = Columns::default();
    }

    fn format(&mut self, out: &mut String, mut line0: usize, line1: usize) {
        let column = self.widths.len();
        let mut this = line0;
        while this < line1 {
            if column + 1 >= self.lines[this].len() {
                this += 1;
                continue;
            }
            self.write_lines(out, line0, this);
            line0 = this;
            let mut width = Self::MIN_WIDTH;
            while this < line1 && column + 1 < self.lines[this].len() {
                width = width.max(self.lines[this][column].width + Self::PADDING);
                this += 1;
            }
            self.widths.push(width);
            self.format(out, line0, this);
            self.widths.pop();
            line0 = this;
        }
        self.write_lines(out, line0, line1);
    }

    fn write_lines(&self, out: &mut String, line0: usize, line1: usize) {
        for i in line0..line1 {
            for (j, cell) in self.lines[i].iter().enumerate() {
                out.push_str(&cell.text);
                if let Some(&width) = self.widths.get(j) {
                    out.extend(std::iter::repeat_n(' ', width.saturating_sub(cell.width)));
                }
            }
            if i + 1 == self.lines.len() {
                out.push_str(&self.last);
            } else {
                out.push('\n');
            }
        }
    }
}

/// Columns `text` takes on a terminal, as go-runewidth counts them: East Asian wide
/// characters take two, combining marks and zero-width characters none.
fn display_width(text: &str) -> usize {
    text.chars()
        .map(|c| match c as u32 {
            0x0300..=0x036F
            | 0x0483..=0x0489
            | 0x0591..=0x05BD
            | 0x0610..=0x061A
            | 0x064B..=0x065F
            | 0x1AB0..=0x1AFF
            | 0x1DC0..=0x1DFF
            | 0x200B..=0x200F
            | 0x20D0..=0x20FF
            | 0xFE00..=0xFE0F
            | 0xFE20..=0xFE2F => 0,
            0x1100..=0x115F
            | 0x2E80..=0x303E
            | 0x3041..=0x33FF
            | 0x3400..=0x4DBF
            | 0x4E00..=0x9FFF
            | 0xA000..=0xA4CF
            | 0xAC00..=0xD7A3
            | 0xF900..=0xFAFF
            | 0xFE30..=0xFE4F
            | 0xFF00..=0xFF60
            | 0xFFE0..=0xFFE6
            | 0x1F300..=0x1F64F
            | 0x1F900..=0x1F9FF
            | 0x20000..=0x3FFFD => 2,
            _ => 1,
        })
        .sum()
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

fn one_arg<'a>(name: &str, args: &'a [Value]) -> Result<&'a Value, FuncError> {
    match args {
        [value] => Ok(value),
        _ => Err(FuncError::ExactlyXArgs(name.into(), 1)),
    }
}

/// The string Go's typed functions take: anything else is an error, as in Go.
fn string_arg<'a>(name: &str, value: &'a Value) -> Result<&'a str, FuncError> {
    match value {
        Value::String(s) => Ok(s),
        other => Err(FuncError::Generic(format!(
            "{name}: expected a string, got {}",
            kind_of(other)
        ))),
    }
}

fn int_arg(name: &str, value: &Value) -> Result<i64, FuncError> {
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

fn kind_of(value: &Value) -> &'static str {
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
const MAX_PAD: i64 = 65535;

/// The most parts one `split` makes: each is a value of its own, far bigger than a byte.
const MAX_PARTS: usize = 1 << 20;

/// `{{json .X}}`: the value as compact JSON.
fn json_func(args: &[Value]) -> Result<Value, FuncError> {
    let value = one_arg("json", args)?;
    Ok(Value::String(go_json(&to_json(value))))
}

/// `{{split .Names ","}}`: Go's `strings.Split` (an empty separator splits after each
/// character).
fn split_func(args: &[Value]) -> Result<Value, FuncError> {
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
fn join_func(args: &[Value]) -> Result<Value, FuncError> {
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
fn title_func(args: &[Value]) -> Result<Value, FuncError> {
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
fn is_word_separator(c: char) -> bool {
    if c.is_ascii() {
        return !(c.is_ascii_alphanumeric() || c == '_');
    }
    !c.is_alphanumeric() && c.is_whitespace()
}

/// Go maps case one character to one character: where Rust's mapping makes several
/// (`ß` upper-cased is `SS`), Go's keeps the character.
fn one_char(mut mapped: impl Iterator<Item = char>, original: char) -> char {
    match (mapped.next(), mapped.next()) {
        (Some(c), None) => c,
        _ => original,
    }
}

fn upper_func(args: &[Value]) -> Result<Value, FuncError> {
    let text = string_arg("upper", one_arg("upper", args)?)?;
    Ok(Value::String(
        text.chars()
            .map(|c| one_char(c.to_uppercase(), c))
            .collect(),
    ))
}

fn lower_func(args: &[Value]) -> Result<Value, FuncError> {
    let text = string_arg("lower", one_arg("lower", args)?)?;
    Ok(Value::String(
        text.chars()
            .map(|c| one_char(c.to_lowercase(), c))
            .collect(),
    ))
}

/// `{{pad .Name 1 2}}`: the text with spaces before and after, unless it is empty.
fn pad_func(args: &[Value]) -> Result<Value, FuncError> {
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
fn truncate_func(args: &[Value]) -> Result<Value, FuncError> {
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
fn first_arg(args: &[Value]) -> Result<Value, FuncError> {
    args.first()
        .cloned()
        .ok_or_else(|| FuncError::AtLeastXArgs("header".into(), 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_templates() {
        let item = serde_json::json!({
            "State": { "Status": "running", "Pid": 42 },
            "Config": { "Labels": { "team": "a" }, "Env": ["A=1", "B=2"] },
        });
        let render = |t: &str| Format::parse(t).unwrap().render(&item).unwrap();
        assert_eq!(render("{{.State.Status}}"), "running");
        assert_eq!(render("{{.State.Pid}}"), "42");
        assert_eq!(render(r#"{{index .Config.Labels "team"}}"#), "a");
        assert_eq!(render("{{range .Config.Env}}{{.}};{{end}}"), "A=1;B=2;");
        assert_eq!(render("{{json .Config.Labels}}"), r#"{"team":"a"}"#);
        assert!(Format::parse("{{.State").is_err());
    }

    /// `inspect -f` over an item as lade's (and Docker's) inspect JSON holds it.
    fn inspect(template: &str, item: &Json) -> String {
        Format::parse(template).unwrap().render(item).unwrap()
    }

    #[test]
    fn values_print_as_go_prints_them() {
        let item = serde_json::json!({
            "Config": {
                "Env": ["PATH=/usr/sbin:/usr/bin", "A=1"],
                "Labels": { "c": "d", "a": "b" },
                "Cmd": null,
                "Tty": false,
            },
            "State": { "Pid": 42, "ExitCode": -1, "Running": true },
            "Size": 18446744073709551615u64,
            "Ratio": 1.5,
            "Whole": 2.0,
            "Huge": 1e21,
            "Tiny": 0.00001,
            "Negative": -1.5,
            "Small": 0.0001,
            "Mixed": [1, "x", null, [true], { "k": 2 }],
        });
        let print = |t: &str| inspect(t, &item);
        assert_eq!(print("{{.Config.Env}}"), "[PATH=/usr/sbin:/usr/bin A=1]");
        assert_eq!(print("{{.Config.Labels}}"), "map[a:b c:d]");
        assert_eq!(print("{{.Config.Cmd}}"), "<nil>");
        assert_eq!(print("{{.Config.Missing}}"), "<no value>");
        assert_eq!(print("{{.Config.Tty}} {{.State.Running}}"), "false true");
        assert_eq!(print("{{.State.Pid}} {{.State.ExitCode}}"), "42 -1");
        assert_eq!(print("{{.Size}}"), "18446744073709551615");
        assert_eq!(print("{{.Ratio}} {{.Whole}} {{.Negative}}"), "1.5 2 -1.5");
        assert_eq!(
            print("{{.Huge}} {{.Tiny}} {{.Small}}"),
            "1e+21 1e-05 0.0001"
        );
        assert_eq!(print("{{.Mixed}}"), "[1 x <nil> [true] map[k:2]]");
        assert_eq!(print("{{.State}}"), "map[ExitCode:-1 Pid:42 Running:true]");
        // print, println and printf's %v print values the same way.
        assert_eq!(
            print("{{print .Config.Env}}"),
            "[PATH=/usr/sbin:/usr/bin A=1]"
        );
        assert_eq!(print("{{print 1 2 \"a\" 3 \"b\"}}"), "1 2a3b");
        assert_eq!(
            print(r#"{{println "a" 1 .Config.Labels}}"#),
            "a 1 map[a:b c:d]\n"
        );
        assert_eq!(
            print(r#"{{printf "%v|%s|%v|%v" .Config.Env .Config.Labels .Ratio .Config.Cmd}}"#),
            "[PATH=/usr/sbin:/usr/bin A=1]|map[a:b c:d]|1.5|<nil>"
        );
        // Docker's documented `println` use: one value a line.
        let networks = serde_json::json!({ "NetworkSettings": { "Networks": {
            "bridge": { "IPAddress": "172.17.0.2" }, "web": { "IPAddress": "10.0.0.2" },
        } } });
        assert_eq!(
            inspect(
                "{{range .NetworkSettings.Networks}}{{println .IPAddress}}{{end}}",
                &networks
            ),
            "172.17.0.2\n10.0.0.2\n"
        );
        // Go ranges over a map in key order, and `{{else}}` only when there is nothing.
        assert_eq!(
            print("{{range $k, $v := .Config.Labels}}{{$k}}={{$v}};{{else}}none{{end}}"),
            "a=b;c=d;"
        );
        assert_eq!(print("{{range .Config.Cmd}}x{{else}}none{{end}}"), "none");
        assert_eq!(print("{{range .Config.Env}}x{{else}}none{{end}}"), "xx");
    }

    #[test]
    fn json_is_compact_and_leaves_html_alone() {
        let item = serde_json::json!({
            "Ports": "0.0.0.0:2->8/udp",
            "Mounts": [{ "Type": "bind", "Source": "/a&b" }],
            "Note": "a\u{2028}b",
        });
        // docker/cli templates_test.go TestParseJSONFunctions.
        assert_eq!(inspect("{{json .Ports}}", &item), r#""0.0.0.0:2->8/udp""#);
        assert_eq!(
            inspect("{{json .Mounts}}", &item),
            r#"[{"Source":"/a&b","Type":"bind"}]"#
        );
        assert_eq!(inspect("{{json .Note}}", &item), r#""a\u2028b""#);
        assert_eq!(inspect("{{json .Missing}}", &item), "null");
    }

    #[test]
    fn string_functions_are_dockers() {
        let item = serde_json::json!({
            "Path": "text:with:colon",
            "Image": "ubuntu:22.04",
            "Name": "/web_server-1",
            "ID": "tupx5xzf6hvsrhnruz5cr8gwp",
            "Empty": "",
            "Args": ["-c", "echo hi"],
            "Labels": { "b": "2", "a": "1" },
            "Cmd": null,
            "Count": 3,
        });
        let print = |t: &str| inspect(t, &item);
        // docker/cli templates_test.go TestParseStringFunctions and TestParseTruncateFunction.
        assert_eq!(
            print(r#"{{join (split .Path ":") "/"}}"#),
            "text/with/colon"
        );
        assert_eq!(print("{{truncate .ID 5}}"), "tupx5");
        assert_eq!(print("{{truncate .ID 25}}"), "tupx5xzf6hvsrhnruz5cr8gwp");
        assert_eq!(print("{{truncate .ID 30}}"), "tupx5xzf6hvsrhnruz5cr8gwp");
        assert_eq!(print("{{pad .ID 3 3}}"), "   tupx5xzf6hvsrhnruz5cr8gwp   ");
        assert_eq!(print("[{{truncate .Empty 5}}][{{pad .Empty 3 3}}]"), "[][]");
        // docker/cli formatter container_test.go: `{{split .Image ":"}}` is an array.
        assert_eq!(print(r#"{{split .Image ":"}}"#), "[ubuntu 22.04]");
        assert_eq!(print(r#"{{split "abc" ""}}"#), "[a b c]");
        assert_eq!(print(r#"{{join .Args " , "}}"#), "-c , echo hi");
        assert_eq!(print(r#"{{join .Labels ","}}"#), "1,2");
        assert_eq!(print(r#"[{{join .Cmd ","}}]"#), "[]");
        assert_eq!(
            print("{{upper .Name}} {{lower \"MiXeD\"}}"),
            "/WEB_SERVER-1 mixed"
        );
        // Go's strings.Title: letters, digits and `_` are inside a word.
        assert_eq!(print("{{title .Name}}"), "/Web_server-1");
        assert_eq!(
            print(r#"{{title "hello wORLD 1a b.c"}}"#),
            "Hello WORLD 1a B.C"
        );
        assert_eq!(print(r#"{{upper "straße"}}"#), "STRAßE");
        assert_eq!(print(r#"{{truncate "héllo" 2}}"#), "h");
        for (template, error) in [
            ("{{upper .Count}}", "upper: expected a string, got a number"),
            (
                r#"{{join .Name ","}}"#,
                "join: expected an array, got a string",
            ),
            (
                "{{truncate .ID -1}}",
                "truncate: the length must not be negative",
            ),
            (
                "{{pad .ID 99999999 0}}",
                "pad: a count must be between 0 and 65535",
            ),
            ("{{pad .ID 1}}", "pad requires exactly 3 argument(s)"),
        ] {
            let message = Format::parse(template)
                .unwrap()
                .render(&item)
                .unwrap_err()
                .to_string();
            assert!(message.contains(error), "{template}: {message}");
        }
    }

    /// A listing through `--format`, as it prints.
    fn listing(format: &str, headers: &[(&str, &str)], rows: &[Json]) -> String {
        match ListFormat::parse_with_headers(format, headers).unwrap() {
            ListFormat::Table => "<default table>".into(),
            ListFormat::Json => rows
                .iter()
                .map(|r| format!("{}\n", listing_json(r)))
                .collect(),
            ListFormat::Template(template) => rows
                .iter()
                .map(|r| format!("{}\n", template.render(r).unwrap()))
                .collect(),
            ListFormat::CustomTable(table) => table.render(rows).unwrap(),
        }
    }

    /// The containers of docker/cli's formatter container_test.go.
    fn containers() -> Vec<Json> {
        ["foobar_baz", "foobar_bar"]
            .iter()
            .enumerate()
            .map(|(i, name)| {
                serde_json::json!({
                    "ID": format!("containerID{}", i + 1), "Image": "ubuntu",
                    "Command": "\"\"", "RunningFor": "24 hours ago", "Status": "",
                    "Ports": "", "Names": name, "State": "running", "Size": "0B",
                })
            })
            .collect()
    }

    const PS: &[(&str, &str)] = &[("ID", "CONTAINER ID")];

    #[test]
    fn tables_are_dockers() {
        let rows = containers();
        // docker/cli container_test.go TestContainerContextWrite, column for column.
        assert_eq!(
            listing(
                r"table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}",
                PS,
                &rows
            ),
            "CONTAINER ID   IMAGE     COMMAND   CREATED        STATUS    PORTS     NAMES\n\
             containerID1   ubuntu    \"\"        24 hours ago                       foobar_baz\n\
             containerID2   ubuntu    \"\"        24 hours ago                       foobar_bar\n"
        );
        assert_eq!(
            listing("table {{.Image}}", PS, &rows),
            "IMAGE\nubuntu\nubuntu\n"
        );
        assert_eq!(
            listing("table {{.State}}", PS, &rows),
            "STATE\nrunning\nrunning\n"
        );
        assert_eq!(
            listing(r#"table {{split .Image ":"}}"#, PS, &rows),
            "IMAGE\n[ubuntu]\n[ubuntu]\n"
        );
        // testdata/container-context-write-special-headers.golden: header functions
        // leave a column's name whole, `pad` pads it.
        assert_eq!(
            listing(
                r"table {{truncate .ID 5}}\t{{json .Image}} {{.RunningFor}}/{{title .Status}}/{{pad .Ports 2 2}}.{{upper .Names}} {{lower .Status}}",
                PS,
                &rows
            ),
            "CONTAINER ID   IMAGE CREATED/STATUS/  PORTS  .NAMES STATUS\n\
             conta          \"ubuntu\" 24 hours ago//.FOOBAR_BAZ \n\
             conta          \"ubuntu\" 24 hours ago//.FOOBAR_BAR \n"
        );
        // TestContainerContextWriteWithNoContainers: the header alone.
        assert_eq!(
            listing(r"table {{.Image}}\t{{.Size}}", PS, &[]),
            "IMAGE     SIZE\n"
        );
        assert_eq!(listing("table {{.Image}}", PS, &[]), "IMAGE\n");
        // docker image ls's documented header; names Docker shares need no caller map.
        let image = serde_json::json!({ "ID": "77af4d6b9913", "Repository": "<none>",
            "Tag": "<none>", "CreatedSince": "2 days ago", "CreatedAt": "x" });
        assert_eq!(
            listing(
                r"table {{.ID}}\t{{.Repository}}\t{{.Tag}}\t{{.CreatedSince}}",
                &[("ID", "IMAGE ID")],
                std::slice::from_ref(&image)
            ),
            "IMAGE ID       REPOSITORY   TAG       CREATED\n\
             77af4d6b9913   <none>       <none>    2 days ago\n"
        );
        // A field no row has is still named; without a caller's map, upper-cased.
        assert_eq!(
            listing(r"table {{.ID}}\t{{.CreatedAt}}\t{{.Nope}}", &[], &[]),
            "ID        CREATED AT   NOPE\n"
        );
        // `table` alone is the caller's default table; `table` needs no space after it.
        assert_eq!(listing("table", PS, &rows), "<default table>");
        assert_eq!(
            listing("table{{.Names}}", PS, &rows),
            "NAMES\nfoobar_baz\nfoobar_bar\n"
        );
    }

    #[test]
    fn listing_templates_take_typed_escapes() {
        let rows = containers();
        // Docker turns `\t` and `\n` typed in single quotes into tab and line break,
        // and drops the spaces around the template.
        assert_eq!(
            listing(r"  {{.Names}}\t{{.State}}\n ", PS, &rows[..1]),
            "foobar_baz\trunning\n\n"
        );
    }

    #[test]
    fn json_listings_print_one_object_a_line() {
        let rows = vec![
            serde_json::json!({ "Names": "a", "Labels": { "z": "1", "m": "<&>" } }),
            serde_json::json!({ "Names": "b", "Ports": [] }),
        ];
        assert_eq!(
            listing("json", PS, &rows),
            "{\"Labels\":{\"m\":\"\\u003c\\u0026\\u003e\",\"z\":\"1\"},\"Names\":\"a\"}\n\
             {\"Names\":\"b\",\"Ports\":[]}\n"
        );
    }

    #[test]
    fn columns_align_as_tabwriter_does() {
        // A line without tabs ends the block of aligned lines, as in Go's tabwriter.
        assert_eq!(
            align("a\tb\nlonger cell\tc\nplain\nx\ty\n").unwrap(),
            "a             b\nlonger cell   c\nplain\nx         y\n"
        );
        // A column is only as wide as the lines that have it, in their block.
        assert_eq!(
            align("a\tb\tc\nd\te\n").unwrap(),
            "a         b         c\nd         e\n"
        );
        assert_eq!(align("漢字\tx\n").unwrap(), "漢字      x\n");
        assert_eq!(align("").unwrap(), "");
        assert!(align(&format!("{}\n", "\t".repeat(MAX_COLUMNS + 1))).is_err());
    }

    /// The template parsed and rendered over a small item: its output, or its error.
    fn outcome(text: &str) -> Result<String> {
        let item = serde_json::json!({
            "Names": "web", "State": { "Status": "running" }, "Labels": { "a": "b" },
            "Env": ["A=1", "B=2"],
        });
        Format::parse(text)?.render(&item)
    }

    fn error_of(text: &str) -> String {
        match outcome(text) {
            Ok(output) => panic!("{text:?} rendered {} bytes", output.len()),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn unclosed_actions_end_in_an_error() {
        for text in [
            "{{.",
            "{{ .",
            "{{- .",
            "{{$",
            "{{.Names",
            "{{ $x := .",
            "{{-",
            "{{(",
        ] {
            let error = error_of(text);
            assert!(!error.contains('\n'), "{text:?}: {error}");
        }
        assert!(error_of("{{.").contains("unclosed action"));
    }

    #[test]
    fn printf_widths_and_precisions_are_bounded() {
        assert!(error_of(r#"{{printf "%999999999d" 1}}"#).contains("65535"));
        assert!(error_of(r#"{{printf "%.999999999f" 1.5}}"#).contains("65535"));
        assert!(error_of(r#"{{printf "%*d" 999999999 1}}"#).contains("65535"));
        assert!(error_of(r#"{{printf "%[0]d" 1}}"#).contains("index"));
        assert_eq!(
            outcome(r#"{{printf "%5d|%-3s|" 42 "a"}}"#).unwrap(),
            "   42|a  |"
        );
    }

    #[test]
    fn recursion_and_nesting_are_bounded() {
        let error = error_of(r#"{{define "x"}}{{template "x"}}{{end}}{{template "x"}}"#);
        assert!(error.contains("deep"), "{error}");
        let nested = format!("{}x{}", "{{if .}}".repeat(500), "{{end}}".repeat(500));
        assert!(error_of(&nested).contains("deep"));
        let parens = format!("{{{{{}.{}}}}}", "(".repeat(500), ")".repeat(500));
        assert!(error_of(&parens).contains("deep"));
        let ok = format!("{}x{}", "{{if .}}".repeat(20), "{{end}}".repeat(20));
        assert_eq!(outcome(&ok).unwrap(), "x");
    }

    #[test]
    fn multiplying_work_and_values_are_bounded() {
        // Each call makes two more until a string is 40 long: 2^40 calls, no output.
        let calls = r#"{{define "x"}}{{if lt (len .) 40}}{{template "x" (print . "a")}}{{template "x" (print . "a")}}{{end}}{{end}}{{template "x" ""}}"#;
        assert!(error_of(calls).contains("steps"));
        let doubling =
            r#"{{define "d"}}{{template "d" (print . .)}}{{end}}{{template "d" "xxxxxxxx"}}"#;
        assert!(error_of(doubling).contains("bytes"));
        let printing = r#"{{define "x"}}{{if lt (len .) 40}}{{printf "%65535d" 1}}{{template "x" (print . "a")}}{{template "x" (print . "a")}}{{end}}{{end}}{{template "x" ""}}"#;
        assert!(error_of(printing).contains("prints more than"));
    }

    /// Templates of Docker's kind, whose every truncation and random splice the fuzz
    /// tests feed the engine.
    const SEEDS: &[&str] = &[
        "{{.Names}}\t{{.State.Status}}",
        r#"{{- range $k, $v := .Labels -}} {{ $k }}={{ printf "%-8s|%q" $v $v }} {{- end }}"#,
        r#"{{ if eq .Names "web" }}{{ json .Env }}{{ else if .State }}{{ upper .Names }}{{ end }}"#,
        r#"{{define "t"}}{{ index . 0 | lower }}{{end}}{{ with .Env }}{{ template "t" . }}{{ end }}"#,
        "{{/* note */}}{{ len .Env }} {{ (index .Labels `a`) }} {{ printf \"%[1]*.[2]*[3]f\" 4 2 1.5 }}",
        "{{ 'x' }} {{ -1.5e3 }} {{ 0x1F }} {{ true }} {{ nil }} {{ .Missing.Deeper }}",
    ];

    /// Runs one template, as a command would; true when no panic and the output stayed
    /// within bounds (the hang the lexer had would keep the test from ever ending).
    fn survives(text: &str) -> bool {
        match std::panic::catch_unwind(|| outcome(text)) {
            Ok(Ok(output)) => output.len() <= MAX_OUTPUT,
            Ok(Err(error)) => !error.to_string().contains('\n'),
            Err(_) => false,
        }
    }

    #[test]
    fn every_truncation_of_a_valid_template_ends() {
        for seed in SEEDS {
            for (cut, _) in seed.char_indices() {
                assert!(survives(&seed[..cut]), "{:?}", &seed[..cut]);
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn spliced_templates_end(
            picks in proptest::collection::vec((0..SEEDS.len(), 0usize..200, 0usize..200), 1..4),
            noise in "[{}().$\"`'%*a-z0-9 |:=-]{0,12}",
        ) {
            let mut text = String::new();
            for (seed, from, to) in picks {
                let seed = SEEDS[seed];
                let bounds: Vec<usize> = seed.char_indices().map(|(i, _)| i).chain([seed.len()]).collect();
                let (a, b) = (bounds[from % bounds.len()], bounds[to % bounds.len()]);
                text.push_str(&seed[a.min(b)..a.max(b)]);
                text.push_str(&noise);
            }
            proptest::prop_assert!(survives(&text), "{:?}", text);
        }
    }
}
