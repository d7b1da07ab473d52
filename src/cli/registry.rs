//! `lade pull`, `push`, `login`, `logout`: the registry client's commands.

use std::io::{BufRead, IsTerminal, Read, Write};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{ArgAction, Args};
use serde_json::{json, Value};

use super::open_store;
use super::StoreConfig;
use crate::engine::{
    self, ClientOptions, Credentials, PullOptions, PullProgress, PullRequest, PushCompression,
    PushOptions, PushRequest, SearchFilter, SearchRequest,
};
use crate::oci::{Digest, ImageRef, Platform};

#[derive(Debug, Args)]
#[command(
    after_help = "Environment:\n  LADE_REGISTRY_TIMEOUT=SECONDS  How long to wait on a registry (30 by default): to connect, for an answer's headers, and for more of a body (a blob must also keep 1 KiB/s over each such window). A stalled layer is resumed up to 5 times; push, login and search wait the same."
)]
pub struct PullArgs {
    /// Every tag of the repository
    #[arg(short = 'a', long)]
    pub all_tags: bool,
    /// Only print the image's name
    #[arg(short, long)]
    pub quiet: bool,
    /// The platform to pull from a multi-platform image (os/arch[/variant])
    #[arg(long, value_name = "PLATFORM")]
    pub platform: Option<String>,
    /// Verify the registry's TLS certificate (false: plain HTTP or unverified TLS;
    /// localhost and 127.0.0.0/8 are plain HTTP anyway)
    #[arg(long, default_value_t = true, action = ArgAction::Set, value_name = "BOOL")]
    pub tls_verify: bool,
    /// NAME[:TAG|@DIGEST] (docker.io/library/ when no registry is named)
    #[arg(value_name = "NAME")]
    pub image: String,
}

/// A pull's progress: a bar per layer on a terminal, a line per layer otherwise.
struct PullLines {
    quiet: bool,
    bars: Option<indicatif::MultiProgress>,
    layers: std::sync::Mutex<std::collections::HashMap<Digest, indicatif::ProgressBar>>,
}

impl PullLines {
    fn new(quiet: bool) -> PullLines {
        let bars = (!quiet && std::io::stderr().is_terminal()).then(indicatif::MultiProgress::new);
        PullLines {
            quiet,
            bars,
            layers: Default::default(),
        }
    }
}

impl PullProgress for PullLines {
    fn start(&self, digest: &Digest, size: u64) {
        let Some(bars) = &self.bars else {
            return;
        };
        let bar = bars.add(indicatif::ProgressBar::new(size));
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{prefix} {bar:30.cyan/blue} {bytes}/{total_bytes} {bytes_per_sec}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar.set_prefix(digest.short());
        self.layers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(*digest, bar);
    }

    fn advance(&self, digest: &Digest, bytes: u64) {
        if let Some(bar) = self
            .layers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(digest)
        {
            bar.inc(bytes);
        }
    }

    fn layer(&self, digest: &Digest, _size: u64, fetched: bool) {
        if self.quiet {
            return;
        }
        let what = if fetched {
            "Pull complete"
        } else {
            "Already exists"
        };
        let bar = self
            .layers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(digest);
        match (&self.bars, bar) {
            (Some(bars), Some(bar)) => {
                bar.finish_and_clear();
                let _ = bars.println(format!("{}: {what}", digest.short()));
            }
            (Some(bars), None) => {
                let _ = bars.println(format!("{}: {what}", digest.short()));
            }
            (None, _) => println!("{}: {what}", digest.short()),
        }
    }

    fn note(&self, text: &str) {
        match &self.bars {
            Some(bars) => {
                let _ = bars.println(format!("note: {text}"));
            }
            None => eprintln!("note: {text}"),
        }
    }
}

