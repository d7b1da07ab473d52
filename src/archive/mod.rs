//! Image archives: `import` of a root filesystem tarball as a one-layer image, `save`
//! as a docker-archive that also holds an OCI layout (as Docker 25+ writes it) or as a
//! plain OCI archive, and `load` of either (as podman, docker and skopeo write them,
//! compressed or not).
//!
//! Archives are untrusted: names and extension headers are read with bounds, every blob
//! is checked against its digest, and every layer against its diff_id while it is
//! unpacked into its snapshot, in one pass.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::layers::{self, Compression, ExtractLimits, LayerError, LayerWriter, TeeReader};
use crate::oci::layout::{blob_name, INDEX_FILE, OCI_LAYOUT_CONTENT, OCI_LAYOUT_FILE};
use crate::oci::{
    media, ContainerConfig, Descriptor, Digest, History, ImageConfig, ImageIndex, ImageManifest,
    ImageRef, Platform, RootFs, Sha256Writer, REF_NAME_ANNOTATION,
};
use crate::store::{Image, LayerInfo, NewImage, Store, StoreError};

const CONTAINERD_NAME_ANNOTATION: &str = "io.containerd.image.name";

/// One image of a docker-archive's `manifest.json`, as `docker save` writes it. The
/// fields are in the order of their names, as they were always written: the same
/// images give the same bytes.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct DockerManifestEntry {
    /// The config's path in the archive; absent only in a broken archive.
    #[serde(rename = "Config", default)]
    config: Option<String>,
    /// The layers' paths, bottom first.
    #[serde(rename = "Layers", default)]
    layers: Option<Vec<String>>,
    /// Docker writes `null` for an image saved by id.
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
}

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Layer(#[from] LayerError),
    #[error("{what}: {reason}")]
    Invalid { what: String, reason: String },
}

pub type Result<T, E = ArchiveError> = std::result::Result<T, E>;

fn invalid(what: impl Into<String>, reason: impl Into<String>) -> ArchiveError {
    ArchiveError::Invalid {
        what: what.into(),
        reason: reason.into(),
    }
}

trait IoContext<T> {
    fn at(self, path: impl AsRef<Path>) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, path: impl AsRef<Path>) -> Result<T> {
        self.map_err(|source| ArchiveError::Io {
            path: path.as_ref().to_path_buf(),
            source,
        })
    }
}

/// Told how many bytes were processed, for progress bars.
pub trait Progress: Sync {
    fn advance(&self, bytes: u64);
    /// Something the user should know of what was read (device nodes a rootless import
    /// left out). Nobody is told by default.
    fn note(&self, _text: &str) {}
}

/// Progress nobody watches.
pub struct NoProgress;

impl Progress for NoProgress {
    fn advance(&self, _bytes: u64) {}
}

struct Counting<'a, R> {
    inner: R,
    progress: &'a dyn Progress,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.advance(n as u64);
        Ok(n)
    }
}

/// How `import` makes its image.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// The config, from `--change` instructions.
    pub config: ContainerConfig,
    pub message: Option<String>,
    pub source_date_epoch: Option<i64>,
    pub compression: Compression,
    pub tags: Vec<ImageRef>,
    /// The platform the files are for (`--platform`); this machine's by default.
    pub platform: Option<Platform>,
}

fn timestamp(source_date_epoch: Option<i64>) -> String {
    match source_date_epoch.and_then(|s| jiff::Timestamp::from_second(s).ok()) {
        Some(t) => t.to_string(),
        None => jiff::Timestamp::now().to_string(),
    }
}

/// Tells of the device nodes an unpacking left out (rootless: an ordinary user cannot
/// make them).
fn note_skipped_devices(extracted: &layers::ExtractStats, progress: &dyn Progress) {
    if !extracted.skipped_devices.is_empty() {
        progress.note(&format!(
            "left out {} device node(s), which rootless lade cannot make (a container could not open them either): {}",
            extracted.skipped_devices.len(),
            extracted.skipped_devices.join(", ")
        ));
    }
}

