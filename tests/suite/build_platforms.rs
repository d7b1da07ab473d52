//! Builds for other platforms: an arm64 image built on this amd64 machine with its RUN
//! steps under qemu-user, the automatic platform ARGs and `FROM --platform=$BUILDPLATFORM`
//! for cross-compiling, a build for two platforms as one image index pushed to a
//! registry and pulled back per platform, `lade manifest` for lists made by hand
//! (annotate, inspect -v), the build cache kept apart per platform, outputs and
//! `--explain` of several platforms, and `--platform` of inspect, history, save, push.

use crate::common::{self, Context, Lade};
use crate::registry::Registry;

/// Fails (not skips) when qemu-user is not registered: scripts/test.sh installs and
/// registers it, as CI does.
fn require_qemu() {
    let entry = std::path::Path::new("/proc/sys/fs/binfmt_misc/qemu-aarch64");
    let text = std::fs::read_to_string(entry).unwrap_or_default();
    assert!(
        text.starts_with("enabled") && text.contains("flags: ") && text.contains('F'),
        "qemu-aarch64 is not registered with binfmt_misc (with the F flag): scripts/test.sh installs qemu-user-static and binfmt-support and enables it"
    );
}

/// A store with busybox for this machine (`busybox:latest`), busybox for arm64
/// (`busybox-arm64:latest`, Debian's arm64 busybox-static), and `base:multi`, a list of
/// both.
fn lade_with_both_bases() -> Lade {
    require_qemu();
    let lade = Lade::new();
    lade.busybox();
    let status = std::process::Command::new(common::repo().join("scripts/busybox-image.sh"))
        .arg(assert_cmd::cargo::cargo_bin("lade"))
        .args(["busybox-arm64:latest", "arm64"])
        .env("LADE_ROOT", lade.root())
        .stdout(std::process::Stdio::null())
        .status()
        .expect("scripts/busybox-image.sh runs");
    assert!(
        status.success(),
        "scripts/busybox-image.sh for arm64 failed"
    );
    lade.ok(&[
        "manifest",
        "create",
        "base:multi",
        "busybox:latest",
        "busybox-arm64:latest",
    ]);
    lade
}

fn inspect(lade: &Lade, format: &str, image: &str) -> String {
    lade.ok(&["inspect", "-f", format, image])
        .trim()
        .to_string()
}

/// What `cat FILE...` prints in the image, run for `platform`.
fn cat(lade: &Lade, platform: &str, image: &str, files: &[&str]) -> String {
    let mut args = vec!["run", "--rm", "--platform", platform, image, "cat"];
    args.extend_from_slice(files);
    lade.ok(&args)
}

#[test]
fn an_arm64_build_runs_its_steps_under_qemu_and_says_arm64() {
    let lade = lade_with_both_bases();
    let context = Context::new(
        "FROM base:multi\nARG TARGETARCH TARGETPLATFORM\nRUN uname -m > /arch && echo $TARGETARCH $TARGETPLATFORM > /target\n",
    );
    lade.build(
        context.path(),
        &["--platform", "linux/arm64", "-t", "app:arm"],
    );
    assert_eq!(
        inspect(&lade, "{{.Os}}/{{.Architecture}}", "app:arm"),
        "linux/arm64"
    );
    assert_eq!(
        cat(&lade, "linux/arm64", "app:arm", &["/arch", "/target"]),
        "aarch64\narm64 linux/arm64\n"
    );
    // The base came from the list: its arm64 image.
    let base_layer = inspect(&lade, "{{index .RootFS.Layers 0}}", "busybox-arm64");
    assert_eq!(
        inspect(&lade, "{{index .RootFS.Layers 0}}", "app:arm"),
        base_layer
    );
}

#[test]
fn build_platform_stages_run_natively_and_target_args_name_the_target() {
    let lade = lade_with_both_bases();
    let context = Context::new(
        "FROM --platform=$BUILDPLATFORM busybox AS build\nARG TARGETARCH BUILDARCH\nRUN uname -m > /built-on && echo $BUILDARCH-$TARGETARCH > /args\nFROM base:multi\nCOPY --from=build /built-on /args /\nRUN uname -m > /runs-on\n",
    );
    lade.build(
        context.path(),
        &["--platform", "linux/arm64", "-t", "cross:1"],
    );
    assert_eq!(
        cat(
            &lade,
            "linux/arm64",
            "cross:1",
            &["/built-on", "/args", "/runs-on"]
        ),
        "x86_64\namd64-arm64\naarch64\n"
    );
    assert_eq!(inspect(&lade, "{{.Architecture}}", "cross:1"), "arm64");
}

