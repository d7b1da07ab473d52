//! `lade build`: arguments, and the dry-run plan as text or JSON.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;

use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Args;
use serde_json::{json, Value};

use super::plan;
use super::progress::{BuildProgress, Mode};
use super::StoreConfig;
use super::{CompressionArg, Format, Progress};
use crate::engine::{
    self, BuildExport, BuildNotice, BuildOptions, BuildRequest, CacheSource, Entitlements,
    ExportTo, ImageSettings, PlanOptions, PullPolicy, StepSettings, Verdict,
};
use crate::oci::{ImageRef, Platform};

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Name and optionally a tag for the image (name:tag); may be given more than once
    #[arg(short = 't', long = "tag", value_name = "NAME[:TAG]")]
    pub tags: Vec<String>,

    /// Path of the Dockerfile [default: CONTEXT/Dockerfile]; `-` reads it from standard
    /// input
    #[arg(short = 'f', long = "file", value_name = "PATH")]
    pub file: Option<PathBuf>,

    /// Print only the image id: no progress
    #[arg(short, long)]
    pub quiet: bool,

    /// Set a build-time variable (NAME=VALUE, or NAME to take it from the environment)
    #[arg(long = "build-arg", value_name = "NAME[=VALUE]")]
    pub build_args: Vec<String>,

    /// Build only up to this stage (a name or an index)
    #[arg(long, value_name = "STAGE")]
    pub target: Option<String>,

    /// The platforms to build for (os/arch[/variant], separated by commas), e.g.
    /// linux/arm64 or linux/amd64,linux/arm64: one image each, tagged as one
    /// multi-platform image (an OCI image index) when there are several. RUN steps of
    /// another platform than this machine's run under qemu-user (qemu-user-static,
    /// registered with binfmt_misc) [default: this machine's]
    #[arg(long, value_name = "PLATFORMS")]
    pub platform: Option<String>,

    /// Do not use the build cache: run every step (results are still recorded)
    #[arg(long)]
    pub no_cache: bool,

    /// Pull base images again even when the store has them (without it, only those the
    /// store lacks are pulled)
    #[arg(long)]
    pub pull: bool,

    /// Push the image to its registry once built (each -t names where)
    #[arg(long)]
    pub push: bool,

    /// Do not use the build cache for the steps of these stages (names or indexes;
    /// repeat it or separate with commas). Later stages reuse their cache when what
    /// they take from a rebuilt stage comes out the same.
    #[arg(long, value_name = "STAGE", value_delimiter = ',')]
    pub no_cache_filter: Vec<String>,

    /// Reuse steps from a build cache exported with --cache-to: a directory (an OCI
    /// layout), as DIR or type=local,src=DIR, or a registry, as
    /// type=registry,ref=NAME[:TAG]; may be given more than once. A directory or
    /// reference with no cache in it yet is a warning, not an error
    #[arg(long, value_name = "SRC")]
    pub cache_from: Vec<String>,

    /// Export the cache of every step of this build to a directory (an OCI layout that
    /// --cache-from reads, on this machine or another), as DIR or type=local,dest=DIR,
    /// or to a registry, as type=registry,ref=NAME[:TAG] (lade's cache manifest: its
    /// records as the config, their layers as layers; every step's, as BuildKit's
    /// mode=max)
    #[arg(long, value_name = "DEST")]
    pub cache_to: Option<String>,

    /// How many RUN steps may run at once, across stages [default: the number of CPUs].
    /// Stages that do not depend on each other always build at the same time; COPY and
    /// config steps never wait for a turn
    #[arg(long, short = 'j', value_name = "N")]
    pub jobs: Option<usize>,

    /// Say for every step whether the cache has it and, if not, why; build nothing.
    /// With several --platform values, every platform's steps, each labelled with it
    #[arg(long, conflicts_with = "dry_run")]
    pub explain: bool,

    /// How to show progress
    #[arg(long, value_enum, default_value = "auto")]
    pub progress: Progress,

    /// Write the image id to this file (left empty when the outputs are files only:
    /// -o type=local or type=tar make no image)
    #[arg(long, value_name = "FILE")]
    pub iidfile: Option<PathBuf>,

    /// Write buildx's JSON of the result to this file: containerimage.digest (the
    /// manifest's), containerimage.config.digest (the image id),
    /// containerimage.descriptor and image.name
    #[arg(long, value_name = "FILE")]
    pub metadata_file: Option<PathBuf>,

    /// Where the result goes, as BuildKit's exporters (repeat it for more):
    /// type=local,dest=DIR (the final stage's files), type=tar,dest=FILE|- (the same
    /// as a tar), type=oci,dest=FILE|- (an OCI layout tar), type=docker[,dest=FILE|-]
    /// (a docker-archive; without dest, into the store), type=image[,name=NAME][,push=true]
    /// (into the store; type=registry pushes too). `-o DIR` is type=local and `-o -`
    /// a tar on standard output. Without it the image goes into the store under its
    /// -t names; with it, the store keeps the image only for an image output, so -t
    /// with -o type=local loads nothing, as with buildx. With several --platform values
    /// local and tar write a directory per platform (linux_arm64/), oci the index
    #[arg(
        short = 'o',
        long = "output",
        value_name = "[PATH,-,type=TYPE[,KEY=VALUE]]"
    )]
    pub outputs: Vec<String>,

    /// Set a label on the image (KEY=VALUE), over the Dockerfile's LABELs; repeat it
    /// for more
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,

    /// Set an annotation on the image's manifest: [manifest:]KEY=VALUE. index: and
    /// index-descriptor: are refused as BuildKit refuses them for one platform;
    /// repeat it for more
    #[arg(long = "annotation", value_name = "[TYPE:]KEY=VALUE")]
    pub annotations: Vec<String>,

    /// Add a line to the RUN steps' /etc/hosts (NAME:IP or NAME=IP); repeat it for more
    #[arg(long = "add-host", value_name = "NAME:IP")]
    pub add_hosts: Vec<String>,

    /// The network of RUN steps that name none with RUN --network: default and host
    /// are the host's network (lade's build steps share it), none has only loopback
    #[arg(long, value_name = "MODE", default_value = "default")]
    pub network: String,

    /// The size of the RUN steps' /dev/shm (e.g. 128m) [default: 64m]
    #[arg(long, value_name = "SIZE")]
    pub shm_size: Option<String>,

    /// Print the plan (stages, steps after expansion, what runs in parallel) and stop;
    /// reads no image and writes nothing
    #[arg(long)]
    pub dry_run: bool,

    /// Output format of --dry-run and --explain
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,

    /// Layer compression. Layers stay uncompressed by default, as BuildKit keeps them
    /// until an export: no build waits for zstd, and `push` compresses them (zstd, or
    /// gzip with `push --compression gzip`); the store then holds each built layer as
    /// big as its files. zstd or gzip store them compressed. The image id is the same
    /// whatever the choice.
    #[arg(long, value_enum, default_value = "uncompressed")]
    pub compression: CompressionArg,

    /// Allow an entitlement a step asks for: security.insecure (RUN
    /// --security=insecure: every capability, no seccomp filter) or network.host (RUN
    /// --network=host). Without it such a step is refused before anything runs, as
    /// BuildKit refuses it; repeat it or separate with commas
    #[arg(long = "allow", value_name = "ENTITLEMENT", value_delimiter = ',')]
    pub allow: Vec<String>,

    /// A resource limit of the RUN steps, as run's: NAME=SOFT[:HARD] (nofile, nproc,
    /// ...; -1 is unlimited); repeat it for more
    #[arg(long = "ulimit", value_name = "NAME=SOFT[:HARD]")]
    pub ulimits: Vec<String>,

    /// A secret for `RUN --mount=type=secret` steps, as BuildKit's:
    /// id=ID[,src=FILE|,env=VARIABLE] (also type=file|env,src=...); id=ID alone takes the
    /// variable ID when it is set, else the file ID. The value reaches only the steps
    /// that mount it (a file on a tmpfs, or a variable of that step): never a layer, the
    /// image, the cache or the output. A step's cache key holds the mount's options, not
    /// the value: a new value alone does not rebuild a cached step (--no-cache does).
    /// Repeat it for more
    #[arg(long = "secret", value_name = "id=ID[,src=FILE|,env=VARIABLE]")]
    pub secrets: Vec<String>,

    /// An SSH agent for `RUN --mount=type=ssh` steps, as BuildKit's: `default` or an ID
    /// alone is the agent at $SSH_AUTH_SOCK; ID=SOCKET another agent; ID=KEY[,KEY...]
    /// key files, loaded into an ssh-agent of this build's own (stopped when it ends).
    /// A step may list the keys and sign with them, nothing more. Repeat it for more
    #[arg(long = "ssh", value_name = "default|ID[=SOCKET|KEY[,KEY...]]")]
    pub ssh: Vec<String>,

    /// The build context: the directory whose files COPY and ADD can use; `-` reads
    /// standard input: a Dockerfile (no context), or an archive (tar, compressed or
    /// not) that is the context
    #[arg(value_name = "CONTEXT")]
    pub context: PathBuf,
}

