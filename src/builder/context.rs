//! The build context: a directory read in place (never copied), `.dockerignore` with
//! Docker's semantics (`**`, `!` exceptions, a leading `/`, a pattern matching a
//! directory excludes what is in it), and COPY source globs.

use std::fs;
use std::path::{Path, PathBuf};

use regex::Regex;

/// A bad pattern, or a context that cannot be opened.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error("invalid pattern: {reason}")]
    InvalidPattern { reason: String },
    /// A `.dockerignore` line (numbered from 1) whose pattern is bad.
    #[error("line {line}: {text:?}: {source}")]
    IgnoreLine {
        line: usize,
        text: String,
        source: Box<ContextError>,
    },
    #[error("{}: {source}", path.display())]
    IgnoreFile {
        path: PathBuf,
        source: Box<ContextError>,
    },
    #[error("--exclude={pattern}: {source}")]
    Exclude {
        pattern: String,
        source: Box<ContextError>,
    },
    #[error("invalid wildcard {component:?}: {reason}")]
    InvalidWildcard { component: String, reason: String },
    #[error("the build context {} is not a directory", .0.display())]
    NotADirectory(PathBuf),
    #[error("the build context {}: {source}", path.display())]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// One `.dockerignore` or `--exclude` pattern.
#[derive(Debug, Clone)]
struct Pattern {
    regex: Regex,
    exclusion: bool,
}

/// Decides which context paths are left out, as moby's pattern matcher does.
#[derive(Debug, Clone, Default)]
pub struct IgnoreMatcher {
    patterns: Vec<Pattern>,
}

impl IgnoreMatcher {
    /// Parses `.dockerignore` text: one pattern per line, `#` comments, `!` exceptions.
    pub fn parse(text: &str) -> Result<IgnoreMatcher, ContextError> {
        let mut patterns = Vec::new();
        for (number, line) in text.trim_start_matches('\u{feff}').lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (exclusion, pattern) = match line.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, line),
            };
            patterns.push(compile(pattern, exclusion).map_err(|source| {
                ContextError::IgnoreLine {
                    line: number + 1,
                    text: line.to_string(),
                    source: Box::new(source),
                }
            })?);
        }
        Ok(IgnoreMatcher { patterns })
    }

    /// Matcher for `COPY --exclude` patterns.
    pub fn from_patterns(patterns: &[String]) -> Result<IgnoreMatcher, ContextError> {
        let mut compiled = Vec::new();
        for p in patterns {
            let (exclusion, pattern) = match p.strip_prefix('!') {
                Some(rest) => (true, rest),
                None => (false, p.as_str()),
            };
            compiled.push(
                compile(pattern, exclusion).map_err(|source| ContextError::Exclude {
                    pattern: p.clone(),
                    source: Box::new(source),
                })?,
            );
        }
        Ok(IgnoreMatcher { patterns: compiled })
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether some `!` pattern could bring back a path under an excluded directory.
    pub fn has_exceptions(&self) -> bool {
        self.patterns.iter().any(|p| p.exclusion)
    }

    /// Whether `path` (relative, `/`-separated) is left out: the last pattern that
    /// matches it or one of its parent directories decides.
    pub fn excludes(&self, path: &str) -> bool {
        let parents: Vec<&str> = match path.rfind('/') {
            Some(i) => path[..i].split('/').collect(),
            None => Vec::new(),
        };
        let mut matched = false;
        for pattern in &self.patterns {
            if pattern.exclusion != matched {
                continue;
            }
            let mut hit = pattern.regex.is_match(path);
            if !hit {
                for i in 1..=parents.len() {
                    if pattern.regex.is_match(&parents[..i].join("/")) {
                        hit = true;
                        break;
                    }
                }
            }
            if hit {
                matched = !pattern.exclusion;
            }
        }
        matched
    }
}

/// Go's `filepath.Clean` on a relative pattern, and a leading `/` dropped.
fn clean_pattern(pattern: &str) -> String {
    let absolute = pattern.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in pattern.split('/') {
        match part {
            "" | "." => {}
            ".." if parts.last().is_some_and(|p| *p != "..") => {
                parts.pop();
            }
            ".." if absolute => {}
            p => parts.push(p),
        }
    }
    if parts.is_empty() {
        return ".".into();
    }
    parts.join("/")
}

