//! A build's outputs and everyday BuildKit flags through the real CLI: `-o` local and
//! tar write a `FROM scratch` stage's artefacts (content, modes, owners), `-o -` is a
//! tar on standard output, `type=oci` reads with skopeo, `type=docker` loads, an image
//! output pushes; `--iidfile`, `--metadata-file`, `-q`, `--label`, `--annotation`,
//! `--add-host`, `--network none`, `--shm-size` and `--pull`; bad specs and git
//! sources refused by name.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::Stdio;

use serde_json::Value;

use crate::common::{self, Context, Lade};
use crate::registry::Registry;

/// A build stage making artefacts, exported by a `FROM scratch` stage.
const ARTEFACTS: &str = "FROM busybox AS build
RUN mkdir -p /out/bin && echo hello > /out/bin/app && chmod 0750 /out/bin/app \\
 && ln -s app /out/bin/current && echo data > /out/data.txt && chmod 0640 /out/data.txt
FROM scratch
COPY --from=build --chown=1000:1000 /out /
";

fn arg(path: &std::path::Path) -> String {
    path.to_string_lossy().into_owned()
}

/// The image ids in the store.
fn image_ids(lade: &Lade) -> Vec<String> {
    let mut ids: Vec<String> = lade
        .ok(&["images", "-q", "--no-trunc"])
        .lines()
        .map(str::to_string)
        .collect();
    ids.sort();
    ids
}

#[test]
fn local_output_writes_the_scratch_stages_files_and_keeps_no_image() {
    let lade = Lade::new();
    lade.busybox();
    let before = image_ids(&lade);
    let context = Context::new(ARTEFACTS);
    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("dist");
    // -t with a local output loads nothing, as with buildx; -q prints no id, since a
    // build of files makes none.
    let printed = lade.ok(&[
        "build",
        "-q",
        "-t",
        "artefacts:1",
        "-o",
        &format!("type=local,dest={}", dest.display()),
        &arg(context.path()),
    ]);
    assert_eq!(printed, "");
    assert_eq!(
        std::fs::read_to_string(dest.join("bin/app")).unwrap(),
        "hello\n"
    );
    let app = std::fs::symlink_metadata(dest.join("bin/app")).unwrap();
    assert_eq!(app.permissions().mode() & 0o7777, 0o750);
    let data = std::fs::symlink_metadata(dest.join("data.txt")).unwrap();
    assert_eq!(data.permissions().mode() & 0o7777, 0o640);
    // Owned by whoever ran the build, as BuildKit's client writes them.
    assert_eq!((app.uid(), app.gid()), (0, 0));
    assert_eq!(
        std::fs::read_link(dest.join("bin/current")).unwrap(),
        std::path::Path::new("app")
    );
    assert_eq!(image_ids(&lade), before, "a local output left an image");

    // The short form, into a directory that holds files already: they stay.
    std::fs::write(out.path().join("keep.txt"), "mine").unwrap();
    lade.ok(&["build", "-q", "-o", &arg(out.path()), &arg(context.path())]);
    assert_eq!(
        std::fs::read_to_string(out.path().join("keep.txt")).unwrap(),
        "mine"
    );
    assert_eq!(
        std::fs::read_to_string(out.path().join("data.txt")).unwrap(),
        "data\n"
    );
}

/// `tar -tv` lines of an archive, as `mode owner path` (no sizes, no times).
fn tar_listing(archive: &[u8]) -> Vec<String> {
    let mut child = std::process::Command::new("tar")
        .args(["-tv", "--numeric-owner", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("tar runs");
    let mut stdin = child.stdin.take().unwrap();
    let bytes = archive.to_vec();
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        stdin.write_all(&bytes).unwrap();
    });
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(output.status.success(), "tar -t failed");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let path = fields[5..].join(" ");
            format!("{} {} {path}", fields[0], fields[1])
        })
        .collect()
}

#[test]
fn tar_output_keeps_the_images_owners_and_modes() {
    let lade = Lade::new();
    lade.busybox();
    let context = Context::new(ARTEFACTS);
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("artefacts.tar");
    lade.ok(&[
        "build",
        "-q",
        "-o",
        &format!("type=tar,dest={}", file.display()),
        &arg(context.path()),
    ]);
    let listing = tar_listing(&std::fs::read(&file).unwrap());
    for expected in [
        "drwxr-xr-x 1000/1000 bin/",
        "-rwxr-x--- 1000/1000 bin/app",
        "lrwxrwxrwx 1000/1000 bin/current -> app",
        "-rw-r----- 1000/1000 data.txt",
    ] {
        assert!(
            listing.iter().any(|l| l == expected),
            "{expected:?} not in {listing:#?}"
        );
    }
}

