//! Operations on the store as a whole: dropping it, and suspending and rebuilding the vector
//! index around a bulk load.

use std::sync::atomic::Ordering;

use memlayer_store::Result;
use tokio_postgres::NoTls;

use crate::client::{PostgresStore, tag};
use crate::error::map_pg;
use crate::schema;
use crate::sql::column;

impl PostgresStore {
    /// Drops the store's schema and everything in it; the store is closed. For tests and
    /// benchmarks that make a schema of their own.
    ///
    /// # Errors
    /// `Unavailable` when the server cannot be reached.
    pub async fn destroy(self) -> Result<()> {
        self.closed.store(true, Ordering::Release);
        self.pool.close();
        // A connection of its own: the pool may have been closed already.
        let (client, conn) = self
            .pg
            .connect(NoTls)
            .await
            .map_err(|e| tag(map_pg(e), "destroy"))?;
        let task = tokio::spawn(conn);
        let dropped = client
            .batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.s()))
            .await;
        drop(client);
        let _ = task.await;
        dropped.map_err(|e| tag(map_pg(e), "destroy"))
    }

    /// Drops the HNSW index, for a bulk load: pgvector builds an index over rows already
    /// loaded many times faster than it inserts them one by one (ADR 0010, "Postgres bulk
    /// loads"). Until [`PostgresStore::build_vector_index`] runs, vector search is exact and
    /// scans every vector of the namespace; nothing stored changes. Every store on this
    /// schema is affected, so run bulk loads when its vector searches can wait.
    ///
    /// # Errors
    /// `Unavailable` when the server cannot be reached.
    pub async fn suspend_vector_index(&self) -> Result<()> {
        let client = self.client("suspend_vector_index").await?;
        client
            .batch_execute(&format!(
                "DROP INDEX IF EXISTS {}.{}",
                self.s(),
                schema::VECTOR_INDEX
            ))
            .await
            .map_err(|e| tag(map_pg(e), "suspend_vector_index"))
    }

    /// Builds the HNSW index over the stored vectors if the store is pinned and the index is
    /// missing (after [`PostgresStore::suspend_vector_index`]); returns whether it built one.
    /// Writes wait while it builds (`CREATE INDEX`); progress is in Postgres'
    /// `pg_stat_progress_create_index`. The table is analysed afterwards, so the planner's
    /// estimates (which vector search reads) cover the loaded rows.
    ///
    /// # Errors
    /// `Unavailable` when the server cannot be reached.
    pub async fn build_vector_index(&self) -> Result<bool> {
        let op = "build_vector_index";
        let mut client = self.client(op).await?;
        let tx = client.transaction().await.map_err(|e| tag(map_pg(e), op))?;
        if schema::load_pin(&*tx, self.s()).await?.is_none()
            || schema::vector_index_exists(&*tx, self.s()).await?
        {
            return Ok(false);
        }
        if let Some(mb) = self.config.index_build_memory_mb {
            // `SET LOCAL`: the pooled connection keeps its own setting after the commit.
            tx.batch_execute(&format!("SET LOCAL maintenance_work_mem = '{mb}MB'"))
                .await
                .map_err(|e| tag(map_pg(e), op))?;
        }
        tx.batch_execute(&schema::vector_index_ddl(
            self.s(),
            self.config.hnsw_m,
            self.config.hnsw_ef_construction,
        ))
        .await
        .map_err(|e| tag(map_pg(e), op))?;
        tx.commit().await.map_err(|e| tag(map_pg(e), op))?;
        // Fresh statistics for the planner after a load (vector search reads its estimates
        // to choose between the graph and an exact ranking), without waiting for autovacuum.
        client
            .batch_execute(&format!("ANALYZE {}.items", self.s()))
            .await
            .map_err(|e| tag(map_pg(e), op))?;
        Ok(true)
    }

    /// How far a running build of this store's vector index is, as (done, total) tuples of
    /// its current phase, from `pg_stat_progress_create_index`; `None` when none is running.
    ///
    /// # Errors
    /// `Unavailable` when the server cannot be reached.
    pub async fn vector_index_build_progress(&self) -> Result<Option<(i64, i64)>> {
        let op = "vector_index_build_progress";
        let client = self.client(op).await?;
        let row = client
            .query_opt(
                "SELECT tuples_done, tuples_total FROM pg_stat_progress_create_index \
                 WHERE index_relid = to_regclass($1) OR relid = to_regclass($2)",
                &[
                    &format!("{}.{}", self.s(), schema::VECTOR_INDEX),
                    &format!("{}.items", self.s()),
                ],
            )
            .await
            .map_err(|e| tag(map_pg(e), op))?;
        row.map(|r| Ok((column(&r, 0)?, column(&r, 1)?)))
            .transpose()
    }
}