/// `lade pull`.
pub fn pull(store_config: &StoreConfig, args: PullArgs) -> Result<ExitCode> {
    let reference: ImageRef = args.image.parse()?;
    let platform =
        match &args.platform {
            Some(text) => Some(Platform::parse(text).with_context(|| {
                format!("invalid --platform {text:?}: expected os/arch[/variant]")
            })?),
            None => None,
        };
    let store = open_store(store_config)?;
    let options = PullOptions {
        platform,
        client: ClientOptions {
            insecure: !args.tls_verify,
            credentials: None,
            docker_config: store_config.docker_config.clone(),
        },
    };
    if args.all_tags && reference.digest().is_some() {
        bail!("-a pulls every tag: name the repository without a digest");
    }
    let request = PullRequest {
        reference,
        all_tags: args.all_tags,
        options,
    };
    engine::pull(
        &store,
        &request,
        &PullLines::new(args.quiet),
        &mut |reference, image| {
            if !args.quiet {
                println!("Image id: {}", image.id);
                println!("Status: pulled {}", reference.familiar());
            }
            println!("{}", reference.normalized());
        },
    )?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct PushArgs {
    /// Verify the registry's TLS certificate (false: plain HTTP or unverified TLS)
    #[arg(long, default_value_t = true, action = ArgAction::Set, value_name = "BOOL")]
    pub tls_verify: bool,
    /// Only print the pushed manifest's digest
    #[arg(short, long)]
    pub quiet: bool,
    /// How layers go out: gzip, which every client reads, or zstd (smaller and faster
    /// to unpack, but older clients fail on it: containerd before 1.5, BuildKit's FROM
    /// in Docker 20.10; podman 3+, skopeo 1.x and Docker 23+ read it). Uncompressed
    /// layers (a build's) are compressed so; with gzip, zstd layers are converted too
    #[arg(
        long,
        visible_alias = "compression-format",
        value_name = "gzip|zstd",
        default_value = "gzip"
    )]
    pub compression: String,
    /// Convert layers stored in another compression too (with --compression zstd, gzip
    /// layers become zstd)
    #[arg(long)]
    pub force_compression: bool,
    /// Of a multi-platform image, push only its image for this platform (os/arch[/variant])
    /// under the tag, as an image of one platform: the index is not pushed
    #[arg(long, value_name = "PLATFORM")]
    pub platform: Option<String>,
    /// The image in the store (NAME[:TAG])
    #[arg(value_name = "IMAGE")]
    pub image: String,
    /// Where to push it [default: IMAGE itself]
    #[arg(value_name = "DESTINATION")]
    pub destination: Option<String>,
}

