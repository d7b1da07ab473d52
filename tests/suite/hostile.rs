//! A battery of hostile archives through the real CLI: `lade import` of root file
//! systems that try to escape, link out, fill the disk or confuse the reader, and
//! `lade load` of image archives whose digests, JSON or paths lie. After each one:
//! nothing was written outside the store's target, nothing half-made is left in the
//! store, and the store still works; at the end `lade system check` finds it clean.
//!
//! The store lives on a small tmpfs of its own, so that a decompression bomb meets the
//! store's reserve of free space instead of this machine's disk.

use crate::common;

use std::io::Write;
use std::path::{Path, PathBuf};

use common::{Lade, Tmpfs};
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};
use tar::{EntryType, Header};

/// A tar built entry by entry, with raw names and link names as an attacker writes
/// them (the tar crate's own checks bypassed).
struct RawTar {
    builder: tar::Builder<Vec<u8>>,
}

impl RawTar {
    fn new() -> RawTar {
        RawTar {
            builder: tar::Builder::new(Vec::new()),
        }
    }

    fn entry(
        mut self,
        name: &[u8],
        kind: EntryType,
        link: &[u8],
        data: &[u8],
        mode: u32,
    ) -> RawTar {
        let mut header = Header::new_gnu();
        {
            let old = header.as_old_mut();
            old.name[..name.len()].copy_from_slice(name);
            old.linkname[..link.len()].copy_from_slice(link);
        }
        header.set_entry_type(kind);
        header.set_size(data.len() as u64);
        header.set_mode(mode);
        header.set_cksum();
        self.builder.append(&header, data).unwrap();
        self
    }

    fn file(self, name: &str, data: &[u8]) -> RawTar {
        self.entry(name.as_bytes(), EntryType::Regular, b"", data, 0o644)
    }

    fn dir(self, name: &str) -> RawTar {
        self.entry(name.as_bytes(), EntryType::Directory, b"", b"", 0o755)
    }

    fn symlink(self, name: &str, target: &str) -> RawTar {
        self.entry(
            name.as_bytes(),
            EntryType::Symlink,
            target.as_bytes(),
            b"",
            0o777,
        )
    }

    fn hardlink(self, name: &str, target: &str) -> RawTar {
        self.entry(
            name.as_bytes(),
            EntryType::Link,
            target.as_bytes(),
            b"",
            0o644,
        )
    }

    fn device(mut self, name: &str, kind: EntryType, major: u32, minor: u32) -> RawTar {
        let mut header = Header::new_gnu();
        header.set_path(name).unwrap();
        header.set_entry_type(kind);
        header.set_size(0);
        header.set_mode(0o666);
        header.set_device_major(major).unwrap();
        header.set_device_minor(minor).unwrap();
        header.set_cksum();
        self.builder.append(&header, std::io::empty()).unwrap();
        self
    }

    /// A file preceded by a PAX header with the given records.
    fn pax(self, records: &[(&str, &[u8])], name: &str, data: &[u8]) -> RawTar {
        self.pax_entry(records, name, EntryType::Regular, data)
    }

    /// An entry of any kind preceded by a PAX header with the given records.
    fn pax_entry(
        mut self,
        records: &[(&str, &[u8])],
        name: &str,
        kind: EntryType,
        data: &[u8],
    ) -> RawTar {
        let mut body = Vec::new();
        for (key, value) in records {
            let mut record = format!(" {key}=").into_bytes();
            record.extend_from_slice(value);
            record.push(b'\n');
            let mut length = record.len() + 1;
            loop {
                let candidate = length.to_string().len() + record.len();
                if candidate == length {
                    break;
                }
                length = candidate;
            }
            body.extend_from_slice(length.to_string().as_bytes());
            body.extend_from_slice(&record);
        }
        self = self.entry(b"././@PaxHeader", EntryType::XHeader, b"", &body, 0o644);
        self.entry(name.as_bytes(), kind, b"", data, 0o755)
    }

