//! Word expansion as Docker does it in Dockerfiles: quote removal, escapes, `$v`, `${v}`,
//! `${v:-w}`, `${v-w}`, `${v:+w}`, `${v+w}`, `${v:?msg}`, `${v?msg}`, the glob operators
//! `${v#p}`, `${v##p}`, `${v%p}`, `${v%%p}`, `${v/p/r}`, `${v//p/r}`, and splitting into
//! words. Positional and special parameters (`$1`, `$@`, `$$`, ...) expand to nothing.
//!
//! This is an evaluator over a word's characters, not a parser of the Dockerfile: its
//! behaviour follows BuildKit's `shell` package, whose conformance data it passes.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

/// A failed expansion, e.g. an unterminated quote or `${v:?msg}` with `v` unset.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} in {text:?}")]
pub struct ExpandError {
    pub message: WordError,
    pub text: String,
}

/// Why a word cannot be expanded (the texts are BuildKit's).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WordError {
    /// The text ended inside a quote or before a closing character.
    #[error("unexpected end of statement while looking for matching {0}")]
    Unterminated(String),
    #[error("substitutions nested more than {MAX_NESTING} deep")]
    TooDeep,
    #[error("syntax error: missing '}}'")]
    MissingBrace,
    #[error("syntax error: bad substitution")]
    BadSubstitution,
    #[error("unsupported modifier ({0}) in substitution")]
    UnsupportedModifier(String),
    /// `${name:?message}` (or `?`) with the variable unset or empty.
    #[error("{name}: {message}")]
    Required { name: String, message: String },
    #[error("invalid pattern {pattern:?}: {reason}")]
    InvalidPattern { pattern: String, reason: String },
}

/// Variables visible to an expansion.
pub trait Lookup {
    fn lookup(&self, name: &str) -> Option<&str>;
}

impl Lookup for HashMap<String, String> {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
    }
}

impl Lookup for BTreeMap<String, String> {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
    }
}

/// An ordered list of `(name, value)`; the last definition of a name wins.
impl Lookup for [(String, String)] {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

impl Lookup for Vec<(String, String)> {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.as_slice().lookup(name)
    }
}

/// No variables at all.
pub struct NoVariables;

impl Lookup for NoVariables {
    fn lookup(&self, _name: &str) -> Option<&str> {
        None
    }
}

/// How to expand. The defaults are Docker's for instruction arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lexer {
    /// The escape character: `\`, or `` ` `` after `# escape=`.
    pub escape: char,
    /// Keep quote characters in the result.
    pub raw_quotes: bool,
    /// Keep escape characters in the result.
    pub raw_escapes: bool,
    /// Treat quotes as ordinary characters (heredoc bodies).
    pub skip_process_quotes: bool,
    /// Leave references to unset variables as written.
    pub skip_unset: bool,
}

impl Lexer {
    pub fn new(escape: char) -> Lexer {
        Lexer {
            escape,
            raw_quotes: false,
            raw_escapes: false,
            skip_process_quotes: false,
            skip_unset: false,
        }
    }

    /// Expands `text` into one string (quotes removed, nothing split).
    pub fn process_word(&self, text: &str, env: &dyn Lookup) -> Result<String, ExpandError> {
        self.expand_word(text, env).map(Cow::into_owned)
    }

