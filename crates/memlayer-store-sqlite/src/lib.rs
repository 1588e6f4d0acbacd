#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod db;
mod error;
mod index;
mod schema;
mod sql;
mod vec_ext;
mod vectors;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use async_trait::async_trait;
use memlayer_store::lifecycle::{decayed, merge_upsert, reassign_conflict, reinforce_item};
use memlayer_store::limits::{self, check_namespace, check_pin, check_query_dim};
use memlayer_store::search::{Ranked, SearchLegs, leg_hit, run_list, run_search};
use memlayer_store::types::{MemoryItem, Timestamp};
use memlayer_store::{
    Capabilities, ClearRequest, CountOptions, Cursor, EmbeddingPin, Error, ErrorKind, ExpiredItem,
    Filter, ListRequest, MemoryStore, Order, Page, RankedBy, Result, SearchHit, SearchRequest,
    SearchResults,
};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params, params_from_iter};

pub use db::Synchronous;
use error::map_sqlite;
use index::Change;
pub use memlayer_ann::{AnnConfig, Origin, Quantization, ScanSharing};
use sql::{ITEM_COLUMNS, Query, STORED_COLUMNS, read_item};

const BACKEND: &str = "sqlite";

/// How to open a SQLite store.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct SqliteConfig {
    /// A file path, or `:memory:` for a private in-memory database.
    pub path: String,
    /// Reader connections besides the writer (file databases only): how many reads run at
    /// once. The default, 8, is more than the cores because concurrent exact vector searches
    /// of a namespace share passes over its vectors (up to eight queries a pass), and a search
    /// holds its reader while it waits for one: with 4 readers the passes ran about one query
    /// each under load. More readers than that add no throughput here since the exact scan
    /// reads sketches (`memlayer-ann`), and each one more in flight lengthens the tail
    /// latency of every search on the same cores (`docs/benchmarks.md`).
    pub readers: usize,
    /// How long a connection waits for a lock before `Unavailable`.
    pub busy_timeout: Duration,
    /// Sync level of commits.
    pub synchronous: Synchronous,
    /// If set, opening a store pinned to another model or dimension fails fast.
    pub expected_pin: Option<EmbeddingPin>,
    /// The in-process vector index: namespaces of `ann.threshold` vectors or more are
    /// searched through an HNSW graph, smaller ones by an exact scan. Its `scan_sharing` is
    /// always [`ScanSharing::Gather`] here, as searches run on the blocking pool.
    pub ann: AnnConfig,
    /// Whether namespaces' HNSW graphs are saved beside a database file (in `<path>.graphs/`)
    /// after they are built and at [`close`](memlayer_store::MemoryStore::close), so that the
    /// next process to search restores them instead of building them again. A saved graph is
    /// checked against the file's vectors when restored; a stale or damaged one costs time,
    /// never results. On by default; `:memory:` databases never save.
    pub save_graphs: bool,
    /// About how many bytes the in-process indexes of all namespaces may take: past it, the
    /// least recently searched namespaces' indexes are dropped (and loaded again from the file
    /// when next searched). The size of each is estimated from its item count and dimension.
    pub index_cache_bytes: usize,
}

impl SqliteConfig {
    /// Defaults for `path`: 8 readers, 5 s busy timeout, full sync.
    pub fn new(path: impl Into<String>) -> Self {
        SqliteConfig {
            path: path.into(),
            readers: 8,
            busy_timeout: Duration::from_secs(5),
            synchronous: Synchronous::Full,
            expected_pin: None,
            ann: AnnConfig::default(),
            save_graphs: true,
            index_cache_bytes: 2 << 30,
        }
    }

    /// Sets the budget of the in-process indexes, in bytes.
    pub fn index_cache_bytes(mut self, bytes: usize) -> Self {
        self.index_cache_bytes = bytes;
        self
    }

    /// Sets whether HNSW graphs are saved beside the file and restored from there.
    pub fn save_graphs(mut self, on: bool) -> Self {
        self.save_graphs = on;
        self
    }

    /// Sets the in-process vector index's configuration.
    pub fn ann(mut self, ann: AnnConfig) -> Self {
        self.ann = ann;
        self
    }

    /// Sets the number of reader connections.
    pub fn readers(mut self, n: usize) -> Self {
        self.readers = n;
        self
    }

    /// Sets the sync level.
    pub fn synchronous(mut self, s: Synchronous) -> Self {
        self.synchronous = s;
        self
    }

    /// Requires this embedding pin (or none yet) when opening.
    pub fn expect_pin(mut self, model: impl Into<String>, dim: usize) -> Self {
        self.expected_pin = Some(EmbeddingPin {
            model: model.into(),
            dim,
        });
        self
    }
}

/// A memory store in one SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    db: Arc<db::Db>,
    closed: Arc<AtomicBool>,
    index: Arc<index::SearchIndex>,
}

fn tag(e: Error, operation: &'static str) -> Error {
    e.with_backend(BACKEND).with_operation(operation)
}

/// `SELECT` head for items with their vectors (`NULL` where an item has none).
fn select_items() -> String {
    format!("SELECT {ITEM_COLUMNS}, i.embedding FROM items i")
}

fn query_items(conn: &Connection, sql: &str, q: &Query) -> Result<Vec<MemoryItem>> {
    let mut stmt = conn.prepare_cached(sql).map_err(map_sqlite)?;
    let mut rows = stmt
        .query(params_from_iter(q.params.iter()))
        .map_err(map_sqlite)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(map_sqlite)? {
        out.push(read_item(row)?);
    }
    Ok(out)
}

