//! Build secrets (`build --secret`), as BuildKit has them: a value a `RUN
//! --mount=type=secret` step reads from a file on a private tmpfs or from an environment
//! variable of that step alone. The values are read once, when the build starts, and
//! kept in memory: they never reach a layer, the image, a cache key or record, nor the
//! build's output. A step's key holds its mount's options, never the value, so a new
//! value does not rebuild a cached step (BuildKit's rule).

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

/// The largest secret, as BuildKit's client allows.
pub const MAX_SECRET_SIZE: u64 = 500 * 1024;

/// Where one `--secret` takes its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretSource {
    pub id: String,
    pub from: SecretFrom,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretFrom {
    /// `src=PATH` (or `type=file`).
    File(PathBuf),
    /// `env=VAR` (or `type=env,src=VAR`).
    Env(String),
    /// `id=NAME` alone: the environment variable NAME when it is set, else the file
    /// NAME, as BuildKit decides.
    EnvOrFile,
}

/// Why a `--secret` cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("invalid --secret {spec:?}: {problem}")]
    Invalid { spec: String, problem: String },
    #[error("--secret id={id}: cannot read {}: {source}", path.display())]
    Read {
        id: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("--secret id={id}: {} is {size} bytes, more than a secret may hold (500 KiB)", path.display())]
    TooBig {
        id: String,
        path: PathBuf,
        size: u64,
    },
    #[error("--secret id={id}: the environment variable {variable} is not set")]
    NoVariable { id: String, variable: String },
}

impl SecretSource {
    /// BuildKit's `--secret` syntax: `id=ID[,src=PATH|,env=VAR][,type=file|env]`
    /// (`source` for `src`); `type=env` takes `src` as the variable's name.
    pub fn parse(spec: &str) -> Result<SecretSource, SecretError> {
        let invalid = |problem: String| SecretError::Invalid {
            spec: spec.to_string(),
            problem,
        };
        let mut id = None;
        let mut kind = None;
        let mut source = None;
        let mut env = None;
        // buildx reads the flag as one CSV record: `src="a,b"` is one field.
        for field in crate::graph::csv_fields(spec) {
            let Some((key, value)) = field.split_once('=') else {
                return Err(invalid(format!("field {field:?} must be a key=value pair")));
            };
            match key.trim().to_ascii_lowercase().as_str() {
                "type" => match value {
                    "file" | "env" => kind = Some(value.to_string()),
                    other => {
                        return Err(invalid(format!(
                            "unsupported secret type {other:?}: expected file or env"
                        )))
                    }
                },
                "id" => id = Some(value.to_string()),
                "src" | "source" => source = Some(value.to_string()),
                "env" => env = Some(value.to_string()),
                other => {
                    return Err(invalid(format!(
                        "unexpected key {other:?}: expected id, type, src or env"
                    )))
                }
            }
        }
        if kind.as_deref() == Some("env") && env.is_none() {
            env = source.take();
        }
        let id = id
            .filter(|id| !id.is_empty())
            .ok_or_else(|| invalid("no id: name the secret with id=NAME".into()))?;
        let from = match (source, env) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "src and env both given: a secret comes from a file or a variable".into(),
                ))
            }
            (Some(path), None) if !path.is_empty() => SecretFrom::File(path.into()),
            (None, Some(variable)) if !variable.is_empty() => SecretFrom::Env(variable),
            (None, None) => SecretFrom::EnvOrFile,
            _ => return Err(invalid("an empty src or env".into())),
        };
        Ok(SecretSource { id, from })
    }
}

/// The values of a build's secrets, by id. Its `Debug` shows the ids alone.
#[derive(Default)]
pub(crate) struct Secrets {
    values: BTreeMap<String, Vec<u8>>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.values.keys()).finish()
    }
}

impl Secrets {
    /// Reads every secret; a later `--secret` of the same id wins, as in BuildKit.
    pub(crate) fn load(sources: &[SecretSource]) -> Result<Secrets, SecretError> {
        let mut values = BTreeMap::new();
        for source in sources {
            let id = &source.id;
            let value = match &source.from {
                SecretFrom::File(path) => read_secret_file(id, path)?,
                SecretFrom::Env(variable) => std::env::var_os(variable)
                    .ok_or_else(|| SecretError::NoVariable {
                        id: id.clone(),
                        variable: variable.clone(),
                    })?
                    .into_vec(),
                SecretFrom::EnvOrFile => match std::env::var_os(id) {
                    Some(value) => value.into_vec(),
                    None => read_secret_file(id, Path::new(id))?,
                },
            };
            values.insert(source.id.clone(), value);
        }
        Ok(Secrets { values })
    }

