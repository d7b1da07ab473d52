//! The pest grammar binding: Dockerfile text to a syntax tree of nodes shaped like
//! BuildKit's (keyword, builder flags, arguments split per instruction, heredocs), each
//! with its source location. No instruction-specific validation happens here; that is
//! `instructions.rs`.

use std::borrow::Cow;
use std::sync::Arc;

use pest::iterators::Pair;
use pest::Parser as _;

use super::error::{ErrorKind, ParseError, Source};
use super::expand::{Lexer, NoVariables};

#[derive(pest_derive::Parser)]
#[grammar = "../grammar/dockerfile.pest"]
struct Grammar;

/// Parser directives from the top of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directives {
    /// The escape and line-continuation character.
    pub escape: char,
    pub syntax: Option<String>,
    pub check: Option<String>,
}

impl Default for Directives {
    fn default() -> Self {
        Directives {
            escape: '\\',
            syntax: None,
            check: None,
        }
    }
}

/// A parsed file: its directives and one node per instruction, in source order.
#[derive(Debug, Clone)]
pub struct SyntaxTree {
    pub directives: Directives,
    pub nodes: Vec<Node>,
}

/// One instruction as written.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub flags: Vec<Flag>,
    pub args: Args,
    pub heredocs: Vec<Heredoc>,
    /// The joined logical line, trimmed; shared with the instruction and the steps made
    /// from it.
    pub original: Arc<str>,
    /// The keyword is the start of `original`, this long.
    keyword_len: usize,
    /// First and last physical line (1-based), heredoc bodies included.
    pub start_line: usize,
    pub end_line: usize,
    /// Maps offsets in `original` back to byte offsets in the source.
    pub(crate) map: OffsetMap,
}

impl Node {
    /// The keyword as written (any case).
    pub fn keyword(&self) -> &str {
        &self.original[..self.keyword_len]
    }

    /// Byte offset in the source of a byte offset in `original`.
    pub fn source_offset(&self, offset_in_original: usize) -> usize {
        self.map.source_offset(offset_in_original)
    }
}

/// A builder flag such as `--from=build`, quotes removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flag {
    /// The flag without its leading `--`.
    pub text: String,
    /// Offset of the flag in the node's `original`.
    pub offset: usize,
}

/// Arguments, split the way BuildKit splits them for each instruction.
#[derive(Debug, Clone, PartialEq)]
pub enum Args {
    /// No arguments.
    Empty,
    /// A JSON array of strings (exec form).
    Json(Vec<String>),
    /// One verbatim string: shell form, or USER, WORKDIR, MAINTAINER, STOPSIGNAL.
    Text(String),
    /// Values split on whitespace, quotes not respected (FROM, EXPOSE, non-JSON ADD/COPY/VOLUME).
    List(Vec<String>),
    /// Quote-aware words, quotes kept (ARG).
    Words(Vec<String>),
    /// ENV and LABEL pairs. `legacy` is the `KEY value...` form.
    KeyValues {
        pairs: Vec<(String, String)>,
        legacy: bool,
    },
    /// HEALTHCHECK: the type word (`CMD`, `NONE`, ...) and the command.
    Healthcheck { kind: String, command: Box<Args> },
    /// ONBUILD: the instruction it wraps.
    OnBuild(Box<Node>),
    /// An unknown instruction; the instruction layer reports it.
    Unknown,
}

/// A here-document attached to RUN, COPY or ADD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// The delimiter word, quotes removed.
    pub name: String,
    /// The body, each line with its line ending; leading tabs removed for `<<-`.
    pub content: String,
    /// False when the delimiter was quoted: the body is taken literally.
    pub expand: bool,
    /// `<<-`: leading tabs were stripped.
    pub chomp: bool,
    /// `N<<EOF`: the file descriptor the body is fed to.
    pub fd: Option<u32>,
}

/// Offsets in a logical line back to the source: each piece starts at `logical` in the
/// joined line and at `source` in the file. Most lines are one piece, kept without a
/// list of its own.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct OffsetMap {
    first: Option<(usize, usize)>,
    rest: Vec<(usize, usize)>,
}

impl OffsetMap {
    fn push(&mut self, logical: usize, source: usize) {
        if self.first.is_none() {
            self.first = Some((logical, source));
        } else {
            self.rest.push((logical, source));
        }
    }

    fn pieces(&self) -> impl Iterator<Item = &(usize, usize)> {
        self.first.iter().chain(&self.rest)
    }