/// The row of `id` in `namespace`, live or soft-deleted.
fn get_row(
    conn: &Connection,
    namespace: &str,
    id: &str,
    with_vector: bool,
) -> Result<Option<MemoryItem>> {
    let vector = if with_vector { "i.embedding" } else { "NULL" };
    let sql = format!(
        "SELECT {ITEM_COLUMNS}, {vector} FROM items i WHERE i.namespace = ?1 AND i.id = ?2"
    );
    let mut stmt = conn.prepare_cached(&sql).map_err(map_sqlite)?;
    let row = stmt
        .query_row([namespace, id], |r| Ok(read_item(r)))
        .optional()
        .map_err(map_sqlite)?;
    row.transpose()
}

/// `INSERT` of every stored column, in [`sql::item_values`]'s order.
static INSERT_ITEM: LazyLock<String> = LazyLock::new(|| {
    let cols = STORED_COLUMNS.replace("i.", "");
    let marks = (1..=STORED_COLUMNS.split(", ").count())
        .map(|i| format!("?{i}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!("INSERT INTO items ({cols}) VALUES ({marks})")
});

/// `UPDATE` of the row named by its id (`?1`) and namespace (`?2`), every stored column in
/// [`sql::item_values`]'s order.
static UPDATE_ITEM: LazyLock<String> = LazyLock::new(|| {
    let sets = STORED_COLUMNS
        .split(", ")
        .enumerate()
        .skip(1)
        .map(|(i, c)| format!("{} = ?{}", c.trim().trim_start_matches("i."), i + 1))
        .collect::<Vec<_>>()
        .join(", ");
    format!("UPDATE items SET {sets} WHERE id = ?1 AND namespace = ?2")
});

/// Writes one merged row and its vector inside the caller's transaction, noting the change
/// for the in-process indexes.
fn write_row(
    conn: &Connection,
    item: &MemoryItem,
    existed: bool,
    pin: &mut Option<EmbeddingPin>,
    changes: &mut Vec<Change>,
) -> Result<()> {
    if let Some(e) = &item.embedding {
        match pin {
            Some(p) => check_pin(p, &e.model, e.dim())?,
            None => {
                let new_pin = EmbeddingPin {
                    model: e.model.clone(),
                    dim: e.dim(),
                };
                schema::create_pin(conn, &new_pin)?;
                *pin = Some(new_pin);
            }
        }
    }
    let values = sql::item_values(item)?;
    let sql = if existed {
        &*UPDATE_ITEM
    } else {
        &*INSERT_ITEM
    };
    conn.prepare_cached(sql)
        .map_err(map_sqlite)?
        .execute(params_from_iter(values.iter()))
        .map_err(map_sqlite)?;
    changes.push(Change::Put {
        namespace: item.namespace.clone(),
        id: item.id.clone(),
        content: item.content.clone(),
        vector: item.embedding.as_ref().map(|e| e.vector.clone()),
    });
    Ok(())
}

/// Deletes rows (and their vectors) selected by `where_sql`; returns how many, noting each
/// for the in-process indexes.
fn delete_rows(
    conn: &Connection,
    where_sql: &str,
    params: &[rusqlite::types::Value],
    changes: &mut Vec<Change>,
) -> Result<u64> {
    let mut stmt = conn
        .prepare(&format!(
            "DELETE FROM items WHERE rowid IN (SELECT i.rowid FROM items i {where_sql}) \
             RETURNING namespace, id"
        ))
        .map_err(map_sqlite)?;
    let mut rows = stmt
        .query(params_from_iter(params.iter()))
        .map_err(map_sqlite)?;
    let mut n = 0;
    while let Some(row) = rows.next().map_err(map_sqlite)? {
        n += 1;
        changes.push(Change::Removed {
            namespace: row.get(0).map_err(map_sqlite)?,
            id: row.get(1).map_err(map_sqlite)?,
        });
    }
    Ok(n)
}

/// Which rows of a namespace [`rows_by_id`] reads.
#[derive(Clone, Copy)]
enum ById<'a> {
    /// Search hits: rows of this namespace, with their vectors.
    Hits(&'a str),
    /// The rows a batch replaces: rows of this namespace, without vectors.
    Replaced(&'a str),
}

/// Rows by id, 512 ids per query. Hits are the second phase of a search, which ranks on ids
/// and scores alone and reads whole rows only for the hits it returns.
fn rows_by_id(
    conn: &Connection,
    which: ById<'_>,
    ids: &[String],
) -> Result<HashMap<String, MemoryItem>> {
    let mut out = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(512) {
        let (sql, q) = rows_by_id_query(which, chunk);
        for item in query_items(conn, &sql, &q)? {
            out.insert(item.id.clone(), item);
        }
    }
    Ok(out)
}

fn rows_by_id_query(which: ById<'_>, ids: &[String]) -> (String, Query) {
    let mut q = Query::default();
    let list = q.bind_list(ids);
    // Point reads on the (namespace, id) key: one per id, never a walk of the namespace.
    let sql = match which {
        ById::Hits(namespace) => {
            let ns = q.bind(namespace.to_owned());
            format!(
                "{} WHERE i.namespace = {ns} AND i.id IN ({list})",
                select_items()
            )
        }
        ById::Replaced(namespace) => {
            let ns = q.bind(namespace.to_owned());
            format!(
                "SELECT {ITEM_COLUMNS}, NULL FROM items i WHERE i.namespace = {ns} AND i.id IN ({list})"
            )
        }
    };
    (sql, q)
}

/// `n thing` or `n things`.
fn plural(n: usize, thing: &str) -> String {
    if n == 1 {
        format!("1 {thing}")
    } else {
        format!("{n} {thing}s")
    }
}

fn bump_updated(old: Timestamp) -> Timestamp {
    Timestamp::now().max(Timestamp::from_millis(old.as_millis().saturating_add(1)))
}

impl SqliteStore {
    /// Opens (creating if needed) the store at `path`; `:memory:` gives a private in-memory one.
    ///
    /// # Errors
    /// `Unavailable` when the file cannot be opened, `ConfigInvalid` when it is not a memlayer
    /// database or comes from a newer version.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self> {
        SqliteStore::open_with(SqliteConfig::new(path.as_ref().to_string_lossy())).await
    }

    /// A private in-memory store.
    ///
    /// # Errors
    /// Only if SQLite cannot start.
    pub async fn open_in_memory() -> Result<Self> {
        SqliteStore::open_with(SqliteConfig::new(":memory:")).await
    }

    /// Opens with a full configuration.
    ///
    /// # Errors
    /// As [`SqliteStore::open`], and `ConfigInvalid` when the file is pinned to another
    /// embedding model or dimension than `expected_pin`.
    pub async fn open_with(config: SqliteConfig) -> Result<Self> {
        let path = (config.path != ":memory:").then(|| config.path.clone());
        let graphs = path
            .as_ref()
            .filter(|_| config.save_graphs)
            .map(|p| std::path::PathBuf::from(format!("{p}.graphs")));
        let expected = config.expected_pin.clone();
        let db = db::Db::open(
            path,
            config.readers,
            config.busy_timeout,
            config.synchronous,
            move |conn| {
                schema::migrate(conn)?;
                if let (Some(want), Some(have)) = (&expected, schema::load_pin(conn)?)
                    && *want != have {
                        return Err(Error::new(
                            ErrorKind::ConfigInvalid,
                            format!(
                                "the store is pinned to model {:?} with dimension {}, but {:?} with dimension {} was expected",
                                have.model, have.dim, want.model, want.dim
                            ),
                        ));
                    }
                Ok(())
            },
        )
        .await
        .map_err(|e| tag(e, "open"))?;
        Ok(SqliteStore {
            db: Arc::new(db),
            closed: Arc::new(AtomicBool::new(false)),
            // Searches run on the blocking pool, holding a reader, so exact scans gather.
            index: Arc::new(index::SearchIndex::new(
                config.ann.with_scan_sharing(ScanSharing::Gather),
                graphs,
                config.index_cache_bytes,
            )),
        })
    }

    /// How the vector index of `namespace` was last loaded in this process: exact (below the
    /// ANN threshold), its graph built, or restored from the saved graph; `None` before the
    /// namespace's first vector search.
    pub fn vector_index_origin(&self, namespace: &str) -> Option<Origin> {
        self.index.origin(namespace)
    }

    /// How many namespaces have their in-process indexes in memory: (vector sets, keyword
    /// indexes). Searching a namespace without items loads none.
    pub fn loaded_indexes(&self) -> (usize, usize) {
        self.index.loaded()
    }

    fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::new(ErrorKind::Unavailable, "the store is closed")
                .with_backend(BACKEND)
                .set_temporary(false));
        }
        Ok(())
    }

    async fn read<T: Send + 'static>(
        &self,
        op: &'static str,
        f: impl FnOnce(&Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.check_open().map_err(|e| tag(e, op))?;
        self.db.read(f).await.map_err(|e| tag(e, op))
    }

    /// Runs `f` in one immediate transaction on the writer; it commits only if `f` succeeds.
    async fn write_tx<T: Send + 'static>(
        &self,
        op: &'static str,
        f: impl FnOnce(&Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.check_open().map_err(|e| tag(e, op))?;
        self.db
            .write(move |conn| {
                let tx = conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(map_sqlite)?;
                let out = f(&tx)?;
                tx.commit().map_err(map_sqlite)?;
                Ok(out)
            })
            .await
            .map_err(|e| tag(e, op))
    }

    /// As [`SqliteStore::write_tx`], for writes that add, remove or rewrite rows or move them
    /// between namespaces: the changes `f` notes bump the index generation in the same
    /// transaction and reach the in-process indexes under their write lock, taken before the
    /// commit.
    async fn write_indexed_tx<T: Send + 'static>(
        &self,
        op: &'static str,
        f: impl FnOnce(&Connection, &mut Vec<Change>) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.check_open().map_err(|e| tag(e, op))?;
        let cache = self.index.clone();
        self.db
            .write(move |conn| {
                let tx = conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(map_sqlite)?;
                let mut changes = Vec::new();
                let out = f(&tx, &mut changes)?;
                if changes.is_empty() {
                    tx.commit().map_err(map_sqlite)?;
                    return Ok(out);
                }
                let generation = index::bump_generation(&tx)?;
                let pending = cache.pending();
                tx.commit().map_err(map_sqlite)?;
                pending.apply(generation, changes);
                Ok(out)
            })
            .await
            .map_err(|e| tag(e, op))
    }
}

