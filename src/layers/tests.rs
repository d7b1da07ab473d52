//! Layer writing and extraction: hostile archives, round trips, determinism.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use tar::EntryType;

use super::*;

/// A tar entry with any name and link name, as an attacker would write it.
fn raw_entry(
    builder: &mut tar::Builder<Vec<u8>>,
    name: &[u8],
    kind: EntryType,
    link: &[u8],
    data: &[u8],
) {
    let mut header = tar::Header::new_gnu();
    {
        let old = header.as_old_mut();
        old.name[..name.len()].copy_from_slice(name);
        old.linkname[..link.len()].copy_from_slice(link);
    }
    header.set_entry_type(kind);
    header.set_size(data.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    builder.append(&header, data).unwrap();
}

/// Everything under a directory: path -> (kind, content or link target).
fn snapshot_of(dir: &Path) -> BTreeMap<String, String> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|e| e.unwrap())
        .map(|e| {
            let meta = fs::symlink_metadata(e.path()).unwrap();
            let what = if meta.file_type().is_symlink() {
                format!("link {}", fs::read_link(e.path()).unwrap().display())
            } else if meta.is_file() {
                format!("file {:?}", fs::read(e.path()).unwrap())
            } else {
                format!("{:o}", meta.mode())
            };
            (e.path().display().to_string(), what)
        })
        .collect()
}

struct Arena {
    _dir: tempfile::TempDir,
    target: std::path::PathBuf,
    outside: std::path::PathBuf,
}

fn arena() -> Arena {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("target");
    let outside = dir.path().join("outside");
    fs::create_dir(&target).unwrap();
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("sentinel"), b"untouched").unwrap();
    Arena {
        _dir: dir,
        target,
        outside,
    }
}

/// Extracts `archive` into a fresh target next to an `outside` directory and returns the
/// error; the outside must be unchanged.
fn refused(build: impl FnOnce(&mut tar::Builder<Vec<u8>>, &Path)) -> LayerError {
    let arena = arena();
    let mut builder = tar::Builder::new(Vec::new());
    build(&mut builder, &arena.outside);
    let bytes = builder.into_inner().unwrap();
    let before = snapshot_of(&arena.outside);
    let err = extract(
        &mut bytes.as_slice(),
        &arena.target,
        &ExtractLimits::default(),
    )
    .expect_err("a hostile archive must be refused");
    assert_eq!(snapshot_of(&arena.outside), before, "the outside changed");
    err
}

fn assert_unsafe(err: LayerError, entry: &str, reason: &str) {
    match &err {
        LayerError::Unsafe {
            entry: e,
            reason: r,
        } => {
            assert_eq!(e, entry, "{err}");
            assert!(r.contains(reason), "{err}");
        }
        other => panic!("expected an unsafe-entry error, got {other}"),
    }
}

#[test]
fn symlink_then_file_through_it() {
    let err = refused(|b, outside| {
        raw_entry(
            b,
            b"evil",
            EntryType::Symlink,
            outside.as_os_str().as_bytes(),
            b"",
        );
        raw_entry(b, b"evil/pwned", EntryType::Regular, b"", b"gotcha");
    });
    assert_unsafe(err, "evil/pwned", "through the symlink evil");
}

#[test]
fn relative_symlink_then_file_through_it() {
    let err = refused(|b, _| {
        raw_entry(b, b"a/up", EntryType::Symlink, b"../../outside", b"");
        raw_entry(b, b"a/up/sentinel", EntryType::Regular, b"", b"gotcha");
    });
    assert_unsafe(err, "a/up/sentinel", "through the symlink a/up");
}

#[test]
fn dot_dot_entries() {
    let err = refused(|b, _| raw_entry(b, b"../outside/pwned", EntryType::Regular, b"", b"x"));
    assert_unsafe(err, "../outside/pwned", "`..`");
    let err = refused(|b, _| {
        raw_entry(
            b,
            b"a/../../outside/sentinel",
            EntryType::Regular,
            b"",
            b"x",
        )
    });
    assert_unsafe(err, "a/../../outside/sentinel", "`..`");
}