    fn bytes(self) -> Vec<u8> {
        self.builder.into_inner().unwrap()
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// An OCI archive of one image, made from its parts; each part can be spoiled.
struct OciArchive {
    members: Vec<(String, Vec<u8>)>,
}

impl OciArchive {
    fn blob(&mut self, bytes: Vec<u8>) -> String {
        let hex = sha256_hex(&bytes);
        self.members.push((format!("blobs/sha256/{hex}"), bytes));
        format!("sha256:{hex}")
    }

    /// An image of `layer` (an uncompressed tar), with `config_diff_id` overriding the
    /// true diff_id when given.
    fn image(layer: &[u8], config_diff_id: Option<&str>) -> (OciArchive, Value, Value) {
        let mut archive = OciArchive {
            members: Vec::new(),
        };
        let layer_digest = archive.blob(layer.to_vec());
        let diff_id = config_diff_id.map_or(layer_digest.clone(), str::to_string);
        let config = json!({
            "architecture": if cfg!(target_arch = "x86_64") { "amd64" } else { "arm64" },
            "os": "linux",
            "config": { "Cmd": ["sh"] },
            "rootfs": { "type": "layers", "diff_ids": [diff_id] },
        });
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": { "mediaType": "application/vnd.oci.image.config.v1+json", "digest": "", "size": 0 },
            "layers": [{ "mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": layer.len() }],
        });
        (archive, config, manifest)
    }

    /// Finishes the archive: config, manifest and index, each under the digest of its
    /// bytes unless `spoil` changes the bytes after they were named.
    fn finish(mut self, config: Value, mut manifest: Value, spoil: Spoil) -> Vec<u8> {
        let config_bytes = serde_json::to_vec(&config).unwrap();
        let config_digest = format!("sha256:{}", sha256_hex(&config_bytes));
        manifest["config"]["digest"] = json!(config_digest);
        manifest["config"]["size"] = json!(config_bytes.len());
        let manifest_bytes = serde_json::to_vec(&manifest).unwrap();
        let manifest_digest = format!("sha256:{}", sha256_hex(&manifest_bytes));
        let tamper = |mut bytes: Vec<u8>| {
            let last = bytes.len() - 2;
            bytes[last] ^= 0x20;
            bytes
        };
        let (config_bytes, manifest_bytes) = match spoil {
            Spoil::Config => (tamper(config_bytes), manifest_bytes),
            Spoil::Manifest => (config_bytes, tamper(manifest_bytes)),
            Spoil::Layer => {
                for (name, bytes) in &mut self.members {
                    if name.starts_with("blobs/") {
                        let middle = bytes.len() / 2;
                        bytes[middle] ^= 0xff;
                    }
                }
                (config_bytes, manifest_bytes)
            }
            Spoil::Nothing => (config_bytes, manifest_bytes),
        };
        self.members.push((
            format!("blobs/sha256/{}", &config_digest[7..]),
            config_bytes,
        ));
        self.members.push((
            format!("blobs/sha256/{}", &manifest_digest[7..]),
            manifest_bytes,
        ));
        let index = json!({
            "schemaVersion": 2,
            "manifests": [{
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": manifest_digest,
                "size": 0,
                "annotations": { "org.opencontainers.image.ref.name": "hostile:1" },
            }],
        });
        self.members
            .push(("index.json".into(), serde_json::to_vec(&index).unwrap()));
        self.members.push((
            "oci-layout".into(),
            br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
        ));
        tar_of(&self.members)
    }
}

#[derive(Clone, Copy)]
enum Spoil {
    Nothing,
    Config,
    Manifest,
    Layer,
}

fn tar_of(members: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut tar = RawTar::new();
    for (name, bytes) in members {
        tar = tar.file(name, bytes);
    }
    tar.bytes()
}

