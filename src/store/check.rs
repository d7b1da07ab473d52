//! `lade system check`: the store against itself. Every blob is re-hashed, every
//! reference followed from the tags and image records to manifests, configs and layers,
//! and every snapshot compared with the fingerprint recorded when it was made. Each
//! problem names its digest and the images it touches. `--repair` removes what is
//! corrupt (snapshots are remade from their blobs when next needed) and the images whose
//! content is gone; it never removes a good blob.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs;
use std::path::Path;

use rusqlite::params;

use super::db::parse_digest;
use super::{remove_tree, IoContext, Result, Store, StoreError};
use crate::oci::Digest;

/// How thorough to be, and whether to mend.
pub struct CheckOptions<'a> {
    /// References and sizes only: no blob is re-hashed, no snapshot fingerprinted.
    pub quick: bool,
    pub repair: bool,
    /// A snapshot's fingerprint (the layers module computes it; the store only keeps it).
    pub fingerprint: &'a (dyn Fn(&Path) -> std::result::Result<String, FingerprintError> + Sync),
    /// The snapshots containers stand on, asked once the check holds the store's
    /// content lock (so no container is made meanwhile): a repair never takes a running
    /// container's files from under it, nor a stopped one's.
    pub snapshot_users: &'a dyn Fn() -> SnapshotUsers,
}

/// Which containers stand on which snapshots (the container module reads their specs;
/// the store only keeps them).
#[derive(Debug, Default)]
pub struct SnapshotUsers {
    /// Snapshot name to the names of the containers using it.
    pub users: BTreeMap<String, Vec<String>>,
    /// Containers whose spec cannot be read, with why: what they stand on is unknown,
    /// so a repair then removes no snapshot at all.
    pub unreadable: Vec<(String, String)>,
}

/// Why a snapshot could not be fingerprinted (its walk failed): the snapshot counts as
/// changed.
pub type FingerprintError = Box<dyn std::error::Error + Send + Sync>;

/// One thing wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// A blob an image needs is not in the store.
    MissingBlob { digest: Digest, images: Vec<String> },
    /// A blob whose content does not hash to its name.
    CorruptBlob {
        digest: Digest,
        actual: Option<Digest>,
        images: Vec<String>,
    },
    /// An image whose manifest or config cannot be read or does not hold together.
    BrokenImage { image: String, reason: String },
    /// A snapshot whose files changed since it was made.
    ChangedSnapshot {
        name: String,
        diff_id: Digest,
        images: Vec<String>,
    },
    /// A container whose spec cannot be read.
    UnreadableContainer { name: String, reason: String },
    /// A snapshot a container stands on that is not in the store.
    MissingSnapshot {
        name: String,
        containers: Vec<String>,
    },
    /// A `containers/<id>` directory with no container record (see `orphans.rs`).
    OrphanContainerDir { id: String },
    /// An address reserved on a network for a container with no record.
    OrphanAddress {
        network: String,
        address: String,
        container: String,
    },
    /// A host bridge (or only its claim) of a store that was deleted without
    /// `system reset`: no store can remove it any more.
    OrphanBridge {
        bridge: String,
        owner: String,
        present: bool,
    },
}

