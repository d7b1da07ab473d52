//! The `table` form of a listing's `--format`: a header row named as Docker names each
//! field, and columns aligned as Go's tabwriter aligns them with Docker's settings.

use super::*;

/// A listing's `table {{...}}`: the header row, then one row per item, in columns.
pub(crate) struct TableFormat {
    pub(super) rows: Template,
    pub(super) header: Template,
    pub(super) names: HashMap<String, String>,
}

impl TableFormat {
    /// The whole table, aligned as Docker's `tabwriter.NewWriter(out, 10, 1, 3, ' ', 0)`.
    pub(super) fn render(&self, rows: &[Json]) -> Result<String> {
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
pub(super) fn header_names(text: &str, headers: &[(&str, &str)]) -> HashMap<String, String> {
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

pub(super) fn default_header(field: &str) -> String {
    field.to_uppercase()
}

/// Header names Docker's listings share that are not their field's name upper-cased
/// (docker/cli `cli/command/formatter`, `formatter_stats.go`).
pub(super) const COMMON_HEADERS: &[(&str, &str)] = &[
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
pub(super) const MAX_COLUMNS: usize = 1000;

/// `text` in columns as Go's `text/tabwriter` (Docker's copy of it) makes them with
/// minimum width 10, padding 3, spaces and no flags: each tab-ended cell is padded to
/// its column's widest cell in the block of adjacent lines that have that column; a
/// line's last cell is not padded; a line without tabs ends the block.
pub(super) fn align(text: &str) -> Result<String> {
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
pub(super) struct Cell {
    text: String,
    width: usize,
}

/// Lines not yet written, as `text/tabwriter` keeps them.
pub(super) struct Columns {
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
    pub(super) fn end_cell(&mut self, text: &str) -> usize {
        let line = self.lines.last_mut().expect("a current line");
        line.push(Cell {
            text: text.to_string(),
            width: display_width(text),
        });
        line.len()
    }

    pub(super) fn flush(&mut self, out: &mut String) {
        let lines = self.lines.len();
        self.format(out, 0, lines);
        *self = Columns::default();
    }

    pub(super) fn format(&mut self, out: &mut String, mut line0: usize, line1: usize) {
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

    pub(super) fn write_lines(&self, out: &mut String, line0: usize, line1: usize) {
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
pub(super) fn display_width(text: &str) -> usize {
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