/// A docker-archive whose one layer is `l1/layer.tar`, a symlink to `targets[0]`, and
/// `l2/layer.tar`, ... symlinks to the targets after it.
fn docker_linked_layer(targets: &[&str]) -> Vec<u8> {
    let config = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:0000000000000000000000000000000000000000000000000000000000000000"]}}"#;
    let mut tar = RawTar::new()
        .file(
            "manifest.json",
            br#"[{"Config":"c.json","Layers":["l1/layer.tar"]}]"#,
        )
        .file("c.json", config);
    for (i, target) in targets.iter().enumerate() {
        tar = tar.symlink(&format!("l{}/layer.tar", i + 1), target);
    }
    tar.bytes()
}

/// What a case expects of lade.
enum Expect {
    /// Refused, the message holding this text.
    Refused(&'static str),
    /// Accepted (what it made stays inside the store).
    Accepted,
    /// Either, as long as it ends cleanly.
    Either,
}

struct Battery {
    lade: Lade,
    _tmpfs: Tmpfs,
    work: tempfile::TempDir,
    outside: PathBuf,
    ran: usize,
}

/// Every file under `dir`, with its content or link target.
fn listing(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let entry = entry.unwrap();
        let meta = entry.path().symlink_metadata().unwrap();
        let what = if meta.file_type().is_symlink() {
            format!("-> {}", std::fs::read_link(entry.path()).unwrap().display())
        } else if meta.is_file() {
            format!("{:?}", std::fs::read(entry.path()).unwrap())
        } else {
            String::new()
        };
        out.push(format!("{} {what}", entry.path().display()));
    }
    out
}

