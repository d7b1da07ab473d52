//! The Dockerfile front end: the pest grammar binding, a syntax tree with locations,
//! typed instructions, parser directives, word expansion and located errors.
//!
//! `parse` gives validated instructions; `parse_syntax` stops at the syntax tree that
//! mirrors BuildKit's parser (and `dump` prints it in BuildKit's format).

mod dump;
mod error;
pub mod expand;
mod go;
mod instructions;
mod syntax;

pub use dump::{dump, go_quote};
pub use error::{ErrorKind, ParseError, Source, SourceLocation};
pub use go::{csv_fields, go_duration, parse_duration};
pub use instructions::{
    ArgDecl, Command, CommandLine, CopyCmd, FromCmd, HealthcheckCmd, Instruction, KeyValue,
    Keyword, MountFlag, MountKind, RunCmd, SourceSpec,
};
pub use syntax::{Args, Directives, Flag, Heredoc, Node, SyntaxTree};

/// A parsed and validated Dockerfile.
#[derive(Debug)]
pub struct Dockerfile {
    pub directives: Directives,
    pub instructions: Vec<Instruction>,
    pub source: Source,
}

/// Parses Dockerfile bytes (`name` is used in error messages) into validated instructions.
pub fn parse(name: &str, bytes: Vec<u8>) -> Result<Dockerfile, ParseError> {
    let source = Source::from_bytes(name, bytes)?;
    let builder = instructions::Builder { source: &source };
    // Each node becomes its instruction as soon as it is read. An error of the syntax,
    // wherever it is, comes before the first instruction's error, as when the whole
    // tree was read first.
    let items = syntax::Items::read(&source)?;
    let mut instructions = Vec::with_capacity(items.logical_lines());
    let mut first_error = None;
    let directives = items.for_each_node(|node| {
        if first_error.is_none() {
            match builder.instruction(node) {
                Ok(instruction) => instructions.push(instruction),
                Err(error) => first_error = Some(error),
            }
        }
    })?;
    if let Some(error) = first_error {
        return Err(error);
    }
    Ok(Dockerfile {
        directives,
        instructions,
        source,
    })
}

/// Parses Dockerfile bytes into the syntax tree only: no instruction is checked.
pub fn parse_syntax(name: &str, bytes: Vec<u8>) -> Result<SyntaxTree, ParseError> {
    let source = Source::from_bytes(name, bytes)?;
    syntax::parse_syntax(&source)
}

/// Parses one instruction line, e.g. an ONBUILD trigger stored in an image config.
pub fn parse_instruction(name: &str, line: &str, escape: char) -> Result<Instruction, ParseError> {
    let text = if escape == '`' {
        format!("# escape=`\n{line}\n")
    } else {
        format!("{line}\n")
    };
    let mut dockerfile = parse(name, text.into_bytes())?;
    match dockerfile.instructions.len() {
        1 => Ok(dockerfile.instructions.remove(0)),
        _ => Err(dockerfile.source.error_at(
            0,
            ErrorKind::Invalid(format!("expected one instruction in {line:?}")),
        )),
    }
}

/// A heredoc marker word (`<<EOF`, `<<-"EOF"`, `3<<EOF`), if `word` is one.
pub fn heredoc_marker(word: &str) -> Option<Heredoc> {
    syntax::parse_heredoc_marker(word).ok().flatten()
}