fn list(images: &[String]) -> String {
    if images.is_empty() {
        "no image uses it".into()
    } else {
        format!("used by {}", images.join(", "))
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::MissingBlob { digest, images } => {
                write!(f, "blob {digest} is missing ({})", list(images))
            }
            Problem::CorruptBlob {
                digest,
                actual: Some(actual),
                images,
            } => write!(
                f,
                "blob {digest} is corrupt: its content hashes to {actual} ({})",
                list(images)
            ),
            Problem::CorruptBlob {
                digest,
                actual: None,
                images,
            } => write!(f, "blob {digest} cannot be read ({})", list(images)),
            Problem::BrokenImage { image, reason } => write!(f, "image {image}: {reason}"),
            Problem::ChangedSnapshot {
                name,
                diff_id,
                images,
            } => write!(
                f,
                "snapshot {name} of layer {diff_id} was changed since it was made ({})",
                list(images)
            ),
            Problem::UnreadableContainer { name, reason } => {
                write!(f, "container {name}: its spec cannot be read ({reason})")
            }
            Problem::MissingSnapshot { name, containers } => write!(
                f,
                "snapshot {name} is missing: container {} cannot start (remove it and create it again)",
                containers.join(", ")
            ),
            Problem::OrphanContainerDir { id } => write!(
                f,
                "container directory containers/{id} has no record (a create that did not finish left it)"
            ),
            Problem::OrphanAddress {
                network,
                address,
                container,
            } => write!(
                f,
                "address {address} on network {network} is reserved for container {container}, which has no record"
            ),
            Problem::OrphanBridge {
                bridge,
                owner,
                present: true,
            } => write!(
                f,
                "bridge {bridge} and its firewall rules belong to the store {owner}, which was deleted without `lade system reset`"
            ),
            Problem::OrphanBridge {
                bridge,
                owner,
                present: false,
            } => write!(
                f,
                "the claim on bridge name {bridge} belongs to the store {owner}, which was deleted"
            ),
        }
    }
}

/// What a check found and did.
#[derive(Debug, Default)]
pub struct CheckReport {
    pub problems: Vec<Problem>,
    pub images: usize,
    pub blobs: usize,
    pub snapshots: usize,
    /// Snapshots made before fingerprints were recorded: not checkable.
    pub unrecorded_snapshots: usize,
    /// What `--repair` did, one line each.
    pub repairs: Vec<String>,
}

/// One image as the check sees it.
struct Seen {
    label: String,
    manifest: Digest,
    blobs: Vec<(Digest, u64)>,
    diff_ids: Vec<Digest>,
}

