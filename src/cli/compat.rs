//! `docs/docker-compat.md`: Docker's commands and options (`docs/docker-cli.tsv`) with
//! what lade does with each, read from lade's command tree and its refusal tables. The
//! test keeps the file in step with both and fails on any Docker option of a command
//! lade has that is neither accepted nor refused.

use std::fmt::Write as _;

use clap::{Command, CommandFactory};

use super::refusals::{self, DockerCommand, DockerOption, COMMANDS, DOCKER_CLI};
use super::Cli;

/// What lade does with a Docker option.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Status {
    Yes,
    Refused(&'static str),
}

/// The table, and the problems found while making it.
struct Report {
    markdown: String,
    problems: Vec<String>,
}

/// Whether lade's command accepts the option under Docker's long name, and its short
/// form when Docker has one (`Err` says what differs).
fn accepts(command: &Command, option: &DockerOption) -> Option<Result<(), String>> {
    let arg = command.get_arguments().find(|arg| {
        arg.get_long() == Some(option.long.as_str())
            || arg
                .get_all_aliases()
                .is_some_and(|aliases| aliases.contains(&option.long.as_str()))
    })?;
    Some(match option.short {
        Some(short)
            if arg.get_short() != Some(short)
                && !arg
                    .get_all_short_aliases()
                    .is_some_and(|s| s.contains(&short)) =>
        {
            Err(format!("-{short} is not --{}'s short form", option.long))
        }
        _ => Ok(()),
    })
}

fn refused_option(command: &DockerCommand, long: &str) -> Option<&'static str> {
    refusals::refused_options()
        .find(|(name, refused, _)| *name == command.name && *refused == long)
        .map(|(_, _, why)| why)
}

/// The subcommand at `words` under `command`, names and aliases alike.
fn find<'a>(command: &'a Command, words: &[&str]) -> Option<&'a Command> {
    words
        .iter()
        .try_fold(command, |command, word| command.find_subcommand(word))
}

/// Why lade refuses the Docker command `name`, or a command it belongs to.
fn refused_command(commands: &[DockerCommand], name: &str) -> Option<&'static str> {
    let aliases_of = |name: &str| {
        commands
            .iter()
            .find(|c| c.names().any(|n| n == name))
            .map(|c| c.names().map(str::to_string).collect::<Vec<_>>())
            .unwrap_or_else(|| vec![name.to_string()])
    };
    let all = aliases_of(name);
    COMMANDS.iter().find_map(|(refused, why)| {
        let refused_names = aliases_of(refused);
        all.iter()
            .any(|n| {
                refused_names
                    .iter()
                    .any(|r| n == r || n.starts_with(&format!("{r} ")))
            })
            .then_some(*why)
    })
}

fn shown(option: &DockerOption) -> String {
    match option.short {
        Some(short) => format!("`-{short}`, `--{}`", option.long),
        None => format!("`--{}`", option.long),
    }
}