    pub(crate) fn source_offset(&self, logical: usize) -> usize {
        let Some(first) = self.first else { return 0 };
        let i = self.rest.partition_point(|&(l, _)| l <= logical);
        let (l, s) = match i.checked_sub(1) {
            Some(i) => self.rest[i],
            None if first.0 <= logical => first,
            None => return first.1,
        };
        s + (logical - l)
    }

    /// The map of a substring that starts at `logical` in this line.
    fn shifted(&self, logical: usize) -> OffsetMap {
        let mut map = OffsetMap {
            first: Some((0, self.source_offset(logical))),
            rest: Vec::new(),
        };
        map.rest.extend(
            self.pieces()
                .filter(|&&(l, _)| l > logical)
                .map(|&(l, s)| (l - logical, s)),
        );
        map
    }
}

/// Parses the whole file into a syntax tree.
pub fn parse_syntax(source: &Source) -> Result<SyntaxTree, ParseError> {
    let items = Items::read(source)?;
    let mut nodes = Vec::with_capacity(items.logical_lines());
    let directives = items.for_each_node(|node| nodes.push(node))?;
    Ok(SyntaxTree { directives, nodes })
}

/// A file's directives and its items as one pest call reads them, before they become
/// nodes.
pub(crate) struct Items<'s> {
    source: &'s Source,
    directives: Directives,
    /// Where the items start: after the byte order mark and the directives.
    start: usize,
    batch: Vec<Pair<'s, Rule>>,
    item_rule: Rule,
}