/// `docker import`: a root filesystem tarball (any compression) becomes a one-layer
/// image. The tar is unpacked (as untrusted) and written again deterministically, so
/// the same files give the same image with `SOURCE_DATE_EPOCH`.
pub fn import_rootfs(
    store: &Store,
    reader: &mut dyn Read,
    options: &ImportOptions,
    progress: &dyn Progress,
) -> Result<Image> {
    let _guard = store.content_guard()?;
    let staging = store.staging_dir("import")?;
    let mut counting = Counting {
        inner: reader,
        progress,
    };
    let mut tar = layers::decompressing_reader(&mut counting).at("import input")?;
    let extracted = layers::extract(&mut tar, staging.path(), &ExtractLimits::for_store(store))?;
    note_skipped_devices(&extracted, progress);
    let mut writer = LayerWriter::new(store, options.compression, options.source_date_epoch, None)?
        .remembering_contents();
    for walked in layers::dir_entries(staging.path(), false)? {
        writer.add_walked(&walked)?;
    }
    let layer = writer.finish_with_walked_snapshot(store, staging.path())?;
    let created = timestamp(options.source_date_epoch);
    let platform = options.platform.clone().unwrap_or_else(Platform::host);
    let config = ImageConfig {
        created: Some(created.clone()),
        author: None,
        architecture: platform.architecture,
        os: platform.os,
        variant: platform.variant,
        config: options.config.clone(),
        rootfs: RootFs {
            kind: "layers".into(),
            diff_ids: vec![layer.diff_id],
        },
        history: vec![History {
            created: Some(created),
            created_by: Some("lade import".into()),
            author: None,
            comment: options.message.clone(),
            empty_layer: None,
        }],
        extra: BTreeMap::new(),
    };
    staging.keep();
    let image = store.commit_image(
        &NewImage {
            config,
            config_bytes: None,
            layers: vec![layer],
        },
        &options.tags,
    )?;
    let id = image.id.to_string();
    crate::store::events::image_event(store, "import", &id, &id);
    Ok(image)
}

/// The archive formats `save` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveFormat {
    /// `docker save`'s format (`manifest.json`) with an OCI layout alongside;
    /// layers uncompressed, as Docker writes them, so every loader reads them.
    Docker,
    /// An OCI image layout; layers as stored.
    Oci,
}

/// An image to save, and the names to save it under.
pub struct SaveItem {
    pub image: Image,
    pub names: Vec<ImageRef>,
}

/// Writes a deterministic tar of `items` to `out`.
pub fn save(
    store: &Store,
    items: &[SaveItem],
    format: SaveFormat,
    out: &mut dyn Write,
    progress: &dyn Progress,
) -> Result<()> {
    let mut tar = tar::Builder::new(out);
    let mut written: BTreeSet<Digest> = BTreeSet::new();
    let mut index_entries: Vec<Descriptor> = Vec::new();
    let mut docker_manifest: Vec<DockerManifestEntry> = Vec::new();
    append_dir(&mut tar, "blobs/")?;
    append_dir(&mut tar, "blobs/sha256/")?;
    for item in items {
        let image = &item.image;
        let (manifest_digest, manifest_bytes, layer_paths) =
            append_image(store, &mut tar, &mut written, image, format, progress)?;
        let descriptor = |annotations: &[(&str, String)]| {
            let mut entry = Descriptor::new(
                media::OCI_MANIFEST,
                manifest_digest,
                manifest_bytes.len() as u64,
            );
            entry.annotations = annotations
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect();
            // The empty map was always written for an unnamed image: the bytes stay.
            if annotations.is_empty() {
                entry.extra.insert(
                    "annotations".into(),
                    serde_json::Value::Object(Default::default()),
                );
            }
            entry
        };
        if item.names.is_empty() {
            index_entries.push(descriptor(&[]));
        }
        for name in &item.names {
            let ref_name = match format {
                SaveFormat::Docker => name.tag().unwrap_or("latest").to_string(),
                SaveFormat::Oci => name.familiar(),
            };
            index_entries.push(descriptor(&[
                (CONTAINERD_NAME_ANNOTATION, name.normalized()),
                (REF_NAME_ANNOTATION, ref_name),
            ]));
        }
        docker_manifest.push(DockerManifestEntry {
            config: Some(blob_name(&image.id)),
            layers: Some(layer_paths),
            repo_tags: Some(item.names.iter().map(ImageRef::familiar).collect()),
        });
    }
    let index = ImageIndex::new(index_entries).to_canonical_json();
    append_file(&mut tar, INDEX_FILE, &index)?;
    if format == SaveFormat::Docker {
        append_file(
            &mut tar,
            "manifest.json",
            &serde_json::to_vec(&docker_manifest).unwrap_or_default(),
        )?;
    }
    append_file(&mut tar, OCI_LAYOUT_FILE, OCI_LAYOUT_CONTENT)?;
    tar.finish().at("archive")?;
    for item in items {
        let id = item.image.id.to_string();
        let name = item
            .names
            .first()
            .map_or_else(|| id.clone(), ImageRef::familiar);
        crate::store::events::image_event(store, "save", &name, &name);
    }
    Ok(())
}

