//! BuildKit's AST dump format (`Node.Dump()`): one S-expression per instruction. It makes
//! the parser checkable against BuildKit's conformance corpus, and `lade build --dry-run
//! --format ast` shows it.

use super::syntax::{Args, Node, SyntaxTree};

/// The dump of a whole file: one line per instruction, each ending in `\n`.
pub fn dump(tree: &SyntaxTree) -> String {
    let mut out = String::new();
    for node in &tree.nodes {
        out.push('(');
        out.push_str(&dump_node(node));
        out.push_str(")\n");
    }
    out
}

fn dump_node(node: &Node) -> String {
    let mut out = node.keyword().to_lowercase();
    if !node.flags.is_empty() {
        let flags: Vec<String> = node
            .flags
            .iter()
            .map(|f| go_quote(&format!("--{}", f.text)))
            .collect();
        out.push_str(" [");
        out.push_str(&flags.join(" "));
        out.push(']');
    }
    for value in arg_values(&node.args) {
        out.push(' ');
        match value {
            Value::Quoted(text) => out.push_str(&go_quote(&text)),
            Value::Child(child) => out.push_str(&format!("({})", dump_node(child))),
        }
    }
    out.trim().to_string()
}

enum Value<'a> {
    Quoted(String),
    Child(&'a Node),
}

fn arg_values(args: &Args) -> Vec<Value<'_>> {
    let quoted = |items: &[String]| items.iter().cloned().map(Value::Quoted).collect();
    match args {
        Args::Empty => Vec::new(),
        Args::Unknown => vec![Value::Quoted(String::new())],
        Args::Json(items) | Args::List(items) | Args::Words(items) => quoted(items),
        Args::Text(text) => vec![Value::Quoted(text.clone())],
        Args::KeyValues { pairs, legacy } => pairs
            .iter()
            .flat_map(|(k, v)| {
                let sep = if *legacy { "" } else { "=" };
                [k.clone(), v.clone(), sep.to_string()]
            })
            .map(Value::Quoted)
            .collect(),
        Args::Healthcheck { kind, command } => {
            let mut values = vec![Value::Quoted(kind.clone())];
            values.extend(arg_values(command));
            values
        }
        Args::OnBuild(inner) => vec![Value::Child(inner)],
    }
}

/// Go's `strconv.Quote`: double quotes, short escapes for common controls, `\xNN` for
/// other control bytes, `\uNNNN` for non-printable characters, printable text as is.
pub fn go_quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{07}' => out.push_str("\\a"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0C}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{0B}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7F}' => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if go_is_print(c) => out.push(c),
            c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push_str(&format!("\\U{:08x}", c as u32)),
        }
    }
    out.push('"');
    out
}

/// Go's `unicode.IsPrint`: graphic characters and the ASCII space. Approximated from
/// the categories std can tell: controls, separators other than U+0020, and the common
/// format characters are not printable.
fn go_is_print(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    let format_chars = matches!(c as u32,
        0xAD | 0x600..=0x605 | 0x61C | 0x6DD | 0x70F | 0x180E | 0x200B..=0x200F
        | 0x202A..=0x202E | 0x2060..=0x2064 | 0x2066..=0x206F | 0xFEFF | 0xFFF9..=0xFFFB
        | 0xE000..=0xF8FF | 0xF0000..=0x10FFFF);
    !format_chars
}

#[cfg(test)]
mod tests {
    use super::go_quote;

    #[test]
    fn quotes_like_go() {
        assert_eq!(go_quote("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(go_quote("\u{0}\u{1b}\u{7f}"), r#""\x00\x1b\x7f""#);
        assert_eq!(
            go_quote("\u{7}\u{8}\u{c}\n\r\t\u{b}"),
            r#""\a\b\f\n\r\t\v""#
        );
        assert_eq!(go_quote("♥ ☃"), "\"♥ ☃\"");
        assert_eq!(go_quote("\u{a0}\u{feff}\u{85}"), r#""\u00a0\ufeff\u0085""#);
    }
}