impl<'s> Items<'s> {
    /// Reads the directives, then all items in one pest call. A heredoc body is not
    /// items, but the batch reads it as if it were: `for_each_node` sorts that out.
    pub(crate) fn read(source: &'s Source) -> Result<Items<'s>, ParseError> {
        let text = source.text();
        let mut start = if text.starts_with('\u{FEFF}') { 3 } else { 0 };
        let directives = parse_directives(source, &mut start)?;
        let (items_rule, item_rule) = match directives.escape {
            '`' => (Rule::items_backtick, Rule::item_backtick),
            _ => (Rule::items_backslash, Rule::item_backslash),
        };
        let pairs = Grammar::parse(items_rule, &text[start..])
            .map_err(|e| source.error_at(start, ErrorKind::Grammar(e.to_string())))?;
        let mut batch = Vec::with_capacity(pairs.len());
        batch.extend(pairs.filter(|pair| pair.as_rule() != Rule::EOI));
        Ok(Items {
            source,
            directives,
            start,
            batch,
            item_rule,
        })
    }

    /// How many nodes the file has at most: its logical lines (some may be heredoc
    /// bodies).
    pub(crate) fn logical_lines(&self) -> usize {
        self.batch
            .iter()
            .filter(|pair| is_logical_line(pair.as_rule()))
            .count()
    }

    /// Hands each node to `each` as soon as it is read, in source order: a caller that
    /// turns nodes into something else holds no list of them. Returns the directives.
    ///
    /// After a heredoc body, one-item calls take over until an item boundary lines up
    /// with the batch again, so each byte is read at most twice.
    pub(crate) fn for_each_node(
        self,
        mut each: impl FnMut(Node),
    ) -> Result<Directives, ParseError> {
        let Items {
            source,
            directives,
            start: batch_start,
            batch,
            item_rule,
        } = self;
        let text = source.text();
        let mut pos = batch_start;
        let mut next = 0;
        let mut any_node = false;
        while pos < text.len() {
            while next < batch.len() && batch_start + batch[next].as_span().start() < pos {
                next += 1;
            }
            let (item, item_base) = if next < batch.len()
                && batch_start + batch[next].as_span().start() == pos
            {
                next += 1;
                (batch[next - 1].clone(), batch_start)
            } else {
                let item = Grammar::parse(item_rule, &text[pos..])
                    .map_err(|e| source.error_at(pos, ErrorKind::Grammar(e.to_string())))?
                    .next()
                    .ok_or_else(|| source.error_at(pos, ErrorKind::Grammar("empty item".into())))?;
                (item, pos)
            };
            let item_end = item_base + item.as_span().end();
            if is_logical_line(item.as_rule()) {
                let mut node = logical_line_node(source, &directives, item, item_base)?;
                let mut end = item_end;
                if !node.heredocs.is_empty() {
                    end = read_heredoc_bodies(source, &mut node, end)?;
                }
                node.end_line = source.line_of(end.saturating_sub(1).max(pos));
                each(node);
                any_node = true;
                pos = end;
            } else {
                pos = item_end;
            }
        }
        if !any_node {
            return Err(source.error_at(text.len(), ErrorKind::NoInstructions));
        }
        Ok(directives)
    }
}

/// Whether an item is a logical line (an instruction), not a blank or comment line.
fn is_logical_line(rule: Rule) -> bool {
    matches!(
        rule,
        Rule::logical_line_backslash
            | Rule::indented_line_backslash
            | Rule::logical_line_backtick
            | Rule::indented_line_backtick
    )
}

/// Reads `# name = value` lines at the top of the file until the first line that is not
/// a known directive.
fn parse_directives(source: &Source, pos: &mut usize) -> Result<Directives, ParseError> {
    let text = source.text();
    let mut directives = Directives::default();
    let mut seen: Vec<String> = Vec::new();
    while *pos < text.len() {
        // A directive is one line: pest gets only that line, as its pairs index the lines
        // of all the input they are given (and its error for the line that ends the
        // directives locates itself in it).
        let line_end = text[*pos..].find('\n').map_or(text.len(), |i| *pos + i + 1);
        let Ok(mut pairs) = Grammar::parse(Rule::directive, &text[*pos..line_end]) else {
            break;
        };
        let Some(pair) = pairs.next() else { break };
        let mut inner = pair.clone().into_inner();
        let (Some(name), Some(value)) = (inner.next(), inner.next()) else {
            break;
        };
        let name = name.as_str().to_ascii_lowercase();
        let value_offset = *pos + value.as_span().start();
        let value = value
            .as_str()
            .trim_matches([' ', '\t', '\u{0C}', '\r'])
            .to_string();
        if !matches!(name.as_str(), "syntax" | "escape" | "check") || value.is_empty() {
            break;
        }
        if seen.contains(&name) {
            return Err(source.error_at(*pos, ErrorKind::DuplicateDirective(name)));
        }
        match name.as_str() {
            "escape" => {
                directives.escape = match value.as_str() {
                    "\\" => '\\',
                    "`" => '`',
                    _ => return Err(source.error_at(value_offset, ErrorKind::InvalidEscape(value))),
                }
            }
            "syntax" => directives.syntax = Some(value),
            _ => directives.check = Some(value),
        }
        seen.push(name);
        *pos += pair.as_span().end();
    }
    Ok(directives)
}

/// Joins a logical line's segments and parses it into a node.
fn logical_line_node(
    source: &Source,
    directives: &Directives,
    item: Pair<'_, Rule>,
    item_pos: usize,
) -> Result<Node, ParseError> {
    // Most logical lines are one physical line: their text is borrowed, not copied.
    let mut joined: Cow<'_, str> = Cow::Borrowed("");
    let mut map = OffsetMap::default();
    let item_len = item.as_span().end() - item.as_span().start();
    for piece in item.into_inner() {
        if matches!(
            piece.as_rule(),
            Rule::segment_backslash | Rule::segment_backtick
        ) {
            map.push(joined.len(), item_pos + piece.as_span().start());
            if joined.is_empty() {
                joined = Cow::Borrowed(piece.as_str());
            } else {
                if let Cow::Borrowed(first) = joined {
                    // The line's text is at most as long as the item.
                    let mut owned = String::with_capacity(item_len);
                    owned.push_str(first);
                    joined = Cow::Owned(owned);
                }
                joined.to_mut().push_str(piece.as_str());
            }
        }
    }
    let start_offset = map.source_offset(0);
    let start_line = source.line_of(start_offset);
    let mut node = node_from_line(source, directives, &joined, map)?;
    node.start_line = start_line;

    if can_contain_heredoc(&node) && joined.contains("<<") {
        node.heredocs =
            heredocs_from_line(&joined).map_err(|kind| source.error_at(start_offset, kind))?;
    }
    Ok(node)
}

/// BuildKit's `newNodeFromLine`: keyword, flags, then arguments split per instruction.
fn node_from_line(
    source: &Source,
    directives: &Directives,
    line: &str,
    map: OffsetMap,
) -> Result<Node, ParseError> {
    node_from_line_at_depth(source, directives, line, map, 0)
}

fn node_from_line_at_depth(
    source: &Source,
    directives: &Directives,
    line: &str,
    map: OffsetMap,
    depth: usize,
) -> Result<Node, ParseError> {
    let lead = line.len() - line.trim_start().len();
    let trimmed = line.trim();
    // The grammar trims the line's leading whitespace already, so the map usually fits.
    let map = if lead == 0 && map.first.is_some_and(|(l, _)| l == 0) {
        map
    } else {
        map.shifted(lead)
    };
    let mut keyword_len = 0;
    let mut flags = Vec::new();
    // The arguments are what follows the keyword and the flags.
    let mut args_offset = 0;
    if !trimmed.is_empty() {
        let keyword_end = trimmed.find(is_split_space).unwrap_or(trimmed.len());
        keyword_len = keyword_end;
        let spaces = trimmed[keyword_end..].len()
            - trimmed[keyword_end..]
                .trim_start_matches(is_split_space)
                .len();
        args_offset = keyword_end + spaces;
        if spaces > 0 {
            args_offset = read_flags(trimmed, args_offset, &mut flags);
        }
    }
    let args_text = &trimmed[args_offset..];
    let args_lead = args_text.len() - args_text.trim_start().len();
    let args_text = args_text.trim();
    let args_start = args_offset + args_lead;
    let args = split_arguments(
        source,
        directives,
        &trimmed[..keyword_len],
        args_text,
        &map,
        args_start,
        depth,
    )?;
    Ok(Node {
        flags,
        args,
        heredocs: Vec::new(),
        original: Arc::from(trimmed),
        keyword_len,
        start_line: 0,
        end_line: 0,
        map,
    })
}

/// Reads builder flags (BuildKit's `extractBuilderFlags`) from `line[start..]`: words
/// starting with `--`, up to the first word that does not; a bare `--` ends them and is
/// dropped. Quotes are removed and `\` takes the next character literally, whatever the
/// escape directive says. Flags after one quoted away to nothing (`--""`) are read but
/// not kept. Returns where the arguments start.
///
/// Keyword and flags are read here rather than by the grammar: they are a few words at
/// the start of the joined line, and a grammar rule per character costs about a hundred
/// times what this loop does.
fn read_flags(line: &str, start: usize, flags: &mut Vec<Flag>) -> usize {
    let bytes = line.as_bytes();
    let mut end = start;
    let mut keep = true;
    loop {
        let at = end + (line[end..].len() - line[end..].trim_start().len());
        if !line[at..].starts_with("--") {
            return end;
        }
        let after = &line[at + 2..];
        if after.is_empty() || after.starts_with(char::is_whitespace) {
            // `--` alone ends the flags.
            return at + 2;
        }
        let mut text = String::new();
        let mut pos = at + 2;
        let mut quote: Option<u8> = None;
        while pos < bytes.len() {
            let c = bytes[pos];
            match (c, quote) {
                (b'\\', _) => {
                    pos += 1;
                    if let Some(next) = line[pos..].chars().next() {
                        text.push(next);
                        pos += next.len_utf8();
                    }
                }
                (b'"' | b'\'', None) => {
                    quote = Some(c);
                    pos += 1;
                }
                (_, Some(open)) if c == open => {
                    quote = None;
                    pos += 1;
                }
                (_, Some(open)) => {
                    // Inside quotes: up to the closing quote or an escape.
                    let run = line[pos..]
                        .find(|ch| ch == '\\' || ch == char::from(open))
                        .unwrap_or(line.len() - pos);
                    text.push_str(&line[pos..pos + run]);
                    pos += run;
                }
                _ => {
                    let run = line[pos..]
                        .find(|ch: char| ch.is_whitespace() || matches!(ch, '"' | '\'' | '\\'))
                        .unwrap_or(line.len() - pos);
                    if run == 0 {
                        // Whitespace outside quotes ends the flag.
                        break;
                    }
                    text.push_str(&line[pos..pos + run]);
                    pos += run;
                }
            }
        }
        if keep {
            if text.is_empty() {
                // A flag quoted away to nothing ends the flags that are kept.
                keep = false;
            } else {
                flags.push(Flag { text, offset: at });
            }
        }
        end = pos;
    }
}

/// ONBUILD wraps one instruction; nesting (refused later) is parsed only this deep.
const MAX_ONBUILD_DEPTH: usize = 4;

fn split_arguments(
    source: &Source,
    directives: &Directives,
    keyword: &str,
    rest: &str,
    map: &OffsetMap,
    rest_start: usize,
    depth: usize,
) -> Result<Args, ParseError> {
    let at_start = |kind| source.error_at(map.source_offset(rest_start), kind);
    Ok(match LowerKeyword::new(keyword).as_str() {
        "from" | "expose" => split_whitespace_list(rest),
        "add" | "copy" | "volume" => match parse_json(rest) {
            JsonArgs::Array(items) => Args::Json(items),
            JsonArgs::NotStrings => return Err(at_start(ErrorKind::NotStringArray)),
            JsonArgs::Plain => split_whitespace_list(rest),
        },
        "run" | "cmd" | "entrypoint" | "shell" => maybe_json(rest).map_err(at_start)?,
        "user" | "workdir" | "maintainer" | "stopsignal" => {
            if rest.is_empty() {
                Args::Empty
            } else {
                Args::Text(rest.to_string())
            }
        }
        "arg" => Args::Words(
            words(directives, rest)
                .into_iter()
                .map(str::to_string)
                .collect(),
        ),
        "env" | "label" => key_values(directives, keyword, rest).map_err(at_start)?,
        "healthcheck" => {
            let kind_end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            if kind_end == 0 {
                Args::Empty
            } else {
                let command = maybe_json(rest[kind_end..].trim_start()).map_err(at_start)?;
                Args::Healthcheck {
                    kind: rest[..kind_end].to_string(),
                    command: Box::new(command),
                }
            }
        }
        "onbuild" => {
            if rest.is_empty() {
                Args::Empty
            } else if depth >= MAX_ONBUILD_DEPTH {
                return Err(at_start(ErrorKind::Invalid(format!(
                    "ONBUILD nested more than {MAX_ONBUILD_DEPTH} deep"
                ))));
            } else {
                let inner = node_from_line_at_depth(
                    source,
                    directives,
                    rest,
                    map.shifted(rest_start),
                    depth + 1,
                )?;
                Args::OnBuild(Box::new(inner))
            }
        }
        _ => Args::Unknown,
    })
}

/// A keyword in lower case, without allocating: no keyword is longer than `HEALTHCHECK`,
/// and a longer word is no keyword (it reads as the empty string).
struct LowerKeyword {
    bytes: [u8; 11],
    len: usize,
}

impl LowerKeyword {
    fn new(word: &str) -> LowerKeyword {
        let mut bytes = [0; 11];
        let len = if word.len() <= bytes.len() {
            bytes[..word.len()].copy_from_slice(word.as_bytes());
            bytes[..word.len()].make_ascii_lowercase();
            word.len()
        } else {
            0
        };
        LowerKeyword { bytes, len }
    }

    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or_default()
    }
}