/// Writes the blobs of `image` that `written` does not hold yet: its config, its
/// layers (as `format` keeps them) and its manifest. Returns the manifest's digest and
/// bytes, and the layers' paths in the archive.
fn append_image(
    store: &Store,
    tar: &mut tar::Builder<&mut dyn Write>,
    written: &mut BTreeSet<Digest>,
    image: &Image,
    format: SaveFormat,
    progress: &dyn Progress,
) -> Result<(Digest, Vec<u8>, Vec<String>)> {
    let config_bytes = store.read_blob(&image.id)?;
    if written.insert(image.id) {
        append_file(tar, &blob_name(&image.id), &config_bytes)?;
    }
    let mut layer_descriptors = Vec::new();
    let mut layer_paths = Vec::new();
    for layer in &image.layers {
        let (digest, size, media_type) = match format {
            SaveFormat::Oci => (layer.blob, layer.size, layer.media_type.clone()),
            SaveFormat::Docker => (
                layer.diff_id,
                layer_tar_size(store, layer)?,
                media::OCI_LAYER_TAR.to_string(),
            ),
        };
        if written.insert(digest) {
            append_layer(store, tar, layer, format, size, progress)?;
        }
        layer_descriptors.push(Descriptor::new(media_type, digest, size));
        layer_paths.push(blob_name(&digest));
    }
    let mut manifest = ImageManifest::new(
        Descriptor::new(media::OCI_CONFIG, image.id, config_bytes.len() as u64),
        layer_descriptors,
    );
    manifest.annotations = image.annotations.clone();
    let manifest_bytes = manifest.to_canonical_json();
    let manifest_digest = Digest::of(&manifest_bytes);
    if written.insert(manifest_digest) {
        append_file(tar, &blob_name(&manifest_digest), &manifest_bytes)?;
    }
    Ok((manifest_digest, manifest_bytes, layer_paths))
}

/// Writes a deterministic OCI layout of an image index to `out`, as BuildKit's oci
/// exporter writes a build for several platforms: each platform's image, the index of
/// them (one entry per platform), and `index.json` naming that index once per name.
pub fn save_index(
    store: &Store,
    entries: &[(Platform, Image)],
    names: &[ImageRef],
    out: &mut dyn Write,
    progress: &dyn Progress,
) -> Result<()> {
    let mut tar = tar::Builder::new(out);
    let mut written: BTreeSet<Digest> = BTreeSet::new();
    append_dir(&mut tar, "blobs/")?;
    append_dir(&mut tar, "blobs/sha256/")?;
    let mut manifests = Vec::new();
    for (platform, image) in entries {
        let (digest, bytes, _) = append_image(
            store,
            &mut tar,
            &mut written,
            image,
            SaveFormat::Oci,
            progress,
        )?;
        let mut entry = Descriptor::new(media::OCI_MANIFEST, digest, bytes.len() as u64);
        entry.platform = Some(platform.spec());
        manifests.push(entry);
    }
    let index_bytes = ImageIndex::new(manifests).to_canonical_json();
    let index_digest = Digest::of(&index_bytes);
    append_file(&mut tar, &blob_name(&index_digest), &index_bytes)?;
    let named = |name: Option<&ImageRef>| {
        let mut entry = Descriptor::new(media::OCI_INDEX, index_digest, index_bytes.len() as u64);
        if let Some(name) = name {
            entry.annotations = [
                (CONTAINERD_NAME_ANNOTATION.to_string(), name.normalized()),
                (REF_NAME_ANNOTATION.to_string(), name.familiar()),
            ]
            .into_iter()
            .collect();
        }
        entry
    };
    let top: Vec<Descriptor> = if names.is_empty() {
        vec![named(None)]
    } else {
        names.iter().map(|n| named(Some(n))).collect()
    };
    append_file(
        &mut tar,
        INDEX_FILE,
        &ImageIndex::new(top).to_canonical_json(),
    )?;
    append_file(&mut tar, OCI_LAYOUT_FILE, OCI_LAYOUT_CONTENT)?;
    tar.finish().at("archive")
}