#[test]
fn pax_path_with_dot_dot() {
    let err = refused(|b, _| {
        b.append_pax_extensions([("path", &b"../outside/pax"[..])])
            .unwrap();
        raw_entry(b, b"innocent", EntryType::Regular, b"", b"x");
    });
    assert_unsafe(err, "../outside/pax", "`..`");
}

#[test]
fn hardlink_to_outside() {
    let err = refused(|b, _| raw_entry(b, b"link", EntryType::Link, b"../outside/sentinel", b""));
    assert_unsafe(err, "link", "outside the target");
    let err = refused(|b, outside| {
        let sentinel = outside.join("sentinel");
        raw_entry(
            b,
            b"link",
            EntryType::Link,
            sentinel.as_os_str().as_bytes(),
            b"",
        );
    });
    assert_unsafe(err, "link", "not an earlier entry");
}

#[test]
fn hardlink_through_a_symlink() {
    let err = refused(|b, outside| {
        raw_entry(
            b,
            b"dir",
            EntryType::Symlink,
            outside.as_os_str().as_bytes(),
            b"",
        );
        raw_entry(b, b"link", EntryType::Link, b"dir/sentinel", b"");
    });
    assert_unsafe(err, "link", "not an earlier entry");
}

#[test]
fn root_replaced_by_a_symlink() {
    let err = refused(|b, outside| {
        raw_entry(
            b,
            b"/.",
            EntryType::Symlink,
            outside.as_os_str().as_bytes(),
            b"",
        )
    });
    assert_unsafe(err, "/.", "replace the root");
    let err = refused(|b, _| raw_entry(b, b"./", EntryType::Symlink, b"/", b""));
    assert_unsafe(err, "./", "replace the root");
}

#[test]
fn bare_whiteout() {
    let err = refused(|b, _| raw_entry(b, b"etc/.wh.", EntryType::Regular, b"", b""));
    assert_unsafe(err, "etc/.wh.", "names nothing");
    let err = refused(|b, _| raw_entry(b, b".wh..", EntryType::Regular, b"", b""));
    assert_unsafe(err, ".wh..", "names nothing");
}

#[test]
fn oversized_extension_headers() {
    let err = refused(|b, _| {
        let long = vec![b'a'; 2 << 20];
        b.append_pax_extensions([("comment", long.as_slice())])
            .unwrap();
        raw_entry(b, b"x", EntryType::Regular, b"", b"");
    });
    assert!(
        matches!(err, LayerError::Unsafe { ref reason, .. } if reason.contains("extension header")),
        "{err}"
    );
}

#[test]
fn entry_limit() {
    let arena = arena();
    let mut builder = tar::Builder::new(Vec::new());
    for i in 0..20 {
        raw_entry(
            &mut builder,
            format!("f{i}").as_bytes(),
            EntryType::Regular,
            b"",
            b"",
        );
    }
    let bytes = builder.into_inner().unwrap();
    let limits = ExtractLimits {
        max_entries: 10,
        ..ExtractLimits::default()
    };
    let err = extract(&mut bytes.as_slice(), &arena.target, &limits).unwrap_err();
    assert!(err.to_string().contains("more than 10 entries"), "{err}");
}

#[test]
fn absolute_names_land_inside() {
    let arena = arena();
    let mut builder = tar::Builder::new(Vec::new());
    raw_entry(
        &mut builder,
        b"/etc/hostname",
        EntryType::Regular,
        b"",
        b"inside",
    );
    let bytes = builder.into_inner().unwrap();
    extract(
        &mut bytes.as_slice(),
        &arena.target,
        &ExtractLimits::default(),
    )
    .unwrap();
    assert_eq!(
        fs::read(arena.target.join("etc/hostname")).unwrap(),
        b"inside"
    );
}

