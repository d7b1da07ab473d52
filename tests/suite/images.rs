//! Images through the real binary: building with COPY/ADD and config steps, the config
//! compared with podman's, umoci and skopeo reading lade's store and archives, podman
//! round trips, reproducible ids, and the image commands.

use crate::common;

use common::{require_tool, run, Context, Lade, Podman};
use serde_json::Value;

const APP: &str = r#"FROM busybox
ENV APP=/app GREETING="hi there"
WORKDIR $APP
COPY src/ ./src/
COPY src/a.txt /etc/a-copy.txt
ADD data.tar.gz /opt/data/
LABEL org.example.name="demo app" version=1
EXPOSE 8080 53/udp
USER nobody
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["echo $GREETING"]
"#;

fn app_context() -> Context {
    let context = Context::new(APP);
    context
        .file("src/a.txt", "hello\n")
        .file("src/sub/b.txt", "world\n")
        .file("src/skip.log", "a nested .log: not ignored by `*.log`\n")
        .file("top.log", "ignored\n")
        .file(".dockerignore", "*.log\n")
        .file("archive/in.txt", "inside the tar\n");
    run(
        "tar",
        &[
            "-czf",
            &context.path().join("data.tar.gz").to_string_lossy(),
            "-C",
            &context.path().join("archive").to_string_lossy(),
            ".",
        ],
    );
    context
}

/// Builds `context` as `app:1` in `lade`'s store with SOURCE_DATE_EPOCH pinned and
/// `extra` arguments; returns the image id.
fn build_pinned(lade: &Lade, context: &Context, extra: &[&str]) -> String {
    let path = context.path().to_string_lossy().into_owned();
    let mut args = vec!["build", "--progress", "quiet", "-t", "app:1"];
    args.extend_from_slice(extra);
    args.push(&path);
    lade.ok_with_env(&[("SOURCE_DATE_EPOCH", "1700000000")], &args)
        .trim()
        .to_string()
}

fn config_fields(config: &Value) -> Value {
    let c = &config["config"];
    let mut labels = c["Labels"].clone();
    if let Some(map) = labels.as_object_mut() {
        map.remove("io.buildah.version");
    }
    serde_json::json!({
        "Env": c["Env"], "WorkingDir": c["WorkingDir"], "ExposedPorts": c["ExposedPorts"],
        "User": c["User"], "Entrypoint": c["Entrypoint"], "Cmd": c["Cmd"], "Labels": labels,
    })
}

#[test]
fn config_matches_what_podman_builds() {
    require_tool("skopeo");
    let lade = Lade::new();
    lade.busybox();
    let context = app_context();
    lade.build(context.path(), &["-t", "app:1"]);
    let ours: Value = serde_json::from_str(&run(
        "skopeo",
        &[
            "inspect",
            "--config",
            &format!("oci:{}/oci:app:1", lade.root().display()),
        ],
    ))
    .unwrap();

    let podman = Podman::new();
    let archive = lade.dir.path().join("busybox.tar");
    lade.ok(&["save", "-o", &archive.to_string_lossy(), "busybox:latest"]);
    podman.ok(&["load", "-q", "-i", &archive.to_string_lossy()]);
    podman.ok(&[
        "build",
        "-q",
        "-t",
        "app:1",
        &context.path().to_string_lossy(),
    ]);
    let theirs: Value = serde_json::from_str(&run(
        "skopeo",
        &[
            "inspect",
            "--config",
            &format!("containers-storage:{}localhost/app:1", podman.storage()),
        ],
    ))
    .unwrap();
    assert_eq!(config_fields(&ours), config_fields(&theirs));
    assert_eq!(ours["config"]["User"], "nobody");
}