fn header(kind: tar::EntryType, size: u64, mode: u32) -> tar::Header {
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(kind);
    header.set_size(size);
    header.set_mode(mode);
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    header
}

fn append_dir(tar: &mut tar::Builder<&mut dyn Write>, name: &str) -> Result<()> {
    let mut header = header(tar::EntryType::Directory, 0, 0o755);
    tar.append_data(&mut header, name, io::empty()).at(name)
}

fn append_file(tar: &mut tar::Builder<&mut dyn Write>, name: &str, bytes: &[u8]) -> Result<()> {
    let mut header = header(tar::EntryType::Regular, bytes.len() as u64, 0o644);
    tar.append_data(&mut header, name, bytes).at(name)
}

fn append_layer(
    store: &Store,
    tar: &mut tar::Builder<&mut dyn Write>,
    layer: &LayerInfo,
    format: SaveFormat,
    size: u64,
    progress: &dyn Progress,
) -> Result<()> {
    let mut verified = store.open_blob(&layer.blob)?;
    let blob = BufReader::with_capacity(1 << 20, &mut verified);
    let reader: Box<dyn Read + '_> = match format {
        SaveFormat::Oci => Box::new(blob),
        SaveFormat::Docker => {
            let compression = Compression::from_media_type(&layer.media_type)
                .ok_or_else(|| LayerError::UnknownMediaType(layer.media_type.clone()))?;
            compression.reader(blob).at(store.blob_path(&layer.blob))?
        }
    };
    let name = match format {
        SaveFormat::Oci => blob_name(&layer.blob),
        SaveFormat::Docker => blob_name(&layer.diff_id),
    };
    let mut header = header(tar::EntryType::Regular, size, 0o644);
    let counting = Counting {
        inner: reader,
        progress,
    };
    let appended = tar.append_data(&mut header, &name, counting.take(size));
    // A corrupt blob may first trip the decompressor: the digest says what it is.
    verified.finish()?;
    appended.at(&name)
}

/// The uncompressed size of a layer, counting it when the store does not know it.
fn layer_tar_size(store: &Store, layer: &LayerInfo) -> Result<u64> {
    if layer.tar_size > 0 {
        return Ok(layer.tar_size);
    }
    let compression = Compression::from_media_type(&layer.media_type)
        .ok_or_else(|| LayerError::UnknownMediaType(layer.media_type.clone()))?;
    let mut verified = store.open_blob(&layer.blob)?;
    let mut reader = compression
        .reader(BufReader::new(&mut verified))
        .at(store.blob_path(&layer.blob))?;
    let size = io::copy(&mut reader, &mut io::sink()).at(store.blob_path(&layer.blob))?;
    drop(reader);
    verified.finish()?;
    Ok(size)
}

/// An image `load` added, and the names it got.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub image: Image,
    pub names: Vec<String>,
}

/// Makes an archive from `reader` seekable and uncompressed: a plain tar file is used in
/// place; anything else is decompressed into the store's staging area.
pub fn open_input(
    store: &Store,
    path: Option<&Path>,
) -> Result<(File, Option<crate::store::Staging>)> {
    if let Some(path) = path {
        let mut file = File::open(path).at(path)?;
        let mut magic = [0u8; 6];
        let n = file.read(&mut magic).at(path)?;
        let compressed = crate::layers::compression_of(&magic[..n]).is_some();
        file.seek(SeekFrom::Start(0)).at(path)?;
        if !compressed {
            return Ok((file, None));
        }
        spool(store, Box::new(file))
    } else {
        spool(store, Box::new(io::stdin().lock()))
    }
}

fn spool(
    store: &Store,
    input: Box<dyn Read + '_>,
) -> Result<(File, Option<crate::store::Staging>)> {
    let staging = store.staging_dir("load")?;
    let path = staging.path().join("archive.tar");
    let mut out = File::create(&path).at(&path)?;
    let mut reader = layers::decompressing_reader(input).at("load input")?;
    io::copy(&mut reader, &mut out).at(&path)?;
    let file = File::open(&path).at(&path)?;
    Ok((file, Some(staging)))
}

/// Where a member's bytes are in the archive file.
#[derive(Debug, Clone, Copy)]
struct Member {
    offset: u64,
    size: u64,
}

