//! A set's graph saved to disk, so that a process that reopens a store restores the graph
//! instead of building it again (building 1M vectors takes minutes on two cores).
//!
//! Two files per set, beside each other: `<base>.usearch`, the graph as usearch saves it, and
//! `<base>.keys`, which holds the graph's parameters, the length and CRC-32 of the graph file,
//! and each node's label, key and a fingerprint of its vector, and ends with the CRC-32 of the
//! rest. The graph file is written first, then the keys file, each to a temporary name renamed
//! into place: a crash between the two renames leaves a keys file whose graph CRC no longer
//! matches, and a mismatched, truncated or damaged pair is ignored (the graph is built instead).
//!
//! A saved graph is never trusted to match the vectors: restoring compares every key and
//! vector fingerprint with the vectors the caller loaded, removes the nodes whose key is gone
//! or whose vector changed, and inserts the new and changed vectors. A snapshot taken before
//! later writes, or written by another process, is therefore only slower to restore, never
//! wrong.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use memlayer_store::files::{create_private, restrict_to_owner};
use memlayer_store::{Error, ErrorKind, Result};
use usearch::Index;

use crate::AnnConfig;

/// 02: removed nodes stay in the graph under a buried label, and `removed` counts them.
const MAGIC: &[u8; 8] = b"MLANNG02";

/// How a loaded set came by its search structure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Origin {
    /// Below the threshold: no graph, searches scan exactly.
    Exact,
    /// The graph was built from the vectors (no usable saved graph).
    Built,
    /// The saved graph was restored and brought in line with the vectors.
    Restored {
        /// Nodes whose key and vector were unchanged.
        kept: usize,
        /// Vectors new or changed since the save, inserted.
        inserted: usize,
        /// Saved nodes whose key is gone or whose vector changed, removed.
        removed: usize,
    },
}

/// `base` with `suffix` appended to its file name.
pub(crate) fn with_suffix(base: &Path, suffix: &str) -> PathBuf {
    let mut name = base.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn io_error(what: &str, path: &Path, e: std::io::Error) -> Error {
    Error::new(
        ErrorKind::Unexpected,
        format!("saved graph: {what} {}", path.display()),
    )
    .with_source(e)
}

/// A 64-bit fingerprint of a vector's bits (two CRC-32s with different seeds).
pub(crate) fn fingerprint(v: &[f32], buf: &mut Vec<u8>) -> u64 {
    buf.clear();
    for x in v {
        buf.extend_from_slice(&x.to_le_bytes());
    }
    let mut a = crc32fast::Hasher::new();
    a.update(buf);
    let mut b = crc32fast::Hasher::new_with_initial(0x9E37_79B9);
    b.update(buf);
    (u64::from(a.finalize()) << 32) | u64::from(b.finalize())
}

/// The length and CRC-32 of a file, read in 1 MiB pieces.
fn crc_of_file(path: &Path) -> std::io::Result<(u64, u32)> {
    let mut file = File::open(path)?;
    let mut hasher = crc32fast::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut len = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        len += n as u64;
    }
    Ok((len, hasher.finalize()))
}

/// The parameters a saved graph must share with the set that restores it.
fn header(dim: usize, config: &AnnConfig) -> [u64; 4] {
    [
        dim as u64,
        config.connectivity as u64,
        config.expansion_add as u64,
        match config.quantization {
            crate::Quantization::F32 => 0,
            crate::Quantization::F16 => 1,
            crate::Quantization::I8 => 2,
        },
    ]
}

/// What a keys file says about its graph.
pub(crate) struct SavedKeys {
    pub(crate) next_label: u64,
    pub(crate) removed: u64,
    /// Key bytes to (label, vector fingerprint).
    pub(crate) nodes: HashMap<Vec<u8>, (u64, u64)>,
    /// How many nodes the graph holds.
    count: usize,
    graph_len: u64,
    graph_crc: u32,
}

/// One node of a graph being saved.
pub(crate) struct SavedNode<'a> {
    pub(crate) label: u64,
    pub(crate) fingerprint: u64,
    pub(crate) key: &'a [u8],
}