fn split_whitespace_list(rest: &str) -> Args {
    if rest.is_empty() {
        return Args::Empty;
    }
    Args::List(
        rest.split(is_split_space)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
    )
}

/// The whitespace BuildKit splits keywords and lists on: `[\t\v\f\r ]`.
fn is_split_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\u{0B}' | '\u{0C}' | '\r')
}

enum JsonArgs {
    Array(Vec<String>),
    NotStrings,
    Plain,
}

fn parse_json(rest: &str) -> JsonArgs {
    let rest = rest.trim_start();
    if !rest.starts_with('[') {
        return JsonArgs::Plain;
    }
    // Most arrays are of strings and read straight into them; anything else is told
    // apart by reading it as values.
    if let Ok(items) = serde_json::from_str::<Vec<String>>(rest) {
        return JsonArgs::Array(items);
    }
    match serde_json::from_str::<Vec<serde_json::Value>>(rest) {
        Err(_) => JsonArgs::Plain,
        Ok(values) => values
            .into_iter()
            .map(|v| match v {
                serde_json::Value::String(s) => Some(s),
                _ => None,
            })
            .collect::<Option<Vec<_>>>()
            .map_or(JsonArgs::NotStrings, JsonArgs::Array),
    }
}

/// JSON array if it parses, else the whole text as one shell-form string.
fn maybe_json(rest: &str) -> Result<Args, ErrorKind> {
    if rest.is_empty() {
        return Ok(Args::Empty);
    }
    match parse_json(rest) {
        JsonArgs::Array(items) => Ok(Args::Json(items)),
        JsonArgs::NotStrings => Err(ErrorKind::NotStringArray),
        JsonArgs::Plain => Ok(Args::Text(rest.to_string())),
    }
}