pub fn run(store_config: &StoreConfig, mut args: BuildArgs) -> Result<ExitCode> {
    let file_on_stdin = args.file.as_deref().is_some_and(super::is_dash);
    // Kept until the build is done: the context unpacked from standard input.
    let mut _staged = None;
    let (dockerfile_path, bytes) = if super::is_dash(&args.context) {
        if file_on_stdin {
            bail!("invalid argument: can't use stdin for both build context and dockerfile");
        }
        let store = super::open_store(store_config)?;
        match engine::stdin_context(&store, &mut std::io::stdin().lock())? {
            engine::StdinInput::Dockerfile {
                dockerfile,
                context,
            } => {
                args.context = context.path().to_path_buf();
                _staged = Some(context);
                (PathBuf::from("-"), dockerfile)
            }
            engine::StdinInput::Context(staged) => {
                args.context = staged.path().to_path_buf();
                let path = staged
                    .path()
                    .join(args.file.clone().unwrap_or_else(|| "Dockerfile".into()));
                let bytes = std::fs::read(&path).with_context(|| {
                    format!(
                        "cannot read the Dockerfile {} in the context from standard input",
                        args.file
                            .as_deref()
                            .unwrap_or("Dockerfile".as_ref())
                            .display()
                    )
                })?;
                _staged = Some(staged);
                (path, bytes)
            }
        }
    } else if file_on_stdin {
        let mut bytes = Vec::new();
        std::io::stdin()
            .lock()
            .read_to_end(&mut bytes)
            .context("cannot read the Dockerfile from standard input")?;
        (PathBuf::from("-"), bytes)
    } else {
        let path = args
            .file
            .clone()
            .unwrap_or_else(|| args.context.join("Dockerfile"));
        let bytes = std::fs::read(&path)
            .with_context(|| format!("cannot read the Dockerfile {}", path.display()))?;
        (path, bytes)
    };
    let name = dockerfile_path.display().to_string();
    if args.explain || !args.dry_run {
        let path = (!super::is_dash(&dockerfile_path)).then_some(dockerfile_path);
        let request = build_request(&args, store_config, name, bytes, path)?;
        return if args.explain {
            explain(store_config, &args, &request)
        } else {
            build(store_config, &args, &request)
        };
    }
    let options = PlanOptions {
        build_args: build_args(&args.build_args)?,
        target: args.target.clone(),
        platform: platforms(args.platform.as_deref())?.into_iter().next(),
    };
    let engine::DryRun { plan, expanded } = engine::dry_run(&name, bytes, &options)?;
    let mut out = std::io::stdout().lock();
    match args.format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, &plan::plan_json(&name, &plan, &expanded))?;
            writeln!(out)?;
        }
        Format::Text => plan::write_plan_text(&mut out, &name, &plan, &expanded)?,
    }
    Ok(ExitCode::SUCCESS)
}