/// The files of `--target`'s stage are its layers merged: what a later step deleted
/// (a whiteout) or replaced (an opaque directory) is gone.
#[test]
fn tar_output_of_a_target_stage_applies_deletions() {
    let lade = Lade::new();
    lade.busybox();
    let context = Context::new(
        "FROM busybox AS base
RUN echo a > /gone && echo b > /kept && mkdir /d && touch /d/old
FROM base AS trimmed
RUN rm /gone && rm -r /d && mkdir /d && touch /d/new
FROM scratch
COPY --from=trimmed /kept /
",
    );
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("trimmed.tar");
    lade.ok(&[
        "build",
        "-q",
        "--target",
        "trimmed",
        "-o",
        &format!("type=tar,dest={}", file.display()),
        &arg(context.path()),
    ]);
    let paths: Vec<String> = tar_listing(&std::fs::read(&file).unwrap())
        .iter()
        .map(|l| l.rsplit(' ').next().unwrap().to_string())
        .collect();
    for present in ["kept", "d/", "d/new", "bin/busybox"] {
        assert!(paths.iter().any(|p| p == present), "{present} missing");
    }
    for absent in ["gone", "d/old"] {
        assert!(!paths.iter().any(|p| p == absent), "{absent} exported");
    }
}

#[test]
fn dash_output_is_a_tar_on_standard_output() {
    let lade = Lade::new();
    lade.busybox();
    let context = Context::new(ARTEFACTS);
    let mut build = lade
        .process()
        .args([
            "build",
            "--progress",
            "plain",
            "-o",
            "-",
            &arg(context.path()),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("lade build runs");
    let tar = std::process::Command::new("tar")
        .arg("-t")
        .stdin(build.stdout.take().unwrap())
        .output()
        .expect("tar runs");
    assert!(build.wait().unwrap().success(), "lade build -o - failed");
    assert!(tar.status.success(), "tar -t failed");
    let mut names: Vec<String> = String::from_utf8_lossy(&tar.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    names.sort();
    assert_eq!(names, ["bin/", "bin/app", "bin/current", "data.txt"]);
}

#[test]
fn bad_output_specs_are_refused_naming_the_key() {
    let lade = Lade::new();
    let context = Context::new("FROM scratch\n");
    for (spec, says) in [
        ("type=zip,dest=x", "unknown type \"zip\""),
        ("type=local", "type=local needs dest=DIR"),
        ("type=local,dest=x,colour=red", "unknown key \"colour\""),
        ("type=tar,dest=x,push=true", "type=tar takes no push"),
        (
            "type=image,push=maybe",
            "push=\"maybe\" is not true or false",
        ),
        ("type=oci", "type=oci needs dest=FILE"),
        ("dest=x,name=y", "no type=TYPE"),
    ] {
        let error = lade.fails(&["build", "-o", spec, &arg(context.path())]);
        assert!(
            error.contains(&format!("--output {spec:?}")) && error.contains(says),
            "{spec}: {error}"
        );
    }
    let error = lade.fails(&["build", "--annotation", "index:a=b", &arg(context.path())]);
    assert!(
        error.contains("index annotations not supported for single platform export"),
        "{error}"
    );
    let error = lade.fails(&["build", "--network", "bridge", &arg(context.path())]);
    assert!(error.contains("--network \"bridge\""), "{error}");
}

#[test]
fn oci_output_is_read_by_skopeo_and_docker_output_loads() {
    common::require_tool("skopeo");
    let lade = Lade::new();
    lade.busybox();
    let before = image_ids(&lade);
    let context = Context::new("FROM busybox\nRUN echo made > /msg\nLABEL team=old\n");
    let out = tempfile::tempdir().unwrap();
    let oci = out.path().join("image-oci.tar");
    let id = lade
        .ok(&[
            "build",
            "-q",
            "-t",
            "exported:1",
            "--label",
            "team=new",
            "--annotation",
            "org.opencontainers.image.source=https://example.com/app",
            "-o",
            &format!("type=oci,dest={}", oci.display()),
            &arg(context.path()),
        ])
        .trim()
        .to_string();
    assert!(id.starts_with("sha256:"), "{id}");
    assert_eq!(image_ids(&lade), before, "an oci output left an image");
    let inspect: Value = serde_json::from_str(&common::run(
        "skopeo",
        &["inspect", &format!("oci-archive:{}", oci.display())],
    ))
    .unwrap();
    assert_eq!(inspect["Labels"]["team"], "new");
    let raw: Value = serde_json::from_str(&common::run(
        "skopeo",
        &[
            "inspect",
            "--raw",
            &format!("oci-archive:{}", oci.display()),
        ],
    ))
    .unwrap();
    assert_eq!(raw["config"]["digest"], id.as_str());
    assert_eq!(
        raw["annotations"]["org.opencontainers.image.source"],
        "https://example.com/app"
    );

    let docker = out.path().join("image-docker.tar");
    lade.ok(&[
        "build",
        "-q",
        "-t",
        "exported:1",
        "-o",
        &format!("type=docker,dest={}", docker.display()),
        &arg(context.path()),
    ]);
    let other = Lade::new();
    let loaded = other.ok(&["load", "-i", &arg(&docker)]);
    assert!(loaded.contains("exported:1"), "{loaded}");
    assert_eq!(
        other.ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            "exported:1",
            "cat",
            "/msg"
        ]),
        "made\n"
    );
}

#[test]
fn image_output_pushes_with_its_annotations() {
    common::require_tool("skopeo");
    let registry = Registry::start(None);
    let lade = Lade::new();
    lade.busybox();
    let context = Context::new("FROM busybox\nRUN echo pushed > /msg\n");
    let name = format!("{}/outputs/app:1", registry.host());
    lade.ok(&[
        "build",
        "-q",
        "--annotation",
        "manifest:org.example.stage=release",
        "-o",
        &format!("type=image,name={name},push=true"),
        &arg(context.path()),
    ]);
    // Stored under that name, and pushed (layers compressed on the way, the
    // manifest's annotations kept).
    let inspect: Value = serde_json::from_str(&lade.ok(&["inspect", &name])).unwrap();
    assert_eq!(
        inspect[0]["Manifest"]["Annotations"]["org.example.stage"],
        "release"
    );
    let raw: Value = serde_json::from_str(&common::run(
        "skopeo",
        &[
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{name}"),
        ],
    ))
    .unwrap();
    assert_eq!(raw["annotations"]["org.example.stage"], "release");
}

#[test]
fn iidfile_metadata_file_and_quiet_name_the_image() {
    let lade = Lade::new();
    lade.busybox();
    let context = Context::new("FROM busybox\nLABEL team=old\n");
    let out = tempfile::tempdir().unwrap();
    let iidfile = out.path().join("iid");
    let metadata = out.path().join("metadata.json");
    let printed = lade.ok(&[
        "build",
        "-q",
        "-t",
        "named:1",
        "--label",
        "team=new",
        "--iidfile",
        &arg(&iidfile),
        "--metadata-file",
        &arg(&metadata),
        &arg(context.path()),
    ]);
    let id = printed.trim();
    assert_eq!(printed, format!("{id}\n"), "-q prints the id alone");
    assert_eq!(std::fs::read_to_string(&iidfile).unwrap(), id);
    let inspect: Value = serde_json::from_str(&lade.ok(&["inspect", "named:1"])).unwrap();
    assert_eq!(inspect[0]["Id"], id);
    assert_eq!(inspect[0]["Config"]["Labels"]["team"], "new");
    let manifest = inspect[0]["Manifest"]["Digest"].as_str().unwrap();
    let written: Value =
        serde_json::from_str(&std::fs::read_to_string(&metadata).unwrap()).unwrap();
    assert_eq!(written["containerimage.config.digest"], id);
    assert_eq!(written["containerimage.digest"], manifest);
    assert_eq!(written["containerimage.descriptor"]["digest"], manifest);
    assert_eq!(
        written["containerimage.descriptor"]["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(written["image.name"], "docker.io/library/named:1");

    // Files only: no image, so the iidfile is left empty (as buildx leaves it) and the
    // metadata names none.
    lade.ok(&[
        "build",
        "-q",
        "--iidfile",
        &arg(&iidfile),
        "--metadata-file",
        &arg(&metadata),
        "-o",
        &arg(&out.path().join("files")),
        &arg(context.path()),
    ]);
    assert_eq!(std::fs::read_to_string(&iidfile).unwrap(), "");
    let written: Value =
        serde_json::from_str(&std::fs::read_to_string(&metadata).unwrap()).unwrap();
    assert!(written.get("containerimage.digest").is_none(), "{written}");
}

#[test]
fn run_steps_get_add_host_network_none_and_shm_size() {
    let lade = Lade::new();
    lade.busybox();
    let context = Context::new(
        "FROM busybox AS probe
RUN mkdir /out && cat /etc/hosts > /out/hosts && ls /sys/class/net > /out/interfaces \\
 && df -k /dev/shm | tail -n 1 > /out/shm
FROM scratch
COPY --from=probe /out /
",
    );
    let out = tempfile::tempdir().unwrap();
    lade.ok(&[
        "build",
        "-q",
        "--add-host",
        "db.internal:10.1.2.3",
        "--add-host",
        "cache=[fd00::7]",
        "--network",
        "none",
        "--shm-size",
        "96m",
        "-o",
        &arg(out.path()),
        &arg(context.path()),
    ]);
    let hosts = std::fs::read_to_string(out.path().join("hosts")).unwrap();
    assert!(hosts.contains("10.1.2.3\tdb.internal\n"), "{hosts}");
    assert!(hosts.contains("fd00::7\tcache\n"), "{hosts}");
    assert_eq!(
        std::fs::read_to_string(out.path().join("interfaces")).unwrap(),
        "lo\n"
    );
    let shm = std::fs::read_to_string(out.path().join("shm")).unwrap();
    assert_eq!(shm.split_whitespace().nth(1), Some("98304"), "{shm}");

    let error = lade.fails(&[
        "build",
        "--add-host",
        "db:host-gateway",
        &arg(context.path()),
    ]);
    assert!(error.contains("--add-host"), "{error}");
}

/// `--pull` asks the base's registry whatever the store holds, as BuildKit does: a
/// base the store has but whose registry cannot be reached fails the build.
#[test]
fn pull_always_asks_the_bases_registry() {
    let lade = Lade::new();
    lade.busybox();
    // Port 1 of loopback: nothing listens, so the connection is refused at once.
    lade.ok(&["tag", "busybox", "127.0.0.1:1/local/base:1"]);
    let context = Context::new("FROM 127.0.0.1:1/local/base:1\nRUN true\n");
    lade.build(context.path(), &[]);
    let error = lade.fails(&["build", "--pull", &arg(context.path())]);
    assert!(
        error.contains("cannot pull 127.0.0.1:1/local/base:1"),
        "{error}"
    );
}

#[test]
fn add_of_a_git_repository_is_refused_by_name() {
    let lade = Lade::new();
    for source in [
        "https://github.com/moby/buildkit.git",
        "git@github.com:moby/buildkit.git",
        "git://127.0.0.1/repo",
    ] {
        let context = Context::new(&format!("FROM scratch\nADD --keep-git-dir {source} /src\n"));
        let error = lade.fails(&["build", &arg(context.path())]);
        assert!(
            error.contains(&format!(
                "ADD {source}: git repositories as sources are not supported"
            )),
            "{error}"
        );
    }
}

/// Files an image's author chose land on the host as plain files: no setuid or setgid
/// bit, no device node.
#[test]
fn local_output_drops_setuid_bits_and_device_nodes() {
    let lade = Lade::new();
    lade.busybox();
    let context = Context::new(
        "FROM busybox AS made\n\
         RUN cp /bin/busybox /x && chmod 6755 /x && mknod /d b 8 0 && mkfifo /f\n\
         FROM scratch\n\
         COPY --from=made /x /d /f /\n",
    );
    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("dist");
    lade.build(context.path(), &["-o", dest.to_str().unwrap()]);
    let mode = std::fs::metadata(dest.join("x"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o7777, 0o755, "setuid and setgid are dropped");
    assert!(!dest.join("d").exists(), "the device node is not made");
    assert!(dest.join("f").exists(), "a FIFO is harmless and kept");
}