/// Quote-aware words, quotes and escapes kept (BuildKit's `parseWords`), borrowed from
/// `rest`: only whitespace outside quotes separates words; the escape character takes
/// the next character into the word, and one at the very end of the text is dropped.
fn words<'a>(directives: &Directives, rest: &'a str) -> Vec<&'a str> {
    let escape = directives.escape;
    let mut words = Vec::new();
    let mut chars = rest.char_indices();
    let mut start: Option<usize> = None;
    let mut quote: Option<char> = None;
    while let Some((at, c)) = chars.next() {
        if c.is_ascii_graphic() && c != '"' && c != '\'' && c != escape {
            // A character that is part of a word whatever the quotes.
            start.get_or_insert(at);
            continue;
        }
        if quote.is_none() && c.is_whitespace() {
            if let Some(from) = start.take() {
                words.push(&rest[from..at]);
            }
            continue;
        }
        start.get_or_insert(at);
        match quote {
            // No escapes between single quotes.
            Some('\'') if c == '\'' => quote = None,
            Some('\'') => {}
            _ if c == escape => {
                // The escape takes the next character into the word; a dangling one at
                // the very end is dropped, and the word stops before it.
                let dangling = chars.next().is_none();
                if dangling {
                    if let Some(from) = start.take() {
                        words.push(&rest[from..at]);
                    }
                }
            }
            Some(_) if c == '"' => quote = None,
            Some(_) => {}
            None if c == '"' || c == '\'' => quote = Some(c),
            None => {}
        }
    }
    if let Some(from) = start {
        words.push(&rest[from..]);
    }
    words
}