impl Battery {
    fn new() -> Battery {
        let tmpfs = Tmpfs::new("192m");
        let lade = Lade::new();
        let work = tempfile::tempdir().unwrap();
        let outside = work.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("sentinel"), b"untouched").unwrap();
        Battery {
            lade,
            _tmpfs: tmpfs,
            work,
            outside,
            ran: 0,
        }
    }

    fn root(&self) -> PathBuf {
        self._tmpfs.dir.path().join("store")
    }

    fn lade(&self, args: &[&str]) -> std::process::Output {
        self.lade
            .cmd()
            .env("LADE_ROOT", self.root())
            .args(args)
            .output()
            .expect("lade runs")
    }

    /// Runs `lade <command> <archive>` on `bytes` and checks what must hold after.
    fn case(&mut self, name: &str, command: &str, bytes: &[u8], expect: Expect) {
        self.ran += 1;
        common::step(format_args!("case {}: {command} of {name}", self.ran));
        let file = self.work.path().join(format!("{name}.tar"));
        std::fs::write(&file, bytes).unwrap();
        let before = listing(&self.outside);
        let file_arg = file.to_str().unwrap();
        let args: Vec<&str> = match command {
            "import" => vec!["import", file_arg, "hostile-import:1"],
            _ => vec!["load", "-i", file_arg],
        };
        let output = self.lade(&args);
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(
            !stderr.contains("panicked") && output.status.code().is_some(),
            "{name}: lade crashed ({}): {stderr}",
            output.status
        );
        match expect {
            Expect::Refused(text) => {
                assert!(
                    !output.status.success(),
                    "{name}: accepted, should be refused"
                );
                assert!(stderr.contains(text), "{name}: {stderr}");
            }
            Expect::Accepted => assert!(output.status.success(), "{name}: {stderr}"),
            Expect::Either => {}
        }
        assert_eq!(
            listing(&self.outside),
            before,
            "{name}: the outside changed"
        );
        let tmp: Vec<_> = std::fs::read_dir(self.root().join("tmp"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert!(tmp.is_empty(), "{name}: left in the store's tmp/: {tmp:?}");
        let images = self.lade(&["images"]);
        assert!(
            images.status.success(),
            "{name}: the store no longer works: {}",
            String::from_utf8_lossy(&images.stderr)
        );
        for host in ["/lade-hostile-abs", "/tmp/lade-hostile-escape"] {
            assert!(!Path::new(host).exists(), "{name}: {host} was written");
        }
    }
}

/// A layer tar for load cases.
fn small_layer() -> Vec<u8> {
    RawTar::new()
        .dir("bin")
        .file("bin/hello", b"hello\n")
        .bytes()
}

#[test]
fn hostile_archives_are_refused_or_contained() {
    common::require_root();
    common::require_tool("tar");
    let mut battery = Battery::new();
    let outside = battery.outside.to_str().unwrap().to_string();
    let up = "../".repeat(12);
    use Expect::*;

    // Path escapes.
    let cases: Vec<(&str, Vec<u8>, Expect)> = vec![
        (
            "dotdot",
            RawTar::new().file("../escape", b"x").bytes(),
            Refused(".."),
        ),
        (
            "dotdot-nested",
            RawTar::new().file("a/../../escape", b"x").bytes(),
            Refused(".."),
        ),
        (
            "dot-dotdot",
            RawTar::new().file("./../escape", b"x").bytes(),
            Refused(".."),
        ),
        (
            "deep-dotdot",
            RawTar::new()
                .file(&format!("{up}tmp/lade-hostile-escape"), b"x")
                .bytes(),
            Refused(".."),
        ),
        (
            "pax-path-dotdot",
            RawTar::new()
                .pax(&[("path", b"../escape")], "innocent", b"x")
                .bytes(),
            Refused(".."),
        ),
        (
            "pax-linkpath-escape",
            RawTar::new()
                .pax(
                    &[("linkpath", format!("{up}etc/passwd").as_bytes())],
                    "x",
                    b"",
                )
                .bytes(),
            Either,
        ),
        (
            "gnu-longname-dotdot",
            {
                let long = format!("../{}", "x".repeat(200));
                let mut tar = RawTar::new().entry(
                    b"././@LongLink",
                    EntryType::GNULongName,
                    b"",
                    long.as_bytes(),
                    0o644,
                );
                tar = tar.file("short", b"x");
                tar.bytes()
            },
            Refused(".."),
        ),
        (
            "absolute-name",
            RawTar::new().file("/lade-hostile-abs", b"x").bytes(),
            Accepted,
        ),
        (
            "symlink-abs-then-file",
            RawTar::new()
                .symlink("evil", &outside)
                .file("evil/planted", b"x")
                .bytes(),
            Refused("symlink"),
        ),
        (
            "symlink-rel-then-file",
            RawTar::new()
                .symlink("evil", &format!("{up}{outside}"))
                .file("evil/planted", b"x")
                .bytes(),
            Refused("symlink"),
        ),
        (
            "symlink-chain",
            RawTar::new()
                .symlink("b", &outside)
                .symlink("a", "b")
                .file("a/planted", b"x")
                .bytes(),
            Refused("symlink"),
        ),
        (
            "dir-replaced-by-symlink",
            RawTar::new()
                .dir("d")
                .symlink("d", &outside)
                .file("d/planted", b"x")
                .bytes(),
            Refused("symlink"),
        ),
        (
            "symlink-dotdot-name",
            RawTar::new().symlink("..", &outside).bytes(),
            Refused(".."),
        ),
        (
            "symlink-overwritten-by-file",
            RawTar::new()
                .symlink("f", &format!("{outside}/sentinel"))
                .file("f", b"replaced")
                .bytes(),
            Accepted,
        ),
        (
            "symlink-then-hardlink-over",
            RawTar::new()
                .file("real", b"r")
                .symlink("s", &format!("{outside}/sentinel"))
                .hardlink("s", "real")
                .bytes(),
            Accepted,
        ),
        // Hard links.
        (
            "hardlink-absolute-outside",
            RawTar::new()
                .hardlink("h", &format!("{outside}/sentinel"))
                .bytes(),
            Refused("hard link"),
        ),
        (
            "hardlink-dotdot",
            RawTar::new().hardlink("h", "../../sentinel").bytes(),
            Refused("hard link"),
        ),
        (
            "hardlink-through-symlink",
            RawTar::new()
                .symlink("s", &outside)
                .hardlink("h", "s/sentinel")
                .bytes(),
            Refused("hard link"),
        ),
        (
            "hardlink-to-directory",
            RawTar::new().dir("d").hardlink("h", "d").bytes(),
            Refused("hard link"),
        ),
        (
            "hardlink-to-later-entry",
            RawTar::new()
                .hardlink("h", "later")
                .file("later", b"x")
                .bytes(),
            Refused("hard link"),
        ),
        (
            "hardlink-to-root",
            RawTar::new().hardlink("h", "./").bytes(),
            Refused("hard link"),
        ),
        // The root and whiteouts.
        (
            "root-as-symlink",
            RawTar::new().symlink(".", &outside).bytes(),
            Refused("root"),
        ),
        (
            "root-as-file",
            RawTar::new().file("./", b"x").bytes(),
            Refused("root"),
        ),
        (
            "bare-whiteout",
            RawTar::new().file(".wh.", b"").bytes(),
            Refused("whiteout"),
        ),
        (
            "whiteout-of-dotdot",
            RawTar::new().file("a/.wh...", b"").bytes(),
            Refused("whiteout"),
        ),
        (
            "overlay-xattr-injection",
            RawTar::new()
                .pax(&[("SCHILY.xattr.trusted.overlay.opaque", b"y")], "d", b"")
                .bytes(),
            Accepted,
        ),
        // Special files: contained by the store's closed root.
        (
            "char-device",
            RawTar::new()
                .device("null-ish", EntryType::Char, 1, 3)
                .bytes(),
            Accepted,
        ),
        (
            "block-device",
            RawTar::new().device("disk", EntryType::Block, 7, 0).bytes(),
            Accepted,
        ),
        (
            "fifo",
            RawTar::new()
                .entry(b"pipe", EntryType::Fifo, b"", b"", 0o644)
                .bytes(),
            Accepted,
        ),
        (
            "setuid-file",
            RawTar::new()
                .entry(b"suid", EntryType::Regular, b"", b"#!/bin/sh\n", 0o4755)
                .bytes(),
            Accepted,
        ),
        // Headers and sizes.
        (
            "oversized-pax-header",
            RawTar::new()
                .pax(&[("comment", &vec![b'a'; 2 << 20])], "x", b"")
                .bytes(),
            Refused("extension header"),
        ),
        (
            "path-too-long",
            RawTar::new()
                .pax(&[("path", "d/".repeat(3000).as_bytes())], "x", b"")
                .bytes(),
            Refused("longer than"),
        ),
        (
            "deep-nesting",
            {
                let mut tar = RawTar::new();
                let mut path = String::new();
                for _ in 0..2100 {
                    path.push_str("d/");
                    tar = tar.pax_entry(
                        &[("path", path.as_bytes())],
                        "ignored",
                        EntryType::Directory,
                        b"",
                    );
                }
                tar.bytes()
            },
            Refused("longer than"),
        ),
        (
            "truncated-entry",
            {
                let mut bytes = RawTar::new().file("big-file", &vec![7u8; 100_000]).bytes();
                bytes.truncate(20_000);
                bytes
            },
            Refused("big-file"),
        ),
        ("not-a-tar", vec![0x1b; 4096], Refused("not a tar")),
        ("empty-input", Vec::new(), Either),
        ("zero-blocks-only", vec![0u8; 10240], Either),
        (
            "unsupported-entry-type",
            RawTar::new()
                .entry(b"odd", EntryType::new(b'Z'), b"", b"", 0o644)
                .bytes(),
            Refused("odd"),
        ),
    ];
    for (name, bytes, expect) in cases {
        battery.case(name, "import", &bytes, expect);
    }

    // Decompression bombs meet the store's reserve of free space, not a full disk.
    let bomb = {
        let mut header = Header::new_gnu();
        header.set_path("zeros").unwrap();
        header.set_size(10 << 30);
        header.set_mode(0o644);
        header.set_cksum();
        let mut encoder = zstd::stream::Encoder::new(Vec::new(), 1).unwrap();
        encoder.write_all(header.as_bytes()).unwrap();
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..300 {
            encoder.write_all(&zeros).unwrap();
        }
        encoder.finish().unwrap()
    };
    battery.case("zstd-bomb", "import", &bomb, Refused("reserve"));
    let gzip_bomb = {
        let mut tar = RawTar::new();
        let zeros = vec![0u8; 1 << 20];
        for i in 0..400 {
            tar = tar.file(&format!("z{i}"), &zeros);
        }
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(&tar.bytes()).unwrap();
        encoder.finish().unwrap()
    };
    battery.case(
        "gzip-bomb-many-files",
        "import",
        &gzip_bomb,
        Refused("reserve"),
    );

    // A GNU sparse file, as Docker accepts it.
    let sparse_dir = battery.work.path().join("sparse");
    std::fs::create_dir(&sparse_dir).unwrap();
    common::run(
        "truncate",
        &["-s", "8M", sparse_dir.join("holes").to_str().unwrap()],
    );
    common::run(
        "sh",
        &[
            "-c",
            &format!("echo end >> {}", sparse_dir.join("holes").display()),
        ],
    );
    let sparse_tar = battery.work.path().join("sparse-src.tar");
    common::run(
        "tar",
        &[
            "--sparse",
            "--format=gnu",
            "-cf",
            sparse_tar.to_str().unwrap(),
            "-C",
            sparse_dir.to_str().unwrap(),
            "holes",
        ],
    );
    let sparse = std::fs::read(&sparse_tar).unwrap();
    battery.case("gnu-sparse", "import", &sparse, Accepted);

    // Image archives whose parts lie.
    let layer = small_layer();
    let load_cases: Vec<(&str, Vec<u8>, Expect)> = vec![
        ("oci-good", {
            let (a, c, m) = OciArchive::image(&layer, None);
            a.finish(c, m, Spoil::Nothing)
        }, Accepted),
        ("oci-manifest-digest-mismatch", {
            let (a, c, m) = OciArchive::image(&layer, None);
            a.finish(c, m, Spoil::Manifest)
        }, Refused("hashes to")),
        ("oci-config-digest-mismatch", {
            let (a, c, m) = OciArchive::image(&layer, None);
            a.finish(c, m, Spoil::Config)
        }, Refused("hashes to")),
        ("oci-layer-digest-mismatch", {
            let (a, c, m) = OciArchive::image(&layer, None);
            a.finish(c, m, Spoil::Layer)
        }, Refused("")),
        ("oci-diff-id-mismatch", {
            let wrong = format!("sha256:{}", "ab".repeat(32));
            let (a, c, m) = OciArchive::image(&layer, Some(&wrong));
            a.finish(c, m, Spoil::Nothing)
        }, Refused("unpacks to")),
        ("oci-layer-count-mismatch", {
            let (a, mut c, m) = OciArchive::image(&layer, None);
            c["rootfs"]["diff_ids"] = json!([]);
            a.finish(c, m, Spoil::Nothing)
        }, Refused("layers")),
        ("oci-layer-with-escape", {
            let evil = RawTar::new().file("../escape", b"x").bytes();
            let (a, c, m) = OciArchive::image(&evil, None);
            a.finish(c, m, Spoil::Nothing)
        }, Refused("..")),
        ("oci-layer-symlink-escape", {
            let evil = RawTar::new().symlink("evil", &outside).file("evil/planted", b"x").bytes();
            let (a, c, m) = OciArchive::image(&evil, None);
            a.finish(c, m, Spoil::Nothing)
        }, Refused("symlink")),
        ("oci-bad-index-json", tar_of(&[("index.json".into(), b"{".to_vec())]), Refused("index.json")),
        ("oci-bad-manifest-json", {
            let mut a = OciArchive { members: Vec::new() };
            let digest = a.blob(b"not json".to_vec());
            a.members.push(("index.json".into(), serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest, "size": 8}]})).unwrap()));
            tar_of(&a.members)
        }, Refused("expected")),
        ("oci-bad-config-json", {
            let (mut a, _, m) = OciArchive::image(&layer, None);
            let config_digest = a.blob(b"[1,2".to_vec());
            let mut m = m;
            m["config"]["digest"] = json!(config_digest);
            let manifest_digest = a.blob(serde_json::to_vec(&m).unwrap());
            a.members.push(("index.json".into(), serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifest_digest, "size": 1}]})).unwrap()));
            tar_of(&a.members)
        }, Refused("expected")),
        ("oci-nested-index-mismatch", {
            let mut a = OciArchive { members: Vec::new() };
            let nested = serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": []})).unwrap();
            let digest = format!("sha256:{}", sha256_hex(&nested));
            let mut spoiled = nested.clone();
            spoiled.push(b' ');
            a.members.push((format!("blobs/sha256/{}", &digest[7..]), spoiled));
            a.members.push(("index.json".into(), serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.index.v1+json", "digest": digest, "size": 1}]})).unwrap()));
            tar_of(&a.members)
        }, Refused("hashes to")),
        ("oci-digest-not-sha256", tar_of(&[("index.json".into(), br#"{"manifests":[{"digest":"md5:abc"}]}"#.to_vec())]), Refused("md5")),
        ("docker-config-traversal", tar_of(&[("manifest.json".into(), br#"[{"Config":"../../../../etc/passwd","Layers":[]}]"#.to_vec())]), Refused("etc/passwd")),
        ("docker-layer-traversal", tar_of(&[
            ("manifest.json".into(), br#"[{"Config":"c.json","Layers":["../../../../etc/shadow"]}]"#.to_vec()),
            ("c.json".into(), br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:0000000000000000000000000000000000000000000000000000000000000000"]}}"#.to_vec()),
        ]), Refused("etc/shadow")),
        // docker save's link from one layer.tar to another, pointed out of the archive
        // or round a loop: refused with the link named, nothing followed on the host.
        ("docker-layer-link-outside", docker_linked_layer(&["../../etc/passwd"]), Refused("l1/layer.tar: it links to ../../etc/passwd, outside the archive")),
        ("docker-layer-link-absolute", docker_linked_layer(&["/etc/passwd"]), Refused("l1/layer.tar: it links to /etc/passwd, outside the archive")),
        ("docker-layer-link-loop", docker_linked_layer(&["../l2/layer.tar", "../l1/layer.tar"]), Refused("loop")),
        ("docker-manifest-not-a-list", tar_of(&[("manifest.json".into(), br#"{"Config":"x"}"#.to_vec())]), Refused("list")),
        ("docker-config-name-digest-mismatch", {
            let config = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#.to_vec();
            let wrong = "cd".repeat(32);
            tar_of(&[
                ("manifest.json".into(), format!(r#"[{{"Config":"{wrong}.json","Layers":[]}}]"#).into_bytes()),
                (format!("{wrong}.json"), config),
            ])
        }, Refused("hashes to")),
    ];
    for (name, bytes, expect) in load_cases {
        battery.case(name, "load", &bytes, expect);
    }
    assert!(battery.ran >= 39, "the battery ran {} cases", battery.ran);

    let check = battery.lade(&["system", "check"]);
    assert!(
        check.status.success(),
        "the store is not clean after the battery:\n{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    let images = battery.lade(&["images"]);
    assert!(String::from_utf8_lossy(&images.stdout).contains("hostile"));
}