#[test]
fn whiteouts_become_overlay_whiteouts() {
    let arena = arena();
    let mut builder = tar::Builder::new(Vec::new());
    raw_entry(&mut builder, b"etc/.wh.gone", EntryType::Regular, b"", b"");
    raw_entry(
        &mut builder,
        b"var/.wh..wh..opq",
        EntryType::Regular,
        b"",
        b"",
    );
    let bytes = builder.into_inner().unwrap();
    extract(
        &mut bytes.as_slice(),
        &arena.target,
        &ExtractLimits::default(),
    )
    .unwrap();
    let meta = fs::symlink_metadata(arena.target.join("etc/gone")).unwrap();
    use std::os::unix::fs::FileTypeExt;
    assert!(meta.file_type().is_char_device() && meta.rdev() == 0);
    let opaque = walk::xattrs(&arena.target.join("var")).unwrap();
    assert!(
        opaque.contains(&("trusted.overlay.opaque".to_string(), b"y".to_vec())),
        "{opaque:?}"
    );
}

/// A tree with every kind of entry, unusual modes and owners, and a long name.
fn sample_tree(root: &Path) {
    fs::create_dir_all(root.join("dir/sub")).unwrap();
    fs::write(root.join("dir/file.txt"), b"hello").unwrap();
    fs::write(root.join("dir/sub/setuid"), b"#!/bin/sh\n").unwrap();
    fs::set_permissions(
        root.join("dir/sub/setuid"),
        fs::Permissions::from_mode(0o4755),
    )
    .unwrap();
    std::os::unix::fs::symlink("file.txt", root.join("dir/link")).unwrap();
    fs::hard_link(root.join("dir/file.txt"), root.join("dir/hard")).unwrap();
    nix::unistd::mkfifo(
        &root.join("fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o640),
    )
    .unwrap();
    let long = "x".repeat(120);
    fs::create_dir_all(root.join(&long)).unwrap();
    fs::write(root.join(&long).join("y".repeat(150)), b"long").unwrap();
    std::os::unix::fs::chown(root.join("dir/file.txt"), Some(1234), Some(5678)).unwrap();
    fs::set_permissions(root.join("dir/sub"), fs::Permissions::from_mode(0o1777)).unwrap();
}

fn tree_facts(root: &Path) -> BTreeMap<String, String> {
    walkdir::WalkDir::new(root)
        .min_depth(1)
        .into_iter()
        .map(|e| e.unwrap())
        .map(|e| {
            let meta = fs::symlink_metadata(e.path()).unwrap();
            let body = if meta.is_file() {
                format!("{:?}", fs::read(e.path()).unwrap())
            } else if meta.file_type().is_symlink() {
                fs::read_link(e.path()).unwrap().display().to_string()
            } else {
                String::new()
            };
            let mtime = if meta.is_dir() { 0 } else { meta.mtime() };
            (
                e.path().strip_prefix(root).unwrap().display().to_string(),
                format!(
                    "{:o} {}:{} {} {body}",
                    meta.mode(),
                    meta.uid(),
                    meta.gid(),
                    mtime
                ),
            )
        })
        .collect()
}

fn write_layer(
    store: &crate::store::Store,
    root: &Path,
    epoch: Option<i64>,
) -> crate::store::LayerInfo {
    let mut writer = LayerWriter::new(store, Compression::Zstd, epoch, None).unwrap();
    for walked in dir_entries(root, false).unwrap() {
        match &walked.source {
            Some(source) => {
                let mut file = fs::File::open(source).unwrap();
                writer.add(&walked.entry, Some(&mut file)).unwrap();
            }
            None => writer.add(&walked.entry, None).unwrap(),
        }
    }
    writer.finish().unwrap()
}

#[test]
fn written_layers_extract_to_the_same_tree() {
    let dir = tempfile::tempdir().unwrap();
    let store = crate::store::Store::open(&dir.path().join("store")).unwrap();
    let source = dir.path().join("source");
    sample_tree(&source);
    let layer = write_layer(&store, &source, None);
    let out = ensure_snapshot(&store, &layer).unwrap();
    assert_eq!(tree_facts(&out), tree_facts(&source));
    let hard = fs::metadata(out.join("dir/hard")).unwrap();
    assert_eq!(
        hard.ino(),
        fs::metadata(out.join("dir/file.txt")).unwrap().ino()
    );
}

#[test]
fn layers_are_deterministic_and_clamped() {
    let dir = tempfile::tempdir().unwrap();
    let store = crate::store::Store::open(&dir.path().join("store")).unwrap();
    let source = dir.path().join("source");
    sample_tree(&source);
    let first = write_layer(&store, &source, Some(1_000));
    // New mtimes (after the epoch) change nothing once clamped.
    for entry in walkdir::WalkDir::new(&source)
        .into_iter()
        .map(|e| e.unwrap())
    {
        crate::layers::entry::set_mtime(entry.path(), 2_000_000_000).unwrap();
    }
    let second = write_layer(&store, &source, Some(1_000));
    assert_eq!(first, second);
    let unclamped = write_layer(&store, &source, None);
    assert_ne!(first.diff_id, unclamped.diff_id);
}

#[test]
fn snapshot_written_alongside_matches_extraction() {
    let dir = tempfile::tempdir().unwrap();
    let store = crate::store::Store::open(&dir.path().join("store")).unwrap();
    let source = dir.path().join("source");
    sample_tree(&source);
    let staging = store.staging_dir("test").unwrap();
    let mut writer = LayerWriter::new(
        &store,
        Compression::Gzip,
        None,
        Some(SnapshotTarget {
            dir: staging.path(),
            reuse: None,
        }),
    )
    .unwrap();
    for walked in dir_entries(&source, false).unwrap() {
        let mut file = walked.source.as_ref().map(|s| fs::File::open(s).unwrap());
        writer
            .add(&walked.entry, file.as_mut().map(|f| f as &mut dyn Read))
            .unwrap();
    }
    let layer = writer.finish().unwrap();
    let extracted = dir.path().join("extracted");
    fs::create_dir(&extracted).unwrap();
    let blob = store.open_blob(&layer.blob).unwrap();
    let mut reader = Compression::Gzip.reader(blob).unwrap();
    extract(&mut reader, &extracted, &ExtractLimits::default()).unwrap();
    assert_eq!(tree_facts(staging.path()), tree_facts(&extracted));
    assert_eq!(tree_facts(staging.path()), tree_facts(&source));
}

#[test]
fn overlay_upper_dirs_become_whiteout_entries() {
    let dir = tempfile::tempdir().unwrap();
    let upper = dir.path().join("upper");
    fs::create_dir_all(upper.join("opaque")).unwrap();
    entry::make_node(&upper.join("deleted"), nix::sys::stat::SFlag::S_IFCHR, 0, 0).unwrap();
    entry::xattr_set(&upper.join("opaque"), "trusted.overlay.opaque", b"y").unwrap();
    let names: Vec<String> = dir_entries(&upper, true)
        .unwrap()
        .iter()
        .map(|w| String::from_utf8_lossy(&w.entry.tar_name()).into_owned())
        .collect();
    assert_eq!(names, vec![".wh.deleted", "opaque", "opaque/.wh..wh..opq"]);
}

/// Writes `source` as a layer whose snapshot goes to a new staging directory, sharing
/// what it can with `reuse`; returns the snapshot.
fn snapshot_sharing(
    store: &crate::store::Store,
    source: &Path,
    reuse: Option<&Path>,
) -> std::path::PathBuf {
    let staging = store.staging_dir("test").unwrap();
    let mut writer = LayerWriter::new(
        store,
        Compression::Zstd,
        None,
        Some(SnapshotTarget {
            dir: staging.path(),
            reuse,
        }),
    )
    .unwrap();
    for walked in dir_entries(source, false).unwrap() {
        let mut file = walked.source.as_ref().map(|s| fs::File::open(s).unwrap());
        writer
            .add(&walked.entry, file.as_mut().map(|f| f as &mut dyn Read))
            .unwrap();
    }
    let (_, print) = writer.finish_layer().unwrap();
    let snapshot = staging.keep();
    assert_eq!(
        print.as_deref(),
        Some(fingerprint(&snapshot).unwrap().as_str()),
        "the fingerprint gathered while writing is the one a walk finds"
    );
    snapshot
}

#[test]
fn a_new_snapshot_shares_only_files_that_are_truly_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let store = crate::store::Store::open(&dir.path().join("store")).unwrap();
    let source = dir.path().join("source");
    fs::create_dir_all(source.join("sub")).unwrap();
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    fs::write(source.join("same.txt"), "unchanged").unwrap();
    fs::write(source.join("sub/edited.txt"), "aaaa").unwrap();
    fs::write(source.join("big.bin"), &big).unwrap();
    fs::write(source.join("touched.txt"), "same bytes").unwrap();
    for entry in walkdir::WalkDir::new(&source)
        .into_iter()
        .map(|e| e.unwrap())
    {
        entry::set_mtime(entry.path(), 1_600_000_000).unwrap();
    }
    let first = snapshot_sharing(&store, &source, None);

    // Same size and time, other bytes: at the start, and past the first chunk of a big file.
    fs::write(source.join("sub/edited.txt"), "bbbb").unwrap();
    let mut changed = big.clone();
    changed[2_500_000] ^= 0xff;
    fs::write(source.join("big.bin"), &changed).unwrap();
    for name in ["sub/edited.txt", "big.bin"] {
        entry::set_mtime(&source.join(name), 1_600_000_000).unwrap();
    }
    // Same bytes, another time: not shareable (the inode's time is the old one).
    entry::set_mtime(&source.join("touched.txt"), 1_700_000_000).unwrap();
    let second = snapshot_sharing(&store, &source, Some(&first));

    let inode = |root: &Path, name: &str| fs::metadata(root.join(name)).unwrap().ino();
    assert_eq!(
        inode(&first, "same.txt"),
        inode(&second, "same.txt"),
        "shared"
    );
    for name in ["sub/edited.txt", "big.bin", "touched.txt"] {
        assert_ne!(inode(&first, name), inode(&second, name), "{name} is new");
    }
    assert_eq!(fs::read(second.join("sub/edited.txt")).unwrap(), b"bbbb");
    assert_eq!(fs::read(first.join("sub/edited.txt")).unwrap(), b"aaaa");
    assert_eq!(fs::read(second.join("big.bin")).unwrap(), changed);
    assert_eq!(fs::read(first.join("big.bin")).unwrap(), big);
    assert_eq!(
        fs::metadata(second.join("touched.txt")).unwrap().mtime(),
        1_700_000_000
    );
    assert_eq!(tree_facts(&second), tree_facts(&source));
}