fn entitlements(allowed: &[String]) -> Result<Entitlements> {
    let mut entitlements = Entitlements::default();
    for name in allowed.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
        match name {
            "security.insecure" => entitlements.security_insecure = true,
            "network.host" => entitlements.network_host = true,
            other => bail!(
                "--allow {other}: unknown entitlement (expected security.insecure or network.host)"
            ),
        }
    }
    Ok(entitlements)
}

fn build_request(
    args: &BuildArgs,
    store_config: &StoreConfig,
    name: String,
    bytes: Vec<u8>,
    path: Option<PathBuf>,
) -> Result<BuildRequest> {
    let tags = args
        .tags
        .iter()
        .map(|t| {
            t.parse::<ImageRef>()
                .with_context(|| format!("invalid tag {t:?}"))
        })
        .collect::<Result<Vec<_>>>()?;
    let jobs = match args.jobs {
        Some(0) => bail!("--jobs must be at least 1"),
        Some(n) => n,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    // Parsed where the options list them, so that errors come in the same order.
    let cache_from = args
        .cache_from
        .iter()
        .map(|spec| cache_source(spec, "src"))
        .collect::<Result<Vec<_>>>()?;
    let cache_to = args
        .cache_to
        .as_deref()
        .map(|spec| cache_source(spec, "dest"))
        .transpose()?;
    let shm_size = match &args.shm_size {
        None => None,
        Some(text) => Some(
            crate::oci::parse_size(text)
                .filter(|s| *s > 0)
                .with_context(|| {
                    format!("invalid --shm-size {text:?}: expected a size such as 64m or 1g")
                })?,
        ),
    };
    let mut entitlements = entitlements(&args.allow)?;
    let no_network = match args.network.as_str() {
        "default" | "" => false,
        // lade's build steps share the host's network already; BuildKit allows the
        // entitlement for the steps that ask for it again with RUN --network=host.
        "host" => {
            entitlements.network_host = true;
            false
        }
        "none" => true,
        other => bail!(
            "--network {other:?} is not supported for a build: expected default, none or host"
        ),
    };
    let options = BuildOptions {
        context: args.context.clone(),
        dockerfile_name: name,
        dockerfile: bytes,
        dockerfile_path: path,
        tags: tags.clone(),
        build_args: build_args(&args.build_args)?,
        target: args.target.clone(),
        no_cache: args.no_cache,
        pull: if args.pull {
            PullPolicy::Always
        } else {
            PullPolicy::Missing
        },
        docker_config: store_config.docker_config.clone(),
        no_cache_filter: args
            .no_cache_filter
            .iter()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect(),
        jobs,
        cache_from: Vec::new(),
        cache_to: None,
        compression: args.compression.into(),
        source_date_epoch: super::source_date_epoch()?,
        entitlements,
        ulimits: args
            .ulimits
            .iter()
            .map(|text| engine::parse_ulimit(text))
            .collect::<std::result::Result<_, _>>()?,
        steps: StepSettings {
            extra_hosts: args
                .add_hosts
                .iter()
                .map(|entry| engine::validate::extra_host(entry))
                .collect::<std::result::Result<_, _>>()?,
            shm_size,
            no_network,
        },
        image: ImageSettings {
            labels: engine::parse_labels(&args.labels)?,
            annotations: annotations(&args.annotations)?,
            keep: true,
        },
        secrets: args
            .secrets
            .iter()
            .map(|spec| engine::SecretSource::parse(spec))
            .collect::<std::result::Result<_, _>>()?,
        ssh: args
            .ssh
            .iter()
            .map(|spec| engine::SshSource::parse(spec))
            .collect(),
        cancel: Default::default(),
        platforms: platforms(args.platform.as_deref())?,
    };
    let mut exports = args
        .outputs
        .iter()
        .map(|spec| output(spec, &tags))
        .collect::<Result<Vec<_>>>()?;
    if args.push {
        exports.push(BuildExport::Image {
            names: tags.clone(),
            push: true,
        });
    }
    if exports.iter().filter(|e| e.to_stdout()).count() > 1 {
        bail!("only one --output can write to standard output");
    }
    // Files and OCI layouts are split per platform (the engine's), but BuildKit's docker
    // exporter refuses an index: a docker-archive names one image per tag.
    if options.platforms.len() > 1
        && exports
            .iter()
            .any(|e| matches!(e, BuildExport::Docker { .. }))
    {
        bail!("--output type=docker: a docker-archive holds one platform's image, not an index of several; use type=oci for the index, or one --platform");
    }
    if exports.iter().any(BuildExport::to_stdout) && std::io::stdout().is_terminal() {
        bail!("--output: refusing to write a tar to the terminal: redirect standard output or give dest=FILE");
    }
    Ok(BuildRequest {
        options,
        cache_from,
        cache_to,
        iidfile: args.iidfile.clone(),
        metadata_file: args.metadata_file.clone(),
        exports,
    })
}

/// One `--output`, as buildx reads it: `-` is a tar on standard output, any other
/// value without `type=` a directory for the local exporter, else comma-separated
/// `KEY=VALUE` fields (a field with a comma in double quotes, as CSV).
fn output(spec: &str, tags: &[ImageRef]) -> Result<BuildExport> {
    if spec == "-" {
        return Ok(BuildExport::Tar(ExportTo::Stdout));
    }
    if !spec.starts_with("type=") && !spec.contains(',') && !spec.is_empty() {
        return Ok(BuildExport::Local(PathBuf::from(spec)));
    }
    let mut kind = None;
    let mut dest = None;
    let mut names: Vec<String> = Vec::new();
    let mut push = false;
    for field in engine::csv_fields(spec) {
        let (key, value) = field
            .split_once('=')
            .with_context(|| format!("--output {spec:?}: {field:?} is not KEY=VALUE"))?;
        match key.trim().to_ascii_lowercase().as_str() {
            "type" => kind = Some(value.to_string()),
            "dest" => dest = Some(value.to_string()),
            "name" => names.extend(
                value
                    .split(',')
                    .map(str::trim)
                    .filter(|n| !n.is_empty())
                    .map(String::from),
            ),
            "push" => {
                push = engine::validate::go_bool(value).with_context(|| {
                    format!("--output {spec:?}: push={value:?} is not true or false")
                })?
            }
            other => bail!(
                "--output {spec:?}: unknown key {other:?} (lade reads type, dest, name and push)"
            ),
        }
    }
    let kind = kind.with_context(|| format!("--output {spec:?}: no type=TYPE"))?;
    let to = |what: &str| -> Result<ExportTo> {
        match dest.as_deref() {
            Some("-") => Ok(ExportTo::Stdout),
            Some("") | None => bail!(
                "--output {spec:?}: type={what} needs dest=FILE (or dest=- for standard output)"
            ),
            Some(path) => Ok(ExportTo::File(PathBuf::from(path))),
        }
    };
    let named = !names.is_empty();
    let names = || -> Result<Vec<ImageRef>> {
        if names.is_empty() {
            return Ok(tags.to_vec());
        }
        names
            .iter()
            .map(|n| {
                n.parse::<ImageRef>()
                    .with_context(|| format!("--output {spec:?}: invalid name {n:?}"))
            })
            .collect()
    };
    let no_key = |key: &str, given: bool| -> Result<()> {
        if given {
            bail!("--output {spec:?}: type={kind} takes no {key}");
        }
        Ok(())
    };
    Ok(match kind.as_str() {
        "local" => {
            no_key("name", named)?;
            no_key("push", push)?;
            match dest.as_deref() {
                Some("") | None => bail!("--output {spec:?}: type=local needs dest=DIR"),
                Some("-") => bail!("--output {spec:?}: type=local writes a directory: use type=tar for standard output"),
                Some(dir) => BuildExport::Local(PathBuf::from(dir)),
            }
        }
        "tar" => {
            no_key("name", named)?;
            no_key("push", push)?;
            BuildExport::Tar(to("tar")?)
        }
        "oci" => {
            no_key("push", push)?;
            BuildExport::Oci {
                to: to("oci")?,
                names: names()?,
            }
        }
        "docker" => {
            no_key("push", push)?;
            match dest {
                None => BuildExport::Image {
                    names: names()?,
                    push: false,
                },
                Some(_) => BuildExport::Docker {
                    to: to("docker")?,
                    names: names()?,
                },
            }
        }
        "image" | "registry" => {
            no_key("dest", dest.is_some())?;
            BuildExport::Image {
                names: names()?,
                push: push || kind == "registry",
            }
        }
        "cacheonly" => bail!("--output {spec:?}: type=cacheonly is not supported: every lade build records its cache"),
        other => bail!(
            "--output {spec:?}: unknown type {other:?} (expected local, tar, oci, docker, image or registry)"
        ),
    })
}

/// `--annotation [TYPE[PLATFORM]:]KEY=VALUE`, as buildx reads it: the annotations
/// of the image's manifest. lade builds one platform, so BuildKit's index types are
/// refused as BuildKit refuses them then, and a platform qualifier must be this one.
fn annotations(specs: &[String]) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for spec in specs.iter().filter(|s| !s.is_empty()) {
        let (key, value) = spec
            .split_once('=')
            .with_context(|| format!("invalid --annotation {spec:?}: expected KEY=VALUE"))?;
        let (types, key) = match key.split_once(':') {
            Some((types, key)) => (types, key),
            None => ("", key),
        };
        if key.is_empty() {
            bail!("invalid --annotation {spec:?}: the key is empty");
        }
        for kind in types.split(',').filter(|t| !t.is_empty()) {
            let (name, platform) = match kind.split_once('[') {
                Some((name, rest)) => (
                    name,
                    Some(rest.strip_suffix(']').with_context(|| {
                        format!("invalid --annotation {spec:?}: {kind:?} has no closing ]")
                    })?),
                ),
                None => (kind, None),
            };
            if let Some(platform) = platform {
                let host = Platform::host();
                let wanted = Platform::parse(platform).with_context(|| {
                    format!("invalid --annotation {spec:?}: {platform:?} is no platform")
                })?;
                if wanted.os != host.os || wanted.architecture != host.architecture {
                    bail!("invalid --annotation {spec:?}: no platform {platform} in this build (it is for {host})");
                }
            }
            match name {
                "manifest" => {}
                "index" | "index-descriptor" => bail!(
                    "--annotation {spec:?}: index annotations not supported for single platform export"
                ),
                "manifest-descriptor" => bail!(
                    "--annotation {spec:?}: manifest-descriptor annotations are not supported: lade annotates the manifest itself (manifest:KEY=VALUE)"
                ),
                other => bail!(
                    "invalid --annotation {spec:?}: unknown annotation type {other:?} (expected manifest)"
                ),
            }
        }
        out.insert(key.to_string(), value.to_string());
    }
    Ok(out)
}

