//! Unit tests of the graph, from the Dockerfile reference and the stage rules.

use super::*;
use crate::parser;

fn plan_with(text: &str, args: &[(&str, &str)], target: Option<&str>) -> Result<Plan, GraphError> {
    let dockerfile = parser::parse("Dockerfile", text.as_bytes().to_vec()).unwrap();
    let options = PlanOptions {
        build_args: args
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        target: target.map(str::to_string),
        platform: None,
    };
    plan(dockerfile, &options)
}

fn stage(plan: &Plan, index: usize) -> ExpandedStage {
    expand_stage(plan, index, &BaseImage::default()).unwrap()
}

fn run_env(step: &Step) -> Vec<(String, String)> {
    match &step.kind {
        StepKind::Run(run) => run
            .env
            .entries()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        other => panic!("not a RUN: {other:?}"),
    }
}

fn env_value(step: &Step, name: &str) -> Option<String> {
    run_env(step)
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

#[test]
fn global_arg_is_usable_in_from() {
    let text = "ARG VERSION=latest\nFROM busybox:$VERSION\n";
    let p = plan_with(text, &[], None).unwrap();
    assert_eq!(
        p.stages[0].base,
        Base::Image("busybox:latest".parse().unwrap())
    );
    let p = plan_with(text, &[("VERSION", "1.36")], None).unwrap();
    assert_eq!(
        p.stages[0].base,
        Base::Image("busybox:1.36".parse().unwrap())
    );
}

#[test]
fn global_arg_must_be_redeclared_inside_a_stage() {
    let p = plan_with(
        "ARG V=1\nFROM scratch\nRUN echo $V\nARG V\nRUN echo $V\n",
        &[],
        None,
    )
    .unwrap();
    let s = stage(&p, 0);
    assert_eq!(env_value(&s.steps[0], "V"), None);
    assert_eq!(env_value(&s.steps[2], "V").as_deref(), Some("1"));
}

#[test]
fn build_arg_overrides_default() {
    let p = plan_with("FROM scratch\nARG A=x\nENV B=$A\n", &[("A", "y")], None).unwrap();
    assert!(stage(&p, 0)
        .config
        .env
        .unwrap()
        .contains(&"B=y".to_string()));
}

#[test]
fn env_wins_over_arg_of_the_same_name() {
    let text = "FROM ubuntu\nARG CONT_IMG_VER\nENV CONT_IMG_VER=v1.0.0\nRUN echo $CONT_IMG_VER\n";
    let p = plan_with(text, &[("CONT_IMG_VER", "v2.0.1")], None).unwrap();
    assert_eq!(
        env_value(&stage(&p, 0).steps[2], "CONT_IMG_VER").as_deref(),
        Some("v1.0.0")
    );

    let text =
        "FROM ubuntu\nARG CONT_IMG_VER\nENV CONT_IMG_VER=${CONT_IMG_VER:-v1.0.0}\nRUN true\n";
    let without = plan_with(text, &[], None).unwrap();
    assert_eq!(
        env_value(&stage(&without, 0).steps[2], "CONT_IMG_VER").as_deref(),
        Some("v1.0.0")
    );
    let with = plan_with(text, &[("CONT_IMG_VER", "v2.0.1")], None).unwrap();
    assert_eq!(
        env_value(&stage(&with, 0).steps[2], "CONT_IMG_VER").as_deref(),
        Some("v2.0.1")
    );
}

#[test]
fn arg_is_empty_before_its_declaration() {
    let text =
        "FROM busybox\nUSER ${username:-some_user}\nARG username\nUSER $username\nRUN true\n";
    let p = plan_with(text, &[("username", "what_user")], None).unwrap();
    let s = stage(&p, 0);
    assert_eq!(s.steps[0].created_by, "USER some_user");
    assert_eq!(s.config.user.as_deref(), Some("what_user"));
}

#[test]
fn env_values_see_the_previous_environment() {
    let text = "FROM scratch\nENV abc=hello\nENV abc=bye def=$abc\nENV ghi=$abc\n";
    let env = stage(&plan_with(text, &[], None).unwrap(), 0)
        .config
        .env
        .unwrap();
    assert!(
        env.contains(&"def=hello".into()) && env.contains(&"ghi=bye".into()),
        "{env:?}"
    );
}

#[test]
fn arg_scope_ends_with_the_stage() {
    let text =
        "FROM busybox\nARG SETTINGS\nRUN ./setup $SETTINGS\nFROM busybox\nRUN ./other $SETTINGS\n";
    let p = plan_with(text, &[("SETTINGS", "x")], None).unwrap();
    assert_eq!(
        env_value(&stage(&p, 0).steps[1], "SETTINGS").as_deref(),
        Some("x")
    );
    assert_eq!(env_value(&stage(&p, 1).steps[0], "SETTINGS"), None);
}

#[test]
fn arg_values_are_not_stored_in_the_image() {
    let p = plan_with("FROM scratch\nARG SECRETISH=abc\nRUN true\n", &[], None).unwrap();
    let s = stage(&p, 0);
    assert_eq!(env_value(&s.steps[1], "SECRETISH").as_deref(), Some("abc"));
    assert!(s
        .config
        .env
        .unwrap_or_default()
        .iter()
        .all(|e| !e.starts_with("SECRETISH")));
    assert!(
        s.steps[1].created_by.starts_with("RUN |1 SECRETISH=abc "),
        "{}",
        s.steps[1].created_by
    );
}

#[test]
fn automatic_platform_args() {
    let p = plan_with(
        "FROM scratch AS x\nARG TARGETARCH\nENV A=$TARGETARCH B=$TARGETOS\n",
        &[],
        None,
    )
    .unwrap();
    let env = stage(&p, 0).config.env.unwrap();
    let arch = crate::oci::Platform::host().architecture;
    assert!(
        env.contains(&format!("A={arch}")) && env.contains(&"B=".to_string()),
        "{env:?}"
    );
    let p = plan_with("FROM busybox:$TARGETOS\n", &[], None).unwrap();
    assert_eq!(
        p.stages[0].base,
        Base::Image("busybox:linux".parse().unwrap())
    );
}

#[test]
fn target_platform_args_follow_the_platform_and_build_ones_the_host() {
    let dockerfile = parser::parse(
        "Dockerfile",
        b"FROM --platform=$BUILDPLATFORM busybox AS build\nARG TARGETARCH TARGETPLATFORM BUILDARCH TARGETVARIANT\nENV T=$TARGETARCH P=$TARGETPLATFORM B=$BUILDARCH V=$TARGETVARIANT\n"
            .to_vec(),
    )
    .unwrap();
    let options = PlanOptions {
        platform: Some(crate::oci::Platform::parse("linux/arm/v7").unwrap()),
        ..PlanOptions::default()
    };
    let p = plan(dockerfile, &options).unwrap();
    let host = crate::oci::Platform::host();
    assert_eq!(
        p.stages[0].platform.as_deref(),
        Some(host.to_string().as_str())
    );
    let env = stage(&p, 0).config.env.unwrap();
    for wanted in [
        "T=arm".to_string(),
        "P=linux/arm/v7".to_string(),
        format!("B={}", host.architecture),
        "V=v7".to_string(),
    ] {
        assert!(env.contains(&wanted), "{wanted} not in {env:?}");
    }
}

#[test]
fn unused_build_args_are_reported() {
    let p = plan_with(
        "FROM scratch\nARG USED\n",
        &[("USED", "1"), ("UNUSED", "2"), ("HTTP_PROXY", "x")],
        None,
    )
    .unwrap();
    assert_eq!(p.unused_build_args, vec!["UNUSED".to_string()]);
}

#[test]
fn entrypoint_resets_inherited_cmd() {
    let dockerfile =
        parser::parse("Dockerfile", b"FROM busybox\nENTRYPOINT [\"x\"]\n".to_vec()).unwrap();
    let p = plan(dockerfile, &PlanOptions::default()).unwrap();
    let mut base = BaseImage::default();
    base.config.cmd = Some(vec!["sh".into()]);
    assert_eq!(expand_stage(&p, 0, &base).unwrap().config.cmd, None);

    let dockerfile = parser::parse(
        "Dockerfile",
        b"FROM busybox\nCMD [\"a\"]\nENTRYPOINT x\n".to_vec(),
    )
    .unwrap();
    let p = plan(dockerfile, &PlanOptions::default()).unwrap();
    let s = expand_stage(&p, 0, &base).unwrap();
    assert_eq!(s.config.cmd, Some(vec!["a".into()]));
    assert_eq!(
        s.config.entrypoint,
        Some(vec!["/bin/sh".into(), "-c".into(), "x".into()])
    );
}

#[test]
fn workdir_is_relative_to_the_previous_one() {
    let text = "FROM scratch\nWORKDIR /a\nWORKDIR b\nWORKDIR c\nRUN pwd\nENV DIRPATH=/path\nWORKDIR $DIRPATH/$DIRNAME\nCOPY x .\n";
    let s = stage(&plan_with(text, &[], None).unwrap(), 0);
    match &s.steps[3].kind {
        StepKind::Run(run) => assert_eq!(run.workdir, "/a/b/c"),
        other => panic!("{other:?}"),
    }
    assert_eq!(s.config.working_dir.as_deref(), Some("/path"));
    match &s.steps[6].kind {
        StepKind::Copy(copy) => assert_eq!(copy.dest, "/path/"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn shell_changes_later_shell_forms() {
    let text = "FROM scratch\nSHELL [\"/bin/bash\", \"-ec\"]\nRUN echo hi\nCMD run\n";
    let s = stage(&plan_with(text, &[], None).unwrap(), 0);
    match &s.steps[1].kind {
        StepKind::Run(run) => assert_eq!(run.argv, vec!["/bin/bash", "-ec", "echo hi"]),
        other => panic!("{other:?}"),
    }
    assert_eq!(s.config.cmd.unwrap(), vec!["/bin/bash", "-ec", "run"]);
}

#[test]
fn heredoc_runs() {
    let text = "FROM scratch\nRUN <<EOF\necho hi\nEOF\nRUN <<EOF\n#!/usr/bin/env python3\nprint(1)\nEOF\nRUN cat <<EOF > /f\nhello $HOME\nEOF\n";
    let s = stage(&plan_with(text, &[], None).unwrap(), 0);
    let runs: Vec<&RunStep> = s
        .steps
        .iter()
        .filter_map(|st| match &st.kind {
            StepKind::Run(r) => Some(r),
            _ => None,
        })
        .collect();
    assert_eq!(runs[0].argv, vec!["/bin/sh", "-c", "echo hi\n"]);
    assert_eq!(runs[1].argv, vec!["/dev/pipes/EOF"]);
    assert_eq!(
        runs[1].script_files[0].content,
        "#!/usr/bin/env python3\nprint(1)\n"
    );
    assert_eq!(runs[2].argv[2], "cat <<EOF > /f\nhello $HOME\nEOF\n");
}

#[test]
fn copy_heredoc_expands_unless_quoted() {
    let text =
        "FROM scratch\nARG X=1\nCOPY <<EOF /a\nv=$X \"q\"\nEOF\nCOPY <<'EOF' /b\nv=$X\nEOF\n";
    let s = stage(&plan_with(text, &[], None).unwrap(), 0);
    let contents: Vec<String> = s
        .steps
        .iter()
        .filter_map(|st| match &st.kind {
            StepKind::Copy(c) => match &c.sources[0] {
                CopySource::Heredoc { content, .. } => Some(content.clone()),
                _ => None,
            },
            _ => None,
        })
        .collect();
    assert_eq!(contents, vec!["v=1 \"q\"\n", "v=$X\n"]);
}

#[test]
fn onbuild_triggers_of_the_base_run_first() {
    let p = plan_with("FROM base\nRUN second\n", &[], None).unwrap();
    let mut base = BaseImage::default();
    base.config.on_build = Some(vec!["RUN first".into()]);
    let s = expand_stage(&p, 0, &base).unwrap();
    assert!(s.steps[0].from_onbuild && &*s.steps[0].text == "RUN first");
    assert_eq!(s.config.on_build, None);
}

#[test]
fn stages_edges_and_target_pruning() {
    let text = "FROM busybox AS a\nRUN a\nFROM busybox AS b\nRUN b\nFROM busybox AS unused\nFROM busybox\nCOPY --from=a /x /x\nCOPY --from=1 /y /y\n";
    let p = plan_with(text, &[], None).unwrap();
    assert_eq!(p.target, 3);
    assert_eq!(
        p.stages[3].deps.iter().copied().collect::<Vec<_>>(),
        vec![0, 1]
    );
    assert!(
        !p.order.contains(&2),
        "the unused stage is pruned: {:?}",
        p.order
    );
    assert_eq!(p.parallel_groups(), vec![vec![0, 1], vec![3]]);
    let p = plan_with(text, &[], Some("b")).unwrap();
    assert_eq!(p.order, vec![1]);
}

#[test]
fn from_a_stage_and_from_an_image() {
    let text = "FROM busybox AS base\nFROM base\nCOPY --from=alpine:3 /etc/os-release /\n";
    let p = plan_with(text, &[], None).unwrap();
    assert_eq!(p.stages[1].base, Base::Stage(0));
    match &stage(&p, 1).steps[0].kind {
        StepKind::Copy(c) => assert_eq!(c.from, CopyFrom::Image("alpine:3".parse().unwrap())),
        other => panic!("{other:?}"),
    }
}

#[test]
fn graph_errors_are_located() {
    let err = plan_with("FROM a AS x\nFROM b AS x\n", &[], None).unwrap_err();
    assert_eq!(err.location.as_ref().unwrap().line, 2);
    assert!(
        err.to_string().contains("duplicate stage name \"x\""),
        "{err}"
    );

    let err = plan_with("FROM a\nCOPY --from=1 /a /b\n", &[], None).unwrap_err();
    assert!(
        err.to_string().contains("current or a later stage"),
        "{err}"
    );

    let err = plan_with("ENV A=1\nFROM a\n", &[], None).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("Dockerfile:1:1: ENV before the first FROM"),
        "{err}"
    );

    let err = plan_with("FROM Busybox\n", &[], None).unwrap_err();
    assert!(err.to_string().contains("lower-case"), "{err}");

    let err = plan_with("FROM a\n", &[], Some("nope")).unwrap_err();
    assert!(
        err.to_string().contains("target stage \"nope\" not found"),
        "{err}"
    );
}

#[test]
fn cycles_are_refused() {
    let text = "FROM busybox AS a\nCOPY --from=b /x /x\nFROM busybox AS b\nCOPY --from=a /y /y\n";
    let err = plan_with(text, &[], Some("b")).unwrap_err();
    assert!(err.to_string().contains("circular dependency"), "{err}");
}

#[test]
fn expose_and_healthcheck_in_config() {
    let text = "FROM scratch\nEXPOSE 80 53/udp 8000-8001\nHEALTHCHECK --interval=5s CMD curl -f x\nSTOPSIGNAL SIGINT\n";
    let config = stage(&plan_with(text, &[], None).unwrap(), 0).config;
    let ports: Vec<&String> = config.exposed_ports.as_ref().unwrap().keys().collect();
    assert_eq!(ports, vec!["53/udp", "80/tcp", "8000/tcp", "8001/tcp"]);
    let health = config.healthcheck.unwrap();
    assert_eq!(health.test, vec!["CMD-SHELL", "curl -f x"]);
    assert_eq!(health.interval, 5_000_000_000);
    assert_eq!(config.stop_signal.as_deref(), Some("SIGINT"));
}

#[test]
fn run_mounts_are_expanded_and_typed() {
    let text = "FROM scratch AS src\nFROM scratch\nARG C=/cache\nWORKDIR /w\nRUN --mount=type=cache,target=$C,sharing=locked --mount=type=bind,from=src,source=/a,target=b --mount=type=tmpfs,target=/t,size=1m true\n";
    let p = plan_with(text, &[], None).unwrap();
    assert!(p.stages[1].deps.contains(&0));
    match &stage(&p, 1).steps[2].kind {
        StepKind::Run(run) => {
            assert!(
                matches!(&run.mounts[0], Mount::Cache { target, id, sharing: Sharing::Locked, .. } if target == "/cache" && id == "/cache")
            );
            assert!(
                matches!(&run.mounts[1], Mount::Bind { target, from: CopyFrom::Stage(0), readwrite: false, .. } if target == "/w/b")
            );
            assert!(matches!(
                &run.mounts[2],
                Mount::Tmpfs {
                    size: Some(1048576),
                    ..
                }
            ));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn secret_and_ssh_mounts_take_buildkit_defaults() {
    let text = "FROM scratch\nWORKDIR /w\nRUN --mount=type=secret,id=tok --mount=type=secret,target=rel/key --mount=type=secret,id=aws,env=AWS_KEY --mount=type=secret,source=npm,env=NPM,target=/n,mode=0440,uid=7,required --mount=type=ssh --mount=type=ssh,id=git,mode=0666 true\n";
    let p = plan_with(text, &[], None).unwrap();
    let StepKind::Run(run) = &stage(&p, 0).steps[1].kind else {
        panic!("not a RUN")
    };
    let secret = |index: usize| match &run.mounts[index] {
        Mount::Secret {
            target,
            id,
            env,
            mode,
            uid,
            required,
            ..
        } => (
            target.clone(),
            id.clone(),
            env.clone(),
            *mode,
            *uid,
            *required,
        ),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        secret(0),
        (
            Some("/run/secrets/tok".into()),
            "tok".into(),
            None,
            0o400,
            0,
            false
        )
    );
    // The id is the target's name; a relative target is under the working directory.
    assert_eq!(secret(1).0.as_deref(), Some("/w/rel/key"));
    assert_eq!(secret(1).1, "key");
    // `env` without a target is only a variable.
    assert_eq!(
        secret(2),
        (None, "aws".into(), Some("AWS_KEY".into()), 0o400, 0, false)
    );
    assert_eq!(
        secret(3),
        (
            Some("/n".into()),
            "npm".into(),
            Some("NPM".into()),
            0o440,
            7,
            true
        )
    );
    let ssh = |index: usize| match &run.mounts[index] {
        Mount::Ssh {
            target, id, mode, ..
        } => (target.clone(), id.clone(), *mode),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        ssh(4),
        ("/run/buildkit/ssh_agent.0".into(), "default".into(), 0o600)
    );
    assert_eq!(
        ssh(5),
        ("/run/buildkit/ssh_agent.1".into(), "git".into(), 0o666)
    );
}

#[test]
fn a_secret_mount_without_id_or_target_is_refused() {
    for text in [
        "FROM scratch\nRUN --mount=type=secret true\n",
        "FROM scratch\nRUN --mount=type=secret,id=a,source=b true\n",
    ] {
        let plan = plan_with(text, &[], None).unwrap();
        let err = expand_stage(&plan, 0, &BaseImage::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("secret mount"), "{err}");
    }
}

#[test]
fn run_history_lists_args_in_declaration_order_as_they_change() {
    let p = plan_with(
        "FROM scratch\nRUN a\nARG A=1\nARG U\nRUN b\nARG B=2\nRUN c\nARG A=3\nARG U=u\nRUN d\nARG B\nRUN e\n",
        &[],
        None,
    )
    .unwrap();
    let history: Vec<String> = stage(&p, 0)
        .steps
        .iter()
        .filter(|s| matches!(s.kind, StepKind::Run(_)))
        .map(|s| s.created_by.clone())
        .collect();
    assert_eq!(
        history,
        [
            "RUN /bin/sh -c a # buildkit",
            "RUN |1 A=1 /bin/sh -c b # buildkit",
            "RUN |2 A=1 B=2 /bin/sh -c c # buildkit",
            "RUN |3 A=3 U=u B=2 /bin/sh -c d # buildkit",
            // Declared again without a default, nor a global or --build-arg value.
            "RUN |2 A=3 U=u /bin/sh -c e # buildkit",
        ]
    );
}