/// Reads one member of the archive without moving any shared file offset.
struct SectionReader<'a> {
    file: &'a File,
    position: u64,
    end: u64,
}

impl Read for SectionReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = (self.end - self.position).min(buf.len() as u64) as usize;
        if left == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..left], self.position)?;
        self.position += n as u64;
        Ok(n)
    }
}

/// How a member name is looked up: leading `./` and `/` dropped, as tar writers differ.
fn member_name(name: &str) -> &str {
    let mut name = name;
    loop {
        let trimmed = name.trim_start_matches("./").trim_start_matches('/');
        if trimmed.len() == name.len() {
            return name;
        }
        name = trimmed;
    }
}

/// A link entry of the archive: Docker's `save` writes a layer it already wrote (two
/// images sharing it, or one image holding it twice) as a symlink
/// `<id>/layer.tar -> ../<other id>/layer.tar`; other writers use a hard link.
#[derive(Debug, Clone)]
enum MemberLink {
    /// A symlink's target, relative to the link's own directory.
    Symbolic(String),
    /// A hard link's target, a name from the archive's top.
    Hard(String),
}

/// The archive's regular files by name, and its links (followed, inside the archive
/// only, when a name is looked up). Extension headers are bounded; member data is not
/// read.
fn index_members(file: &File) -> Result<(HashMap<String, Member>, HashMap<String, MemberLink>)> {
    const MAX_NAME: u64 = 64 * 1024;
    let mut members = HashMap::new();
    let mut links = HashMap::new();
    let mut archive = tar::Archive::new(file);
    let mut long_name: Option<Vec<u8>> = None;
    let mut long_link: Option<Vec<u8>> = None;
    for entry in archive.entries_with_seek().at("archive")?.raw(true) {
        let mut entry = entry.map_err(|e| invalid("archive", layers::tar_error_text(&e)))?;
        let kind = entry.header().entry_type();
        if matches!(
            kind,
            tar::EntryType::GNULongName | tar::EntryType::GNULongLink | tar::EntryType::XHeader
        ) {
            if entry.size() > MAX_NAME {
                return Err(invalid("archive", "an extension header is too large"));
            }
            let mut data = Vec::new();
            entry.read_to_end(&mut data).at("archive")?;
            if kind == tar::EntryType::XHeader {
                for ext in tar::PaxExtensions::new(&data).flatten() {
                    match ext.key() {
                        Ok("path") => long_name = Some(ext.value_bytes().to_vec()),
                        Ok("linkpath") => long_link = Some(ext.value_bytes().to_vec()),
                        _ => {}
                    }
                }
            } else {
                while data.last() == Some(&0) {
                    data.pop();
                }
                if kind == tar::EntryType::GNULongName {
                    long_name = Some(data);
                } else {
                    long_link = Some(data);
                }
            }
            continue;
        }
        let name_bytes = long_name
            .take()
            .unwrap_or_else(|| entry.path_bytes().into_owned());
        let link_bytes = long_link
            .take()
            .or_else(|| entry.link_name_bytes().map(|l| l.into_owned()));
        let name = member_name(&String::from_utf8_lossy(&name_bytes)).to_string();
        let link = || String::from_utf8_lossy(link_bytes.as_deref().unwrap_or_default()).into();
        match kind {
            tar::EntryType::Symlink => {
                links.insert(name, MemberLink::Symbolic(link()));
            }
            tar::EntryType::Link => {
                links.insert(name, MemberLink::Hard(link()));
            }
            kind if kind.is_file() => {
                members.insert(
                    name,
                    Member {
                        offset: entry.raw_file_position(),
                        size: entry.size(),
                    },
                );
            }
            _ => {}
        }
    }
    Ok((members, links))
}

/// The archive member `target` names, `from` the directory `base` (components of a name
/// from the archive's top), or why it leads outside the archive.
fn resolve_in_archive(base: &[&str], target: &str) -> Option<String> {
    if target.starts_with('/') {
        return None;
    }
    let mut parts: Vec<&str> = base.to_vec();
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            part => parts.push(part),
        }
    }
    Some(parts.join("/"))
}

/// Links followed in a row before a name is refused: Docker writes one.
const MAX_LINK_HOPS: usize = 8;

struct ArchiveReader<'a> {
    file: &'a File,
    members: HashMap<String, Member>,
    links: HashMap<String, MemberLink>,
}