    /// As [`Lexer::process_word`], borrowing `text` when it is its own expansion.
    pub fn expand_word<'t>(
        &self,
        text: &'t str,
        env: &dyn Lookup,
    ) -> Result<Cow<'t, str>, ExpandError> {
        // Most words have nothing to expand: without `$`, quotes or the escape
        // character, the result is the text itself.
        let special = |c: char| {
            c == '$' || c == self.escape || (!self.skip_process_quotes && (c == '\'' || c == '"'))
        };
        if !text.contains(special) {
            return Ok(Cow::Borrowed(text));
        }
        let mut word = ShellWord::new(self, text, env);
        word.split = false;
        word.process_stop_on(None, self.raw_escapes)
            .map(|(result, _)| Cow::Owned(result))
            .map_err(|message| ExpandError {
                message,
                text: text.to_string(),
            })
    }

    /// Expands `text` and splits it into words the way a shell would: whitespace from
    /// unquoted expansions separates words, quoted text never does.
    pub fn process_words(&self, text: &str, env: &dyn Lookup) -> Result<Vec<String>, ExpandError> {
        let mut word = ShellWord::new(self, text, env);
        word.process_stop_on(None, self.raw_escapes)
            .map(|(_, words)| words)
            .map_err(|message| ExpandError {
                message,
                text: text.to_string(),
            })
    }
}

/// Accumulates words: BuildKit's `wordsStruct`. A disabled one (the caller wants the
/// joined result only) keeps nothing.
struct Words {
    enabled: bool,
    word: String,
    words: Vec<String>,
    in_word: bool,
}

impl Words {
    fn new(enabled: bool) -> Words {
        Words {
            enabled,
            word: String::new(),
            words: Vec::new(),
            in_word: false,
        }
    }

    fn add_char(&mut self, ch: char) {
        if !self.enabled {
            return;
        }
        if ch.is_whitespace() {
            if self.in_word && !self.word.is_empty() {
                self.words.push(std::mem::take(&mut self.word));
                self.in_word = false;
            }
        } else {
            self.add_raw_char(ch);
        }
    }

    fn add_raw_char(&mut self, ch: char) {
        if !self.enabled {
            return;
        }
        self.word.push(ch);
        self.in_word = true;
    }

    fn add_string(&mut self, text: &str) {
        if self.enabled {
            text.chars().for_each(|c| self.add_char(c));
        }
    }

    fn add_raw_string(&mut self, text: &str) {
        if !self.enabled {
            return;
        }
        self.word.push_str(text);
        self.in_word = true;
    }

    fn finish(mut self) -> Vec<String> {
        if !self.word.is_empty() {
            self.words.push(self.word);
        }
        self.words
    }
}

/// How deeply `${...}` may nest: deeper input is refused rather than risking the stack.
const MAX_NESTING: usize = 64;

struct ShellWord<'a> {
    lexer: &'a Lexer,
    text: &'a str,
    pos: usize,
    env: &'a dyn Lookup,
    depth: usize,
    /// Whether the caller wants the result split into words too.
    split: bool,
}

type Step<T> = Result<T, WordError>;

impl<'a> ShellWord<'a> {
    fn new(lexer: &'a Lexer, text: &'a str, env: &'a dyn Lookup) -> ShellWord<'a> {
        ShellWord {
            lexer,
            text,
            pos: 0,
            env,
            depth: 0,
            split: true,
        }
    }

    fn peek(&self) -> Option<char> {
        self.text[self.pos..].chars().next()
    }

    fn next(&mut self) -> Option<char> {
        let ch = self.peek()?;
        self.pos += ch.len_utf8();
        Some(ch)
    }

    fn getenv(&self, name: &str) -> Option<&'a str> {
        self.env.lookup(name)
    }

    /// Processes characters until `stop` (consumed) or the end of the text.
    fn process_stop_on(
        &mut self,
        stop: Option<char>,
        raw_escapes: bool,
    ) -> Step<(String, Vec<String>)> {
        self.process_stop_on_any(stop.as_slice(), raw_escapes)
            .map(|(result, words, _)| (result, words))
    }

