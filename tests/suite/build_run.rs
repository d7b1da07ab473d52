//! RUN steps in builds: changes captured as layers (whiteouts, opaque directories)
//! that umoci, lade run and podman all see the same way; mounts; failures.

use crate::common;

use common::{require_tool, run, Context, Lade, Podman};

const CHANGES: &str = r#"FROM busybox AS base
RUN mkdir -p /data/keep /data/replace /data/gone \
 && echo keep > /data/keep/a && echo old > /data/replace/old && echo gone > /data/gone/x \
 && echo change-me > /data/changed && echo bye > /data/deleted

FROM busybox AS other
RUN mkdir /out && echo "from the other stage" > /out/note

FROM base
COPY --from=other /out/note /data/note
RUN rm /data/deleted && echo changed > /data/changed && rm -rf /data/gone \
 && rm -rf /data/replace && mkdir /data/replace && echo new > /data/replace/new && echo added > /data/added
CMD ["sh", "-c", "find /data | sort | while read f; do if [ -f \"$f\" ]; then echo \"$f: $(cat $f)\"; else echo \"$f/\"; fi; done"]
"#;

const EXPECTED: &str = "/data/
/data/added: added
/data/changed: changed
/data/keep/
/data/keep/a: keep
/data/note: from the other stage
/data/replace/
/data/replace/new: new
";

#[test]
fn created_changed_and_deleted_files_are_seen_alike_by_lade_umoci_and_podman() {
    require_tool("umoci");
    let lade = Lade::new();
    lade.busybox_with("--compression gzip");
    let context = Context::new(CHANGES);
    lade.build(
        context.path(),
        &["-t", "changes:1", "--compression", "gzip"],
    );

    assert_eq!(lade.ok(&["run", "--rm", "changes:1"]), EXPECTED);

    let bundle = lade.dir.path().join("bundle");
    run(
        "umoci",
        &[
            "unpack",
            "--image",
            &format!("{}/oci:changes:1", lade.root().display()),
            &bundle.to_string_lossy(),
        ],
    );
    let listing = run(
        "sh",
        &[
            "-c",
            &format!(
                "cd {}/rootfs && find data | sort | while read f; do if [ -f \"$f\" ]; then echo \"/$f: $(cat $f)\"; else echo \"/$f/\"; fi; done",
                bundle.display()
            ),
        ],
    );
    assert_eq!(listing, EXPECTED);

    let archive = lade.dir.path().join("changes.tar");
    lade.ok(&["save", "-o", &archive.to_string_lossy(), "changes:1"]);
    let podman = Podman::new();
    podman.ok(&["load", "-q", "-i", &archive.to_string_lossy()]);
    // crun refuses this machine's hybrid cgroups; runc runs here as shipped.
    let out = podman.ok(&[
        "run",
        "--rm",
        "--runtime",
        "runc",
        "--network",
        "none",
        "changes:1",
    ]);
    assert_eq!(out, EXPECTED);
}

#[test]
fn cache_mounts_keep_what_the_previous_build_left() {
    let lade = Lade::new();
    lade.busybox();
    let context = Context::new(
        "FROM busybox\nARG RUN_ID\nRUN --mount=type=cache,target=/cache,id=shared ls /cache > /seen && touch /cache/$RUN_ID\nCMD [\"cat\", \"/seen\"]\n",
    );
    lade.build(
        context.path(),
        &["-t", "c:1", "--build-arg", "RUN_ID=first"],
    );
    assert_eq!(lade.ok(&["run", "--rm", "c:1"]), "");
    lade.build(
        context.path(),
        &["-t", "c:2", "--build-arg", "RUN_ID=second"],
    );
    assert_eq!(lade.ok(&["run", "--rm", "c:2"]), "first\n");
    let inspect = lade.ok(&["inspect", "c:2"]);
    assert!(
        !inspect.contains("RUN_ID=second\""),
        "ARG values are not stored in the config"
    );
    // The cache is not part of the image.
    let (code, _, _) = {
        let o = lade.output(&["run", "--rm", "c:2", "ls", "/cache/first"]);
        (o.status.code(), o.stdout, o.stderr)
    };
    assert_ne!(code, Some(0));
}

#[test]
fn failing_steps_say_which_step_its_code_and_last_output() {
    let lade = Lade::new();
    lade.busybox();
    let context = Context::new(
        "FROM busybox\nRUN echo before && echo last words >&2 && exit 42\nRUN echo never\n",
    );
    let err = lade.fails(&[
        "build",
        "--progress",
        "plain",
        &context.path().to_string_lossy(),
    ]);
    assert!(err.contains("Dockerfile:2:1: RUN echo before"), "{err}");
    assert!(err.contains("exit code 42"), "{err}");
    assert!(err.contains("last words"), "{err}");
    assert!(!err.contains("never"), "{err}");
}