#[test]
fn two_platforms_make_one_index_that_is_pushed_and_pulled_back_per_platform() {
    let lade = lade_with_both_bases();
    let context = Context::new("FROM base:multi\nRUN uname -m > /arch\n");
    let outputs = tempfile::tempdir().unwrap();
    let iidfile = outputs.path().join("iid");
    let metadata_file = outputs.path().join("metadata.json");
    let (printed, log) = lade.build_log(
        context.path(),
        &[
            "--platform",
            "linux/amd64,linux/arm64",
            "-t",
            "app:multi",
            "--iidfile",
            iidfile.to_str().unwrap(),
            "--metadata-file",
            metadata_file.to_str().unwrap(),
        ],
    );
    // As buildx: with no one config, the id is the index's digest.
    let index_digest = std::fs::read_to_string(&iidfile).unwrap();
    assert_eq!(printed, index_digest);
    assert!(index_digest.starts_with("sha256:"), "{index_digest}");
    let metadata: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&metadata_file).unwrap()).unwrap();
    assert_eq!(metadata["containerimage.digest"], index_digest.as_str());
    assert_eq!(
        metadata["containerimage.descriptor"]["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    assert!(
        metadata.get("containerimage.config.digest").is_none(),
        "{metadata}"
    );
    // The store holds a document of that digest: the index of both platforms.
    let stored_index = walkdir::WalkDir::new(lade.root())
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .filter_map(|e| std::fs::read(e.path()).ok())
        .find(|bytes| format!("sha256:{}", crate::build_secrets::sha256_hex(bytes)) == index_digest)
        .expect("a stored document of the index digest");
    let stored_index: serde_json::Value = serde_json::from_slice(&stored_index).unwrap();
    assert_eq!(stored_index["manifests"].as_array().map(Vec::len), Some(2));
    assert!(
        log.contains("[linux/amd64 2/2] RUN") && log.contains("[linux/arm64 2/2] RUN"),
        "{log}"
    );
    assert_eq!(
        lade.ok(&["images", "--format", "{{.Platforms}}", "app"])
            .trim(),
        "linux/amd64,linux/arm64"
    );
    // One image for this machine's platform stands for the list where one is meant.
    assert_eq!(
        cat(&lade, "linux/amd64", "app:multi", &["/arch"]),
        "x86_64\n"
    );
    assert_eq!(inspect(&lade, "{{.Architecture}}", "app:multi"), "amd64");

    let registry = Registry::start(None);
    let remote = format!("{}/platforms/app:multi", registry.host());
    lade.ok(&["push", "app:multi", &remote]);
    let raw = common::run(
        "skopeo",
        &[
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{remote}"),
        ],
    );
    let index: serde_json::Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(
        index["mediaType"], "application/vnd.oci.image.index.v1+json",
        "{raw}"
    );
    let mut platforms: Vec<String> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            format!(
                "{}/{}",
                m["platform"]["os"].as_str().unwrap(),
                m["platform"]["architecture"].as_str().unwrap()
            )
        })
        .collect();
    platforms.sort();
    assert_eq!(platforms, ["linux/amd64", "linux/arm64"], "{raw}");

    // Pulled for arm64: the arm64 image, whose steps ran under qemu.
    let puller = Lade::new();
    puller.ok(&["pull", "--platform", "linux/arm64", &remote]);
    assert_eq!(inspect(&puller, "{{.Architecture}}", &remote), "arm64");
    assert_eq!(
        cat(&puller, "linux/arm64", &remote, &["/arch"]),
        "aarch64\n"
    );
    // Then for this machine: the tag holds both, each platform its own image.
    puller.ok(&["pull", "--platform", "linux/amd64", &remote]);
    assert_eq!(
        puller.ok(&["images", "--format", "{{.Platforms}}"]).trim(),
        "linux/arm64,linux/amd64"
    );
    assert_eq!(cat(&puller, "linux/amd64", &remote, &["/arch"]), "x86_64\n");
    assert_eq!(
        cat(&puller, "linux/arm64", &remote, &["/arch"]),
        "aarch64\n"
    );

    // Removing the tag removes both images, and nothing is left dangling.
    lade.ok(&["rmi", "app:multi"]);
    let left = lade.ok(&["images", "-a", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert!(!left.contains("app") && !left.contains("<none>"), "{left}");
    let check = lade.ok(&["system", "check"]);
    assert!(!check.contains("missing"), "{check}");
}

#[test]
fn manifest_lists_are_made_added_to_inspected_pushed_and_removed() {
    let lade = lade_with_both_bases();
    lade.ok(&["manifest", "create", "list:1", "busybox:latest"]);
    let exists = lade.fails(&["manifest", "create", "list:1", "busybox:latest"]);
    assert!(
        exists.contains("already exists") && exists.contains("--amend"),
        "{exists}"
    );
    lade.ok(&["manifest", "add", "list:1", "busybox-arm64:latest"]);
    // An image whose config says amd64, listed as arm/v7 by the flags.
    let context = Context::new("FROM scratch\nCOPY a.txt /\n");
    context.file("a.txt", "a\n");
    lade.build(context.path(), &["-t", "relabelled:1"]);
    lade.ok(&[
        "manifest",
        "add",
        "--arch",
        "arm",
        "--variant",
        "v7",
        "--annotation",
        "org.example.note=relabelled",
        "list:1",
        "relabelled:1",
    ]);
    let shown: serde_json::Value =
        serde_json::from_str(&lade.ok(&["manifest", "inspect", "list:1"])).unwrap();
    let entries = shown["manifests"].as_array().unwrap();
    let platforms: Vec<String> = entries
        .iter()
        .map(|m| {
            let p = &m["platform"];
            match p["variant"].as_str() {
                Some(v) => format!(
                    "{}/{}/{v}",
                    p["os"].as_str().unwrap(),
                    p["architecture"].as_str().unwrap()
                ),
                None => format!(
                    "{}/{}",
                    p["os"].as_str().unwrap(),
                    p["architecture"].as_str().unwrap()
                ),
            }
        })
        .collect();
    assert_eq!(
        platforms,
        ["linux/amd64", "linux/arm64", "linux/arm/v7"],
        "{shown}"
    );
    assert_eq!(entries[2]["annotations"]["org.example.note"], "relabelled");
    // Adding an image of a platform the list has replaces that platform's.
    lade.ok(&["manifest", "add", "list:1", "busybox-arm64:latest"]);
    let again: serde_json::Value =
        serde_json::from_str(&lade.ok(&["manifest", "inspect", "list:1"])).unwrap();
    assert_eq!(again["manifests"].as_array().unwrap().len(), 3, "{again}");

    let registry = Registry::start(None);
    let remote = format!("{}/platforms/list:1", registry.host());
    lade.ok(&["manifest", "push", "list:1", &remote]);
    let raw = common::run(
        "skopeo",
        &[
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{remote}"),
        ],
    );
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&raw).unwrap()["manifests"]
            .as_array()
            .unwrap()
            .len(),
        3,
        "{raw}"
    );
    // The registry's list, inspected from a store without it.
    let remote_shown = Lade::new().ok(&["manifest", "inspect", &remote]);
    assert!(remote_shown.contains("\"v7\""), "{remote_shown}");

    lade.ok(&["manifest", "rm", "list:1"]);
    assert!(!lade.ok(&["images"]).contains("list"));
    let gone = lade.fails(&["manifest", "add", "list:1", "busybox:latest"]);
    assert!(gone.contains("not a manifest list"), "{gone}");
    // The images it named are still there.
    inspect(&lade, "{{.Id}}", "busybox-arm64:latest");
}