impl ArchiveReader<'_> {
    /// The regular file `name` is, following links to other members of the archive:
    /// never to a name outside it (absolute, or climbing above its top), in at most
    /// [`MAX_LINK_HOPS`] hops and never round a loop.
    fn resolve(&self, name: &str) -> Result<Member> {
        let mut current = member_name(name).to_string();
        let mut seen: Vec<String> = Vec::new();
        loop {
            if let Some(member) = self.members.get(&current) {
                return Ok(*member);
            }
            let Some(link) = self.links.get(&current) else {
                return Err(if seen.is_empty() {
                    invalid("archive", format!("it has no {name}"))
                } else {
                    invalid(
                        seen.last().map_or(name, String::as_str),
                        format!("it links to {current}, which the archive does not have"),
                    )
                });
            };
            if seen.contains(&current) {
                return Err(invalid(
                    &current,
                    format!("its links go round in a loop ({})", seen.join(" -> ")),
                ));
            }
            if seen.len() >= MAX_LINK_HOPS {
                return Err(invalid(
                    name,
                    format!("it is reached through more than {MAX_LINK_HOPS} links"),
                ));
            }
            let (base, target): (Vec<&str>, &str) = match link {
                MemberLink::Symbolic(target) => {
                    let mut dir: Vec<&str> = current.split('/').collect();
                    dir.pop();
                    (dir, target)
                }
                MemberLink::Hard(target) => (Vec::new(), target),
            };
            let Some(next) = resolve_in_archive(&base, target) else {
                return Err(invalid(
                    &current,
                    format!("it links to {target}, outside the archive"),
                ));
            };
            seen.push(current);
            current = next;
        }
    }

    fn member(&self, name: &str) -> Result<SectionReader<'_>> {
        let member = self.resolve(name)?;
        Ok(SectionReader {
            file: self.file,
            position: member.offset,
            end: member.offset + member.size,
        })
    }

    fn read_small(&self, name: &str) -> Result<Vec<u8>> {
        const MAX: u64 = 16 << 20;
        let mut data = Vec::new();
        self.member(name)?
            .take(MAX + 1)
            .read_to_end(&mut data)
            .at(name)?;
        if data.len() as u64 > MAX {
            return Err(invalid(name, "larger than a manifest or config can be"));
        }
        Ok(data)
    }

    /// A small member that must hash to `digest` (a manifest, an index, a config).
    fn read_verified(&self, name: &str, digest: &Digest) -> Result<Vec<u8>> {
        let bytes = self.read_small(name)?;
        let actual = Digest::of(&bytes);
        if actual != *digest {
            return Err(invalid(
                name,
                format!("its content hashes to {actual}, not to its digest {digest}"),
            ));
        }
        Ok(bytes)
    }

    fn has(&self, name: &str) -> bool {
        self.members.contains_key(name)
    }
}

/// One image found in an archive.
struct Found {
    config_path: String,
    layers: Vec<(String, Option<Digest>)>,
    names: Vec<String>,
}

/// `docker load`: adds every image of a docker-archive or OCI archive.
pub fn load(store: &Store, file: &File, progress: &dyn Progress) -> Result<Vec<Loaded>> {
    let _guard = store.content_guard()?;
    let (members, links) = index_members(file)?;
    let archive = ArchiveReader {
        file,
        members,
        links,
    };
    let found = if archive.has("manifest.json") {
        docker_archive_images(&archive)?
    } else if archive.has(INDEX_FILE) {
        oci_archive_images(&archive)?
    } else {
        return Err(invalid(
            "archive",
            "neither a docker-archive (manifest.json) nor an OCI archive (index.json)",
        ));
    };
    let mut loaded = Vec::new();
    for image in found {
        loaded.push(load_image(store, &archive, image, progress)?);
    }
    for image in &loaded {
        let id = image.image.id.to_string();
        let name = image.names.first().cloned().unwrap_or_else(|| id.clone());
        crate::store::events::image_event(store, "load", &name, &name);
    }
    Ok(loaded)
}

fn docker_archive_images(archive: &ArchiveReader<'_>) -> Result<Vec<Found>> {
    let manifest: Vec<DockerManifestEntry> =
        serde_json::from_slice(&archive.read_small("manifest.json")?)
            .map_err(|e| invalid("manifest.json", e.to_string()))?;
    manifest
        .into_iter()
        .map(|item| {
            let config_path = item
                .config
                .ok_or_else(|| invalid("manifest.json", "an image without Config"))?;
            let layers = item
                .layers
                .ok_or_else(|| invalid("manifest.json", "an image without Layers"))?
                .into_iter()
                .map(|path| (path, None))
                .collect();
            Ok(Found {
                config_path,
                layers,
                names: item.repo_tags.unwrap_or_default(),
            })
        })
        .collect()
}