fn key_values(directives: &Directives, keyword: &str, rest: &str) -> Result<Args, ErrorKind> {
    let words = words(directives, rest);
    let Some(first) = words.first() else {
        return Err(ErrorKind::MissingArguments {
            instruction: keyword.to_ascii_uppercase(),
            expected: "requires at least one argument, as in NAME=VALUE",
        });
    };
    if !first.contains('=') {
        let mut parts = rest.splitn(2, is_split_space);
        let key = parts.next().unwrap_or_default();
        let value = parts.next().map(|v| v.trim_start_matches(is_split_space));
        return match value {
            Some(value) => Ok(Args::KeyValues {
                pairs: vec![(key.to_string(), value.to_string())],
                legacy: true,
            }),
            None => Err(ErrorKind::MissingArguments {
                instruction: keyword.to_ascii_uppercase(),
                expected: "must have two arguments: NAME VALUE, or NAME=VALUE",
            }),
        };
    }
    let pairs = words
        .into_iter()
        .map(|word| match word.split_once('=') {
            Some((k, v)) => Ok((k.to_string(), v.to_string())),
            None => Err(ErrorKind::MissingEquals(word.to_string())),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Args::KeyValues {
        pairs,
        legacy: false,
    })
}

/// Only RUN, COPY and ADD (also under ONBUILD) in their non-JSON form take heredocs.
fn can_contain_heredoc(node: &Node) -> bool {
    let node = match &node.args {
        Args::OnBuild(inner) if node.keyword().eq_ignore_ascii_case("onbuild") => inner,
        _ => node,
    };
    ["run", "copy", "add"]
        .iter()
        .any(|k| node.keyword().eq_ignore_ascii_case(k))
        && !matches!(node.args, Args::Json(_))
}

/// Finds `<<EOF`, `<<-EOF`, `<<"EOF"`, `3<<EOF` words in a line (BuildKit's
/// `heredocsFromLine`).
fn heredocs_from_line(line: &str) -> Result<Vec<Heredoc>, ErrorKind> {
    let mut raw = Lexer::new('\\');
    raw.raw_quotes = true;
    raw.raw_escapes = true;
    let Ok(words) = raw.process_words(line, &NoVariables) else {
        return Ok(Vec::new());
    };
    let mut docs = Vec::new();
    for word in words {
        if let Some(doc) = parse_heredoc_marker(&word)? {
            docs.push(doc);
        }
    }
    Ok(docs)
}

/// Parses one word of the form `(\d*)<<(-?)([^<]*)`.
pub(crate) fn parse_heredoc_marker(word: &str) -> Result<Option<Heredoc>, ErrorKind> {
    let digits = word.len() - word.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let Some(after) = word[digits..].strip_prefix("<<") else {
        return Ok(None);
    };
    let (chomp, rest) = match after.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, after),
    };
    if rest.is_empty() || rest.contains('<') {
        return Ok(None);
    }
    let mut lexer = Lexer::new('\\');
    lexer.skip_unset = true;
    let Ok(words) = lexer.process_words(rest, &NoVariables) else {
        return Ok(None);
    };
    if words.len() != 1 {
        return Ok(None);
    }
    lexer.raw_quotes = true;
    let raw_words = lexer
        .process_words(rest, &NoVariables)
        .map_err(|e| ErrorKind::Invalid(format!("cannot read heredoc delimiter: {e}")))?;
    let count_quotes = |s: &str| s.chars().filter(|&c| c == '\'' || c == '"').count();
    let expand = raw_words.len() == 1 && count_quotes(&words[0]) == count_quotes(&raw_words[0]);
    Ok(Some(Heredoc {
        name: words[0].clone(),
        content: String::new(),
        expand,
        chomp,
        fd: if digits > 0 {
            word[..digits].parse().ok()
        } else {
            None
        },
    }))
}