#[test]
fn the_same_steps_for_two_platforms_share_no_cache_entry() {
    let lade = lade_with_both_bases();
    let context = Context::new("FROM scratch\nCOPY a.txt /a.txt\n");
    context.file("a.txt", "same for both\n");
    let (_, amd) = lade.build_log(context.path(), &["--platform", "linux/amd64"]);
    assert!(amd.contains("cache miss"), "{amd}");
    let (_, arm) = lade.build_log(context.path(), &["--platform", "linux/arm64"]);
    assert!(
        arm.contains("cache miss") && !arm.contains("CACHED"),
        "the arm64 build reused the amd64 one's step:\n{arm}"
    );
    // Each platform's step is found again by its own next build.
    let (_, again) = lade.build_log(context.path(), &["--platform", "linux/arm64"]);
    assert!(again.contains("CACHED"), "{again}");
}

#[test]
fn a_step_of_another_platform_without_qemu_says_how_to_register_it() {
    let lade = lade_with_both_bases();
    let context = Context::new("FROM busybox-arm64\nRUN true\n");
    let output = lade
        .cmd()
        .env("LADE_BINFMT_DIR", "/nonexistent/binfmt_misc")
        .args(["build", "--progress", "plain", "--platform", "linux/arm64"])
        .arg(context.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(
        err.contains("qemu-user-static")
            && err.contains("update-binfmts --enable qemu-aarch64")
            && err.contains("mount -t binfmt_misc"),
        "{err}"
    );
    // A base for another platform than the one asked for is refused by name.
    let context = Context::new("FROM busybox-arm64\nRUN true\n");
    let err = lade.fails(&[
        "build",
        "--platform",
        "linux/amd64",
        &context.path().to_string_lossy(),
    ]);
    assert!(
        err.contains("busybox-arm64") && err.contains("linux/arm64"),
        "{err}"
    );
}

/// The entries of the tar at `path`: each path with the file's text (empty for others).
fn tar_entries(path: &std::path::Path) -> Vec<(String, String)> {
    use std::io::Read;
    let mut archive = tar::Archive::new(std::fs::File::open(path).unwrap());
    let mut entries = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().to_string();
        let mut text = String::new();
        if entry.header().entry_type().is_file() {
            entry.read_to_string(&mut text).unwrap_or_default();
        }
        entries.push((name, text));
    }
    entries
}