fn oci_archive_images(archive: &ArchiveReader<'_>) -> Result<Vec<Found>> {
    let index = ImageIndex::from_slice(&archive.read_small(INDEX_FILE)?)
        .map_err(|e| invalid(INDEX_FILE, e.to_string()))?;
    let mut by_manifest: BTreeMap<String, Found> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    for descriptor in &index.manifests {
        let names: Vec<String> = [
            descriptor.annotation(CONTAINERD_NAME_ANNOTATION),
            descriptor
                .ref_name()
                .filter(|n| n.contains(':') || n.contains('/')),
        ]
        .into_iter()
        .flatten()
        .take(1)
        .map(str::to_string)
        .collect();
        let manifest_digest = pick_manifest(archive, descriptor)?;
        let key = manifest_digest.to_string();
        if let Some(found) = by_manifest.get_mut(&key) {
            found.names.extend(names);
            continue;
        }
        let manifest_bytes =
            archive.read_verified(&blob_name(&manifest_digest), &manifest_digest)?;
        let manifest = ImageManifest::from_slice(&manifest_bytes)
            .map_err(|e| invalid(blob_name(&manifest_digest), e.to_string()))?;
        let config = manifest.config.digest;
        let layers = manifest
            .layers
            .iter()
            .map(|l| (blob_name(&l.digest), Some(l.digest)))
            .collect();
        order.push(key.clone());
        by_manifest.insert(
            key,
            Found {
                config_path: blob_name(&config),
                layers,
                names,
            },
        );
    }
    Ok(order
        .into_iter()
        .filter_map(|k| by_manifest.remove(&k))
        .collect())
}

/// A manifest descriptor, or for an index (several platforms) the host's manifest.
/// Each nested index is checked against its digest, so no index can name itself.
fn pick_manifest(archive: &ArchiveReader<'_>, descriptor: &Descriptor) -> Result<Digest> {
    let digest = descriptor.digest;
    if !descriptor.is_index() {
        return Ok(digest);
    }
    let nested = ImageIndex::from_slice(&archive.read_verified(&blob_name(&digest), &digest)?)
        .map_err(|e| invalid(blob_name(&digest), e.to_string()))?;
    let host = Platform::host();
    nested
        .for_platform(&host, false)
        .map(|m| pick_manifest(archive, m))
        .unwrap_or_else(|| {
            Err(invalid(
                blob_name(&digest),
                format!("it has no image for {host}"),
            ))
        })
}

/// The digest a config's member name gives, when it gives one.
fn config_digest_from_name(name: &str) -> Option<Digest> {
    let file = name.rsplit('/').next()?;
    Digest::from_hex(file.strip_suffix(".json").unwrap_or(file)).ok()
}

fn load_image(
    store: &Store,
    archive: &ArchiveReader<'_>,
    found: Found,
    progress: &dyn Progress,
) -> Result<Loaded> {
    // A config is named by its digest in both formats (docker-archive: `<hex>.json` or
    // `blobs/sha256/<hex>`); the image id is that digest, so it must hold.
    let config_bytes = match config_digest_from_name(&found.config_path) {
        Some(digest) => archive.read_verified(&found.config_path, &digest)?,
        None => archive.read_small(&found.config_path)?,
    };
    let config: ImageConfig = serde_json::from_slice(&config_bytes)
        .map_err(|e| invalid(&found.config_path, e.to_string()))?;
    if config.rootfs.diff_ids.len() != found.layers.len() {
        return Err(invalid(
            &found.config_path,
            format!(
                "the config lists {} layers but the archive gives {}",
                config.rootfs.diff_ids.len(),
                found.layers.len()
            ),
        ));
    }
    let mut layers = Vec::new();
    for ((path, expected_blob), diff_id) in found.layers.iter().zip(&config.rootfs.diff_ids) {
        layers.push(load_layer(
            store,
            archive,
            path,
            expected_blob.as_ref(),
            diff_id,
            progress,
        )?);
    }
    let names: Vec<ImageRef> = found
        .names
        .iter()
        .map(|n| {
            n.parse::<ImageRef>()
                .map_err(|e| invalid("archive", e.to_string()))
        })
        .collect::<Result<_>>()?;
    let image = store.commit_image(
        &NewImage {
            config,
            config_bytes: Some(config_bytes),
            layers,
        },
        &names,
    )?;
    Ok(Loaded {
        image,
        names: names.iter().map(ImageRef::familiar).collect(),
    })
}