#[async_trait]
impl SearchLegs for SqliteStore {
    async fn page(
        &self,
        namespace: &str,
        request: &ListRequest,
        cursor: Option<Cursor>,
        offset: usize,
    ) -> Result<(Vec<MemoryItem>, Option<String>)> {
        self.list_page(namespace, request.clone(), cursor, offset)
            .await
    }

    async fn keyword_leg(
        &self,
        namespace: &str,
        _text: &str,
        terms: &[String],
        filter: &Filter,
        k: usize,
    ) -> Result<Vec<SearchHit>> {
        let (namespace, terms, filter) = (namespace.to_owned(), terms.to_vec(), filter.clone());
        let cache = self.index.clone();
        self.read("search", move |conn| {
            let mut rows = HashMap::new();
            let ranked = rank_keyword(
                &cache,
                conn,
                &namespace,
                &terms,
                &filter,
                k,
                Some(&mut rows),
            )?;
            hits_of(conn, &namespace, ranked, RankedBy::Keyword, rows)
        })
        .await
    }

    async fn vector_leg(
        &self,
        namespace: &str,
        vector: &[f32],
        filter: &Filter,
        k: usize,
    ) -> Result<Vec<SearchHit>> {
        let (namespace, vector, filter) = (namespace.to_owned(), vector.to_vec(), filter.clone());
        let cache = self.index.clone();
        self.read("search", move |conn| {
            let mut rows = HashMap::new();
            let ranked = rank_vector(
                &cache,
                conn,
                &namespace,
                &vector,
                &filter,
                k,
                Some(&mut rows),
            )?;
            hits_of(conn, &namespace, ranked, RankedBy::Vector, rows)
        })
        .await
    }