fn report() -> Report {
    let tree = Cli::command();
    let commands = refusals::docker_commands();
    let mut problems = Vec::new();
    let (mut yes, mut refused, mut refused_commands, mut their_options) = (0, 0, 0, 0);
    let mut body = String::new();
    for command in &commands {
        let title = if command.name == "docker" {
            "`docker` (the options before any command)".to_string()
        } else {
            let mut title = format!("`docker {}`", command.name);
            if !command.aliases.is_empty() {
                let others: Vec<String> = command
                    .aliases
                    .iter()
                    .map(|a| format!("`docker {a}`"))
                    .collect();
                write!(title, " ({})", others.join(", ")).unwrap();
            }
            title
        };
        if let Some(why) = refused_command(&commands, &command.name) {
            refused_commands += 1;
            their_options += command.options.len();
            writeln!(body, "| {title} | | refused: {why} |").unwrap();
            continue;
        }
        let paths = refusals::lade_paths(&tree, command);
        if paths.is_empty() {
            problems.push(format!(
                "docker {} is neither a command of lade's nor refused in refusals::COMMANDS",
                command.name
            ));
            continue;
        }
        let lade_names: Vec<String> = paths
            .iter()
            .map(|p| format!("`lade {}`", p.join(" ")).replace("`lade `", "`lade`"))
            .collect();
        writeln!(body, "| {title} | | yes: {} |", lade_names.join(", ")).unwrap();
        for option in &command.options {
            let refusal = refused_option(command, &option.long);
            let mut status = None;
            for path in &paths {
                let words: Vec<&str> = path.iter().map(String::as_str).collect();
                let lade = find(&tree, &words).expect("resolved above");
                let at = format!("lade {} --{}", path.join(" "), option.long);
                match (accepts(lade, option), refusal) {
                    (Some(Ok(())), None) => status = Some(Status::Yes),
                    (Some(Err(differs)), _) => problems.push(format!("{at}: {differs}")),
                    (Some(Ok(())), Some(_)) => problems.push(format!(
                        "{at} is accepted, and refused in refusals::OPTIONS too"
                    )),
                    (None, Some(why)) => status = Some(Status::Refused(why)),
                    (None, None) => problems.push(format!(
                        "{at}: Docker's option is neither accepted nor refused (refusals::OPTIONS)"
                    )),
                }
            }
            let status = match status {
                Some(Status::Yes) => {
                    yes += 1;
                    "yes".to_string()
                }
                Some(Status::Refused(why)) => {
                    refused += 1;
                    format!("refused: {why}")
                }
                None => "?".to_string(),
            };
            writeln!(body, "| | {} | {status} |", shown(option)).unwrap();
        }
    }
    for (name, long, _) in refusals::refused_options() {
        let known = commands
            .iter()
            .find(|c| c.name == name)
            .is_some_and(|c| c.options.iter().any(|o| o.long == long));
        if !known {
            problems.push(format!(
                "refusals::OPTIONS names `docker {name} --{long}`, which Docker's reference lacks"
            ));
        }
    }
    let version = DOCKER_CLI
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("# "))
        .and_then(|l| l.split(':').next())
        .unwrap_or("Docker CLI");
    let others: Vec<String> = COMMANDS
        .iter()
        .filter(|(name, _)| !commands.iter().any(|c| c.names().any(|n| n == *name)))
        .filter(|(name, _)| {
            !commands
                .iter()
                .any(|c| c.name.starts_with(&format!("{name} ")))
        })
        .map(|(name, why)| format!("- `docker {name}`: refused: {why}"))
        .collect();
    let mut markdown = String::new();
    writeln!(markdown, "# Docker compatibility\n").unwrap();
    writeln!(
        markdown,
        "Every command and option of {version} (`docs/docker-cli.tsv`), and what lade does \
         with it: \"yes\" (the same name, and the same short form where Docker has one), or \
         \"refused\" and why. A refused name is answered with one line saying so and exit \
         code 125, never ignored.\n"
    )
    .unwrap();
    writeln!(
        markdown,
        "Options of the commands lade has: {yes} yes, {refused} refused. Commands lade \
         refuses: {refused_commands} (with {their_options} options).\n"
    )
    .unwrap();
    writeln!(
        markdown,
        "Generated from lade's command line and its refusal tables (`src/cli/refusals.rs`): \
         `LADE_BLESS=1 cargo test --lib docker_compat` writes it again.\n"
    )
    .unwrap();
    markdown.push_str("| Docker | option | lade |\n|---|---|---|\n");
    markdown.push_str(&body);
    if !others.is_empty() {
        writeln!(
            markdown,
            "\nDocker commands outside its reference (plugins), refused too:\n"
        )
        .unwrap();
        markdown.push_str(&others.join("\n"));
        markdown.push('\n');
    }
    Report { markdown, problems }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_compat_table_is_current_and_complete() {
        let report = report();
        assert!(
            report.problems.is_empty(),
            "Docker's command line and lade's disagree:\n{}",
            report.problems.join("\n")
        );
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/docker-compat.md");
        if std::env::var_os("LADE_BLESS").is_some() {
            std::fs::write(&path, &report.markdown).unwrap();
            return;
        }
        let current = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            current == report.markdown,
            "docs/docker-compat.md is out of date: LADE_BLESS=1 cargo test --lib docker_compat writes it again"
        );
    }
}