    fn process_stop_on_any(
        &mut self,
        stops: &[char],
        raw_escapes: bool,
    ) -> Step<(String, Vec<String>, Option<char>)> {
        // The whole word's result is about as long as the rest of the text; a part that
        // stops at a closing character is short.
        let mut result = if stops.is_empty() {
            String::with_capacity(self.text.len() - self.pos)
        } else {
            String::new()
        };
        let mut words = Words::new(self.split);
        while let Some(ch) = self.peek() {
            if stops.contains(&ch) {
                self.next();
                return Ok((result, words.finish(), Some(ch)));
            }
            let quoted = !self.lexer.skip_process_quotes && (ch == '\'' || ch == '"');
            if quoted || ch == '$' {
                // Each piece is written straight into the result.
                let start = result.len();
                match ch {
                    '\'' => self.process_single_quote(&mut result)?,
                    '"' => self.process_double_quote(&mut result)?,
                    _ => self.process_dollar(&mut result)?,
                };
                let piece = &result[start..];
                if ch == '$' {
                    words.add_string(piece);
                } else {
                    words.add_raw_string(piece);
                }
                continue;
            }
            if ch != self.lexer.escape {
                // A run of plain characters, up to the next one that means something.
                let rest = &self.text[self.pos..];
                let plain = rest
                    .find(|c: char| !self.is_plain(c, stops))
                    .unwrap_or(rest.len());
                let run = &rest[..plain];
                words.add_string(run);
                result.push_str(run);
                self.pos += plain;
                continue;
            }
            let mut ch = self.next().unwrap_or_default();
            if ch == self.lexer.escape {
                if raw_escapes {
                    words.add_raw_char(ch);
                    result.push(ch);
                }
                match self.next() {
                    Some(escaped) => ch = escaped,
                    None => break,
                }
                words.add_raw_char(ch);
            } else {
                words.add_char(ch);
            }
            result.push(ch);
        }
        if let Some(stop) = stops.first() {
            return Err(WordError::Unterminated(stop.to_string()));
        }
        Ok((result, words.finish(), None))
    }

    /// Whether `c` is taken as it is, outside quotes: not a stop, `$`, the escape or a quote.
    fn is_plain(&self, c: char, stops: &[char]) -> bool {
        let quote = !self.lexer.skip_process_quotes && (c == '\'' || c == '"');
        !(quote || c == '$' || c == self.lexer.escape || stops.contains(&c))
    }

    fn process_single_quote(&mut self, result: &mut String) -> Step<()> {
        let open = self.next().unwrap_or('\'');
        if self.lexer.raw_quotes {
            result.push(open);
        }
        loop {
            match self.next() {
                None => return Err(WordError::Unterminated("single-quote".into())),
                Some('\'') => {
                    if self.lexer.raw_quotes {
                        result.push('\'');
                    }
                    return Ok(());
                }
                Some(ch) => result.push(ch),
            }
        }
    }

    fn process_double_quote(&mut self, result: &mut String) -> Step<()> {
        let open = self.next().unwrap_or('"');
        if self.lexer.raw_quotes {
            result.push(open);
        }
        loop {
            match self.peek() {
                None => return Err(WordError::Unterminated("double-quote".into())),
                Some('"') => {
                    self.next();
                    if self.lexer.raw_quotes {
                        result.push('"');
                    }
                    return Ok(());
                }
                Some('$') => self.process_dollar(result)?,
                Some(_) => {
                    let mut ch = self.next().unwrap_or_default();
                    if ch == self.lexer.escape {
                        if self.lexer.raw_escapes {
                            result.push(ch);
                        }
                        match self.peek() {
                            // An escape at the very end is dropped.
                            None => continue,
                            Some(next)
                                if next == '"' || next == '$' || next == self.lexer.escape =>
                            {
                                ch = next;
                                self.next();
                            }
                            Some(_) => {}
                        }
                    }
                    result.push(ch);
                }
            }
        }
    }

    /// Expands a `$` reference, writing its value to `result`.
    fn process_dollar(&mut self, result: &mut String) -> Step<()> {
        self.next(); // the '$'
        if self.peek() != Some('{') {
            let name = self.process_name();
            if name.is_empty() {
                result.push('$');
                return Ok(());
            }
            match self.getenv(name) {
                Some(value) => result.push_str(value),
                None if self.lexer.skip_unset => {
                    result.push('$');
                    result.push_str(name);
                }
                None => {}
            }
            return Ok(());
        }
        self.next(); // the '{'
        if self.depth >= MAX_NESTING {
            return Err(WordError::TooDeep);
        }
        self.depth += 1;
        let expanded = self.process_braced(result);
        self.depth -= 1;
        expanded
    }