/// `lade push`: layers as stored, the manifest last; prints its digest.
pub fn push(store_config: &StoreConfig, args: PushArgs) -> Result<ExitCode> {
    let destination: ImageRef = args.destination.as_deref().unwrap_or(&args.image).parse()?;
    let compression = match args.compression.as_str() {
        "gzip" => PushCompression::Gzip,
        "zstd" => PushCompression::Zstd,
        other => bail!("invalid --compression {other:?}: expected gzip or zstd"),
    };
    let store = open_store(store_config)?;
    let quiet = args.quiet;
    let request = PushRequest {
        image: args.image.clone(),
        destination,
        options: PushOptions {
            client: ClientOptions {
                insecure: !args.tls_verify,
                credentials: None,
                docker_config: store_config.docker_config.clone(),
            },
            compression,
            force_compression: args.force_compression,
        },
    };
    let platform = super::images::platform_arg(args.platform.as_deref())?;
    let progress = |line: &str| {
        if !quiet {
            println!("{line}");
        }
    };
    let digest = match &platform {
        Some(platform) => engine::push_platform(&store, &request, platform, &progress)?,
        None => engine::push(&store, &request, &progress)?,
    };
    if quiet {
        println!("{digest}");
    } else {
        println!(
            "{}: digest: {digest}",
            request.destination.tag().unwrap_or("latest")
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    #[arg(short, long)]
    pub username: Option<String>,
    /// The password, or "-" to read it from standard input (prefer --password-stdin: a
    /// password on the command line is seen by other users' `ps`); asked for on a
    /// terminal when missing
    #[arg(short, long)]
    pub password: Option<String>,
    /// Read the password from standard input
    #[arg(long)]
    pub password_stdin: bool,
    /// Verify the registry's TLS certificate
    #[arg(long, default_value_t = true, action = ArgAction::Set, value_name = "BOOL")]
    pub tls_verify: bool,
    /// The registry (host[:port])
    #[arg(value_name = "REGISTRY")]
    pub registry: String,
}

/// `lade login`: checked against the registry, then saved through the credential
/// helper Docker's config names for it, else where podman keeps them.
pub fn login(store_config: &StoreConfig, args: LoginArgs) -> Result<ExitCode> {
    let from_stdin = args.password_stdin || args.password.as_deref() == Some("-");
    if from_stdin {
        if args.password.as_deref().is_some_and(|p| p != "-") {
            bail!("conflicting options: cannot specify both --password and --password-stdin");
        }
        if args.username.is_none() {
            bail!("the --password-stdin option requires --username to be set");
        }
    }
    if args.username.as_deref() == Some("") {
        bail!("username is empty");
    }
    if args.password.as_deref() == Some("") {
        bail!("password is empty");
    }
    let password = if from_stdin {
        Some(secret_from_stdin()?)
    } else {
        args.password.inspect(|_| {
            // Docker's words: the password is in the shell's history and, while lade
            // runs, in its command line for every user to read.
            eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
        })
    };
    let (username, password) = match (args.username, password) {
        (Some(username), Some(password)) => (username, password),
        (username, password) => {
            if !std::io::stdin().is_terminal() {
                bail!("cannot perform an interactive login from a non-TTY device: give -u USER and --password-stdin (or -p)");
            }
            let username = match username {
                Some(username) => username,
                None => prompt_line("Username: ")?,
            };
            if username.is_empty() {
                bail!("username is required");
            }
            let password = match password {
                Some(password) => password,
                None => prompt_password("Password: ")?,
            };
            (username, password)
        }
    };
    if password.is_empty() {
        bail!("password is required");
    }
    let saved = engine::login(engine::LoginRequest {
        registry: engine::registry_name(&args.registry),
        credentials: Credentials { username, password },
        client: ClientOptions {
            insecure: !args.tls_verify,
            credentials: None,
            docker_config: store_config.docker_config.clone(),
        },
    })?;
    println!("Login Succeeded! ({saved})");
    Ok(ExitCode::SUCCESS)
}

/// The secret on standard input: all of it, one line ending at its end taken off (as
/// Docker's `readSecretFromStdin`); other white space is the secret's.
fn secret_from_stdin() -> Result<String> {
    let mut secret = String::new();
    std::io::stdin()
        .lock()
        .read_to_string(&mut secret)
        .context("cannot read the password from standard input")?;
    let trimmed = secret
        .strip_suffix("\r\n")
        .or_else(|| secret.strip_suffix('\n'))
        .or_else(|| secret.strip_suffix('\r'))
        .unwrap_or(&secret);
    Ok(trimmed.to_string())
}

/// A line typed on the terminal after `prompt` (on standard output, as Docker's).
fn prompt_line(prompt: &str) -> Result<String> {
    let mut out = std::io::stdout().lock();
    write!(out, "{prompt}")?;
    out.flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim().to_string())
}

/// [`prompt_line`] with the terminal's echo off while the password is typed.
fn prompt_password(prompt: &str) -> Result<String> {
    use nix::sys::termios::{tcgetattr, tcsetattr, LocalFlags, SetArg};
    let stdin = std::io::stdin();
    let saved = tcgetattr(&stdin).context("cannot read the terminal's settings")?;
    let mut silent = saved.clone();
    silent.local_flags.remove(LocalFlags::ECHO);
    // The line ending still shows, so the next output starts on a line of its own.
    silent.local_flags.insert(LocalFlags::ECHONL);
    tcsetattr(&stdin, SetArg::TCSANOW, &silent).context("cannot turn the terminal's echo off")?;
    let typed = prompt_line(prompt);
    let restored = tcsetattr(&stdin, SetArg::TCSANOW, &saved);
    let typed = typed?;
    restored.context("cannot restore the terminal's echo (`stty echo` does)")?;
    Ok(typed)
}

#[derive(Debug, Args)]
pub struct LogoutArgs {
    #[arg(value_name = "REGISTRY")]
    pub registry: String,
}

pub fn logout(store_config: &StoreConfig, args: LogoutArgs) -> Result<ExitCode> {
    let registry = engine::registry_name(&args.registry);
    let removed = engine::logout(&registry, store_config.docker_config.as_deref())?;
    if removed.is_empty() {
        // Docker's words and exit code: nothing to forget is not a failure.
        println!("Not logged in to {registry}");
        return Ok(ExitCode::SUCCESS);
    }
    // Docker's words; then where from, since lade reads several places.
    println!("Removing login credentials for {registry}");
    for place in removed {
        println!("  removed from {place}");
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct SearchArgs {
    /// At most this many results
    #[arg(long, default_value_t = 25)]
    pub limit: usize,
    /// stars=N (at least N stars), is-official=true|false
    #[arg(short, long, value_name = "FILTER")]
    pub filter: Vec<String>,
    /// Do not cut descriptions
    #[arg(long)]
    pub no_trunc: bool,
    /// Output format: table, json, or a Go template (`{{.Name}}: {{.StarCount}}`)
    #[arg(long, default_value = "table")]
    pub format: String,
    /// Verify the registry's TLS certificate
    #[arg(long, default_value_t = true, action = ArgAction::Set, value_name = "BOOL")]
    pub tls_verify: bool,
    /// TERM, or REGISTRY/TERM for another registry than Docker Hub (its catalog)
    #[arg(value_name = "TERM")]
    pub term: String,
}

/// A result as Docker's search formatter gives its fields (`formatter_search.go`): flags
/// are `[OK]` or empty in a table or template, `true` or `false` in JSON; nothing is
/// automated any more.
fn search_row(result: &engine::SearchResult, trunc: bool, json: bool) -> Value {
    let flag = |value: bool| match (value, json) {
        (true, true) => "true",
        (true, false) => "[OK]",
        (false, true) => "false",
        (false, false) => "",
    };
    let description = result.description.replace(['\n', '\r'], " ");
    let description = if trunc {
        super::images::ellipsis(&description, 45)
    } else {
        description
    };
    json!({
        "Description": description,
        "IsAutomated": flag(false),
        "IsOfficial": flag(result.official),
        "Name": result.name,
        "StarCount": result.stars.to_string(),
    })
}

/// `lade search`, with Docker's columns.
pub fn search(store_config: &StoreConfig, args: SearchArgs) -> Result<ExitCode> {
    let mut search_filter = SearchFilter::default();
    for filter in &args.filter {
        match filter.split_once('=') {
            Some(("stars", n)) => {
                search_filter.min_stars = n
                    .parse()
                    .with_context(|| format!("invalid --filter {filter:?}: stars=N"))?
            }
            Some(("is-official", v)) => search_filter.official = Some(v == "true"),
            _ => {
                bail!("invalid --filter {filter:?}: lade knows stars=N and is-official=true|false")
            }
        }
    }
    let results = engine::search(&SearchRequest {
        term: args.term.clone(),
        limit: args.limit,
        filter: search_filter,
        client: ClientOptions {
            insecure: !args.tls_verify,
            credentials: None,
            docker_config: store_config.docker_config.clone(),
        },
    })?;
    let format = super::ListFormat::parse_with_headers(
        &args.format,
        &[
            ("StarCount", "STARS"),
            ("IsOfficial", "OFFICIAL"),
            ("IsAutomated", "AUTOMATED"),
        ],
    )?;
    let json = matches!(format, super::ListFormat::Json);
    let results: Vec<Value> = results
        .iter()
        .map(|r| search_row(r, !args.no_trunc, json))
        .collect();
    if format.print(&results)? {
        return Ok(ExitCode::SUCCESS);
    }
    let field = |row: &Value, name: &str| row[name].as_str().unwrap_or_default().to_string();
    let rows: Vec<Vec<String>> = results
        .iter()
        .map(|row| {
            ["Name", "Description", "StarCount", "IsOfficial"]
                .iter()
                .map(|name| field(row, name))
                .collect()
        })
        .collect();
    super::print_table(&["NAME", "DESCRIPTION", "STARS", "OFFICIAL"], &rows);
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(description: &str, official: bool) -> engine::SearchResult {
        engine::SearchResult {
            name: "team/app".into(),
            description: description.into(),
            stars: 7,
            official,
        }
    }

    #[test]
    fn search_rows_have_dockers_fields() {
        let row = search_row(&result("an app\nof note", true), true, false);
        assert_eq!(row["Name"], "team/app");
        assert_eq!(row["Description"], "an app of note");
        assert_eq!(row["StarCount"], "7");
        assert_eq!(row["IsOfficial"], "[OK]");
        assert_eq!(row["IsAutomated"], "");
        let json = search_row(&result("", false), true, true);
        assert_eq!(json["IsOfficial"], "false");
        assert_eq!(json["IsAutomated"], "false");
        let official = search_row(&result("", true), true, true);
        assert_eq!(official["IsOfficial"], "true");
    }

    #[test]
    fn search_descriptions_are_cut_unless_asked() {
        let long = "d".repeat(60);
        let cut = search_row(&result(&long, false), true, false);
        let cut = cut["Description"].as_str().unwrap();
        assert_eq!(cut.chars().count(), 45);
        assert!(cut.ends_with('…'));
        let whole = search_row(&result(&long, false), false, false);
        assert_eq!(whole["Description"], long.as_str());
    }

    #[test]
    fn a_search_template_renders_the_fields() {
        let format =
            crate::cli::template::Format::parse("{{.Name}} {{.StarCount}} {{.IsOfficial}}")
                .unwrap();
        let row = search_row(&result("", true), true, false);
        assert_eq!(format.render(&row).unwrap(), "team/app 7 [OK]");
    }
}