#[test]
fn run_forms_shell_user_workdir_and_args() {
    let lade = Lade::new();
    lade.busybox();
    let context = Context::new(
        r#"FROM busybox
ARG BUILD_ONLY=secret-ish
RUN ["sh", "-c", "echo exec form > /exec"]
SHELL ["/bin/sh", "-ec"]
RUN echo "shell: $0" > /shell && echo "arg: $BUILD_ONLY" > /arg
RUN <<EOF
echo heredoc script > /heredoc
EOF
RUN <<EOF
#!/bin/sh
echo "shebang script as $(id -u)" > /shebang
EOF
RUN cat <<EOF > /heredoc-cat
fed by a heredoc
EOF
WORKDIR /work
RUN pwd > /pwd
USER daemon
RUN id -u > /tmp/uid
USER root
CMD ["sh", "-c", "cat /exec /shell /arg /heredoc /shebang /heredoc-cat /pwd /tmp/uid"]
"#,
    );
    lade.build(context.path(), &["-t", "forms:1"]);
    assert_eq!(
        lade.ok(&["run", "--rm", "forms:1"]),
        "exec form\nshell: /bin/sh\narg: secret-ish\nheredoc script\nshebang script as 0\nfed by a heredoc\n/work\n1\n"
    );
    let inspect = lade.ok(&["inspect", "forms:1"]);
    assert!(
        !inspect.contains("BUILD_ONLY"),
        "ARG values stay out of the image config: {inspect}"
    );
}

#[test]
fn run_mounts_and_network() {
    let lade = Lade::new();
    lade.busybox();
    let context = Context::new(
        r#"FROM busybox AS tools
RUN mkdir /t && echo "stage file" > /t/f
FROM busybox
RUN --mount=type=bind,source=input.txt,target=/in/input.txt cat /in/input.txt > /from-context \
 && ! touch /in/input.txt 2>/dev/null
RUN --mount=type=bind,from=tools,source=/t,target=/mnt/t cat /mnt/t/f > /from-stage
RUN --mount=type=bind,target=/ctx,rw echo scribble > /ctx/input.txt && cat /ctx/input.txt > /rw-copy
RUN --mount=type=tmpfs,target=/scratch echo temp > /scratch/x && ls /scratch > /tmpfs
RUN --network=none ls /sys/class/net > /net-none
RUN --mount=type=secret,id=optional cat /run/secrets/optional 2>/dev/null || echo no secret > /secret
CMD ["sh", "-c", "cat /from-context /from-stage /rw-copy /tmpfs /net-none /secret; ls /mnt /scratch /in 2>&1 | head -3"]
"#,
    );
    context.file("input.txt", "context file");
    lade.build(context.path(), &["-t", "mounts:1"]);
    let out = lade.ok(&["run", "--rm", "mounts:1"]);
    assert!(
        out.starts_with("context filestage file\nscribble\nx\nlo\nno secret\n"),
        "{out}"
    );
    assert!(
        !out.contains("/mnt:\nt") && out.contains("No such file"),
        "mount points are not left in the image: {out}"
    );
    assert_eq!(
        std::fs::read_to_string(context.path().join("input.txt")).unwrap(),
        "context file",
        "a rw bind mount's writes are discarded"
    );
    let context = Context::new(
        "FROM busybox\nRUN --mount=type=secret,id=needed,required cat /run/secrets/needed\n",
    );
    let err = lade.fails(&[
        "build",
        "--progress",
        "quiet",
        &context.path().to_string_lossy(),
    ]);
    assert!(
        err.contains("the secret \"needed\" is required but was not given"),
        "{err}"
    );
}

/// A step that swaps a mount point's parent for a link to the host cannot make lade's
/// clean-up of the mount points (after the step) remove the host's files.
#[test]
fn mount_point_clean_up_does_not_follow_links_the_step_planted() {
    let lade = Lade::new();
    lade.busybox();
    let host = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(host.path().join("b/c")).unwrap();
    std::fs::write(host.path().join("b/empty"), "").unwrap();
    let context = Context::new(&format!(
        "FROM busybox\n\
         RUN --mount=type=tmpfs,target=/a/b/c --mount=type=tmpfs,target=/a/b/empty \
         sh -c 'mv /a /a2 && ln -s {} /a'\n",
        host.path().display()
    ));
    lade.build(context.path(), &["-t", "planted"]);
    assert!(
        host.path().join("b/c").is_dir() && host.path().join("b/empty").is_file(),
        "the host's files are still there"
    );
}
