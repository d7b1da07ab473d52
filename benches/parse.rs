//! Parses and plans a generated 10,000-instruction Dockerfile: the front end's cost
//! before any build work starts (`lade build --dry-run` does exactly this).

use criterion::{criterion_group, BatchSize, Criterion};
use lade::graph::{self, BaseImage, PlanOptions};
use lade::parser;

/// Two global ARGs, ten stages of a thousand instructions each, and a final CMD: every
/// kind of instruction, with
/// continuations, JSON forms, flags and variable expansions.
fn generated_dockerfile() -> String {
    let mut text =
        String::from("# syntax=docker/dockerfile:1\nARG BASE=busybox\nARG VERSION=1.36\n");
    let mut count = 2;
    for stage in 0..10 {
        text.push_str(&format!("FROM ${{BASE}}:${{VERSION}} AS stage{stage}\n"));
        count += 1;
        let mut i = 0;
        while count < (stage + 1) * 1000 + 2 {
            let line = match i % 10 {
                0 => format!("ARG A{i}=value{i}\n"),
                1 => format!("ENV E{i}=\"${{A{}:-default}} x\" PATH=/usr/bin:$PATH\n", i - 1),
                2 => format!("RUN echo step {i} \\\n    && mkdir -p /out/{i} \\\n    && echo done > /out/{i}/f\n"),
                3 => format!("COPY --chown=1000:1000 --chmod=0644 src/{i}/ /app/${{E{}}}/\n", i - 2),
                4 => format!("LABEL org.example.step{i}=\"value {i}\" other=$A{}\n", i - 4),
                5 => format!("WORKDIR /app/{i}\n"),
                6 => format!("RUN [\"/bin/sh\", \"-c\", \"echo {i}\"]\n"),
                7 => format!("EXPOSE {}/tcp\n", 1000 + i % 60000),
                8 => {
                    if stage > 0 {
                        format!("COPY --from=stage{} /out/{i} /in/{i}\n", stage - 1)
                    } else {
                        format!("USER {i}\n")
                    }
                }
                _ => format!("RUN --mount=type=cache,target=/cache/{i} --network=none make -C /app/{i}\n"),
            };
            text.push_str(&line);
            count += 1;
            i += 1;
        }
    }
    text.push_str("CMD [\"/app/run\"]\n");
    text
}

fn parse_and_plan(c: &mut Criterion) {
    let text = generated_dockerfile();
    let dockerfile =
        parser::parse("Dockerfile", text.clone().into_bytes()).expect("the generated file parses");
    assert_eq!(dockerfile.instructions.len(), 10_003);
    c.bench_function("parse + plan + expand, 10,000 instructions", |b| {
        b.iter(|| {
            let dockerfile = parser::parse("Dockerfile", text.clone().into_bytes()).unwrap();
            let plan = graph::plan(dockerfile, &PlanOptions::default()).unwrap();
            graph::expand_all(&plan, |_, _| BaseImage::default()).unwrap()
        })
    });
    c.bench_function("parse only, 10,000 instructions", |b| {
        b.iter(|| parser::parse("Dockerfile", text.clone().into_bytes()).unwrap())
    });
    // `plan` takes the Dockerfile: each iteration gets one parsed outside the timing.
    c.bench_function("plan + expand only, 10,000 instructions", |b| {
        b.iter_batched(
            || parser::parse("Dockerfile", text.clone().into_bytes()).unwrap(),
            |dockerfile| {
                let plan = graph::plan(dockerfile, &PlanOptions::default()).unwrap();
                graph::expand_all(&plan, |_, _| BaseImage::default()).unwrap()
            },
            BatchSize::LargeInput,
        )
    });
}

/// One parse, then one plan + expand, each in its own function: run under
/// `valgrind --tool=callgrind --toggle-collect=parse::count_parse` (or
/// `parse::count_plan_and_expand`) with `PARSE_BENCH_ONCE=1`, it gives each phase's
/// instruction count, which the load of a shared machine does not move.
#[inline(never)]
fn count_parse(text: &str) -> parser::Dockerfile {
    parser::parse("Dockerfile", text.as_bytes().to_vec()).unwrap()
}

#[inline(never)]
fn count_plan_and_expand(dockerfile: parser::Dockerfile) -> usize {
    let plan = graph::plan(dockerfile, &PlanOptions::default()).unwrap();
    let stages = graph::expand_all(&plan, |_, _| BaseImage::default()).unwrap();
    stages.values().map(|s| s.steps.len()).sum()
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30);
    targets = parse_and_plan
}

fn main() {
    if std::env::var_os("PARSE_BENCH_ONCE").is_some() {
        let text = generated_dockerfile();
        let dockerfile = count_parse(&text);
        let steps = count_plan_and_expand(std::hint::black_box(dockerfile));
        println!("{steps} steps");
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