#[test]
fn umoci_unpacks_the_files_the_dockerfile_put_there() {
    require_tool("umoci");
    let lade = Lade::new();
    // umoci 0.4 (Debian 12) reads gzip layers only.
    lade.busybox_with("--compression gzip");
    let context = app_context();
    lade.build(context.path(), &["-t", "app:gz", "--compression", "gzip"]);
    let bundle = lade.dir.path().join("bundle");
    run(
        "umoci",
        &[
            "unpack",
            "--image",
            &format!("{}/oci:app:gz", lade.root().display()),
            &bundle.to_string_lossy(),
        ],
    );
    let rootfs = bundle.join("rootfs");
    let read =
        |p: &str| std::fs::read_to_string(rootfs.join(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
    assert_eq!(read("app/src/a.txt"), "hello\n");
    assert_eq!(read("app/src/sub/b.txt"), "world\n");
    assert!(rootfs.join("app/src/skip.log").exists());
    assert!(!rootfs.join("app/top.log").exists() && !rootfs.join("app/src/top.log").exists());
    assert_eq!(read("etc/a-copy.txt"), "hello\n");
    assert_eq!(read("opt/data/in.txt"), "inside the tar\n");
    assert!(
        rootfs.join("bin/busybox").is_file(),
        "the base layer is there too"
    );
}

#[test]
fn save_and_load_round_trip_with_podman_and_skopeo() {
    require_tool("skopeo");
    let lade = Lade::new();
    lade.busybox();
    let context = app_context();
    let id = lade.build(context.path(), &["-t", "app:1"]);
    let saved = lade.dir.path().join("app.tar");
    lade.ok(&["save", "-o", &saved.to_string_lossy(), "app:1"]);

    let inspected: Value = serde_json::from_str(&run(
        "skopeo",
        &["inspect", &format!("docker-archive:{}", saved.display())],
    ))
    .unwrap();
    assert_eq!(inspected["Labels"]["version"], "1");
    let oci: Value = serde_json::from_str(&run(
        "skopeo",
        &[
            "inspect",
            "--config",
            &format!("oci-archive:{}", saved.display()),
        ],
    ))
    .unwrap();
    assert_eq!(oci["config"]["User"], "nobody");

    let podman = Podman::new();
    let loaded = podman.ok(&["load", "-i", &saved.to_string_lossy()]);
    assert!(loaded.contains("app:1"), "{loaded}");
    let podman_id = podman.ok(&["image", "inspect", "--format", "{{.Id}}", "app:1"]);
    assert_eq!(
        format!("sha256:{}", podman_id.trim()),
        id,
        "podman sees the same image id"
    );

    // podman's own archive (legacy docker layout, uncompressed layers) loads into lade,
    // and lade's save of it loads back into podman.
    let theirs = lade.dir.path().join("podman.tar");
    podman.ok(&["tag", "app:1", "localhost/mine:2"]);
    podman.ok(&["save", "-o", &theirs.to_string_lossy(), "localhost/mine:2"]);
    let other = Lade::new();
    let out = other.ok(&["load", "-i", &theirs.to_string_lossy()]);
    assert!(out.contains("Loaded image: localhost/mine:2"), "{out}");
    assert_eq!(other.ok(&["images", "-q", "--no-trunc"]).trim(), id);
    let again = lade.dir.path().join("again.tar");
    other.ok(&["save", "-o", &again.to_string_lossy(), "localhost/mine:2"]);
    let fresh = Podman::new();
    fresh.ok(&["load", "-i", &again.to_string_lossy()]);
    let fresh_id = fresh.ok(&[
        "image",
        "inspect",
        "--format",
        "{{.Id}}",
        "localhost/mine:2",
    ]);
    assert_eq!(format!("sha256:{}", fresh_id.trim()), id);

    // An OCI archive and a gzip-compressed docker-archive from stdin load too.
    let oci_archive = lade.dir.path().join("app.oci.tar");
    lade.ok(&[
        "save",
        "--format",
        "oci",
        "-o",
        &oci_archive.to_string_lossy(),
        "app:1",
    ]);
    let third = Lade::new();
    third.ok(&["load", "-i", &oci_archive.to_string_lossy()]);
    assert!(third.ok(&["inspect", "app:1"]).contains(&id));
    let gz = lade.dir.path().join("app.tar.gz");
    run(
        "sh",
        &[
            "-c",
            &format!("gzip -c {} > {}", saved.display(), gz.display()),
        ],
    );
    let fourth = Lade::new();
    let output = fourth
        .cmd()
        .args(["load"])
        .pipe_stdin(&gz)
        .unwrap()
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        fourth.ok(&["images", "-q", "--no-trunc", "app:1"]).trim(),
        id
    );
}

#[test]
fn source_date_epoch_gives_the_same_image_id_from_two_stores() {
    let context = app_context();
    let build = || {
        let lade = Lade::new();
        lade.busybox();
        build_pinned(&lade, &context, &[])
    };
    let first = build();
    run(
        "sh",
        &[
            "-c",
            &format!(
                "sleep 1; find {} -exec touch {{}} +",
                context.path().display()
            ),
        ],
    );
    let second = build();
    assert_eq!(first, second);
    let lade = Lade::new();
    lade.busybox();
    let unpinned = lade.build(context.path(), &[]);
    assert_ne!(unpinned, first, "without SOURCE_DATE_EPOCH, times are real");
}

#[test]
fn copy_rules() {
    let lade = Lade::new();
    lade.busybox();
    let context = Context::new(
        r#"FROM busybox
COPY one.txt /dest-file
COPY one.txt /etc
COPY one.txt two.txt /multi/
COPY dir /contents/
COPY *.md /globbed/
COPY --chown=bin:daemon --chmod=0640 one.txt /owned/
COPY --chown=1234 one.txt /numeric/
COPY --exclude=*.tmp dir/ /excluded/
COPY --parents dir/sub/deep.txt /parents/
COPY <<EOF /heredoc.txt
made by a heredoc
EOF
"#,
    );
    context
        .file("one.txt", "1")
        .file("two.txt", "2")
        .file("dir/a.txt", "a")
        .file("dir/x.tmp", "x")
        .file("dir/sub/deep.txt", "deep")
        .file("readme.md", "r")
        .file("notes.md", "n");
    lade.build(context.path(), &["-t", "copies:1", "--compression", "gzip"]);
    let listing = layer_listing(&lade, "copies:1");
    for expected in [
        "dest-file 1",
        "etc/one.txt 1",
        "multi/one.txt 1",
        "multi/two.txt 2",
        "contents/a.txt a",
        "contents/sub/deep.txt deep",
        "contents/x.tmp x",
        "globbed/notes.md n",
        "globbed/readme.md r",
        "owned/one.txt 1 2:1 640",
        "numeric/one.txt 1 1234:1234",
        "excluded/a.txt a",
        "parents/dir/sub/deep.txt deep",
        "heredoc.txt made by a heredoc",
    ] {
        assert!(
            listing.iter().any(|l| l.starts_with(expected)),
            "missing {expected:?} in {listing:#?}"
        );
    }
    assert!(
        !listing.iter().any(|l| l.starts_with("excluded/x.tmp")),
        "{listing:#?}"
    );
}

/// `path content uid:gid mode` for every regular file the image's layers add.
fn layer_listing(lade: &Lade, image: &str) -> Vec<String> {
    let inspect: Value = serde_json::from_str(&lade.ok(&["inspect", image])).unwrap();
    let mut out = Vec::new();
    for layer in inspect[0]["Manifest"]["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .skip(1)
    {
        let digest = layer["Digest"]
            .as_str()
            .unwrap()
            .trim_start_matches("sha256:");
        let blob = lade.root().join("oci/blobs/sha256").join(digest);
        let file = std::fs::File::open(&blob).unwrap();
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            if entry.header().entry_type() != tar::EntryType::Regular {
                continue;
            }
            let path = entry.path().unwrap().display().to_string();
            let (uid, gid, mode) = (
                entry.header().uid().unwrap(),
                entry.header().gid().unwrap(),
                entry.header().mode().unwrap(),
            );
            let mut content = String::new();
            std::io::Read::read_to_string(&mut entry, &mut content).unwrap();
            out.push(format!(
                "{path} {} {uid}:{gid} {mode:o}",
                content.trim_end()
            ));
        }
    }
    out
}

#[test]
fn copy_errors_name_the_step_and_line() {
    let lade = Lade::new();
    lade.busybox();
    let context = Context::new("FROM busybox\nCOPY missing.txt /x\n");
    let err = lade.fails(&[
        "build",
        "--progress",
        "quiet",
        &context.path().to_string_lossy(),
    ]);
    assert!(
        err.contains("Dockerfile:2:1: COPY missing.txt /x: missing.txt: file not found"),
        "{err}"
    );

    let context = Context::new("FROM busybox\nCOPY a.txt b.txt /not-a-dir\n");
    context.file("a.txt", "").file("b.txt", "");
    let err = lade.fails(&[
        "build",
        "--progress",
        "quiet",
        &context.path().to_string_lossy(),
    ]);
    assert!(
        err.contains("must be a directory and end with a /"),
        "{err}"
    );

    let context = Context::new("FROM busybox\nCOPY --chown=nosuchuser a.txt /\n");
    context.file("a.txt", "");
    let err = lade.fails(&[
        "build",
        "--progress",
        "quiet",
        &context.path().to_string_lossy(),
    ]);
    assert!(err.contains("unable to find user nosuchuser"), "{err}");

    let context = Context::new("FROM nosuchimage:1\n");
    let err = lade.fails(&[
        "build",
        "--progress",
        "quiet",
        &context.path().to_string_lossy(),
    ]);
    assert!(
        err.contains("Dockerfile:1:1: FROM nosuchimage:1: image nosuchimage:1 is not in the store"),
        "{err}"
    );

    let context = Context::new("FROM busybox\nADD http://127.0.0.1:9/file.txt /f\n");
    let err = lade.fails(&[
        "build",
        "--progress",
        "quiet",
        &context.path().to_string_lossy(),
    ]);
    assert!(
        err.contains("ADD http://127.0.0.1:9/file.txt: cannot download it"),
        "{err}"
    );
}

#[test]
fn ignoring_the_dockerfile_and_dockerignore_does_not_stop_the_build() {
    let lade = Lade::new();
    lade.busybox();
    let context = Context::new("FROM busybox\nCOPY . /ctx/\n");
    context
        .file(
            ".dockerignore",
            "Dockerfile\n.dockerignore\n**/*.secret\n!keep.secret\n",
        )
        .file("a.txt", "a")
        .file("x/y.secret", "s")
        .file("keep.secret", "k");
    lade.build(context.path(), &["-t", "ctx:1", "--compression", "gzip"]);
    let listing = layer_listing(&lade, "ctx:1");
    let names: Vec<&str> = listing
        .iter()
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    assert_eq!(names, vec!["ctx/a.txt", "ctx/keep.secret"]);
}

#[test]
fn multi_stage_copy_from_and_onbuild() {
    let lade = Lade::new();
    lade.busybox();
    let base =
        Context::new("FROM busybox\nONBUILD COPY trigger.txt /from-trigger.txt\nLABEL base=yes\n");
    lade.build(base.path(), &["-t", "onbuild-base:1"]);
    let context = Context::new(
        "FROM busybox AS first\nCOPY a.txt /out/a.txt\nFROM onbuild-base:1\nCOPY --from=first /out/a.txt /copied.txt\nCOPY --from=busybox:latest /etc/passwd /passwd-from-image\n",
    );
    context
        .file("a.txt", "from the first stage")
        .file("trigger.txt", "triggered");
    lade.build(context.path(), &["-t", "multi:1", "--compression", "gzip"]);
    let listing = layer_listing(&lade, "multi:1");
    assert!(
        listing
            .iter()
            .any(|l| l.starts_with("copied.txt from the first stage")),
        "{listing:#?}"
    );
    assert!(
        listing
            .iter()
            .any(|l| l.starts_with("from-trigger.txt triggered")),
        "{listing:#?}"
    );
    assert!(
        listing
            .iter()
            .any(|l| l.starts_with("passwd-from-image root:x:0:0")),
        "{listing:#?}"
    );
    let inspect: Value = serde_json::from_str(&lade.ok(&["inspect", "multi:1"])).unwrap();
    assert!(
        inspect[0]["Config"]["OnBuild"].is_null(),
        "triggers are not inherited"
    );
    assert_eq!(inspect[0]["Config"]["Labels"]["base"], "yes");
}

#[test]
fn image_commands() {
    let lade = Lade::new();
    lade.busybox();
    let context = Context::new("FROM busybox\nCOPY a.txt /\nENV X=1\n");
    context.file("a.txt", "a");
    let id = lade.build(context.path(), &["-t", "one:1"]);
    lade.ok(&["tag", "one:1", "two:2"]);
    lade.ok(&["tag", &id[7..19], "localhost:5000/three"]);
    let images = lade.ok(&["images"]);
    assert!(images.starts_with("REPOSITORY"), "{images}");
    for name in ["one ", "two ", "localhost:5000/three ", "busybox "] {
        assert!(images.contains(name), "{images}");
    }
    let json = lade.ok(&["images", "--format", "json"]);
    let rows: Vec<Value> = json
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(rows.len(), 4, "{json}");
    assert_eq!(lade.ok(&["images", "-q", "one"]).trim(), &id[7..19]);
    // A repository with a registry port lists every tag, not only latest.
    lade.ok(&["tag", "one:1", "localhost:5000/three:v2"]);
    let listed = lade.ok(&["images", "localhost:5000/three"]);
    assert!(
        listed.contains("latest") && listed.contains("v2"),
        "{listed}"
    );
    let listed = lade.ok(&["images", "localhost:5000/three:v2"]);
    assert!(
        !listed.contains("latest") && listed.contains("v2"),
        "{listed}"
    );

    let history = lade.ok(&["history", "one:1"]);
    assert!(history.lines().count() == 4, "{history}");
    assert!(
        history.contains("ENV X=1") && history.contains("COPY a.txt / # buildkit"),
        "{history}"
    );

    // By id with several tags: refused without -f.
    let err = lade.fails(&["rmi", &id]);
    assert!(err.contains("referenced by several tags"), "{err}");
    let out = lade.ok(&["rmi", "two:2"]);
    assert_eq!(out.trim(), "Untagged: two:2");
    let out = lade.ok(&["rmi", "-f", &id]);
    assert!(
        out.contains("Untagged: one:1") && out.contains(&format!("Deleted: {id}")),
        "{out}"
    );
    let err = lade.fails(&["inspect", "one:1"]);
    assert!(err.contains("no such object: one:1"), "{err}");
    // The busybox image survives garbage collection and still builds.
    lade.build(context.path(), &["-t", "one:1"]);
}

#[test]
fn hostile_archives_are_refused_by_load_and_import() {
    let lade = Lade::new();
    let dir = tempfile::tempdir().unwrap();
    let evil = dir.path().join("evil.tar");
    {
        let mut builder = tar::Builder::new(std::fs::File::create(&evil).unwrap());
        let mut header = tar::Header::new_gnu();
        header.as_old_mut().name[..11].copy_from_slice(b"../escaped!");
        header.set_size(0);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append(&header, std::io::empty()).unwrap();
        builder.finish().unwrap();
    }
    let err = lade.fails(&["import", &evil.to_string_lossy(), "evil:1"]);
    assert!(
        err.contains("refusing archive entry \"../escaped!\""),
        "{err}"
    );
    assert!(!dir.path().join("escaped!").exists());
    assert!(!lade.root().join("escaped!").exists());
    let err = lade.fails(&["load", "-i", &evil.to_string_lossy()]);
    assert!(err.contains("neither a docker-archive"), "{err}");
}

#[test]
fn errors_name_the_file_or_item_once_and_never_echo_control_bytes() {
    let lade = Lade::new();
    let dir = tempfile::tempdir().unwrap();
    // Not a tar at all: a header of escape characters and bytes that are not UTF-8.
    let garbage = dir.path().join("garbage.tar");
    let mut bytes = vec![0x1bu8; 512];
    bytes[148..156].copy_from_slice(b"\xff\x07[2J\x9b\x1b]");
    bytes.extend_from_slice(&[0u8; 1024]);
    std::fs::write(&garbage, &bytes).unwrap();
    let path = garbage.to_string_lossy().to_string();
    for args in [
        vec!["load", "-i", path.as_str()],
        vec!["import", path.as_str(), "g:1"],
    ] {
        let err = lade.fails(&args);
        assert!(
            err.contains(&format!("{path}: ")) && err.contains("not a tar archive"),
            "{args:?}: {err}"
        );
        assert!(
            !err.contains('\u{1b}') && !err.contains('\u{7}'),
            "{args:?}: {err:?}"
        );
    }
    let err = lade.fails(&["load", "-i", "/nonexistent/x.tar"]);
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
    let err = lade.fails(&["rmi", "nosuch:1"]);
    assert_eq!(err.trim(), "lade: no such image: nosuch:1");
    let err = lade.fails(&["rm", "nosuch"]);
    assert_eq!(err.trim(), "lade: no such container: nosuch");
}

#[test]
fn import_applies_changes() {
    let lade = Lade::new();
    lade.busybox();
    let inspect: Value = serde_json::from_str(&lade.ok(&["inspect", "busybox"])).unwrap();
    assert_eq!(inspect[0]["Config"]["Cmd"], serde_json::json!(["sh"]));
    assert!(inspect[0]["Config"]["Env"][0]
        .as_str()
        .unwrap()
        .starts_with("PATH="));
    let err = lade.fails(&["import", "--change", "RUN true", "/dev/null"]);
    assert!(err.contains("only CMD, ENTRYPOINT"), "{err}");
}

#[test]
fn uncompressed_layers_keep_the_image_id_and_are_read_by_skopeo_and_a_fresh_store() {
    require_tool("skopeo");
    let context = app_context();
    let build = |compression: &str| {
        let lade = Lade::new();
        lade.busybox();
        let id = build_pinned(&lade, &context, &["--compression", compression]);
        (lade, id)
    };
    let (_zstd, zstd_id) = build("zstd");
    let (plain, plain_id) = build("uncompressed");
    assert_eq!(
        zstd_id, plain_id,
        "the image id does not depend on compression"
    );

    let layout = format!("oci:{}/oci:app:1", plain.root().display());
    let manifest: Value =
        serde_json::from_str(&run("skopeo", &["inspect", "--raw", &layout])).unwrap();
    let config: Value =
        serde_json::from_str(&run("skopeo", &["inspect", "--config", &layout])).unwrap();
    let layers = manifest["layers"].as_array().unwrap();
    let diff_ids = config["rootfs"]["diff_ids"].as_array().unwrap();
    assert!(layers.len() > 2, "{manifest}");
    // The base was imported compressed; the build's own layers are plain tars,
    // whose digest is their diff_id.
    for (layer, diff_id) in layers.iter().zip(diff_ids).skip(1) {
        assert_eq!(layer["mediaType"], "application/vnd.oci.image.layer.v1.tar");
        assert_eq!(&layer["digest"], diff_id);
    }
    // skopeo checks each blob against its digest as it copies.
    let copied = plain.dir.path().join("copied");
    run(
        "skopeo",
        &["copy", &layout, &format!("dir:{}", copied.display())],
    );

    // A store that has only the saved archive unpacks the plain layers and runs them.
    let archive = plain.dir.path().join("app.tar");
    plain.ok(&["save", "-o", &archive.to_string_lossy(), "app:1"]);
    let fresh = Lade::new();
    fresh.ok(&["load", "-i", &archive.to_string_lossy()]);
    assert_eq!(
        fresh.ok(&[
            "run",
            "--rm",
            "app:1",
            "cat /app/src/a.txt /opt/data/in.txt"
        ]),
        "hello\ninside the tar\n"
    );
}

/// The regular files of a tar archive by name.
fn tar_files(path: &std::path::Path) -> std::collections::HashMap<String, Vec<u8>> {
    use std::io::Read;
    let mut files = std::collections::HashMap::new();
    let mut archive = tar::Archive::new(std::fs::File::open(path).unwrap());
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.header().entry_type() == tar::EntryType::Regular {
            let name = entry.path().unwrap().to_string_lossy().into_owned();
            let mut data = Vec::new();
            entry.read_to_end(&mut data).unwrap();
            files.insert(name, data);
        }
    }
    files
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Appends one entry to a hand-made archive: a file, or a symlink when `link` is set.
fn append(builder: &mut tar::Builder<Vec<u8>>, name: &str, data: &[u8], link: Option<&str>) {
    let mut header = tar::Header::new_gnu();
    header.set_mode(0o644);
    header.set_size(data.len() as u64);
    match link {
        Some(target) => {
            header.set_entry_type(tar::EntryType::Symlink);
            builder.append_link(&mut header, name, target).unwrap();
        }
        None => {
            header.set_entry_type(tar::EntryType::Regular);
            builder.append_data(&mut header, name, data).unwrap();
        }
    }
}

/// A docker-archive in Docker's legacy layout (`<id>/layer.tar`, `<id>/VERSION`,
/// `<id>/json`, `<config hex>.json`, `repositories`, `manifest.json`) of an image that
/// holds busybox's layer twice, the second `layer.tar` a symlink to the first as
/// `docker save` writes it; `second_link` replaces that symlink's target.
fn legacy_archive_with_a_linked_layer(lade: &Lade, second_link: &str) -> Vec<u8> {
    let saved = lade.dir.path().join("busybox-saved.tar");
    lade.ok(&["save", "-o", &saved.to_string_lossy(), "busybox:latest"]);
    let files = tar_files(&saved);
    let manifest: Value = serde_json::from_slice(&files["manifest.json"]).unwrap();
    let mut config: Value =
        serde_json::from_slice(&files[manifest[0]["Config"].as_str().unwrap()]).unwrap();
    let layers = manifest[0]["Layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1, "{manifest}");
    let layer = &files[layers[0].as_str().unwrap()];
    let diff_id = format!("sha256:{}", sha256_hex(layer));
    config["rootfs"]["diff_ids"] = serde_json::json!([diff_id, diff_id]);
    config["history"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"created_by": "the same layer again"}));
    let config_bytes = serde_json::to_vec(&config).unwrap();
    let config_hex = sha256_hex(&config_bytes);
    let first = "a".repeat(64);
    let second = "b".repeat(64);
    let mut builder = tar::Builder::new(Vec::new());
    for (id, parent) in [(&first, None), (&second, Some(&first))] {
        append(&mut builder, &format!("{id}/VERSION"), b"1.0", None);
        let json = serde_json::json!({"id": id, "parent": parent});
        append(
            &mut builder,
            &format!("{id}/json"),
            &serde_json::to_vec(&json).unwrap(),
            None,
        );
    }
    append(&mut builder, &format!("{first}/layer.tar"), layer, None);
    append(
        &mut builder,
        &format!("{second}/layer.tar"),
        b"",
        Some(second_link),
    );
    append(
        &mut builder,
        &format!("{config_hex}.json"),
        &config_bytes,
        None,
    );
    let repositories = serde_json::json!({"twice": {"1": second}});
    append(
        &mut builder,
        "repositories",
        &serde_json::to_vec(&repositories).unwrap(),
        None,
    );
    let manifest = serde_json::json!([{
        "Config": format!("{config_hex}.json"),
        "RepoTags": ["twice:1"],
        "Layers": [format!("{first}/layer.tar"), format!("{second}/layer.tar")],
    }]);
    append(
        &mut builder,
        "manifest.json",
        &serde_json::to_vec(&manifest).unwrap(),
        None,
    );
    builder.into_inner().unwrap()
}

