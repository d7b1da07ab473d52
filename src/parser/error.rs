//! Source text, locations and the parser's typed errors.
//!
//! Every error the front end reports names the file, line and column, shows the line and
//! points at the column with a caret.

use std::fmt;
use std::sync::Arc;

/// A Dockerfile's text with an index of line starts, so offsets map to lines in O(log n).
/// The text is shared with the locations made from it, which show their line from it.
#[derive(Debug)]
pub struct Source {
    name: Arc<str>,
    text: Arc<String>,
    line_starts: Vec<usize>,
}

impl Source {
    /// Takes the raw bytes of a Dockerfile. Invalid UTF-8 is refused with its location.
    pub fn from_bytes(name: &str, bytes: Vec<u8>) -> Result<Source, ParseError> {
        match String::from_utf8(bytes) {
            Ok(text) => Ok(Source::new(name, text)),
            Err(err) => {
                let valid = err.utf8_error().valid_up_to();
                let bytes = err.into_bytes();
                // Locate the bad byte in the valid prefix's line structure.
                let prefix = String::from_utf8_lossy(&bytes[..valid]).into_owned();
                let line_end = bytes[valid..]
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(bytes.len(), |p| valid + p);
                let mut shown = prefix.clone();
                shown.push_str(&String::from_utf8_lossy(&bytes[valid..line_end]));
                let source = Source::new(name, shown);
                Err(source.error_at(valid, ErrorKind::InvalidUtf8))
            }
        }
    }

    pub fn new(name: &str, text: String) -> Source {
        let mut line_starts = Vec::with_capacity(text.len() / 32 + 1);
        line_starts.push(0);
        line_starts.extend(memchr::memchr_iter(b'\n', text.as_bytes()).map(|i| i + 1));
        Source {
            name: Arc::from(name),
            text: Arc::new(text),
            line_starts,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// 1-based line number of a byte offset.
    pub fn line_of(&self, offset: usize) -> usize {
        match self.line_starts.binary_search(&offset) {
            Ok(i) => i + 1,
            Err(i) => i,
        }
    }

    /// The location (line, character column, text of the line) of a byte offset. Every
    /// instruction and step carries one: the line's text is not copied, only shared.
    pub fn location(&self, offset: usize) -> SourceLocation {
        let offset = offset.min(self.text.len());
        let line = self.line_of(offset);
        let start = self.line_starts[line - 1];
        let end = self
            .line_starts
            .get(line)
            .map_or(self.text.len(), |&next| next - 1);
        let column = self.text[start..floor_char_boundary(&self.text, offset)]
            .chars()
            .count()
            + 1;
        SourceLocation {
            file: self.name.clone(),
            line,
            column,
            line_text: LineText {
                text: self.text.clone(),
                start,
                end,
            },
        }
    }

    pub fn error_at(&self, offset: usize, kind: ErrorKind) -> ParseError {
        ParseError {
            location: Box::new(self.location(offset)),
            kind,
        }
    }
}

fn floor_char_boundary(text: &str, mut offset: usize) -> usize {
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

/// Keeps error messages readable for very long lines: shows at most 200 characters,
/// from a little before the column.
fn shorten(line: &str, column: usize) -> String {
    const MAX: usize = 200;
    let count = line.chars().count();
    if count <= MAX {
        return line.to_string();
    }
    let from = column.saturating_sub(40);
    line.chars().skip(from).take(MAX).collect()
}

/// Where something is in a Dockerfile: file, 1-based line and column, and the line.
#[derive(Clone)]
pub struct SourceLocation {
    pub file: Arc<str>,
    pub line: usize,
    pub column: usize,
    line_text: LineText,
}

/// One line of a source's text (without its line ending), by its place in the text.
#[derive(Clone)]
struct LineText {
    text: Arc<String>,
    start: usize,
    end: usize,
}

impl LineText {
    fn as_str(&self) -> &str {
        self.text[self.start..self.end].trim_end_matches('\r')
    }
}

impl PartialEq for SourceLocation {
    fn eq(&self, other: &Self) -> bool {
        self.file == other.file
            && self.line == other.line
            && self.column == other.column
            && self.line_text.as_str() == other.line_text.as_str()
    }
}

impl Eq for SourceLocation {}

impl fmt::Debug for SourceLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SourceLocation")
            .field("file", &self.file)
            .field("line", &self.line)
            .field("column", &self.column)
            .field("line_text", &self.line_text())
            .finish()
    }
}

impl SourceLocation {
    /// The text of the line, as an error shows it: at most 200 characters, from a little
    /// before the column.
    pub fn line_text(&self) -> String {
        shorten(self.line_text.as_str(), self.column)
    }

