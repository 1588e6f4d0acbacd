//! The store's handle on Postgres: connecting (and creating the schema), pooled clients, and
//! the reads every other module builds on.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use memlayer_store::backend::sql::SqlDialect;
use memlayer_store::types::MemoryItem;
use memlayer_store::{Cursor, Error, ErrorKind, ListRequest, Order, Result, SortValue};
use tokio_postgres::NoTls;

use crate::config::PostgresConfig;
use crate::config::check_hnsw;
use crate::error::{map_pg, map_pool};
use crate::schema;
use crate::sql;
use crate::sql::{ITEM_COLUMNS, Query, read_item};

pub(crate) const BACKEND: &str = "postgres";

/// A memory store in a Postgres schema.
#[derive(Clone)]
pub struct PostgresStore {
    pub(crate) pool: Pool,
    /// The connection settings of the pool's connections, for one outside it.
    pub(crate) pg: Arc<tokio_postgres::Config>,
    pub(crate) config: Arc<PostgresConfig>,
    pub(crate) closed: Arc<AtomicBool>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("schema", &self.config.schema)
            .field("pool", &self.pool.status())
            .finish()
    }
}

pub(crate) fn tag(e: Error, operation: &'static str) -> Error {
    e.with_backend(BACKEND).with_operation(operation)
}

impl PostgresStore {
    /// Connects to `url` with the default configuration.
    ///
    /// # Errors
    /// `ConfigInvalid` for a bad URL, `Unavailable` when the server cannot be reached.
    pub async fn connect(url: &str) -> Result<Self> {
        PostgresStore::connect_with(PostgresConfig::new(url)).await
    }

    /// Connects with a full configuration and brings the schema up to date.
    ///
    /// # Errors
    /// As [`PostgresStore::connect`], and `ConfigInvalid` for a bad schema name or a pin other
    /// than `expected_pin`.
    pub async fn connect_with(config: PostgresConfig) -> Result<Self> {
        schema::check_schema_name(&config.schema).map_err(|e| tag(e, "connect"))?;
        check_hnsw(&config).map_err(|e| tag(e, "connect"))?;
        let mut pg: tokio_postgres::Config = config.url.parse().map_err(|e| {
            tag(
                Error::new(ErrorKind::ConfigInvalid, format!("bad Postgres URL: {e}")),
                "connect",
            )
        })?;
        pg.connect_timeout(config.connect_timeout);
        // Iterative index scans for every pooled connection, so that a filtered vector query
        // keeps scanning until it has its limit. `ef_search` is set with each graph search.
        pg.options("-c hnsw.iterative_scan=strict_order");
        pg.application_name("memlayer");
        let mc = ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        let manager = Manager::from_config(pg.clone(), NoTls, mc);
        let pool = Pool::builder(manager)
            .max_size(config.pool_size)
            .wait_timeout(Some(config.wait_timeout))
            .create_timeout(Some(config.connect_timeout))
            .recycle_timeout(Some(config.connect_timeout))
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|e| {
                tag(
                    Error::new(
                        ErrorKind::ConfigInvalid,
                        format!("cannot build the pool: {e}"),
                    ),
                    "connect",
                )
            })?;
        {
            // Migrations run on a dedicated connection so that the pool only ever holds
            // connections opened after the schema exists.
            let (mut client, conn) = pg
                .connect(NoTls)
                .await
                .map_err(|e| tag(map_pg(e), "connect"))?;
            let task = tokio::spawn(conn);
            let result = schema::migrate(&mut client, &config.schema).await;
            let pin = match result {
                Ok(()) => schema::load_pin(&client, &config.schema).await,
                Err(e) => Err(e),
            };
            if let Ok(Some(_)) = &pin
                && !schema::vector_index_exists(&client, &config.schema)
                    .await
                    .map_err(|e| tag(e, "connect"))?
            {
                tracing::warn!(
                    schema = %config.schema,
                    "the vector index is missing (a bulk load did not finish?): vector search \
                     scans every row until build_vector_index is called"
                );
            }
            drop(client);
            let _ = task.await;
            let pin = pin.map_err(|e| tag(e, "connect"))?;
            if let (Some(want), Some(have)) = (&config.expected_pin, pin)
                && *want != have
            {
                {
                    return Err(tag(
                        Error::new(
                            ErrorKind::ConfigInvalid,
                            format!(
                                "the store is pinned to model {:?} with dimension {}, but {:?} with dimension {} was expected",
                                have.model, have.dim, want.model, want.dim
                            ),
                        ),
                        "connect",
                    ));
                }
            }
        }
        Ok(PostgresStore {
            pool,
            pg: Arc::new(pg),
            config: Arc::new(config),
            closed: Arc::new(AtomicBool::new(false)),
        })
    }

    pub(crate) fn s(&self) -> &str {
        &self.config.schema
    }
}