    async fn keyword_ranked(
        &self,
        namespace: &str,
        _text: &str,
        terms: &[String],
        filter: &Filter,
        k: usize,
    ) -> Result<Vec<Ranked>> {
        let (namespace, terms, filter) = (namespace.to_owned(), terms.to_vec(), filter.clone());
        let cache = self.index.clone();
        self.read("search", move |conn| {
            rank_keyword(&cache, conn, &namespace, &terms, &filter, k, None).map(without_items)
        })
        .await
    }

    async fn vector_ranked(
        &self,
        namespace: &str,
        vector: &[f32],
        filter: &Filter,
        k: usize,
    ) -> Result<Vec<Ranked>> {
        let (namespace, vector, filter) = (namespace.to_owned(), vector.to_vec(), filter.clone());
        let cache = self.index.clone();
        self.read("search", move |conn| {
            rank_vector(&cache, conn, &namespace, &vector, &filter, k, None).map(without_items)
        })
        .await
    }

    async fn items_by_id(
        &self,
        namespace: &str,
        ids: &[String],
    ) -> Result<HashMap<String, MemoryItem>> {
        let namespace = namespace.to_owned();
        let ids = ids.to_vec();
        self.read("search", move |conn| {
            rows_by_id(conn, ById::Hits(&namespace), &ids)
        })
        .await
    }
}

/// A ranking for hybrid search's pool: rows are read only for the page it returns.
fn without_items(ranked: Vec<(f32, String)>) -> Vec<Ranked> {
    ranked
        .into_iter()
        .map(|(score, id)| Ranked {
            score,
            id,
            item: None,
        })
        .collect()
}

/// The keyword leg's (score, id) ranking, through the in-process BM25 index.
fn rank_keyword(
    cache: &index::SearchIndex,
    conn: &Connection,
    namespace: &str,
    terms: &[String],
    filter: &Filter,
    k: usize,
    rows: Option<&mut HashMap<String, MemoryItem>>,
) -> Result<Vec<(f32, String)>> {
    if terms.is_empty() {
        return Ok(Vec::new());
    }
    let seen = index::generation(conn)?;
    cache.keyword(conn, seen, namespace, terms, filter, k, rows)
}

/// The vector leg's (score, id) ranking, through the in-process vector set.
fn rank_vector(
    cache: &index::SearchIndex,
    conn: &Connection,
    namespace: &str,
    vector: &[f32],
    filter: &Filter,
    k: usize,
    rows: Option<&mut HashMap<String, MemoryItem>>,
) -> Result<Vec<(f32, String)>> {
    let Some(pin) = schema::load_pin(conn)? else {
        return Ok(Vec::new());
    };
    check_query_dim(&pin, vector)?;
    let seen = index::generation(conn)?;
    cache.search(conn, seen, namespace, vector, filter, k, rows)
}

/// Hits for ranked (score, id) pairs, in their order, reading each row once: the rows in
/// `read` (whole rows the ranking read already, in the same read) are not read again.
fn hits_of(
    conn: &Connection,
    namespace: &str,
    ranked: Vec<(f32, String)>,
    by: RankedBy,
    read: HashMap<String, MemoryItem>,
) -> Result<Vec<SearchHit>> {
    let mut items = read;
    let ids: Vec<String> = ranked
        .iter()
        .filter(|(_, id)| !items.contains_key(id))
        .map(|(_, id)| id.clone())
        .collect();
    if !ids.is_empty() {
        items.extend(rows_by_id(conn, ById::Hits(namespace), &ids)?);
    }
    Ok(ranked
        .into_iter()
        .filter_map(|(score, id)| Some(leg_hit(items.remove(&id)?, score, by)))
        .collect())
}