impl Store {
    /// Checks the whole store; with `repair`, mends what it can.
    pub fn check(&self, options: &CheckOptions<'_>) -> Result<CheckReport> {
        // Nothing may write content meanwhile: a half-made blob is not corruption.
        let (lock, path) = self.open_lock_file("content.lock")?;
        lock.lock().at(&path)?;
        let mut report = CheckReport::default();
        let tags = self.tags()?;
        let mut manifests: BTreeMap<Digest, Vec<String>> = BTreeMap::new();
        for tag in &tags {
            manifests
                .entry(tag.manifest)
                .or_default()
                .push(tag.name.clone());
        }
        let recorded: Vec<String> = self.with_db(|conn| {
            let mut stmt = conn.prepare("SELECT manifest_digest FROM images")?;
            let rows = stmt.query_map([], |row| row.get(0))?;
            rows.collect()
        })?;
        for manifest in recorded {
            manifests
                .entry(parse_digest(manifest).map_err(|e| self.db_error(e))?)
                .or_default();
        }

        let mut images: Vec<Seen> = Vec::new();
        let mut broken: BTreeSet<Digest> = BTreeSet::new();
        let mut bad_blobs: BTreeSet<Digest> = BTreeSet::new();
        for (manifest, names) in &manifests {
            let label = if names.is_empty() {
                manifest.short()
            } else {
                names.join(", ")
            };
            match self.image_by_manifest(manifest) {
                Ok(image) => {
                    let mut blobs =
                        vec![(image.manifest_digest, image.manifest_size), (image.id, 0)];
                    // A tag naming a multi-platform image: its index is a blob too.
                    if image.manifest_digest != *manifest {
                        blobs.push((*manifest, 0));
                    }
                    blobs.extend(image.layers.iter().map(|l| (l.blob, l.size)));
                    images.push(Seen {
                        label,
                        manifest: *manifest,
                        blobs,
                        diff_ids: image.layers.iter().map(|l| l.diff_id).collect(),
                    });
                }
                Err(err) => {
                    broken.insert(*manifest);
                    let problem = match err {
                        StoreError::MissingBlob { digest } => {
                            bad_blobs.insert(digest);
                            Problem::MissingBlob {
                                digest,
                                images: vec![label],
                            }
                        }
                        StoreError::DigestMismatch { expected, actual } => {
                            bad_blobs.insert(expected);
                            Problem::CorruptBlob {
                                digest: expected,
                                actual: Some(actual),
                                images: vec![label],
                            }
                        }
                        other => Problem::BrokenImage {
                            image: label,
                            reason: other.to_string(),
                        },
                    };
                    report.problems.push(problem);
                }
            }
        }
        report.images = manifests.len();

        let users = |digest: &Digest| -> Vec<String> {
            images
                .iter()
                .filter(|i| i.blobs.iter().any(|(d, _)| d == digest))
                .map(|i| i.label.clone())
                .collect()
        };
        // Every blob file is checked, referenced or not: the build cache reuses layers
        // no image names yet.
        let blob_dir = self.layout_dir().join("blobs/sha256");
        let mut present: BTreeSet<Digest> = BTreeSet::new();
        for entry in fs::read_dir(&blob_dir).at(&blob_dir)?.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Ok(digest) = Digest::from_hex(&name) else {
                continue;
            };
            present.insert(digest);
            if options.quick {
                continue;
            }
            report.blobs += 1;
            let actual = match self.verify_blob(&digest) {
                Ok(_) => continue,
                Err(StoreError::DigestMismatch { actual, .. }) => Some(actual),
                Err(_) => None,
            };
            // A manifest or config found corrupt while loading its image is reported once.
            if bad_blobs.insert(digest) {
                report.problems.push(Problem::CorruptBlob {
                    digest,
                    actual,
                    images: users(&digest),
                });
            }
        }
        for image in &images {
            for (digest, size) in &image.blobs {
                if !present.contains(digest) {
                    if bad_blobs.insert(*digest) {
                        report.problems.push(Problem::MissingBlob {
                            digest: *digest,
                            images: users(digest),
                        });
                    }
                } else if options.quick && *size > 0 {
                    let actual = fs::metadata(self.blob_path(digest)).map_or(0, |m| m.len());
                    if actual != *size && bad_blobs.insert(*digest) {
                        report.problems.push(Problem::CorruptBlob {
                            digest: *digest,
                            actual: None,
                            images: users(digest),
                        });
                    }
                }
            }
        }