#[test]
fn a_file_that_is_not_a_tar_is_named_as_such_without_its_bytes() {
    let arena = arena();
    let mut garbage = vec![0x1bu8; 512];
    garbage[148..156].copy_from_slice(b"\xff\xfe\x07junk!");
    garbage.extend_from_slice(&[0u8; 1024]);
    let err = extract(
        &mut garbage.as_slice(),
        &arena.target,
        &ExtractLimits::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("not a tar archive, or a damaged one"), "{err}");
    assert!(!err.contains('\u{1b}') && !err.contains("junk"), "{err}");
}

/// Writes `source`'s entries (as `dir_entries` finds them, `overlay` or not) with a
/// snapshot; returns the fingerprint gathered on the way and the one a walk finds.
fn both_fingerprints(source: &Path, overlay: bool) -> (Option<String>, String) {
    let dir = tempfile::tempdir().unwrap();
    let store = crate::store::Store::open(&dir.path().join("store")).unwrap();
    let staging = store.staging_dir("test").unwrap();
    let mut writer = LayerWriter::new(
        &store,
        Compression::Zstd,
        None,
        Some(SnapshotTarget {
            dir: staging.path(),
            reuse: None,
        }),
    )
    .unwrap();
    for walked in dir_entries(source, overlay).unwrap() {
        writer.add_walked(&walked).unwrap();
    }
    let (_, gathered) = writer.finish_layer().unwrap();
    (gathered, fingerprint(staging.path()).unwrap())
}