/// `DIR`, BuildKit's `type=local,src=DIR` / `type=local,dest=DIR`, or
/// `type=registry,ref=NAME`.
/// The platforms of `--platform` (none when it is not given).
fn platforms(text: Option<&str>) -> Result<Vec<Platform>> {
    match text {
        None => Ok(Vec::new()),
        Some(text) => Platform::parse_list(text).map_err(|bad| {
            anyhow::anyhow!(
                "invalid --platform {bad:?}: expected os/arch[/variant], separated by commas"
            )
        }),
    }
}

fn cache_source(spec: &str, key: &str) -> Result<CacheSource> {
    if !spec.contains('=') {
        return Ok(CacheSource::Local(PathBuf::from(spec)));
    }
    let fields: Vec<(&str, &str)> = spec
        .split(',')
        .map(|field| field.split_once('=').unwrap_or((field, "")))
        .collect();
    let registry = match fields.iter().find(|(k, _)| *k == "type").map(|(_, v)| *v) {
        Some("local") | None => false,
        Some("registry") => true,
        Some(other) => bail!(
            "cache type {other:?} is not supported: lade reads and writes local directories (type=local,{key}=DIR) and registries (type=registry,ref=NAME)"
        ),
    };
    let mut path = None;
    let mut reference = None;
    for (name, value) in fields {
        match name {
            "type" | "mode" | "compression" | "oci-mediatypes" | "ignore-error"
            | "image-manifest" => {}
            "ref" if registry => reference = Some(value),
            _ if name == key && !registry => path = Some(PathBuf::from(value)),
            _ => bail!("invalid cache location {spec:?}: unknown field {name:?}"),
        }
    }
    if registry {
        let reference =
            reference.with_context(|| format!("invalid cache location {spec:?}: no ref=NAME"))?;
        return Ok(CacheSource::Registry(
            reference
                .parse()
                .with_context(|| format!("invalid cache location {spec:?}"))?,
        ));
    }
    path.map(CacheSource::Local)
        .with_context(|| format!("invalid cache location {spec:?}: no {key}=DIR"))
}