impl SqliteStore {
    async fn list_page(
        &self,
        namespace: &str,
        request: ListRequest,
        cursor: Option<Cursor>,
        offset: usize,
    ) -> Result<(Vec<MemoryItem>, Option<String>)> {
        let namespace = namespace.to_owned();
        self.read("list", move |conn| {
            let mut q = Query::default();
            q.filter(&namespace, &request.filter, request.filter.effective_now());
            let key = sql::sort_expr(request.sort);
            let dir = match request.order {
                Order::Asc => "ASC",
                Order::Desc => "DESC",
            };
            if let Some(c) = &cursor {
                let v = match c.value {
                    memlayer_store::SortValue::Int(v) => q.bind(v),
                    memlayer_store::SortValue::Float(v) => q.bind(v),
                };
                let id = q.bind(c.id.clone());
                let cmp = if request.order == Order::Asc {
                    ">"
                } else {
                    "<"
                };
                q.and(format!("({key}, i.id) {cmp} ({v}, {id})"));
            }
            let limit = request.effective_limit();
            let lim = q.bind((limit + 1) as i64);
            let off = q.bind(offset as i64);
            let sql = format!(
                "{} {} ORDER BY {key} {dir}, i.id {dir} LIMIT {lim} OFFSET {off}",
                select_items(),
                q.where_sql()
            );
            let mut items = query_items(conn, &sql, &q)?;
            let next = if items.len() > limit {
                items.truncate(limit);
                items
                    .last()
                    .map(|last| Cursor::after(last, request.sort, request.order).encode())
            } else {
                None
            };
            Ok((items, next))
        })
        .await
    }
}

