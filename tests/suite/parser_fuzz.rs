//! Property tests: arbitrary bytes, and arbitrary mutations of the conformance
//! Dockerfiles, never make the parser, the planner or the expansion panic.

use std::path::Path;

use lade::graph::{self, BaseImage, PlanOptions};
use lade::parser;
use proptest::prelude::*;

/// Parses, then plans and expands whatever parses: nothing may panic.
fn exercise(bytes: &[u8]) {
    let _ = parser::parse_syntax("Dockerfile", bytes.to_vec()).map(|tree| parser::dump(&tree));
    if let Ok(dockerfile) = parser::parse("Dockerfile", bytes.to_vec()) {
        if let Ok(plan) = graph::plan(dockerfile, &PlanOptions::default()) {
            let _ = graph::expand_all(&plan, |_, _| BaseImage::default());
        }
    }
}

fn corpus_files() -> Vec<Vec<u8>> {
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/conformance");
    let mut files: Vec<Vec<u8>> = walkdir::WalkDir::new(&base)
        .sort_by_file_name()
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_name() == "Dockerfile")
        .map(|e| std::fs::read(e.path()).unwrap())
        .collect();
    if files.is_empty() {
        println!(
            "SKIPPED corpus mutations: {} is absent; fuzzing the built-in seeds only",
            base.display()
        );
    }
    // Seeds of lade's own, so the mutations cover heredocs, escapes and expansions.
    files.push(
        b"# escape=`\nFROM a AS b\nRUN echo `\n  hi\nCOPY <<EOF <<-\"X\" /d/\nx\nEOF\n\ty\n\tX\n"
            .to_vec(),
    );
    files.push(b"ARG V=${A:-${B:+c}}\nFROM x:$V\nENV a=\"b c\" d='e'\nONBUILD RUN --mount=type=cache,target=/c make\nHEALTHCHECK --interval=5s CMD [\"a\"]\n".to_vec());
    files
}

const TOKENS: &[&[u8]] = &[
    b"\\\n",
    b"`\n",
    b"\r\n",
    b"\n",
    b"<<EOF",
    b"<<-'EOF'",
    b"EOF\n",
    b"${",
    b"}",
    b"$",
    b"\"",
    b"'",
    b"[\"",
    b"\"]",
    b"# escape=`\n",
    b"--from=0 ",
    b"--mount=type=cache,target=/x ",
    b"ONBUILD ",
    b"FROM ",
    b"COPY ",
    b"RUN ",
    b"ARG ",
    b"ENV ",
    b" AS ",
    b"\xff",
    b"\xef\xbb\xbf",
    b"\t",
    b"=",
];

#[derive(Debug, Clone)]
enum Mutation {
    Insert(usize, Vec<u8>),
    InsertToken(usize, usize),
    Delete(usize, usize),
    Duplicate(usize, usize),
}

fn apply(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        let len = bytes.len().max(1);
        match m {
            Mutation::Insert(at, data) => {
                let at = at % (bytes.len() + 1);
                bytes.splice(at..at, data.iter().copied());
            }
            Mutation::InsertToken(at, token) => {
                let at = at % (bytes.len() + 1);
                bytes.splice(at..at, TOKENS[token % TOKENS.len()].iter().copied());
            }
            Mutation::Delete(at, n) => {
                let start = at % len;
                let end = (start + n % 64).min(bytes.len());
                if start < end {
                    bytes.drain(start..end);
                }
            }
            Mutation::Duplicate(at, n) => {
                let start = at % len;
                let end = (start + n % 128).min(bytes.len());
                if start < end {
                    let copy: Vec<u8> = bytes[start..end].to_vec();
                    bytes.splice(end..end, copy);
                }
            }
        }
    }
    bytes
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(a, d)| Mutation::Insert(a, d)),
        (any::<usize>(), any::<usize>()).prop_map(|(a, t)| Mutation::InsertToken(a, t)),
        (any::<usize>(), any::<usize>()).prop_map(|(a, n)| Mutation::Delete(a, n)),
        (any::<usize>(), any::<usize>()).prop_map(|(a, n)| Mutation::Duplicate(a, n)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1500, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        exercise(&bytes);
    }

    #[test]
    fn token_soup_never_panics(tokens in prop::collection::vec(0..TOKENS.len(), 0..64)) {
        let bytes: Vec<u8> = tokens.iter().flat_map(|&t| TOKENS[t].iter().copied()).collect();
        exercise(&bytes);
    }

    #[test]
    fn mutated_corpus_never_panics(file in any::<usize>(), mutations in prop::collection::vec(mutation(), 1..12)) {
        let files = corpus_files();
        let seed = files[file % files.len()].clone();
        exercise(&apply(seed, &mutations));
    }
}

#[test]
fn very_long_lines_are_handled() {
    // A long line of each pathological shape: escapes, quotes, expansions, continuations.
    // (Their cost grows linearly; `scripts/bench-parse-long-lines.sh` times 20 MB lines.)
    for unit in [
        &b"\\"[..],
        b"\"",
        b"'",
        b"${a:-",
        b"$a",
        b"a \\\n",
        b"[\"a\",",
        b"<<E ",
    ] {
        let mut text = b"FROM a\nRUN ".to_vec();
        while text.len() < 300_000 {
            text.extend_from_slice(unit);
        }
        text.push(b'\n');
        exercise(&text);
    }
}