#[test]
fn the_fingerprint_gathered_while_writing_a_snapshot_is_the_one_a_walk_finds() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("source");
    sample_tree(&source);
    // walkdir's order is component by component: `a`, `a/b`, then `a-c`, `a.d`.
    fs::create_dir_all(source.join("a/b")).unwrap();
    fs::write(
        source.join("a-c"),
        b"after a/ in a walk, before it in a tar",
    )
    .unwrap();
    fs::write(source.join("a.d"), b"").unwrap();
    fs::write(source.join("a/b/big"), vec![7u8; 3 << 20]).unwrap();
    entry::xattr_set(&source.join("a/b/big"), "user.origin", b"test").unwrap();
    entry::make_node(&source.join("a/null"), nix::sys::stat::SFlag::S_IFCHR, 1, 3).unwrap();
    let (gathered, walked) = both_fingerprints(&source, false);
    assert_eq!(gathered.as_deref(), Some(walked.as_str()));
}

#[test]
fn a_snapshot_with_whiteouts_is_fingerprinted_by_a_walk() {
    let dir = tempfile::tempdir().unwrap();
    let upper = dir.path().join("upper");
    fs::create_dir_all(upper.join("opaque")).unwrap();
    fs::write(upper.join("kept"), b"kept").unwrap();
    entry::make_node(&upper.join("deleted"), nix::sys::stat::SFlag::S_IFCHR, 0, 0).unwrap();
    entry::xattr_set(&upper.join("opaque"), "trusted.overlay.opaque", b"y").unwrap();
    let (gathered, _) = both_fingerprints(&upper, true);
    assert_eq!(gathered, None);
}