/// Docker writes a layer it already wrote as a symlink to the first copy; such an
/// archive loads and runs. Links out of the archive, absolute ones, dangling ones and
/// loops are refused with the entry named.
#[test]
fn load_follows_docker_layer_links_inside_the_archive_only() {
    let lade = Lade::new();
    lade.busybox();
    let dir = tempfile::tempdir().unwrap();
    let first = "a".repeat(64);
    let second = "b".repeat(64);
    let archive = dir.path().join("twice.tar");
    std::fs::write(
        &archive,
        legacy_archive_with_a_linked_layer(&lade, &format!("../{first}/layer.tar")),
    )
    .unwrap();
    let fresh = Lade::new();
    let out = fresh.ok(&["load", "-i", &archive.to_string_lossy()]);
    assert!(out.contains("twice:1"), "{out}");
    assert_eq!(
        fresh.ok(&["run", "--rm", "twice:1", "echo", "loaded"]),
        "loaded\n"
    );

    for (link, says) in [
        ("../../etc/passwd".to_string(), "outside the archive"),
        ("/etc/passwd".to_string(), "outside the archive"),
        (format!("../{second}/layer.tar"), "loop"),
        ("../nothing/layer.tar".to_string(), "does not have"),
    ] {
        let hostile = dir.path().join("hostile.tar");
        std::fs::write(&hostile, legacy_archive_with_a_linked_layer(&lade, &link)).unwrap();
        let err = fresh.fails(&["load", "-i", &hostile.to_string_lossy()]);
        assert!(
            err.contains(&format!("{second}/layer.tar")) && err.contains(says),
            "{link}: {err}"
        );
    }
}

/// `save --help` says which format is the default and which Dockers cannot load `oci`.
#[test]
fn save_help_names_the_default_format_and_who_cannot_load_oci() {
    let lade = Lade::new();
    // Words compared across clap's line wrapping.
    let help = lade
        .ok(&["save", "--help"])
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        help.contains("docker-archive, the default") && help.contains("[default: docker]"),
        "{help}"
    );
    assert!(help.contains("before Docker 25 cannot"), "{help}");
}