    /// Writes `file:line:col: message`, then the line and a caret under the column.
    pub fn render(&self, f: &mut fmt::Formatter<'_>, message: &dyn fmt::Display) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.column, message
        )?;
        let line_text = self.line_text();
        if !line_text.is_empty() {
            let number = self.line.to_string();
            let caret_pad: String = line_text
                .chars()
                .take(self.column.saturating_sub(1))
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            write!(
                f,
                "\n {number} | {}\n {} | {caret_pad}^",
                line_text,
                " ".repeat(number.len())
            )?;
        }
        Ok(())
    }
}

/// A located parse error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub location: Box<SourceLocation>,
    pub kind: ErrorKind,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.location.render(f, &self.kind)
    }
}

impl std::error::Error for ParseError {}

/// What went wrong, with what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ErrorKind {
    #[error("invalid UTF-8: a Dockerfile must be UTF-8 text")]
    InvalidUtf8,
    #[error("file with no instructions: expected at least a FROM instruction")]
    NoInstructions,
    #[error("only one {0} parser directive can be used")]
    DuplicateDirective(String),
    #[error("invalid escape token '{0}': expected ` or \\")]
    InvalidEscape(String),
    #[error("when using JSON array syntax, arrays must be comprised of strings only")]
    NotStringArray,
    #[error("{instruction} {expected}")]
    MissingArguments {
        instruction: String,
        expected: &'static str,
    },
    #[error("syntax error - can't find = in {0:?}: expected name=value")]
    MissingEquals(String),
    #[error("unterminated heredoc: expected a line {0:?} before the end of the file")]
    UnterminatedHeredoc(String),
    #[error("unknown instruction {name}{}", suggestion.map(|s| format!(" (did you mean {s}?)")).unwrap_or_default())]
    UnknownInstruction {
        name: String,
        suggestion: Option<&'static str>,
    },
    #[error("unknown flag --{flag} on {instruction}: {}", if valid.is_empty() { format!("{instruction} takes no flags") } else { format!("expected one of {valid}") })]
    UnknownFlag {
        flag: String,
        instruction: String,
        valid: String,
    },
    #[error("duplicate flag --{0}")]
    DuplicateFlag(String),
    #[error("flag --{0} needs a value, as in --{0}=VALUE")]
    FlagNeedsValue(String),
    #[error("invalid value {value:?} for --{flag}: {expected}")]
    InvalidFlagValue {
        flag: String,
        value: String,
        expected: String,
    },
    #[error("{0}")]
    Invalid(String),
    #[error("internal grammar error: {0}")]
    Grammar(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_show_their_line_without_its_ending() {
        let source = Source::new("Dockerfile", "FROM a\r\nRUN  bad\r\n".to_string());
        let error = source.error_at(13, ErrorKind::Invalid("wrong".into()));
        assert_eq!(
            error.to_string(),
            "Dockerfile:2:6: wrong\n 2 | RUN  bad\n   |      ^"
        );
        let long = format!("RUN {}x\n", "a".repeat(300));
        let source = Source::new("Dockerfile", long);
        let location = source.location(304);
        assert_eq!(location.column, 305);
        assert_eq!(location.line_text().chars().count(), 40);
        assert!(location.line_text().ends_with('x'));
    }
}