#[test]
fn a_walked_tree_becomes_a_snapshot_whose_recorded_fingerprint_a_check_confirms() {
    let dir = tempfile::tempdir().unwrap();
    let store = crate::store::Store::open(&dir.path().join("store")).unwrap();
    let staging = store.staging_dir("test").unwrap();
    let tree = staging.path();
    sample_tree(tree);
    fs::write(tree.join("big"), vec![3u8; 3 << 20]).unwrap();
    // A socket is in the tree (and its fingerprint) but not in the layer.
    let _socket = std::os::unix::net::UnixListener::bind(tree.join("socket")).unwrap();
    let mut writer = LayerWriter::new(&store, Compression::Zstd, None, None)
        .unwrap()
        .remembering_contents();
    for walked in dir_entries(tree, false).unwrap() {
        writer.add_walked(&walked).unwrap();
    }
    let layer = writer.finish_with_walked_snapshot(&store, tree).unwrap();
    staging.keep();
    assert!(store.snapshot_dir(&layer.diff_id).join("big").is_file());
    let report = store
        .check(&crate::store::CheckOptions {
            quick: false,
            repair: false,
            fingerprint: &|path| fingerprint(path).map_err(Into::into),
            snapshot_users: &crate::store::SnapshotUsers::default,
        })
        .unwrap();
    assert_eq!(report.snapshots, 1);
    assert!(report.problems.is_empty(), "{:?}", report.problems);
}

#[test]
fn the_reserve_comes_from_the_options_the_store_was_opened_with() {
    use crate::store::{Store, StoreOptions};
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let chosen = Store::open_with(
        &root,
        &StoreOptions {
            reserve: Some(12345),
        },
    )
    .unwrap();
    assert_eq!(ExtractLimits::for_store(&chosen).reserve, Some(12345));
    drop(chosen);
    let default = Store::open_with(&root, &StoreOptions::default()).unwrap();
    let (_, total) = crate::store::filesystem_space(&root).unwrap();
    assert_eq!(default.reserve(), (1u64 << 30).min(total / 20));
}