/// Copies one layer into the store while unpacking it into its snapshot, in one pass:
/// the stored bytes must hash to `expected_blob` (when known), the unpacked tar to
/// `diff_id`, or nothing is kept.
fn load_layer(
    store: &Store,
    archive: &ArchiveReader<'_>,
    path: &str,
    expected_blob: Option<&Digest>,
    diff_id: &Digest,
    progress: &dyn Progress,
) -> Result<LayerInfo> {
    let mut head = [0u8; 6];
    let n = archive.member(path)?.read(&mut head).at(path)?;
    // Kept as stored when a registry could serve it so; others are stored plain.
    let compression = match crate::layers::compression_of(&head[..n]) {
        Some(crate::layers::Compressed::Gzip) => Compression::Gzip,
        Some(crate::layers::Compressed::Zstd) => Compression::Zstd,
        _ => Compression::None,
    };
    let mut blob = store.blob_writer()?;
    let mut unpacked_hash = Sha256Writer::new(io::sink());
    let staging = if store.has_snapshot(diff_id) {
        None
    } else {
        Some(store.staging_dir("snapshot")?)
    };
    {
        let counting = Counting {
            inner: archive.member(path)?,
            progress,
        };
        let mut stored = TeeReader {
            inner: counting,
            copy: &mut blob,
        };
        {
            let decompressed = compression.reader(&mut stored).at(path)?;
            let mut unpacked = TeeReader {
                inner: decompressed,
                copy: &mut unpacked_hash,
            };
            if let Some(staging) = &staging {
                let extracted = layers::extract(
                    &mut unpacked,
                    staging.path(),
                    &ExtractLimits::for_store(store),
                )?;
                note_skipped_devices(&extracted, progress);
            }
            io::copy(&mut unpacked, &mut io::sink()).at(path)?;
        }
        io::copy(&mut stored, &mut io::sink()).at(path)?;
    }
    let (actual, tar_size, _) = unpacked_hash.finish();
    if actual != *diff_id {
        return Err(invalid(
            path,
            format!("it unpacks to {actual}, but the image config says {diff_id}"),
        ));
    }
    let (digest, size) = blob.commit(expected_blob)?;
    if let Some(staging) = staging {
        layers::commit_snapshot(store, staging.path(), diff_id)?;
        staging.keep();
    }
    Ok(LayerInfo {
        blob: digest,
        diff_id: *diff_id,
        media_type: compression.media_type().to_string(),
        size,
        tar_size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_json_keeps_its_bytes_and_reads_dockers_nulls() {
        let entry = DockerManifestEntry {
            config: Some("blobs/sha256/c".into()),
            layers: Some(vec!["blobs/sha256/l".into()]),
            repo_tags: Some(vec!["app:1".into()]),
        };
        assert_eq!(
            serde_json::to_string(&[entry]).unwrap(),
            r#"[{"Config":"blobs/sha256/c","Layers":["blobs/sha256/l"],"RepoTags":["app:1"]}]"#
        );
        let read: Vec<DockerManifestEntry> =
            serde_json::from_str(r#"[{"Config":"c","RepoTags":null,"Layers":[]}]"#).unwrap();
        assert_eq!(read[0].repo_tags, None);
        assert_eq!(read[0].layers.as_deref(), Some(&[][..]));
    }

    #[test]
    fn links_resolve_inside_the_archive_only() {
        assert_eq!(
            resolve_in_archive(&["b"], "../a/layer.tar").as_deref(),
            Some("a/layer.tar")
        );
        assert_eq!(
            resolve_in_archive(&["b"], "./layer.tar").as_deref(),
            Some("b/layer.tar")
        );
        assert_eq!(resolve_in_archive(&["b"], "../../etc/passwd"), None);
        assert_eq!(resolve_in_archive(&["b"], "/etc/passwd"), None);
        assert_eq!(resolve_in_archive(&[], "../x"), None);
        assert_eq!(member_name(".//./a/b"), "a/b");
    }
}