        let fingerprints: BTreeMap<String, (String, String)> = self.with_db(|conn| {
            let mut stmt = conn.prepare("SELECT name, diff_id, fingerprint FROM snapshots")?;
            let rows = stmt.query_map([], |row| {
                Ok((row.get::<_, String>(0)?, (row.get(1)?, row.get(2)?)))
            })?;
            rows.collect()
        })?;
        let mut bad_snapshots: Vec<String> = Vec::new();
        let snapshot_dir = self.snapshots_dir();
        for entry in fs::read_dir(&snapshot_dir).at(&snapshot_dir)?.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name == "empty" {
                continue;
            }
            let Some((diff_id, expected)) = fingerprints.get(&name) else {
                report.unrecorded_snapshots += 1;
                continue;
            };
            if options.quick {
                continue;
            }
            report.snapshots += 1;
            let actual = (options.fingerprint)(&entry.path());
            if !actual.is_ok_and(|actual| actual == *expected) {
                let diff_id = parse_digest(diff_id.clone()).map_err(|e| self.db_error(e))?;
                bad_snapshots.push(name.clone());
                report.problems.push(Problem::ChangedSnapshot {
                    name,
                    diff_id,
                    images: images
                        .iter()
                        .filter(|i| i.diff_ids.contains(&diff_id))
                        .map(|i| i.label.clone())
                        .collect(),
                });
            }
        }

        let snapshot_users = (options.snapshot_users)();
        for (name, reason) in &snapshot_users.unreadable {
            report.problems.push(Problem::UnreadableContainer {
                name: name.clone(),
                reason: reason.clone(),
            });
        }
        for (name, containers) in &snapshot_users.users {
            if !snapshot_dir.join(name).is_dir() {
                report.problems.push(Problem::MissingSnapshot {
                    name: name.clone(),
                    containers: containers.clone(),
                });
            }
        }

        let orphans = self.container_orphans()?;
        if options.repair {
            let users = &snapshot_users.users;
            let unknown = !snapshot_users.unreadable.is_empty();
            let (in_use, unused): (Vec<String>, Vec<String>) = bad_snapshots
                .into_iter()
                .partition(|name| unknown || users.contains_key(name));
            for name in in_use {
                report.repairs.push(match users.get(&name) {
                    Some(containers) => format!(
                        "left snapshot {name} in place: container {} stands on it; remove {}, then repair again",
                        containers.join(", "),
                        if containers.len() == 1 { "it" } else { "them" }
                    ),
                    None => format!(
                        "left snapshot {name} in place: a container whose spec cannot be read may stand on it"
                    ),
                });
            }
            self.repair(&mut report, &images, &broken, &bad_blobs, &unused)?;
            for orphan in &orphans {
                report.repairs.extend(self.remove_orphan(orphan)?);
            }
        }
        report.problems.extend(orphans);
        Ok(report)
    }

    fn repair(
        &self,
        report: &mut CheckReport,
        images: &[Seen],
        broken: &BTreeSet<Digest>,
        bad_blobs: &BTreeSet<Digest>,
        bad_snapshots: &[String],
    ) -> Result<()> {
        for name in bad_snapshots {
            // Renamed away first, as garbage collection does: a removal cut short never
            // leaves a partial snapshot under a name a later run would trust.
            let trash = self.tmp_path("trash");
            fs::rename(self.snapshots_dir().join(name), &trash).at(&trash)?;
            self.with_db(|conn| {
                conn.execute("DELETE FROM snapshots WHERE name = ?1", params![name])
            })?;
            remove_tree(&trash);
            report.repairs.push(format!(
                "removed snapshot {name} (it is remade from its layer when next needed)"
            ));
        }
        let mut doomed: BTreeSet<Digest> = broken.clone();
        for image in images {
            if image.blobs.iter().any(|(d, _)| bad_blobs.contains(d)) {
                doomed.insert(image.manifest);
            }
        }
        for manifest in &doomed {
            let label = images
                .iter()
                .find(|i| i.manifest == *manifest)
                .map_or_else(|| manifest.short(), |i| i.label.clone());
            for tag in self.tags()?.iter().filter(|t| t.manifest == *manifest) {
                self.remove_tag(&tag.name)?;
            }
            self.with_db(|conn| {
                conn.execute(
                    "DELETE FROM images WHERE manifest_digest = ?1",
                    params![manifest.to_string()],
                )
            })?;
            report.repairs.push(format!(
                "removed image {label}: its content is gone or corrupt"
            ));
        }
        for digest in bad_blobs {
            let path = self.blob_path(digest);
            if path.exists() {
                fs::remove_file(&path).at(&path)?;
                report
                    .repairs
                    .push(format!("removed corrupt blob {digest}"));
            }
            // A cached step whose layer is gone must not be reused.
            let dropped = self.with_db(|conn| {
                conn.execute(
                    "DELETE FROM layers WHERE blob_digest = ?1",
                    params![digest.to_string()],
                )?;
                conn.execute(
                    "DELETE FROM cache_records WHERE blob = ?1",
                    params![digest.to_string()],
                )
            })?;
            if dropped > 0 {
                report.repairs.push(format!(
                    "dropped {dropped} build cache record(s) of layer {digest}"
                ));
            }
        }
        Ok(())
    }
}