    /// After `${`: the name, then `}` (the value is written to `result` as it is) or a
    /// modifier and its word.
    fn process_braced(&mut self, result: &mut String) -> Step<()> {
        match self.peek() {
            None => return Err(WordError::MissingBrace),
            Some('{' | '}' | ':') => return Err(WordError::BadSubstitution),
            Some(_) => {}
        }
        let name = self.process_name();
        let modifier = self.next();
        if modifier == Some('}') {
            match self.getenv(name) {
                Some(value) => result.push_str(value),
                None if self.lexer.skip_unset => {
                    result.push_str("${");
                    result.push_str(name);
                    result.push('}');
                }
                None => {}
            }
            return Ok(());
        }
        result.push_str(&self.process_modifier(name, modifier)?);
        Ok(())
    }

    /// `${name` and a modifier other than `}`: the modifier's word, and what the value
    /// becomes.
    fn process_modifier(&mut self, name: &'a str, modifier: Option<char>) -> Step<String> {
        match modifier {
            Some(':') => {
                let op = self.next();
                let word = self.stop_on_brace()?;
                let value = self.getenv(name);
                if self.lexer.skip_unset && value.is_none() {
                    return Ok(format!(
                        "${{{name}:{}{word}}}",
                        op.map(String::from).unwrap_or_default()
                    ));
                }
                let value = value.unwrap_or_default();
                match op {
                    Some('+') => Ok(if value.is_empty() {
                        String::new()
                    } else {
                        word
                    }),
                    Some('-') => Ok(if value.is_empty() {
                        word
                    } else {
                        value.to_string()
                    }),
                    Some('?') => {
                        if self.getenv(name).is_none() {
                            Err(required_message(name, &word, "is not allowed to be unset"))
                        } else if value.is_empty() {
                            Err(required_message(name, &word, "is not allowed to be empty"))
                        } else {
                            Ok(value.to_string())
                        }
                    }
                    other => Err(WordError::UnsupportedModifier(
                        other.map(String::from).unwrap_or_default(),
                    )),
                }
            }
            Some(op @ ('-' | '+' | '?')) => {
                let word = self.stop_on_brace()?;
                let value = self.getenv(name);
                if self.lexer.skip_unset && value.is_none() {
                    return Ok(format!("${{{name}{op}{word}}}"));
                }
                match (op, value) {
                    ('-', None) => Ok(word),
                    ('-', Some(v)) => Ok(v.to_string()),
                    ('+', None) => Ok(String::new()),
                    ('+', Some(_)) => Ok(word),
                    (_, None) => Err(required_message(name, &word, "is not allowed to be unset")),
                    (_, Some(v)) => Ok(v.to_string()),
                }
            }
            Some(op @ ('#' | '%')) => {
                let longest = self.peek() == Some(op);
                if longest {
                    self.next();
                }
                let pattern = self.stop_on_brace_raw()?;
                let Some(value) = self.getenv(name) else {
                    return Ok(if self.lexer.skip_unset {
                        format!(
                            "${{{name}{op}{}{pattern}}}",
                            if longest {
                                op.to_string()
                            } else {
                                String::new()
                            }
                        )
                    } else {
                        String::new()
                    });
                };
                let matcher = Pattern::new(&pattern, self.lexer.escape)?;
                Ok(if op == '#' {
                    matcher.trim_prefix(value, longest)
                } else {
                    matcher.trim_suffix(value, longest)
                })
            }
            Some('/') => {
                let all = self.peek() == Some('/');
                if all {
                    self.next();
                }
                let (pattern, _, stopped) = self
                    .process_stop_on_any(&['/', '}'], true)
                    .map_err(|e| self.missing_brace_or(e))?;
                let replacement = if stopped == Some('/') {
                    self.stop_on_brace()?
                } else {
                    String::new()
                };
                let Some(value) = self.getenv(name) else {
                    return Ok(String::new());
                };
                let matcher = Pattern::new(&pattern, self.lexer.escape)?;
                Ok(matcher.replace(value, &replacement, all))
            }
            None => Err(WordError::MissingBrace),
            Some(other) => Err(WordError::UnsupportedModifier(other.to_string())),
        }
    }