fn explain(
    store_config: &StoreConfig,
    args: &BuildArgs,
    request: &BuildRequest,
) -> Result<ExitCode> {
    let store = super::open_store(store_config)?;
    let steps = engine::explain(&store, request, &|notice| {
        eprintln!("{}", notice_line(&notice, None));
    })?;
    let mut out = std::io::stdout().lock();
    match args.format {
        Format::Json => {
            let rows: Vec<Value> = steps
                .iter()
                .map(|s| {
                    let (status, reason) = verdict_parts(&s.verdict);
                    let mut row = json!({
                        "stage": s.step.stage_label,
                        "number": s.step.number,
                        "instruction": s.step.text,
                        "status": status,
                        "reason": reason,
                    });
                    // Only a build for several platforms has the key, so one for one
                    // platform keeps the rows it always had.
                    if let Some(platform) = &s.platform {
                        row["platform"] = json!(platform.to_string());
                    }
                    row
                })
                .collect();
            serde_json::to_writer_pretty(&mut out, &rows)?;
            writeln!(out)?;
        }
        Format::Text => {
            let labels: Vec<String> = steps
                .iter()
                .map(|s| super::progress::labelled(&s.step, 60))
                .collect();
            let width = labels.iter().map(|l| l.chars().count()).max().unwrap_or(0);
            for (step, label) in steps.iter().zip(&labels) {
                let (status, reason) = verdict_parts(&step.verdict);
                let text = match reason {
                    Some(reason) => format!("{status}: {reason}"),
                    None => status.to_string(),
                };
                writeln!(out, "{label:<width$}  {text}")?;
            }
            let cached = steps
                .iter()
                .filter(|s| s.verdict == Verdict::Cached)
                .count();
            let runs = steps
                .iter()
                .filter(|s| matches!(s.verdict, Verdict::Runs(_)))
                .count();
            writeln!(out, "{cached} step(s) cached, {runs} would run")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn verdict_parts(verdict: &Verdict) -> (&'static str, Option<&str>) {
    match verdict {
        Verdict::Unchanged => ("unchanged", None),
        Verdict::BaseChanged(reason) => ("changed", Some(reason)),
        Verdict::Cached => ("cached", None),
        Verdict::Runs(reason) => ("runs", Some(reason)),
        Verdict::ConfigOnly => ("config only", None),
    }
}

fn build(store_config: &StoreConfig, args: &BuildArgs, request: &BuildRequest) -> Result<ExitCode> {
    let store = super::open_store(store_config)?;
    let progress = BuildProgress::new(if args.quiet {
        Mode::Quiet
    } else {
        Mode::from(args.progress)
    });
    cancel_on_signals(&request.options.cancel)?;
    let built = match engine::build(&store, request, &progress) {
        Ok(image) => image,
        Err(err) => match err.interrupted_build() {
            Some(code) => {
                drop(progress);
                eprintln!("lade: {err}");
                return Ok(ExitCode::from(code));
            }
            None => return Err(err.into()),
        },
    };
    drop(progress);
    // Standard output is the archive's when an output writes there; a build of files
    // only has no image id to print.
    if let Some(built) = built {
        if !request.exports.iter().any(BuildExport::to_stdout) {
            println!("{}", built.id());
        }
    }
    Ok(ExitCode::SUCCESS)
}

impl engine::BuildReporter for BuildProgress {
    fn notice(&self, notice: BuildNotice<'_>) {
        self.line(&notice_line(&notice, Some(self.elapsed())));
    }
}

/// What a build's notice says; `elapsed` is the build's time so far, for its end.
fn notice_line(notice: &BuildNotice<'_>, elapsed: Option<std::time::Duration>) -> String {
    match notice {
        BuildNotice::NoCacheFrom { reference, error } => format!(
            "warning: no build cache from {}: {error}",
            reference.familiar()
        ),
        BuildNotice::Exported {
            count,
            to: CacheSource::Registry(reference),
            digest,
        } => {
            let digest = digest.map(|d| d.to_string()).unwrap_or_default();
            format!(
                "exported {count} cache record(s) to {} ({digest})",
                reference.familiar()
            )
        }
        BuildNotice::Exported {
            count,
            to: CacheSource::Local(dir),
            ..
        } => format!("exported {count} cache record(s) to {}", dir.display()),
        BuildNotice::Built(image) => {
            let names = if image.tags.is_empty() {
                String::new()
            } else {
                format!(", tagged {}", image.tags.join(", "))
            };
            format!(
                "built {} in {:.1}s{names}",
                image.id.short(),
                elapsed.unwrap_or_default().as_secs_f64()
            )
        }
        BuildNotice::Pushing(line) => line.to_string(),
        BuildNotice::Pushed { tag, digest } => {
            format!("pushed {} ({digest})", tag.familiar())
        }
    }
}

/// Ctrl-C, SIGTERM and SIGHUP cancel the build, as they do BuildKit's: its sandboxes are
/// killed, nothing of the running steps is kept, nothing is tagged.
fn cancel_on_signals(cancel: &std::sync::Arc<engine::Cancel>) -> Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])
        .context("cannot listen for Ctrl-C")?;
    let cancel = cancel.clone();
    std::thread::Builder::new()
        .name("interrupts".into())
        .spawn(move || {
            for signal in signals.forever() {
                cancel.interrupt(signal);
            }
        })
        .context("cannot listen for Ctrl-C")?;
    Ok(())
}