impl PostgresStore {
    /// The configuration the store was opened with.
    pub fn config(&self) -> &PostgresConfig {
        &self.config
    }
}

impl PostgresStore {
    pub(crate) async fn client(&self, op: &'static str) -> Result<deadpool_postgres::Object> {
        if self.closed.load(Ordering::Acquire) {
            return Err(tag(
                Error::new(ErrorKind::Unavailable, "the store is closed").set_temporary(false),
                op,
            ));
        }
        self.pool.get().await.map_err(|e| tag(map_pool(e), op))
    }

    pub(crate) async fn query_items(
        &self,
        op: &'static str,
        sql: &str,
        q: &Query,
    ) -> Result<Vec<MemoryItem>> {
        let client = self.client(op).await?;
        let stmt = client
            .prepare_cached(sql)
            .await
            .map_err(|e| tag(map_pg(e), op))?;
        let rows = client
            .query(&stmt, &q.refs())
            .await
            .map_err(|e| tag(map_pg(e), op))?;
        rows.iter()
            .map(read_item)
            .collect::<Result<Vec<_>>>()
            .map_err(|e| tag(e, op))
    }

    pub(crate) async fn live_item<C: tokio_postgres::GenericClient>(
        &self,
        c: &C,
        namespace: &str,
        id: &str,
        for_update: bool,
    ) -> Result<Option<MemoryItem>> {
        let lock = if for_update { "FOR UPDATE" } else { "" };
        let sql = format!(
            "SELECT {ITEM_COLUMNS} FROM {}.items i WHERE i.id = $1 AND i.namespace = $2 AND NOT i.deleted {lock}",
            self.s()
        );
        let row = c
            .query_opt(&sql, &[&id, &namespace])
            .await
            .map_err(map_pg)?;
        row.as_ref().map(read_item).transpose()
    }

    pub(crate) async fn list_page(
        &self,
        namespace: &str,
        request: &ListRequest,
        cursor: Option<Cursor>,
        offset: usize,
    ) -> Result<(Vec<MemoryItem>, Option<String>)> {
        let mut q = Query::default();
        q.filter(namespace, &request.filter, request.filter.effective_now());
        let key = sql::sort_expr(request.sort);
        let dir = match request.order {
            Order::Asc => "ASC",
            Order::Desc => "DESC",
        };
        if let Some(c) = &cursor {
            let v = match c.value {
                SortValue::Int(v) => format!("{}::bigint", q.bind(v)),
                SortValue::Float(v) => format!("{}::float8", q.bind(v)),
            };
            let id = q.bind(c.id.clone());
            let cmp = if request.order == Order::Asc {
                ">"
            } else {
                "<"
            };
            q.and(format!(
                "({key}, i.id COLLATE \"C\") {cmp} ({v}, {id}::text COLLATE \"C\")"
            ));
        }
        let limit = request.effective_limit();
        let lim = q.bind((limit + 1) as i64);
        let off = q.bind(offset as i64);
        let sql = format!(
            "SELECT {ITEM_COLUMNS} FROM {}.items i {} ORDER BY {key} {dir}, i.id COLLATE \"C\" {dir} LIMIT {lim} OFFSET {off}",
            self.s(),
            q.where_sql()
        );
        let mut items = self.query_items("list", &sql, &q).await?;
        let next = if items.len() > limit {
            items.truncate(limit);
            items
                .last()
                .map(|last| Cursor::after(last, request.sort, request.order).encode())
        } else {
            None
        };
        Ok((items, next))
    }
}