/// Compiles a pattern to a regex as moby's patternmatcher does: `*` and `?` stop at
/// `/`, `**` crosses directories, `\` escapes.
fn compile(pattern: &str, exclusion: bool) -> Result<Pattern, ContextError> {
    let cleaned = clean_pattern(pattern);
    let mut re = String::from("^");
    let chars: Vec<char> = cleaned.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '*' if chars.get(i + 1) == Some(&'*') => {
                i += 1;
                if chars.get(i + 1) == Some(&'/') {
                    i += 1;
                }
                if i + 1 >= chars.len() {
                    re.push_str(".*");
                } else {
                    re.push_str("(.*/)?");
                }
            }
            '*' => re.push_str("[^/]*"),
            '?' => re.push_str("[^/]"),
            '\\' => match chars.get(i + 1) {
                Some(next) => {
                    re.push_str(&regex::escape(&next.to_string()));
                    i += 1;
                }
                None => re.push_str("\\\\"),
            },
            '[' | ']' => re.push(c),
            c => re.push_str(&regex::escape(&c.to_string())),
        }
        i += 1;
    }
    re.push('$');
    let regex = Regex::new(&re).map_err(|e| ContextError::InvalidPattern {
        reason: regex_reason(&e),
    })?;
    Ok(Pattern { regex, exclusion })
}

/// The reason alone: a regex syntax error also prints the regex the pattern became,
/// over several lines, which means nothing to whoever wrote the pattern.
fn regex_reason(error: &regex::Error) -> String {
    let text = error.to_string();
    let last = text.lines().last().unwrap_or_default();
    last.strip_prefix("error: ").unwrap_or(last).to_string()
}

/// The build context directory and its `.dockerignore`.
#[derive(Debug, Clone)]
pub struct BuildContext {
    pub root: PathBuf,
    pub ignore: IgnoreMatcher,
}

impl BuildContext {
    /// Opens a context directory; reads `.dockerignore` (or `<Dockerfile>.dockerignore`
    /// next to the Dockerfile, which wins, as BuildKit does).
    pub fn open(root: &Path, dockerfile: Option<&Path>) -> Result<BuildContext, ContextError> {
        if !root.is_dir() {
            return Err(ContextError::NotADirectory(root.to_path_buf()));
        }
        let specific = dockerfile.map(|d| {
            let mut name = d.as_os_str().to_os_string();
            name.push(".dockerignore");
            PathBuf::from(name)
        });
        let path = specific
            .filter(|p| p.is_file())
            .unwrap_or_else(|| root.join(".dockerignore"));
        let ignore = match fs::read_to_string(&path) {
            Ok(text) => IgnoreMatcher::parse(&text).map_err(|source| ContextError::IgnoreFile {
                path: path.clone(),
                source: Box::new(source),
            })?,
            Err(_) => IgnoreMatcher::default(),
        };
        // Absolute once, here: bind mounts and COPY resolve their sources inside this
        // directory, and a relative path would be resolved against whatever directory
        // the sandbox happens to work in.
        let root = fs::canonicalize(root).map_err(|source| ContextError::Unreadable {
            path: root.to_path_buf(),
            source,
        })?;
        Ok(BuildContext { root, ignore })
    }
}

/// Whether a COPY source uses wildcards.
pub fn has_wildcards(pattern: &str) -> bool {
    pattern.contains(['*', '?', '['])
}

/// One path component of a glob as a regex (`filepath.Match` semantics).
fn component_regex(component: &str) -> Result<Regex, ContextError> {
    let mut re = String::from("^");
    let mut chars = component.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' => re.push_str("[^/]*"),
            '?' => re.push_str("[^/]"),
            '\\' => {
                if let Some(next) = chars.next() {
                    re.push_str(&regex::escape(&next.to_string()));
                }
            }
            '[' => {
                re.push('[');
                if chars.peek() == Some(&'^') || chars.peek() == Some(&'!') {
                    chars.next();
                    re.push('^');
                }
                for inner in chars.by_ref() {
                    if inner == ']' {
                        break;
                    }
                    if inner == '\\' || inner == '[' {
                        re.push('\\');
                    }
                    re.push(inner);
                }
                re.push(']');
            }
            c => re.push_str(&regex::escape(&c.to_string())),
        }
    }
    re.push('$');
    Regex::new(&re).map_err(|e| ContextError::InvalidWildcard {
        component: component.to_string(),
        reason: regex_reason(&e),
    })
}