    fn missing_brace_or(&self, err: WordError) -> WordError {
        if self.peek().is_none() {
            WordError::MissingBrace
        } else {
            err
        }
    }

    fn stop_on_brace(&mut self) -> Step<String> {
        let raw = self.lexer.raw_escapes;
        self.process_stop_on(Some('}'), raw)
            .map(|(word, _)| word)
            .map_err(|e| self.missing_brace_or(e))
    }

    /// A glob pattern keeps its escapes so that `\*` stays a literal star.
    fn stop_on_brace_raw(&mut self) -> Step<String> {
        self.process_stop_on(Some('}'), true)
            .map(|(word, _)| word)
            .map_err(|e| self.missing_brace_or(e))
    }

    /// A variable name: letters, digits and `_`; or a run of digits (a positional
    /// parameter); or one special parameter character.
    /// The name is borrowed from the text: it is all the characters read.
    fn process_name(&mut self) -> &'a str {
        let text = self.text;
        let start = self.pos;
        while let Some(ch) = self.peek() {
            let empty = self.pos == start;
            if empty && ch.is_numeric() {
                while self.peek().is_some_and(|c| c.is_numeric()) {
                    self.next();
                }
                return &text[start..self.pos];
            }
            if empty && matches!(ch, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0') {
                self.next();
                return &text[start..self.pos];
            }
            if !ch.is_alphabetic() && !ch.is_numeric() && ch != '_' {
                break;
            }
            self.next();
        }
        &text[start..self.pos]
    }
}

fn required_message(name: &str, word: &str, default: &str) -> WordError {
    WordError::Required {
        name: name.to_string(),
        message: if word.is_empty() { default } else { word }.to_string(),
    }
}

/// A shell glob (`*`, `?`, escapes) used by the `#`, `%` and `/` operators.
struct Pattern {
    greedy: regex::Regex,
    whole: regex::Regex,
}

impl Pattern {
    fn new(pattern: &str, escape: char) -> Step<Pattern> {
        let mut body = String::new();
        let mut chars = pattern.chars();
        while let Some(ch) = chars.next() {
            match ch {
                '*' => body.push_str(".*"),
                '?' => body.push('.'),
                c if c == escape => {
                    if let Some(next) = chars.next() {
                        body.push_str(&regex::escape(&next.to_string()));
                    }
                }
                c => body.push_str(&regex::escape(&c.to_string())),
            }
        }
        let build = |re: String| {
            regex::RegexBuilder::new(&re)
                .dot_matches_new_line(true)
                .build()
                .map_err(|e| WordError::InvalidPattern {
                    pattern: pattern.to_string(),
                    reason: regex_reason(&e),
                })
        };
        Ok(Pattern {
            greedy: build(format!("(?:{body})"))?,
            whole: build(format!("^(?:{body})$"))?,
        })
    }

    fn boundaries(value: &str) -> Vec<usize> {
        let mut cuts: Vec<usize> = value.char_indices().map(|(i, _)| i).collect();
        cuts.push(value.len());
        cuts
    }

    fn trim_prefix(&self, value: &str, longest: bool) -> String {
        let cuts = Self::boundaries(value);
        let mut order: Box<dyn Iterator<Item = &usize>> = if longest {
            Box::new(cuts.iter().rev())
        } else {
            Box::new(cuts.iter())
        };
        match order.find(|&&cut| self.whole.is_match(&value[..cut])) {
            Some(&cut) => value[cut..].to_string(),
            None => value.to_string(),
        }
    }