/// `NAME=VALUE` pairs; a bare `NAME` takes its value from the environment, and is
/// left out when the environment does not have it (as Docker does).
fn build_args(specs: &[String]) -> Result<BTreeMap<String, String>> {
    let mut args = BTreeMap::new();
    for spec in specs {
        match spec.split_once('=') {
            Some(("", _)) => bail!("invalid --build-arg {spec:?}: expected NAME=VALUE"),
            Some((name, value)) => {
                args.insert(name.to_string(), value.to_string());
            }
            None => {
                if let Ok(value) = std::env::var(spec) {
                    args.insert(spec.clone(), value);
                }
            }
        }
    }
    Ok(args)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags() -> Vec<ImageRef> {
        vec!["app:1".parse().unwrap()]
    }

    #[test]
    fn outputs_read_as_buildx_reads_them() {
        assert_eq!(
            output("-", &tags()).unwrap(),
            BuildExport::Tar(ExportTo::Stdout)
        );
        assert_eq!(
            output("dist", &tags()).unwrap(),
            BuildExport::Local("dist".into())
        );
        assert_eq!(
            output("type=tar,dest=out.tar", &tags()).unwrap(),
            BuildExport::Tar(ExportTo::File("out.tar".into()))
        );
        assert_eq!(
            output("type=oci,dest=-", &tags()).unwrap(),
            BuildExport::Oci {
                to: ExportTo::Stdout,
                names: tags()
            }
        );
        assert_eq!(
            output("type=docker", &tags()).unwrap(),
            BuildExport::Image {
                names: tags(),
                push: false
            }
        );
        assert_eq!(
            output("type=registry", &tags()).unwrap(),
            BuildExport::Image {
                names: tags(),
                push: true
            }
        );
        assert_eq!(
            output("type=image,\"name=a:1,b:2\",push=false", &tags()).unwrap(),
            BuildExport::Image {
                names: vec!["a:1".parse().unwrap(), "b:2".parse().unwrap()],
                push: false
            }
        );
        for (spec, says) in [
            ("type=local,dest=-", "use type=tar"),
            ("type=image,dest=x", "takes no dest"),
            ("type=cacheonly", "not supported"),
            ("type=local,dest=x,name=a", "takes no name"),
            ("type=image,name=UPPER", "invalid name"),
        ] {
            let error = format!("{:#}", output(spec, &tags()).unwrap_err());
            assert!(error.contains(says), "{spec}: {error}");
        }
    }

    #[test]
    fn annotations_go_on_the_manifest() {
        let host = Platform::host();
        let read = annotations(&[
            "a=1".into(),
            "manifest:b=2".into(),
            format!("manifest[{}/{}]:c=3", host.os, host.architecture),
        ])
        .unwrap();
        assert_eq!(
            read.into_iter().collect::<Vec<_>>(),
            [
                ("a".to_string(), "1".to_string()),
                ("b".into(), "2".into()),
                ("c".into(), "3".into())
            ]
        );
        for (spec, says) in [
            ("index:a=1", "index annotations not supported"),
            ("manifest-descriptor:a=1", "not supported"),
            ("manifest[linux/s390x]:a=1", "no platform linux/s390x"),
            ("layer:a=1", "unknown annotation type"),
            ("novalue", "expected KEY=VALUE"),
        ] {
            let error = annotations(&[spec.into()]).unwrap_err().to_string();
            assert!(error.contains(says), "{spec}: {error}");
        }
    }
}