    pub(crate) fn get(&self, id: &str) -> Option<&[u8]> {
        self.values.get(id).map(Vec::as_slice)
    }
}

fn read_secret_file(id: &str, path: &Path) -> Result<Vec<u8>, SecretError> {
    let read_error = |source| SecretError::Read {
        id: id.to_string(),
        path: path.to_path_buf(),
        source,
    };
    // Read through a bound, not after a size check: a FIFO, /dev/zero or a growing
    // file has no size to check.
    let mut value = Vec::new();
    std::fs::File::open(path)
        .and_then(|file| file.take(MAX_SECRET_SIZE + 1).read_to_end(&mut value))
        .map_err(read_error)?;
    if value.len() as u64 > MAX_SECRET_SIZE {
        return Err(SecretError::TooBig {
            id: id.to_string(),
            path: path.to_path_buf(),
            size: value.len() as u64,
        });
    }
    Ok(value)
}

impl Drop for Secrets {
    /// The values do not linger in freed memory once the build is done.
    fn drop(&mut self) {
        for value in self.values.values_mut() {
            value.fill(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(spec: &str) -> SecretSource {
        SecretSource::parse(spec).unwrap()
    }

    #[test]
    fn buildkit_forms_parse() {
        assert_eq!(
            parsed("id=tok,src=/a/b").from,
            SecretFrom::File("/a/b".into())
        );
        assert_eq!(
            parsed("id=tok,source=/a/b,type=file").from,
            SecretFrom::File("/a/b".into())
        );
        assert_eq!(
            parsed("id=tok,env=TOKEN").from,
            SecretFrom::Env("TOKEN".into())
        );
        assert_eq!(
            parsed("type=env,id=tok,src=TOKEN").from,
            SecretFrom::Env("TOKEN".into())
        );
        let short = parsed("id=tok");
        assert_eq!(
            (short.id.as_str(), short.from),
            ("tok", SecretFrom::EnvOrFile)
        );
    }

    #[test]
    fn malformed_specs_are_refused_by_name() {
        for spec in [
            "id=,src",
            "id=x,src",
            "src",
            "id",
            "src=/a",
            "id=x,true=false",
        ] {
            let error = SecretSource::parse(spec).unwrap_err().to_string();
            assert!(error.contains(&format!("{spec:?}")), "{spec}: {error}");
        }
        assert!(SecretSource::parse("id=x,type=ssh")
            .unwrap_err()
            .to_string()
            .contains("unsupported secret type"));
        assert!(SecretSource::parse("id=x,src=/a,env=B").is_err());
    }

    #[test]
    fn values_come_from_files_and_variables_and_never_show_in_debug() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "file-value").unwrap();
        let secrets = Secrets::load(&[
            SecretSource {
                id: "a".into(),
                from: SecretFrom::File(file.clone()),
            },
            SecretSource {
                id: "b".into(),
                from: SecretFrom::Env("PATH".into()),
            },
        ])
        .unwrap();
        assert_eq!(secrets.get("a"), Some(&b"file-value"[..]));
        assert!(secrets.get("b").is_some_and(|v| !v.is_empty()));
        assert_eq!(format!("{secrets:?}"), r#"{"a", "b"}"#);
        let missing = Secrets::load(&[SecretSource {
            id: "c".into(),
            from: SecretFrom::File(dir.path().join("absent")),
        }])
        .unwrap_err();
        assert!(missing
            .to_string()
            .starts_with("--secret id=c: cannot read"));
    }

    #[test]
    fn a_secret_past_the_limit_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("big");
        std::fs::write(&file, vec![b'x'; MAX_SECRET_SIZE as usize + 1]).unwrap();
        let error = Secrets::load(&[SecretSource {
            id: "big".into(),
            from: SecretFrom::File(file),
        }])
        .unwrap_err();
        assert!(matches!(error, SecretError::TooBig { .. }), "{error}");
    }
}