/// Reads the bodies of a node's heredocs, in order, from `pos`; returns the offset after
/// the last terminator.
fn read_heredoc_bodies(
    source: &Source,
    node: &mut Node,
    mut pos: usize,
) -> Result<usize, ParseError> {
    let text = source.text();
    let start = node.source_offset(0);
    for doc in &mut node.heredocs {
        let mut terminated = false;
        while pos < text.len() {
            let end = text[pos..].find('\n').map_or(text.len(), |i| pos + i + 1);
            let line = &text[pos..end];
            pos = end;
            let mut candidate = line.trim_end_matches(['\r', '\n']);
            if doc.chomp {
                candidate = candidate.trim_start_matches('\t');
            }
            if candidate == doc.name {
                terminated = true;
                break;
            }
            if doc.chomp {
                doc.content.push_str(line.trim_start_matches('\t'));
            } else {
                doc.content.push_str(line);
            }
        }
        if !terminated {
            return Err(source.error_at(start, ErrorKind::UnterminatedHeredoc(doc.name.clone())));
        }
    }
    Ok(pos)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<SyntaxTree, ParseError> {
        parse_syntax(&Source::new("Dockerfile", text.to_string()))
    }

    #[test]
    fn continuation_keeps_next_line_verbatim() {
        let tree = parse("RUN echo hello\\\n  world\n").unwrap();
        assert_eq!(tree.nodes[0].args, Args::Text("echo hello  world".into()));
    }

    #[test]
    fn escaped_escape_does_not_continue() {
        let tree = parse("ENV C a\\\\\nENV D b\n").unwrap();
        assert_eq!(tree.nodes.len(), 2);
    }

    #[test]
    fn crlf_and_bom() {
        let tree = parse("\u{FEFF}FROM a\r\nRUN b \\\r\n c\r\n").unwrap();
        assert_eq!(tree.nodes[0].args, Args::List(vec!["a".into()]));
        assert_eq!(tree.nodes[1].args, Args::Text("b  c".into()));
        assert_eq!((tree.nodes[1].start_line, tree.nodes[1].end_line), (2, 3));
    }

    #[test]
    fn backtick_escape_directive() {
        let tree = parse("# escape=`\nFROM a\nRUN dir c:\\ `\n  d\n").unwrap();
        assert_eq!(tree.directives.escape, '`');
        assert_eq!(tree.nodes[1].args, Args::Text("dir c:\\   d".into()));
    }

    #[test]
    fn directive_after_other_line_is_a_comment() {
        let tree = parse("FROM a\n# escape=`\nRUN x \\\n y\n").unwrap();
        assert_eq!(tree.directives.escape, '\\');
        assert_eq!(tree.nodes[1].args, Args::Text("x  y".into()));
    }

    #[test]
    fn duplicate_and_invalid_directives() {
        let err = parse("# escape=`\n# escape=\\\nFROM a\n").unwrap_err();
        assert_eq!(err.kind, ErrorKind::DuplicateDirective("escape".into()));
        assert_eq!(err.location.line, 2);
        let err = parse("# escape=x\nFROM a\n").unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidEscape("x".into()));
    }

    #[test]
    fn heredocs_are_not_instructions() {
        let text =
            "FROM a\nCOPY <<a <<-b /dest/\nFROM x\na\n\t\tline b\n\tb\nRUN <<'EOF'\n$HOME\nEOF\n";
        let tree = parse(text).unwrap();
        assert_eq!(tree.nodes.len(), 3);
        let copy = &tree.nodes[1];
        assert_eq!(copy.heredocs.len(), 2);
        assert_eq!(copy.heredocs[0].content, "FROM x\n");
        assert_eq!(copy.heredocs[1].content, "line b\n");
        assert!(copy.heredocs[1].chomp);
        assert_eq!((copy.start_line, copy.end_line), (2, 6));
        let run = &tree.nodes[2];
        assert_eq!(run.heredocs[0].name, "EOF");
        assert!(!run.heredocs[0].expand);
        assert_eq!(run.heredocs[0].content, "$HOME\n");
    }

    #[test]
    fn heredoc_bodies_with_continuations_realign() {
        // The batch reads `a \` + `EOF` + `RUN b` as one instruction; the real items
        // resume after the terminator.
        let tree = parse("FROM x\nRUN cat <<EOF\na \\\nEOF\nRUN b\nRUN c\n").unwrap();
        let args: Vec<&Args> = tree.nodes.iter().map(|n| &n.args).collect();
        assert_eq!(args.len(), 4);
        assert_eq!(tree.nodes[1].heredocs[0].content, "a \\\n");
        assert_eq!(*args[2], Args::Text("b".into()));
        assert_eq!(*args[3], Args::Text("c".into()));
        assert_eq!((tree.nodes[3].start_line, tree.nodes[3].end_line), (6, 6));
    }

    #[test]
    fn heredoc_needs_terminator() {
        let err = parse("FROM a\nRUN <<EOF\necho\n").unwrap_err();
        assert_eq!(err.kind, ErrorKind::UnterminatedHeredoc("EOF".into()));
        assert_eq!(err.location.line, 2);
    }

    #[test]
    fn json_form_has_no_heredoc() {
        let tree = parse("RUN [\"<<EOF\"]\nFROM b\n").unwrap();
        assert_eq!(tree.nodes.len(), 2);
        assert!(tree.nodes[0].heredocs.is_empty());
    }

    #[test]
    fn flag_offsets_point_into_the_source() {
        let text = "FROM a\nCOPY \\\n   --chown=1 a b\n";
        let source = Source::new("Dockerfile", text.to_string());
        let tree = parse_syntax(&source).unwrap();
        let copy = &tree.nodes[1];
        let offset = copy.source_offset(copy.flags[0].offset);
        let location = source.location(offset);
        assert_eq!((location.line, location.column), (3, 4));
    }

    #[test]
    fn onbuild_chains_are_bounded() {
        let text = format!("{}RUN x\n", "ONBUILD ".repeat(100_000));
        let err = parse(&text).unwrap_err();
        assert!(err.to_string().contains("nested"), "{err}");
    }

    #[test]
    fn flags_as_buildkit_reads_them() {
        let tree = parse(
            "FROM a\nCOPY --from=a --chown=\"1 2\" --x=b\\ c src dst\nRUN -- echo\nRUN --\"\" --mount=x echo\nRUN --a='q\\'x' b\n",
        )
        .unwrap();
        let texts = |n: &Node| n.flags.iter().map(|f| f.text.clone()).collect::<Vec<_>>();
        assert_eq!(texts(&tree.nodes[1]), ["from=a", "chown=1 2", "x=b c"]);
        assert_eq!(tree.nodes[1].flags[1].offset, 14);
        assert_eq!(
            tree.nodes[1].args,
            Args::List(vec!["src".into(), "dst".into()])
        );
        assert!(tree.nodes[2].flags.is_empty());
        assert_eq!(tree.nodes[2].args, Args::Text("echo".into()));
        // A flag quoted away to nothing: the flags after it are read, not kept.
        assert!(tree.nodes[3].flags.is_empty());
        assert_eq!(tree.nodes[3].args, Args::Text("echo".into()));
        assert_eq!(texts(&tree.nodes[4]), ["a=q'x"]);
        assert_eq!(tree.nodes[4].args, Args::Text("b".into()));
    }

    #[test]
    fn words_keep_quotes_and_escapes() {
        let directives = Directives::default();
        assert_eq!(
            words(&directives, " a=\"b c\" d\\ e 'f g'h \"i\\\"j\" k\\"),
            ["a=\"b c\"", "d\\ e", "'f g'h", "\"i\\\"j\"", "k"]
        );
        assert_eq!(words(&directives, "'a\\"), ["'a\\"]);
        assert_eq!(words(&directives, "x \"a b"), ["x", "\"a b"]);
        let backtick = Directives {
            escape: '`',
            ..Directives::default()
        };
        assert_eq!(words(&backtick, "a`  b\\ c`"), ["a` ", "b\\", "c"]);
    }

    #[test]
    fn runs_stop_where_the_escape_or_a_carriage_return_says() {
        // A carriage return inside a line is text; before the line feed it is the line end.
        let tree = parse("RUN a\rb \\\n c\r\nRUN d\\\\\nRUN e\\ f\n").unwrap();
        let args: Vec<&Args> = tree.nodes.iter().map(|n| &n.args).collect();
        assert_eq!(*args[0], Args::Text("a\rb  c".into()));
        assert_eq!(*args[1], Args::Text("d\\\\".into()));
        assert_eq!(*args[2], Args::Text("e\\ f".into()));
        // With the backtick, a backslash is text and two backticks are an escaped one.
        let tree = parse("# escape=`\nRUN a\\b `\n c``\nRUN x` y\n").unwrap();
        let args: Vec<&Args> = tree.nodes.iter().map(|n| &n.args).collect();
        assert_eq!(*args[0], Args::Text("a\\b  c``".into()));
        assert_eq!(*args[1], Args::Text("x` y".into()));
    }

    #[test]
    fn long_escape_runs_are_linear() {
        let text = format!("RUN {}\n", "\\".repeat(200_000));
        let tree = parse(&text).unwrap();
        assert_eq!(tree.nodes.len(), 1);
    }
}
