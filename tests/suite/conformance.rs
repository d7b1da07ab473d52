//! BuildKit's public conformance corpora, read from `../shared/conformance/`:
//! the parser cases (AST dump compared byte for byte), the negative cases, the line-number
//! case, and the shell lexer's `envVarTest` and `wordsTest`.

use std::path::{Path, PathBuf};

use lade::parser::{self, expand::Lexer};

fn corpus(name: &str) -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/conformance")
        .join(name);
    if dir.is_dir() {
        return Some(dir);
    }
    // CI always has the corpora: there, their absence is a failure, not a skip.
    assert!(
        std::env::var_os("CI").is_none(),
        "{} is absent, and CI must run the conformance cases",
        dir.display()
    );
    eprintln!(
        "SKIPPED: {} is absent; these conformance cases did not run",
        dir.display()
    );
    None
}

fn case_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("Dockerfile").is_file())
        .collect();
    cases.sort();
    cases
}

#[test]
fn buildkit_parser_cases_dump_byte_for_byte() {
    let Some(dir) = corpus("buildkit-parser") else {
        return;
    };
    let cases = case_dirs(&dir.join("testfiles"));
    assert_eq!(cases.len(), 33, "expected the 33 upstream cases");
    let mut failures = Vec::new();
    for case in &cases {
        let bytes = std::fs::read(case.join("Dockerfile")).unwrap();
        let expected = std::fs::read_to_string(case.join("result")).unwrap();
        match parser::parse_syntax("Dockerfile", bytes) {
            Ok(tree) => {
                let got = parser::dump(&tree);
                if got != expected {
                    failures.push(format!(
                        "{}:\n--- expected\n{expected}--- got\n{got}",
                        case.display()
                    ));
                }
            }
            Err(err) => failures.push(format!("{}: parse failed: {err}", case.display())),
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn buildkit_parser_cases_also_pass_instruction_checks_where_docker_accepts_them() {
    // The corpus is syntax-level: some files use made-up flags (`flags`) on purpose. Every
    // other case is a Dockerfile Docker accepts, so the typed layer must accept it too.
    let Some(dir) = corpus("buildkit-parser") else {
        return;
    };
    // Cases that BuildKit's own instruction layer refuses, with the reason lade gives.
    let syntax_only = [
        ("flags", "unknown flag --user on COPY"),
        ("health", "HEALTHCHECK requires CMD or NONE"),
    ];
    let mut failures = Vec::new();
    for case in case_dirs(&dir.join("testfiles")) {
        let name = case.file_name().unwrap().to_string_lossy().to_string();
        let result = parser::parse(
            "Dockerfile",
            std::fs::read(case.join("Dockerfile")).unwrap(),
        );
        match (syntax_only.iter().find(|(n, _)| *n == name), result) {
            (Some((_, reason)), Ok(_)) => {
                failures.push(format!("{name}: accepted, expected {reason:?}"))
            }
            (Some((_, reason)), Err(err)) if !err.to_string().contains(reason) => {
                failures.push(format!("{name}: {err}, expected {reason:?}"))
            }
            (None, Err(err)) => failures.push(format!("{name}: {err}")),
            _ => {}
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn buildkit_parser_line_numbers() {
    let Some(dir) = corpus("buildkit-parser") else {
        return;
    };
    let bytes = std::fs::read(dir.join("testfile-line/Dockerfile")).unwrap();
    let tree = parser::parse_syntax("Dockerfile", bytes).unwrap();
    let lines: Vec<(usize, usize)> = tree
        .nodes
        .iter()
        .map(|n| (n.start_line, n.end_line))
        .collect();
    assert_eq!(lines, vec![(5, 5), (11, 12), (17, 31)]);
}

#[test]
fn buildkit_negative_cases_fail_with_a_location() {
    let Some(dir) = corpus("buildkit-parser-negative") else {
        return;
    };
    let cases = case_dirs(&dir);
    assert_eq!(cases.len(), 4);
    for case in cases {
        let bytes = std::fs::read(case.join("Dockerfile")).unwrap();
        let err =
            parser::parse("Dockerfile", bytes).expect_err(&format!("{} must fail", case.display()));
        let text = err.to_string();
        assert!(err.location.line >= 1 && err.location.column >= 1, "{text}");
        assert!(
            text.starts_with(&format!("Dockerfile:{}:", err.location.line)),
            "{text}"
        );
        let expected = match case.file_name().unwrap().to_str().unwrap() {
            "empty_dockerfile" | "only_comments" => "file with no instructions",
            "env_no_value" => "ENV must have two arguments",
            "shykes-nested-json" => "arrays must be comprised of strings only",
            other => panic!("unexpected case {other}"),
        };
        assert!(text.contains(expected), "{text}");
    }
}

fn envvar_environment() -> Vec<(String, String)> {
    [
        ("PWD", "/home"),
        ("SHELL", "bash"),
        ("KOREAN", "한국어"),
        ("NULL", ""),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

#[test]
fn buildkit_shell_env_var_test() {
    let Some(dir) = corpus("buildkit-shell") else {
        return;
    };
    let text = std::fs::read_to_string(dir.join("envVarTest")).unwrap();
    let env = envvar_environment();
    let lexer = Lexer::new('\\');
    let mut checked = 0;
    let mut failures = Vec::new();
    for (number, line) in text.lines().enumerate() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.trim().split('|').collect();
        assert_eq!(fields.len(), 3, "line {}: {line}", number + 1);
        let (platform, input, expected) = (fields[0].trim(), fields[1].trim(), fields[2].trim());
        if platform == "W" {
            continue;
        }
        checked += 1;
        let got = lexer.process_word(input, &env);
        let ok = match (&got, expected) {
            (Err(_), "error") => true,
            (Ok(value), expected) => value == expected,
            _ => false,
        };
        if !ok {
            failures.push(format!(
                "line {}: {input:?} gave {got:?}, expected {expected:?}",
                number + 1
            ));
        }
    }
    assert!(checked > 200, "only {checked} lines checked");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn buildkit_shell_words_test() {
    let Some(dir) = corpus("buildkit-shell") else {
        return;
    };
    let text = std::fs::read_to_string(dir.join("wordsTest")).unwrap();
    let lexer = Lexer::new('\\');
    let mut env: Vec<(String, String)> = Vec::new();
    let mut checked = 0;
    let mut failures = Vec::new();
    for (number, line) in text.lines().enumerate() {
        if line.starts_with('#') {
            continue;
        }
        if let Some(assignment) = line.strip_prefix("ENV ") {
            let assignment = assignment.trim_start();
            let (name, value) = assignment.split_once('=').unwrap();
            env.push((name.to_string(), value.to_string()));
            continue;
        }
        let fields: Vec<&str> = line.split('|').collect();
        assert_eq!(fields.len(), 2, "line {}: {line}", number + 1);
        let input = fields[0].trim();
        let expected: Vec<String> = fields[1]
            .trim_start()
            .split(',')
            .map(str::to_string)
            .collect();
        checked += 1;
        let got = lexer
            .process_words(input, &env)
            .unwrap_or_else(|_| vec!["error".to_string()]);
        if got != expected {
            failures.push(format!(
                "line {}: {input:?} gave {got:?}, expected {expected:?}",
                number + 1
            ));
        }
    }
    assert_eq!(checked, 24, "expected the 24 upstream cases");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