    fn trim_suffix(&self, value: &str, longest: bool) -> String {
        let cuts = Self::boundaries(value);
        let mut order: Box<dyn Iterator<Item = &usize>> = if longest {
            Box::new(cuts.iter())
        } else {
            Box::new(cuts.iter().rev())
        };
        match order.find(|&&cut| self.whole.is_match(&value[cut..])) {
            Some(&cut) => value[..cut].to_string(),
            None => value.to_string(),
        }
    }

    fn replace(&self, value: &str, replacement: &str, all: bool) -> String {
        let replacement = regex::NoExpand(replacement);
        if all {
            self.greedy.replace_all(value, replacement).into_owned()
        } else {
            self.greedy.replace(value, replacement).into_owned()
        }
    }
}

/// The reason alone: a regex syntax error also prints the regex the pattern became,
/// over several lines, which means nothing to whoever wrote the pattern.
fn regex_reason(error: &regex::Error) -> String {
    let text = error.to_string();
    let last = text.lines().last().unwrap_or_default();
    last.strip_prefix("error: ").unwrap_or(last).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Vec<(String, String)> {
        [("PWD", "/home"), ("FILE", "archive.tar.gz"), ("EMPTY", "")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn word(text: &str) -> Result<String, ExpandError> {
        Lexer::new('\\').process_word(text, &env())
    }

    #[test]
    fn pattern_operators() {
        assert_eq!(word("${FILE#*.}").unwrap(), "tar.gz");
        assert_eq!(word("${FILE##*.}").unwrap(), "gz");
        assert_eq!(word("${FILE%.*}").unwrap(), "archive.tar");
        assert_eq!(word("${FILE%%.*}").unwrap(), "archive");
        assert_eq!(word("${FILE/a/A}").unwrap(), "Archive.tar.gz");
        assert_eq!(
            word("${FILE//a/A}").unwrap(),
            "ArchivE.tAr.gz".replace('E', "e")
        );
        assert_eq!(word("${FILE/\\*/x}").unwrap(), "archive.tar.gz");
        assert_eq!(word("${NOPE#x}").unwrap(), "");
    }

    #[test]
    fn required_and_alternatives() {
        assert_eq!(word("${PWD:?}").unwrap(), "/home");
        assert_eq!(
            word("${EMPTY:?must be set}").unwrap_err().message,
            WordError::Required {
                name: "EMPTY".into(),
                message: "must be set".into()
            }
        );
        assert_eq!(word("${EMPTY?}").unwrap(), "");
        assert_eq!(word("${EMPTY-x}").unwrap(), "");
        assert_eq!(word("${EMPTY:-x}").unwrap(), "x");
        assert_eq!(word("${EMPTY+x}").unwrap(), "x");
        assert_eq!(word("${EMPTY:+x}").unwrap(), "");
    }

    #[test]
    fn skip_unset_keeps_references() {
        let mut lexer = Lexer::new('\\');
        lexer.skip_unset = true;
        assert_eq!(
            lexer.process_word("$A ${B} ${C:-d}", &NoVariables).unwrap(),
            "$A ${B} ${C:-d}"
        );
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let text = "${a:-".repeat(100_000);
        assert_eq!(word(&text).unwrap_err().message, WordError::TooDeep);
    }

    #[test]
    fn backtick_escape() {
        let lexer = Lexer::new('`');
        assert_eq!(lexer.process_word("a`$PWD\\b", &env()).unwrap(), "a$PWD\\b");
    }

    #[test]
    fn heredoc_bodies_keep_quotes() {
        let mut lexer = Lexer::new('\\');
        lexer.skip_process_quotes = true;
        assert_eq!(
            lexer.process_word("echo \"$PWD\" '$PWD'", &env()).unwrap(),
            "echo \"/home\" '/home'"
        );
    }
}