/// The relative paths under `root` that `pattern` names. Without wildcards that is the
/// pattern itself, whether or not it exists; `..` never leaves `root`.
pub fn expand_sources(root: &Path, pattern: &str) -> Result<Vec<String>, ContextError> {
    let cleaned = clean_pattern(&format!("/{pattern}"));
    if cleaned == "." {
        return Ok(vec![String::new()]);
    }
    if !has_wildcards(&cleaned) {
        return Ok(vec![cleaned]);
    }
    let mut found: Vec<String> = vec![String::new()];
    for component in cleaned.split('/') {
        let mut next = Vec::new();
        if has_wildcards(component) {
            let regex = component_regex(component)?;
            for base in &found {
                let dir = super::view::resolve_in_root(root, base, true);
                let Ok(entries) = fs::read_dir(&dir) else {
                    continue;
                };
                let mut names: Vec<String> = entries
                    .flatten()
                    .filter_map(|e| e.file_name().into_string().ok())
                    .filter(|n| regex.is_match(n))
                    .collect();
                names.sort();
                for name in names {
                    next.push(join_relative(base, &name));
                }
            }
        } else {
            next = found.iter().map(|b| join_relative(b, component)).collect();
        }
        found = next;
    }
    Ok(found)
}

pub(crate) fn join_relative(base: &str, name: &str) -> String {
    if base.is_empty() {
        name.to_string()
    } else {
        format!("{base}/{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matcher(text: &str) -> IgnoreMatcher {
        IgnoreMatcher::parse(text).unwrap()
    }

    #[test]
    fn dockerignore_semantics() {
        let m = matcher("# comment\n*.log\n/build\n**/node_modules\n!keep.log\ntmp*/**\n");
        assert!(m.excludes("a.log"));
        assert!(!m.excludes("dir/a.log"), "`*` does not cross directories");
        assert!(!m.excludes("keep.log"));
        assert!(
            m.excludes("build") && m.excludes("build/x/y"),
            "a directory excludes its contents"
        );
        assert!(m.excludes("node_modules/x") && m.excludes("a/b/node_modules/c"));
        assert!(m.excludes("tmp1/a/b"));
        assert!(!m.excludes("src/main.rs"));
    }

    #[test]
    fn exceptions_bring_back_files_under_excluded_dirs() {
        let m = matcher("docs\n!docs/README.md\n");
        assert!(m.excludes("docs/other.md"));
        assert!(!m.excludes("docs/README.md"));
        assert!(m.has_exceptions());
    }

    #[test]
    fn double_star_forms() {
        let m = matcher("**/*.tmp\ncache/**\n");
        assert!(m.excludes("x.tmp") && m.excludes("a/b/x.tmp"));
        assert!(m.excludes("cache/a") && !m.excludes("cache"));
    }

    #[test]
    fn dot_dot_in_patterns_is_cleaned() {
        assert_eq!(clean_pattern("a/../b/./c/"), "b/c");
        assert_eq!(clean_pattern("/a"), "a");
    }

    #[test]
    fn globs() {
        let dir = tempfile::tempdir().unwrap();
        for f in ["a.txt", "b.txt", "c.md", "sub/d.txt", "sub/e.rs"] {
            let path = dir.path().join(f);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, b"").unwrap();
        }
        assert_eq!(
            expand_sources(dir.path(), "*.txt").unwrap(),
            vec!["a.txt", "b.txt"]
        );
        assert_eq!(
            expand_sources(dir.path(), "sub/*.txt").unwrap(),
            vec!["sub/d.txt"]
        );
        assert_eq!(
            expand_sources(dir.path(), "[ab].*").unwrap(),
            vec!["a.txt", "b.txt"]
        );
        assert_eq!(
            expand_sources(dir.path(), "../../sub/e.rs").unwrap(),
            vec!["sub/e.rs"]
        );
        assert_eq!(expand_sources(dir.path(), ".").unwrap(), vec![""]);
        assert!(expand_sources(dir.path(), "*.none").unwrap().is_empty());
    }
}