/// Writes `index` and its nodes under `base`: the graph file, then the keys file, each
/// through a temporary name.
pub(crate) fn write(
    base: &Path,
    index: &Index,
    dim: usize,
    config: &AnnConfig,
    next_label: u64,
    removed: u64,
    nodes: &[SavedNode<'_>],
) -> Result<()> {
    if let Some(dir) = base.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| io_error("creating the folder of", base, e))?;
        restrict_to_owner(dir).map_err(|e| io_error("restricting the folder of", base, e))?;
    }
    let graph = with_suffix(base, ".usearch");
    let graph_tmp = with_suffix(base, ".usearch.tmp");
    let keys = with_suffix(base, ".keys");
    let keys_tmp = with_suffix(base, ".keys.tmp");
    let graph_tmp_str = graph_tmp.to_str().ok_or_else(|| {
        Error::new(
            ErrorKind::ConfigInvalid,
            format!("saved graph: path {} is not UTF-8", graph_tmp.display()),
        )
    })?;
    index
        .save(graph_tmp_str)
        .map_err(|e| crate::graph::index_error("save", e))?;
    restrict_to_owner(&graph_tmp).map_err(|e| io_error("restricting", &graph_tmp, e))?;
    let (graph_len, graph_crc) =
        crc_of_file(&graph_tmp).map_err(|e| io_error("reading back", &graph_tmp, e))?;

    let mut out = Vec::with_capacity(64 + nodes.iter().map(|n| 20 + n.key.len()).sum::<usize>());
    out.extend_from_slice(MAGIC);
    for h in header(dim, config) {
        out.extend_from_slice(&h.to_le_bytes());
    }
    out.extend_from_slice(&graph_len.to_le_bytes());
    out.extend_from_slice(&graph_crc.to_le_bytes());
    out.extend_from_slice(&next_label.to_le_bytes());
    out.extend_from_slice(&removed.to_le_bytes());
    out.extend_from_slice(&(nodes.len() as u64).to_le_bytes());
    for node in nodes {
        out.extend_from_slice(&node.label.to_le_bytes());
        out.extend_from_slice(&node.fingerprint.to_le_bytes());
        out.extend_from_slice(&(node.key.len() as u32).to_le_bytes());
        out.extend_from_slice(node.key);
    }
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    let mut file = create_private(&keys_tmp).map_err(|e| io_error("creating", &keys_tmp, e))?;
    file.write_all(&out)
        .and_then(|()| file.sync_all())
        .map_err(|e| io_error("writing", &keys_tmp, e))?;
    std::fs::rename(&graph_tmp, &graph).map_err(|e| io_error("renaming", &graph_tmp, e))?;
    std::fs::rename(&keys_tmp, &keys).map_err(|e| io_error("renaming", &keys_tmp, e))?;
    Ok(())
}

/// Removes the graph saved under `base`, if there is one.
pub(crate) fn remove(base: &Path) -> Result<()> {
    for suffix in [".keys", ".usearch"] {
        let path = with_suffix(base, suffix);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(io_error("removing", &path, e));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Reads little-endian fields off a byte slice; `None` past its end.
struct Fields<'a>(&'a [u8]);

impl<'a> Fields<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
}

/// The keys file under `base`, if it is whole and was saved with these parameters.
pub(crate) fn read_keys(base: &Path, dim: usize, config: &AnnConfig) -> Option<SavedKeys> {
    let bytes = std::fs::read(with_suffix(base, ".keys")).ok()?;
    let (body, crc) = bytes.split_at(bytes.len().checked_sub(4)?);
    if crc32fast::hash(body).to_le_bytes() != crc {
        return None;
    }
    let mut f = Fields(body);
    if f.take(8)? != MAGIC {
        return None;
    }
    for want in header(dim, config) {
        if f.u64()? != want {
            return None;
        }
    }
    let graph_len = f.u64()?;
    let graph_crc = f.u32()?;
    let next_label = f.u64()?;
    let removed = f.u64()?;
    let count = usize::try_from(f.u64()?).ok()?;
    let mut nodes = HashMap::with_capacity(count.min(body.len() / 20));
    let mut labels = std::collections::HashSet::with_capacity(count.min(body.len() / 20));
    for _ in 0..count {
        let label = f.u64()?;
        let fingerprint = f.u64()?;
        let len = f.u32()? as usize;
        let key = f.take(len)?.to_vec();
        if label >= next_label
            || !labels.insert(label)
            || nodes.insert(key, (label, fingerprint)).is_some()
        {
            return None;
        }
    }
    if !f.0.is_empty() {
        return None;
    }
    Some(SavedKeys {
        next_label,
        removed,
        nodes,
        count,
        graph_len,
        graph_crc,
    })
}

impl SavedKeys {
    /// Loads the graph file under `base` into `index` (made with the set's options), if the
    /// file is the one these keys were saved with and holds as many nodes as they list, live
    /// and buried.
    pub(crate) fn load_graph(&self, base: &Path, index: &Index) -> Option<()> {
        let graph = with_suffix(base, ".usearch");
        let (len, crc) = crc_of_file(&graph).ok()?;
        if (len, crc) != (self.graph_len, self.graph_crc) {
            return None;
        }
        index.load(graph.to_str()?).ok()?;
        let buried = usize::try_from(self.removed).ok()?;
        (index.size() == self.count.checked_add(buried)?).then_some(())
    }
}