#[test]
fn outputs_of_two_platforms_are_split_per_platform_as_buildkit_splits_them() {
    // No step runs: qemu is not needed.
    let lade = Lade::new();
    let context =
        Context::new("FROM scratch\nARG TARGETARCH\nCOPY $TARGETARCH.txt /hello-$TARGETARCH\n");
    context.file("amd64.txt", "built for amd64\n");
    context.file("arm64.txt", "built for arm64\n");
    let out = tempfile::tempdir().unwrap();
    let two = ["--platform", "linux/amd64,linux/arm64"];
    let dir = out.path().join("files");
    let local = format!("type=local,dest={}", dir.display());
    lade.build(context.path(), &[two[0], two[1], "-o", &local]);
    assert_eq!(
        std::fs::read_to_string(dir.join("linux_amd64/hello-amd64")).unwrap(),
        "built for amd64\n"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("linux_arm64/hello-arm64")).unwrap(),
        "built for arm64\n"
    );
    assert!(!dir.join("linux_amd64/hello-arm64").exists());

    // One tar, with a top directory per platform.
    let tar_path = out.path().join("files.tar");
    let tar_spec = format!("type=tar,dest={}", tar_path.display());
    lade.build(context.path(), &[two[0], two[1], "-o", &tar_spec]);
    let entries = tar_entries(&tar_path);
    let files: Vec<(&str, &str)> = entries
        .iter()
        .filter(|(_, text)| !text.is_empty())
        .map(|(n, t)| (n.trim_start_matches("./"), t.as_str()))
        .collect();
    assert_eq!(
        files,
        [
            ("linux_amd64/hello-amd64", "built for amd64\n"),
            ("linux_arm64/hello-arm64", "built for arm64\n")
        ],
        "{entries:?}"
    );

    // An OCI layout of the index: index.json names it, it names both platforms.
    let oci_path = out.path().join("image.tar");
    let oci_spec = format!(
        "type=oci,dest={},name=example.com/multi:1",
        oci_path.display()
    );
    lade.build(context.path(), &[two[0], two[1], "-o", &oci_spec]);
    let entries = tar_entries(&oci_path);
    let text_of = |name: &str| {
        entries
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no {name} in {entries:?}"))
            .1
            .clone()
    };
    let top: serde_json::Value = serde_json::from_str(&text_of("index.json")).unwrap();
    let named = &top["manifests"][0];
    assert_eq!(
        named["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    assert_eq!(
        named["annotations"]["io.containerd.image.name"],
        "example.com/multi:1"
    );
    let digest = named["digest"].as_str().unwrap().replace(':', "/");
    let index: serde_json::Value =
        serde_json::from_str(&text_of(&format!("blobs/{digest}"))).unwrap();
    let platforms: Vec<String> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            format!(
                "{}/{}",
                m["platform"]["os"].as_str().unwrap(),
                m["platform"]["architecture"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(platforms, ["linux/amd64", "linux/arm64"]);

    // BuildKit's docker exporter writes no index: refused before anything is built.
    let docker_spec = format!("type=docker,dest={}", out.path().join("d.tar").display());
    let err = lade.fails(&[
        "build",
        two[0],
        two[1],
        "-o",
        &docker_spec,
        &context.path().to_string_lossy(),
    ]);
    assert!(
        err.contains("type=docker") && err.contains("type=oci"),
        "{err}"
    );
}

#[test]
fn explain_of_two_platforms_explains_each_under_its_platform() {
    let lade = Lade::new();
    let context = Context::new("FROM scratch\nARG TARGETARCH\nCOPY $TARGETARCH.txt /hello\n");
    context.file("amd64.txt", "amd64\n");
    context.file("arm64.txt", "arm64\n");
    let path = context.path().to_string_lossy().to_string();
    // Only amd64 is in the cache.
    lade.build(context.path(), &["--platform", "linux/amd64"]);
    let two = [
        "build",
        "--explain",
        "--platform",
        "linux/amd64,linux/arm64",
    ];
    let text = lade.ok(&[two[0], two[1], two[2], two[3], &path]);
    let copy = |platform: &str| {
        text.lines()
            .find(|l| l.starts_with(&format!("[{platform} ")) && l.contains("COPY"))
            .unwrap_or_else(|| panic!("no COPY step for {platform}:\n{text}"))
            .to_string()
    };
    assert!(copy("linux/amd64").ends_with("cached"), "{text}");
    assert!(copy("linux/arm64").contains("runs"), "{text}");
    let json = lade.ok(&[two[0], two[1], two[2], two[3], "--format", "json", &path]);
    let rows: serde_json::Value = serde_json::from_str(&json).unwrap();
    let platforms: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["instruction"].as_str().unwrap().starts_with("COPY"))
        .map(|r| r["platform"].as_str().unwrap())
        .collect();
    assert_eq!(platforms, ["linux/amd64", "linux/arm64"], "{json}");
}

#[test]
fn inspect_history_save_and_push_take_the_image_of_one_platform() {
    let lade = Lade::new();
    let context = Context::new("FROM scratch\nARG TARGETARCH\nCOPY $TARGETARCH.txt /hello\n");
    context.file("amd64.txt", "amd64\n");
    context.file("arm64.txt", "arm64\n");
    lade.build(
        context.path(),
        &["--platform", "linux/amd64,linux/arm64", "-t", "multi:1"],
    );
    let arch = lade.ok(&[
        "image",
        "inspect",
        "--platform",
        "linux/arm64",
        "-f",
        "{{.Architecture}}",
        "multi:1",
    ]);
    assert_eq!(arch.trim(), "arm64");
    let amd = lade.ok(&[
        "image",
        "inspect",
        "--platform",
        "linux/amd64",
        "-f",
        "{{.Id}}",
        "multi:1",
    ]);
    let arm = lade.ok(&[
        "image",
        "inspect",
        "--platform",
        "linux/arm64",
        "-f",
        "{{.Id}}",
        "multi:1",
    ]);
    assert_ne!(amd, arm);
    let err = lade.fails(&["image", "inspect", "--platform", "linux/s390x", "multi:1"]);
    assert!(
        err.contains("linux/s390x") && err.contains("linux/arm64"),
        "{err}"
    );

    let history = lade.ok(&["history", "--platform", "linux/arm64", "-q", "multi:1"]);
    assert_eq!(history.lines().next().unwrap().trim(), &arm.trim()[7..19]);

    let out = tempfile::tempdir().unwrap();
    let saved = out.path().join("arm.tar");
    lade.ok(&[
        "save",
        "--platform",
        "linux/arm64",
        "-o",
        saved.to_str().unwrap(),
        "multi:1",
    ]);
    let entries = tar_entries(&saved);
    let manifest = &entries
        .iter()
        .find(|(n, _)| n == "manifest.json")
        .unwrap()
        .1;
    let manifest: serde_json::Value = serde_json::from_str(manifest).unwrap();
    assert_eq!(manifest.as_array().unwrap().len(), 1, "{manifest}");
    assert_eq!(manifest[0]["RepoTags"][0], "multi:1");
    assert!(
        manifest[0]["Config"]
            .as_str()
            .unwrap()
            .ends_with(&arm.trim()[7..]),
        "{manifest}"
    );

    // push --platform sends that image alone, as an image of one platform.
    let registry = Registry::start(None);
    let remote = format!("{}/platforms/one:arm", registry.host());
    lade.ok(&["push", "--platform", "linux/arm64", "multi:1", &remote]);
    let raw = common::run(
        "skopeo",
        &[
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{remote}"),
        ],
    );
    let manifest: serde_json::Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(
        manifest["mediaType"], "application/vnd.oci.image.manifest.v1+json",
        "{raw}"
    );
    assert_eq!(manifest["config"]["digest"], arm.trim(), "{raw}");
}

#[test]
fn manifest_annotate_changes_an_entrys_platform_and_keeps_the_rest() {
    let lade = Lade::new();
    let context = Context::new("FROM scratch\nCOPY a.txt /\n");
    context.file("a.txt", "a\n");
    lade.build(
        context.path(),
        &["--platform", "linux/amd64", "-t", "one:amd"],
    );
    lade.build(
        context.path(),
        &["--platform", "linux/arm64", "-t", "one:arm"],
    );
    lade.ok(&["manifest", "create", "annotated:1", "one:amd", "one:arm"]);
    lade.ok(&[
        "manifest",
        "annotate",
        "--variant",
        "v8",
        "--os-version",
        "13",
        "--os-features",
        "a,b",
        "annotated:1",
        "one:arm",
    ]);
    let platform_of = |arch: &str| {
        let shown: serde_json::Value =
            serde_json::from_str(&lade.ok(&["manifest", "inspect", "annotated:1"])).unwrap();
        shown["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["platform"]["architecture"] == arch)
            .unwrap_or_else(|| panic!("no {arch} entry: {shown}"))["platform"]
            .clone()
    };
    let arm = platform_of("arm64");
    assert_eq!(arm["os"], "linux");
    assert_eq!(arm["variant"], "v8");
    assert_eq!(arm["os.version"], "13");
    assert_eq!(arm["os.features"], serde_json::json!(["a", "b"]));
    assert_eq!(platform_of("amd64")["variant"], serde_json::Value::Null);
    // An empty value removes what it names; the rest stays.
    lade.ok(&[
        "manifest",
        "annotate",
        "--os-version",
        "",
        "annotated:1",
        "one:arm",
    ]);
    let arm = platform_of("arm64");
    assert_eq!(arm["os.version"], serde_json::Value::Null);
    assert_eq!(arm["variant"], "v8");
    // The list still serves arm64 with its image.
    assert_eq!(
        inspect(&lade, "{{.Id}}", "one:arm"),
        lade.ok(&[
            "image",
            "inspect",
            "--platform",
            "linux/arm64",
            "-f",
            "{{.Id}}",
            "annotated:1"
        ])
        .trim()
    );
    lade.build(
        context.path(),
        &[
            "--platform",
            "linux/arm64",
            "--label",
            "x=y",
            "-t",
            "other:1",
        ],
    );
    let err = lade.fails(&[
        "manifest",
        "annotate",
        "--os",
        "linux",
        "annotated:1",
        "other:1",
    ]);
    assert!(err.contains("other:1 is not in annotated:1"), "{err}");
    // -v: each entry's reference, descriptor, raw bytes and manifest, as Docker shows it.
    let verbose: serde_json::Value =
        serde_json::from_str(&lade.ok(&["manifest", "inspect", "-v", "annotated:1"])).unwrap();
    let entries = verbose.as_array().unwrap();
    assert_eq!(entries.len(), 2, "{verbose}");
    let arm_entry = entries
        .iter()
        .find(|e| e["Descriptor"]["platform"]["architecture"] == "arm64")
        .unwrap();
    let digest = arm_entry["Descriptor"]["digest"].as_str().unwrap();
    assert_eq!(
        arm_entry["Ref"],
        format!("docker.io/library/annotated:1@{digest}")
    );
    assert_eq!(
        arm_entry["OCIManifest"]["config"]["digest"]
            .as_str()
            .unwrap(),
        inspect(&lade, "{{.Id}}", "one:arm"),
        "{verbose}"
    );
    assert!(!arm_entry["Raw"].as_str().unwrap().is_empty());
}