#[async_trait]
impl MemoryStore for SqliteStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn capabilities(&self) -> Capabilities {
        let mut caps = Capabilities::full();
        caps.approximate_vectors = self.index.approximate();
        caps
    }

    async fn upsert_many(&self, items: Vec<MemoryItem>) -> Result<Vec<MemoryItem>> {
        limits::check_batch(&items).map_err(|e| tag(e, "upsert_many"))?;
        self.write_indexed_tx("upsert_many", move |conn, changes| {
            let now = Timestamp::now();
            let mut pin = schema::load_pin(conn)?;
            // The rows the batch replaces, keyed by (namespace, id), read in one query per
            // namespace and 512 ids rather than one per item; an id written earlier in the
            // batch merges with that write instead.
            let mut wanted: HashMap<&str, Vec<String>> = HashMap::new();
            for item in &items {
                wanted
                    .entry(&item.namespace)
                    .or_default()
                    .push(item.id.clone());
            }
            let mut stored: HashMap<(String, String), MemoryItem> = HashMap::new();
            for (ns, ids) in wanted {
                for (id, row) in rows_by_id(conn, ById::Replaced(ns), &ids)? {
                    stored.insert((ns.to_owned(), id), row);
                }
            }
            let mut written: HashMap<(String, String), usize> = HashMap::new();
            let mut out: Vec<MemoryItem> = Vec::with_capacity(items.len());
            for item in items {
                let key = (item.namespace.clone(), item.id.clone());
                let merged = match written.get(&key) {
                    Some(&at) => merge_upsert(Some(&out[at]), item, now)?,
                    None => merge_upsert(stored.get(&key), item, now)?,
                };
                let existed = written.contains_key(&key) || stored.remove(&key).is_some();
                write_row(conn, &merged, existed, &mut pin, changes)?;
                written.insert(key, out.len());
                out.push(merged);
            }
            Ok(out)
        })
        .await
    }

    async fn get(&self, namespace: &str, id: &str) -> Result<MemoryItem> {
        let (ns, id) = (namespace.to_owned(), id.to_owned());
        self.read("get", move |conn| match get_row(conn, &ns, &id, true)? {
            Some(item) if !item.deleted => Ok(item),
            _ => Err(Error::not_found(&ns, &id)),
        })
        .await
    }

    async fn delete(&self, namespace: &str, id: &str) -> Result<()> {
        let (ns, id) = (namespace.to_owned(), id.to_owned());
        self.write_indexed_tx("delete", move |conn, changes| {
            let mut q = Query::default();
            let a = q.bind(id.clone());
            let b = q.bind(ns.clone());
            let n = delete_rows(
                conn,
                &format!("WHERE i.id = {a} AND i.namespace = {b}"),
                &q.params,
                changes,
            )?;
            if n == 0 {
                return Err(Error::not_found(&ns, &id));
            }
            Ok(())
        })
        .await
    }

    async fn clear(&self, namespace: &str, request: &ClearRequest) -> Result<u64> {
        limits::check_clear(namespace, request).map_err(|e| tag(e, "clear"))?;
        let ns = namespace.to_owned();
        let mut filter = request.filter.clone();
        filter.include_deleted = false;
        self.write_tx("clear", move |conn| {
            let mut q = Query::default();
            q.filter(&ns, &filter, filter.effective_now());
            let now = q.bind(Timestamp::now().as_millis());
            let sql = format!(
                "UPDATE items SET deleted = 1, updated_at = MAX({now}, updated_at + 1) \
                 WHERE rowid IN (SELECT i.rowid FROM items i {})",
                q.where_sql()
            );
            let n = conn
                .execute(&sql, params_from_iter(q.params.iter()))
                .map_err(map_sqlite)?;
            Ok(n as u64)
        })
        .await
    }

    async fn count(&self, namespace: &str, options: CountOptions) -> Result<u64> {
        let ns = namespace.to_owned();
        self.read("count", move |conn| {
            let sql = if options.include_deleted {
                "SELECT COUNT(*) FROM items WHERE namespace = ?1"
            } else {
                "SELECT COUNT(*) FROM items WHERE namespace = ?1 AND deleted = 0"
            };
            let n: i64 = conn
                .prepare_cached(sql)
                .map_err(map_sqlite)?
                .query_row([ns], |r| r.get(0))
                .map_err(map_sqlite)?;
            Ok(n as u64)
        })
        .await
    }

    async fn search(&self, namespace: &str, request: &SearchRequest) -> Result<SearchResults> {
        self.check_open().map_err(|e| tag(e, "search"))?;
        run_search(self, namespace, request)
            .await
            .map_err(|e| tag(e, "search"))
    }

    async fn list(&self, namespace: &str, request: &ListRequest) -> Result<Page> {
        run_list(self, namespace, request)
            .await
            .map_err(|e| tag(e, "list"))
    }

    async fn supersede(&self, namespace: &str, id: &str, by: &str) -> Result<MemoryItem> {
        limits::check_supersede(id, by).map_err(|e| tag(e, "supersede"))?;
        let (ns, id, by) = (namespace.to_owned(), id.to_owned(), by.to_owned());
        self.write_tx("supersede", move |conn| {
            let live = |id: &str| -> Result<MemoryItem> {
                match get_row(conn, &ns, id, true)? {
                    Some(item) if !item.deleted => Ok(item),
                    _ => Err(Error::not_found(&ns, id)),
                }
            };
            live(&by)?;
            let mut item = live(&id)?;
            let now = Timestamp::now();
            item.superseded_by = Some(by.clone());
            item.valid_to = Some(now);
            item.updated_at = bump_updated(item.updated_at);
            conn.execute(
                "UPDATE items SET superseded_by = ?1, valid_to = ?2, updated_at = ?3 \
                 WHERE namespace = ?4 AND id = ?5",
                params![by, now.as_millis(), item.updated_at.as_millis(), ns, id],
            )
            .map_err(map_sqlite)?;
            Ok(item)
        })
        .await
    }

    async fn restore(&self, namespace: &str, id: &str) -> Result<MemoryItem> {
        let (ns, id) = (namespace.to_owned(), id.to_owned());
        self.write_tx("restore", move |conn| {
            let mut item = match get_row(conn, &ns, &id, true)? {
                Some(item) if !item.deleted => item,
                _ => return Err(Error::not_found(&ns, &id)),
            };
            item.superseded_by = None;
            item.valid_to = None;
            item.updated_at = bump_updated(item.updated_at);
            conn.execute(
                "UPDATE items SET superseded_by = NULL, valid_to = NULL, updated_at = ?1 \
                 WHERE namespace = ?2 AND id = ?3",
                params![item.updated_at.as_millis(), ns, id],
            )
            .map_err(map_sqlite)?;
            Ok(item)
        })
        .await
    }

    async fn predecessors(&self, namespace: &str, id: &str) -> Result<Vec<MemoryItem>> {
        let (ns, id) = (namespace.to_owned(), id.to_owned());
        self.read("predecessors", move |conn| {
            let mut q = Query::default();
            let a = q.bind(ns);
            let b = q.bind(id);
            let sql = format!(
                "{} WHERE i.namespace = {a} AND i.superseded_by = {b} AND i.deleted = 0 \
                 ORDER BY i.created_at, i.id",
                select_items()
            );
            query_items(conn, &sql, &q)
        })
        .await
    }

    async fn reinforce(&self, namespace: &str, ids: &[String], at: Timestamp) -> Result<u64> {
        limits::check_ids("ids", ids).map_err(|e| tag(e, "reinforce"))?;
        let ns = namespace.to_owned();
        let unique: HashSet<String> = ids.iter().cloned().collect();
        self.write_tx("reinforce", move |conn| {
            let mut n = 0;
            for id in unique {
                let Some(mut item) = get_row(conn, &ns, &id, false)? else {
                    continue;
                };
                if item.deleted {
                    continue;
                }
                reinforce_item(&mut item, at);
                conn.prepare_cached(
                    "UPDATE items SET access_count = ?1, last_accessed_at = ?2, expires_at = ?3 \
                     WHERE namespace = ?4 AND id = ?5",
                )
                .map_err(map_sqlite)?
                .execute(params![
                    i64::try_from(item.access_count).unwrap_or(i64::MAX),
                    at.as_millis(),
                    item.expires_at.map(|t| t.as_millis()),
                    ns,
                    id
                ])
                .map_err(map_sqlite)?;
                n += 1;
            }
            Ok(n)
        })
        .await
    }

    async fn decay(
        &self,
        namespace: &str,
        idle_before: Timestamp,
        factor: f32,
        floor: f32,
    ) -> Result<u64> {
        limits::check_decay(factor, floor).map_err(|e| tag(e, "decay"))?;
        let ns = namespace.to_owned();
        // Computed in Rust (the memory backend's f32 arithmetic) inside the one write
        // transaction, so no write can slip between the read and the update.
        self.write_tx("decay", move |conn| {
            let rows: Vec<(String, f32, f32)> = conn
                .prepare_cached(
                    "SELECT id, importance, confidence FROM items \
                     WHERE namespace = ?1 AND deleted = 0 \
                     AND coalesce(last_accessed_at, created_at) < ?2 \
                     AND (importance > ?3 OR confidence > ?3)",
                )
                .map_err(map_sqlite)?
                .query_map(
                    params![ns, idle_before.as_millis(), f64::from(floor)],
                    |r| {
                        Ok((
                            r.get(0)?,
                            r.get::<_, f64>(1)? as f32,
                            r.get::<_, f64>(2)? as f32,
                        ))
                    },
                )
                .map_err(map_sqlite)?
                .collect::<std::result::Result<_, _>>()
                .map_err(map_sqlite)?;
            let mut n = 0;
            for (id, importance, confidence) in rows {
                let i = decayed(importance, factor, floor);
                let c = decayed(confidence, factor, floor);
                if i == importance && c == confidence {
                    continue;
                }
                conn.prepare_cached(
                    "UPDATE items SET importance = ?1, confidence = ?2 \
                     WHERE namespace = ?3 AND id = ?4",
                )
                .map_err(map_sqlite)?
                .execute(params![f64::from(i), f64::from(c), ns, id])
                .map_err(map_sqlite)?;
                n += 1;
            }
            Ok(n)
        })
        .await
    }

    async fn list_expired(&self, now: Timestamp, limit: usize) -> Result<Vec<ExpiredItem>> {
        self.read("list_expired", move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT namespace, id, expires_at FROM items \
                     WHERE expires_at IS NOT NULL AND expires_at <= ?1 \
                     ORDER BY expires_at, id LIMIT ?2",
                )
                .map_err(map_sqlite)?;
            let rows = stmt
                .query_map(params![now.as_millis(), limit as i64], |r| {
                    Ok(ExpiredItem {
                        namespace: r.get(0)?,
                        id: r.get(1)?,
                        expires_at: Timestamp::from_millis(r.get(2)?),
                    })
                })
                .map_err(map_sqlite)?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
                .map_err(map_sqlite)
        })
        .await
    }

    async fn delete_if_expired_before(
        &self,
        namespace: &str,
        id: &str,
        cutoff: Timestamp,
    ) -> Result<()> {
        let (ns, id) = (namespace.to_owned(), id.to_owned());
        self.write_indexed_tx("delete_if_expired_before", move |conn, changes| {
            let mut q = Query::default();
            let a = q.bind(id.clone());
            let b = q.bind(ns.clone());
            let c = q.bind(cutoff.as_millis());
            let n = delete_rows(
                conn,
                &format!(
                    "WHERE i.id = {a} AND i.namespace = {b} AND i.expires_at IS NOT NULL AND i.expires_at <= {c}"
                ),
                &q.params,
                changes,
            )?;
            if n == 0 {
                return Err(Error::not_found(&ns, &id).with_context("cutoff", cutoff));
            }
            Ok(())
        })
        .await
    }

    async fn list_namespaces(&self) -> Result<Vec<String>> {
        self.read("list_namespaces", move |conn| {
            let mut stmt = conn
                .prepare_cached("SELECT DISTINCT namespace FROM items ORDER BY namespace")
                .map_err(map_sqlite)?;
            let rows = stmt.query_map([], |r| r.get(0)).map_err(map_sqlite)?;
            rows.collect::<rusqlite::Result<Vec<String>>>()
                .map_err(map_sqlite)
        })
        .await
    }

    async fn delete_namespace(&self, namespace: &str) -> Result<u64> {
        let ns = namespace.to_owned();
        let n = self
            .write_indexed_tx("delete_namespace", move |conn, changes| {
                let mut q = Query::default();
                let a = q.bind(ns.clone());
                let mut removed = Vec::new();
                let n = delete_rows(
                    conn,
                    &format!("WHERE i.namespace = {a}"),
                    &q.params,
                    &mut removed,
                )?;
                if n > 0 {
                    changes.push(Change::Reload { namespace: ns });
                }
                Ok(n)
            })
            .await?;
        if n > 0 {
            self.index.forget_saved_graph(namespace);
        }
        Ok(n)
    }

    async fn reassign(&self, ids: &[String], from: &str, to: &str) -> Result<u64> {
        check_namespace(to).map_err(|e| tag(e, "reassign"))?;
        limits::check_ids("ids", ids).map_err(|e| tag(e, "reassign"))?;
        let unique: BTreeSet<String> = ids.iter().cloned().collect();
        let (from, to) = (from.to_owned(), to.to_owned());
        self.write_indexed_tx("reassign", move |conn, changes| {
            let present: Vec<String> = unique
                .into_iter()
                .map(|id| Ok((get_row(conn, &from, &id, false)?.is_some(), id)))
                .collect::<Result<Vec<_>>>()?
                .into_iter()
                .filter_map(|(present, id)| present.then_some(id))
                .collect();
            if from == to {
                return Ok(present.len() as u64);
            }
            // All or nothing: an id the target already holds stops the move before any row
            // moves (the transaction would roll back anyway; this names the id).
            for id in &present {
                if get_row(conn, &to, id, false)?.is_some() {
                    return Err(reassign_conflict(id, &to));
                }
            }
            let mut n = 0;
            let mut stmt = conn
                .prepare_cached("UPDATE items SET namespace = ?1 WHERE namespace = ?2 AND id = ?3")
                .map_err(map_sqlite)?;
            for id in present {
                n += stmt.execute(params![to, from, id]).map_err(map_sqlite)? as u64;
            }
            if n > 0 {
                changes.push(Change::Reload { namespace: from });
                changes.push(Change::Reload { namespace: to });
            }
            Ok(n)
        })
        .await
    }

    async fn embedding_pin(&self) -> Result<Option<EmbeddingPin>> {
        self.read("embedding_pin", schema::load_pin).await
    }

    /// Drops the namespaces' in-process indexes (an HNSW graph keeps removed vectors) and
    /// their saved graphs, then checkpoints the write-ahead log and truncates it. Deleted rows
    /// leave no copy in the file itself: every connection runs with `secure_delete`, which
    /// zeroes freed content as it is freed.
    async fn scrub(&self, namespaces: &[String]) -> Result<Vec<String>> {
        let reload = namespaces.to_vec();
        self.write_indexed_tx("scrub", move |_, changes| {
            changes.extend(
                reload
                    .into_iter()
                    .map(|namespace| Change::Reload { namespace }),
            );
            Ok(())
        })
        .await?;
        for ns in namespaces {
            self.index.forget_saved_graph(ns);
        }
        let mut done = vec![format!(
            "sqlite: in-process indexes and saved graphs of {} dropped",
            plural(namespaces.len(), "namespace")
        )];
        let (busy, log, copied): (i64, i64, i64) = self
            .db
            .write(|conn| {
                conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })
                .map_err(map_sqlite)
            })
            .await
            .map_err(|e| tag(e, "scrub"))?;
        done.push(if busy == 0 {
            "sqlite: write-ahead log checkpointed and truncated".to_owned()
        } else {
            format!(
                "sqlite: write-ahead log checkpointed ({copied} of {log} frames); readers held the \
                 rest, run the command again once they finish"
            )
        });
        done.push("sqlite: freed pages are zeroed as rows are deleted (secure_delete)".to_owned());
        Ok(done)
    }

    async fn ping(&self) -> Result<()> {
        self.read("ping", |conn| {
            conn.query_row("SELECT 1", [], |_| Ok(()))
                .map_err(map_sqlite)
        })
        .await
    }

    async fn close(&self) -> Result<()> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        // Graphs changed since their last save are saved first; the file closes either way.
        let index = self.index.clone();
        let saved = tokio::task::spawn_blocking(move || index.save_graphs())
            .await
            .map_err(|e| Error::new(ErrorKind::Unexpected, "saving graphs panicked").with_source(e))
            .and_then(|r| r);
        self.db.close().await.map_err(|e| tag(e, "close"))?;
        saved.map_err(|e| tag(e, "close"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SQLite's query plan for `sql`, its steps joined by "; ".
    fn plan_of(conn: &Connection, sql: &str, q: &Query) -> Result<String> {
        let mut stmt = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .map_err(map_sqlite)?;
        let plan: Vec<String> = stmt
            .query_map(params_from_iter(q.params.iter()), |r| r.get(3))
            .map_err(map_sqlite)?
            .collect::<rusqlite::Result<_>>()
            .map_err(map_sqlite)?;
        Ok(plan.join("; "))
    }

    /// Hit rows are read through the (namespace, id) key, never by walking the namespace.
    #[test]
    fn hit_rows_are_read_by_id() -> Result<()> {
        let mut conn = Connection::open_in_memory().map_err(map_sqlite)?;
        vec_ext::register(&conn)?;
        schema::migrate(&mut conn)?;
        let ids: Vec<String> = (0..10).map(|i| format!("i{i}")).collect();
        let (sql, q) = rows_by_id_query(ById::Hits("ns"), &ids);
        let plan = plan_of(&conn, &sql, &q)?;
        assert!(
            plan.contains("sqlite_autoindex_items_1 (namespace=? AND id=?)"),
            "plan: {plan}"
        );
        assert!(!plan.contains("items_ns_created"), "plan: {plan}");
        Ok(())
    }

    /// A filter on a user or a session is served by that owner's partial index, which since
    /// migration 5 leaves out the rows without that owner.
    #[test]
    fn owner_filters_use_their_partial_indexes() -> Result<()> {
        let mut conn = Connection::open_in_memory().map_err(map_sqlite)?;
        // As the store sets its connections up: one plan whatever the parameters.
        db::prepare(&conn, Duration::from_secs(1), Synchronous::Full)?;
        schema::migrate_to(&mut conn, 4)?;
        schema::migrate(&mut conn)?;
        for (filter, index) in [
            (Filter::new().user("u"), "items_live_user"),
            (Filter::new().session("s"), "items_live_session"),
        ] {
            let mut q = Query::default();
            q.filter("ns", &filter, Timestamp::now());
            let sql = format!(
                "SELECT i.id FROM items i {} ORDER BY i.created_at",
                q.where_sql()
            );
            let plan = plan_of(&conn, &sql, &q)?;
            assert!(plan.contains(index), "{index}: plan {plan}");
            let definition: String = conn
                .query_row(
                    "SELECT sql FROM sqlite_schema WHERE name = ?1",
                    [index],
                    |r| r.get(0),
                )
                .map_err(map_sqlite)?;
            assert!(definition.contains("IS NOT NULL"), "{definition}");
        }
        Ok(())
    }
}
