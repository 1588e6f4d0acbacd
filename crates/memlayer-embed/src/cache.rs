use std::collections::{HashMap, VecDeque};
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use memlayer_store::{Error, ErrorKind, Result};
use sha2::{Digest, Sha256};

use crate::{DynEmbedder, Embedder};

type Key = [u8; 32];

/// The cache key of a text under a model: SHA-256 of `model NUL text`.
pub fn cache_key(model: &str, text: &str) -> Key {
    let mut h = Sha256::new();
    h.update(model.as_bytes());
    h.update([0]);
    h.update(text.as_bytes());
    h.finalize().into()
}

struct Entries {
    map: HashMap<Key, Vec<f32>>,
    order: VecDeque<Key>,
    file: Option<std::fs::File>,
}

/// Wraps an embedder with a cache keyed by model and content hash, so the same text is never
/// embedded twice by the same model: in memory (bounded, oldest evicted first) and optionally
/// in an append-only file that survives restarts.
pub struct CachedEmbedder {
    inner: DynEmbedder,
    capacity: usize,
    entries: Mutex<Entries>,
    path: Option<PathBuf>,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl std::fmt::Debug for CachedEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedEmbedder")
            .field("inner", &self.inner)
            .field("capacity", &self.capacity)
            .field("path", &self.path)
            .finish()
    }
}

fn lock(m: &Mutex<Entries>) -> std::sync::MutexGuard<'_, Entries> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn io_error(path: &Path, e: std::io::Error) -> Error {
    Error::new(
        ErrorKind::Unavailable,
        format!("embedding cache file {}", path.display()),
    )
    .set_temporary(false)
    .with_source(e)
}

impl CachedEmbedder {
    /// An in-memory cache of at most `capacity` vectors.
    pub fn new(inner: DynEmbedder, capacity: usize) -> Self {
        CachedEmbedder {
            inner,
            capacity: capacity.max(1),
            entries: Mutex::new(Entries {
                map: HashMap::new(),
                order: VecDeque::new(),
                file: None,
            }),
            path: None,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// A cache that also persists to `path` (created if missing); entries of other models in
    /// the same file are kept but never returned for this model.
    ///
    /// # Errors
    /// `Unavailable` when the file cannot be opened.
    pub fn with_file(inner: DynEmbedder, capacity: usize, path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| io_error(&path, e))?;
        }
        let mut cache = CachedEmbedder::new(inner, capacity);
        let mut loaded: Vec<(Key, Vec<f32>)> = Vec::new();
        if let Ok(f) = std::fs::File::open(&path) {
            let mut r = BufReader::new(f);
            loop {
                let mut key = [0u8; 32];
                let mut dim = [0u8; 4];
                if r.read_exact(&mut key).is_err() || r.read_exact(&mut dim).is_err() {
                    break;
                }
                let dim = u32::from_le_bytes(dim) as usize;
                let mut raw = vec![0u8; dim * 4];
                // A torn last record (the process died mid-append) is simply ignored.
                if r.read_exact(&mut raw).is_err() {
                    break;
                }
                let v = raw
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect();
                loaded.push((key, v));
            }
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| io_error(&path, e))?;
        {
            let mut entries = lock(&cache.entries);
            entries.file = Some(file);
            for (k, v) in loaded {
                insert(&mut entries, cache.capacity, k, v);
            }
        }
        cache.path = Some(path);
        Ok(cache)
    }

    /// The wrapped embedder (to time real, uncached embedding).
    pub fn inner(&self) -> &DynEmbedder {
        &self.inner
    }

    /// How many vectors came from the cache and how many were computed.
    pub fn stats(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }
}

fn insert(entries: &mut Entries, capacity: usize, key: Key, v: Vec<f32>) {
    if entries.map.insert(key, v).is_none() {
        entries.order.push_back(key);
    }
    while entries.map.len() > capacity {
        match entries.order.pop_front() {
            Some(old) => {
                entries.map.remove(&old);
            }
            None => break,
        }
    }
}

#[async_trait]
impl Embedder for CachedEmbedder {
    fn model_id(&self) -> &str {
        self.inner.model_id()
    }

    fn dimension(&self) -> usize {
        self.inner.dimension()
    }

    fn max_batch(&self) -> usize {
        self.inner.max_batch()
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        let model = self.inner.model_id().to_owned();
        let keys: Vec<Key> = texts.iter().map(|t| cache_key(&model, t)).collect();
        let mut out: Vec<Option<Vec<f32>>> = {
            let entries = lock(&self.entries);
            keys.iter().map(|k| entries.map.get(k).cloned()).collect()
        };
        // Texts to compute: each distinct missing text once, even if repeated in the batch.
        let mut todo: Vec<usize> = Vec::new();
        let mut first_of: HashMap<Key, usize> = HashMap::new();
        for (i, k) in keys.iter().enumerate() {
            if out[i].is_none() && !first_of.contains_key(k) {
                first_of.insert(*k, i);
                todo.push(i);
            }
        }
        self.hits
            .fetch_add((texts.len() - todo.len()) as u64, Ordering::Relaxed);
        self.misses.fetch_add(todo.len() as u64, Ordering::Relaxed);
        for chunk in todo.chunks(self.inner.max_batch().max(1)) {
            let batch: Vec<String> = chunk.iter().map(|&i| texts[i].clone()).collect();
            let vectors = self.inner.embed(&batch).await?;
            if vectors.len() != batch.len() {
                return Err(Error::new(
                    ErrorKind::Unexpected,
                    format!(
                        "embedder returned {} vectors for {} texts",
                        vectors.len(),
                        batch.len()
                    ),
                ));
            }
            let mut entries = lock(&self.entries);
            let mut record = Vec::new();
            for (&i, v) in chunk.iter().zip(vectors) {
                if entries.file.is_some() {
                    record.extend_from_slice(&keys[i]);
                    record.extend_from_slice(&(v.len() as u32).to_le_bytes());
                    record.extend(v.iter().flat_map(|x| x.to_le_bytes()));
                }
                insert(&mut entries, self.capacity, keys[i], v.clone());
                out[i] = Some(v);
            }
            if let (Some(f), Some(path)) = (entries.file.as_mut(), &self.path) {
                f.write_all(&record).map_err(|e| io_error(path, e))?;
            }
        }
        keys.iter()
            .enumerate()
            .map(|(i, k)| match &out[i] {
                Some(v) => Ok(v.clone()),
                None => first_of
                    .get(k)
                    .and_then(|&j| out[j].clone())
                    .ok_or_else(|| Error::new(ErrorKind::Unexpected, "cache lost a vector")),
            })
            .collect()
    }
}
