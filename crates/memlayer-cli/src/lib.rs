#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

pub mod forget;
mod import_cmd;
pub mod importers;
mod keys_cmd;
/// The MCP server, shared with `memlayer serve`'s `/mcp`.
pub use memlayer_server::mcp;
#[cfg(feature = "minilm")]
pub mod models;
pub mod table;
pub mod transfer;

use std::io::{BufReader, Write};
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use memlayer::orchestrator::Sweeper;
use memlayer::{
    ClearRequest, CountOptions, DynStore, Filter, Kind, ListRequest, MemoryItem, SearchMode,
    SearchRequest, Timestamp,
};
use serde_json::{Value, json};

/// The memlayer command line.
#[derive(Parser, Debug)]
#[command(
    name = "memlayer",
    version,
    about = "Memory for LLM agents: serve it, query it, move it."
)]
pub struct Cli {
    /// The store: memory, sqlite:PATH, postgres://..., redis://..., chroma:http://HOST:PORT.
    #[arg(
        long,
        global = true,
        env = "MEMLAYER_URL",
        default_value = "sqlite:./memlayer.db"
    )]
    pub url: String,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Serve the HTTP API (native REST and Agent Memory Server compatible).
    Serve(memlayer_server::ServeArgs),
    /// A Model Context Protocol server over stdio.
    Mcp {
        /// The namespace tools use when a call names none.
        #[arg(long, default_value = "default")]
        namespace: String,
        /// The namespaces a call may name, comma-separated (`*` for every one); only
        /// `--namespace` by default, so a prompt-injected model cannot reach another tenant.
        #[arg(long, value_delimiter = ',')]
        allow: Vec<String>,
    },
    /// API keys for `serve --keys`: create, list, rotate, revoke.
    Keys {
        /// What to do.
        #[command(subcommand)]
        action: keys_cmd::KeysAction,
    },
    /// Store an item.
    Add {
        /// The namespace.
        namespace: String,
        /// The content.
        content: String,
        /// The kind: fact, human, ai, system, tool, summary or any custom kind.
        #[arg(long, default_value = "fact")]
        kind: String,
        /// The id (a new one when absent; an existing one is replaced).
        #[arg(long)]
        id: Option<String>,
        /// The user.
        #[arg(long)]
        user: Option<String>,
        /// The session.
        #[arg(long)]
        session: Option<String>,
        /// Tags (repeat for more).
        #[arg(long = "tag")]
        tags: Vec<String>,
    },
    /// Show an item.
    Get {
        /// The namespace.
        namespace: String,
        /// The id.
        id: String,
    },
    /// Search a namespace.
    Search {
        /// The namespace.
        namespace: String,
        /// The query.
        query: String,
        /// hybrid, keyword, vector or recent.
        #[arg(long, default_value = "hybrid")]
        mode: String,
        /// How many hits.
        #[arg(long, default_value_t = 10)]
        limit: usize,
        /// Only this user's items.
        #[arg(long)]
        user: Option<String>,
        /// Only this session's items.
        #[arg(long)]
        session: Option<String>,
        /// Only these kinds (repeat for more).
        #[arg(long = "kind")]
        kinds: Vec<String>,
        /// Only items with all these tags.
        #[arg(long = "tag")]
        tags: Vec<String>,
        /// Leave out hits scoring below this (BM25 for keyword, cosine for vector, the fused
        /// score for hybrid).
        #[arg(long)]
        min_score: Option<f32>,
    },
    /// List a namespace, newest first, a page at a time.
    List {
        /// The namespace.
        namespace: String,
        /// Page size.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// The cursor of the next page, from a previous page.
        #[arg(long)]
        cursor: Option<String>,
        /// Only this user's items.
        #[arg(long)]
        user: Option<String>,
    },
    /// Hard-delete an item.
    Delete {
        /// The namespace.
        namespace: String,
        /// The id.
        id: String,
    },
    /// Soft-delete the items matching a filter (or all, with --all).
    Clear {
        /// The namespace.
        namespace: String,
        /// Only this user's items.
        #[arg(long)]
        user: Option<String>,
        /// Only this session's items.
        #[arg(long)]
        session: Option<String>,
        /// Only this kind.
        #[arg(long)]
        kind: Option<String>,
        /// Everything in the namespace.
        #[arg(long)]
        all: bool,
    },
    /// The namespaces.
    Namespaces,
    /// Counts per namespace, the backend and the embedding pin.
    Stats,
    /// Delete expired items now (the sweeper's one pass).
    Sweep {
        /// Only list what would be deleted.
        #[arg(long)]
        dry_run: bool,
    },
    /// Hard-delete everything of a user, in every namespace (or one), with exact counts.
    Forget {
        /// The user.
        #[arg(long)]
        user: String,
        /// Only this namespace.
        #[arg(long)]
        namespace: Option<String>,
        /// Also delete the user's events from this Redis Streams event log
        /// (`redis://HOST:PORT/STREAM-KEY`, as written by the orchestrator's `RedisStreamSink`).
        #[cfg(feature = "redis")]
        #[arg(long)]
        events: Option<String>,
    },
    /// Write items (embeddings included) as JSON lines.
    Export {
        /// Only these namespaces (repeat for more; all when absent).
        #[arg(long = "namespace")]
        namespaces: Vec<String>,
        /// The file (`-` for standard output).
        #[arg(long, default_value = "-")]
        out: String,
    },
    /// Read an export into the store.
    Import {
        /// The file (`-` for standard input).
        file: String,
        /// The file's format: memlayer's own export, or another memory system's.
        #[arg(long, value_enum, default_value = "memlayer")]
        from: importers::Format,
        /// The namespace of the imported items (AMS records and LangGraph items keep their
        /// own unless this is given).
        #[arg(long, default_value = importers::DEFAULT_NAMESPACE)]
        namespace: String,
        /// For `--from jsonl` and `--from csv`: where each item field is, as
        /// `content=text,user=meta.uid,id=key` (fields: content, id, user, session, agent,
        /// kind, tags, created_at, importance, namespace).
        #[arg(long)]
        map: Vec<String>,
    },
    /// The default embedding model: list where it is, or pull it into the cache.
    #[cfg(feature = "minilm")]
    #[command(subcommand)]
    Models(models::ModelsCmd),
    /// Copy the store into another one, embedded with the default embedder there.
    /// Resumable: run it again after an interruption and it skips what is done.
    Reembed {
        /// The target store (new, or pinned to the new model).
        #[arg(long)]
        to: String,
        /// Only these namespaces (all when absent).
        #[arg(long = "namespace")]
        namespaces: Vec<String>,
        /// Stop after embedding this many items (a bounded batch; run again to go on).
        #[arg(long)]
        max_items: Option<u64>,
    },
}

/// A one-line error for the command line.
type Outcome = Result<(), String>;

/// `n thing` or `n things`.
fn plural(n: impl TryInto<u64>, thing: &str) -> String {
    let n: u64 = n.try_into().unwrap_or(u64::MAX);
    if n == 1 {
        format!("1 {thing}")
    } else {
        format!("{n} {thing}s")
    }
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Opens the store without an embedder (commands that never embed).
async fn raw(url: &str) -> Result<DynStore, String> {
    memlayer::open(url)
        .await
        .map_err(|e| format!("opening {url}: {e}"))
}

/// Opens the store with its embedder, saying which on standard error.
async fn embedded(url: &str) -> Result<DynStore, String> {
    let (store, what) = memlayer::open_embedded(url)
        .await
        .map_err(|e| format!("opening {}: {e}", memlayer::redact_url(url)))?;
    eprintln!("memlayer: {what}");
    Ok(store)
}

fn progress(len: u64, what: &str, bytes: bool) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(len), indicatif::ProgressDrawTarget::stderr());
    let template = if bytes {
        "{msg} [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta})"
    } else {
        "{msg} [{bar:30}] {pos}/{len} ({per_sec}, {eta})"
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_owned());
    bar
}

fn print_json(v: &Value) -> Outcome {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", serde_json::to_string_pretty(v).map_err(err)?).map_err(err)
}

fn item_rows(items: &[MemoryItem]) -> Vec<Vec<String>> {
    items
        .iter()
        .map(|i| {
            vec![
                i.id.clone(),
                i.kind.as_str().to_owned(),
                i.metadata.user_id.clone().unwrap_or_default(),
                i.created_at.to_rfc3339(),
                i.content.clone(),
            ]
        })
        .collect()
}

const ITEM_HEADERS: [&str; 5] = ["id", "kind", "user", "created", "content"];

async fn namespaces_of(store: &DynStore, given: Vec<String>) -> Result<Vec<String>, String> {
    if given.is_empty() {
        store.list_namespaces().await.map_err(err)
    } else {
        Ok(given)
    }
}

/// Runs one command line.
///
/// # Errors
/// A one-line message for standard error.
pub async fn run(cli: Cli) -> Outcome {
    let json_out = cli.json;
    let url = cli.url;
    match cli.command {
        Command::Serve(args) => args.run(&url).await,
        #[cfg(feature = "minilm")]
        Command::Models(cmd) => models::run(cmd, json_out).await,
        Command::Mcp { namespace, allow } => {
            let store = embedded(&url).await?;
            let allowed = mcp::Allowed::new(&namespace, allow);
            mcp::serve_stdio(store.clone(), namespace, allowed).await?;
            store.close().await.map_err(err)
        }
        Command::Add {
            namespace,
            content,
            kind,
            id,
            user,
            session,
            tags,
        } => {
            let store = embedded(&url).await?;
            let mut item = MemoryItem::new(&namespace, Kind::parse(&kind), content);
            if let Some(id) = id {
                item = item.with_id(id);
            }
            if let Some(u) = user {
                item = item.with_user(u);
            }
            if let Some(s) = session {
                item = item.with_session(s);
            }
            for t in tags {
                item = item.with_tag(t);
            }
            let stored = store.upsert(item).await.map_err(err)?;
            if json_out {
                print_json(&json!(stored))
            } else {
                println!("stored {} (version {})", stored.id, stored.version);
                Ok(())
            }
        }
        Command::Get { namespace, id } => {
            let store = raw(&url).await?;
            let item = store.get(&namespace, &id).await.map_err(err)?;
            if json_out {
                return print_json(&json!(item));
            }
            let mut rows = vec![
                vec!["id".into(), item.id.clone()],
                vec!["namespace".into(), item.namespace.clone()],
                vec!["kind".into(), item.kind.as_str().into()],
                vec!["content".into(), item.content.clone()],
                vec!["created".into(), item.created_at.to_rfc3339()],
                vec!["updated".into(), item.updated_at.to_rfc3339()],
                vec!["version".into(), item.version.to_string()],
            ];
            for (k, v) in [
                ("user", &item.metadata.user_id),
                ("session", &item.metadata.session_id),
            ] {
                if let Some(v) = v {
                    rows.push(vec![k.into(), v.clone()]);
                }
            }
            if !item.tags.is_empty() {
                let tags: Vec<&str> = item.tags.iter().map(String::as_str).collect();
                rows.push(vec!["tags".into(), tags.join(", ")]);
            }
            if let Some(e) = &item.embedding {
                rows.push(vec![
                    "embedding".into(),
                    format!("{} ({} dimensions)", e.model, e.dim()),
                ]);
            }
            print!("{}", table::render(&["field", "value"], &rows, 100));
            Ok(())
        }
        Command::Search {
            namespace,
            query,
            mode,
            limit,
            user,
            session,
            kinds,
            tags,
            min_score,
        } => {
            let mode = match mode.as_str() {
                "hybrid" => SearchMode::Hybrid,
                "keyword" => SearchMode::Keyword,
                "vector" => SearchMode::Vector,
                "recent" => SearchMode::Recent,
                other => {
                    return Err(format!(
                        "--mode is {other:?}; must be hybrid, keyword, vector or recent"
                    ));
                }
            };
            let store = embedded(&url).await?;
            let mut filter = Filter::new();
            if let Some(u) = user {
                filter = filter.user(u);
            }
            if let Some(s) = session {
                filter = filter.session(s);
            }
            for k in &kinds {
                filter = filter.kind(Kind::parse(k));
            }
            for t in tags {
                filter = filter.tag(t);
            }
            let mut request = SearchRequest::new(mode)
                .with_query(query)
                .with_filter(filter)
                .with_limit(limit);
            if let Some(min) = min_score {
                request = request.with_min_score(min);
            }
            let results = store.search(&namespace, &request).await.map_err(err)?;
            if json_out {
                return print_json(&json!(results));
            }
            let score = |s: Option<f32>| s.map_or_else(|| "-".to_owned(), |v| format!("{v:.3}"));
            let rows: Vec<Vec<String>> = results
                .hits
                .iter()
                .map(|h| {
                    vec![
                        format!("{:.3}", h.score),
                        score(h.keyword_score),
                        score(h.vector_score),
                        h.item.id.clone(),
                        h.item.kind.as_str().to_owned(),
                        h.item.content.clone(),
                    ]
                })
                .collect();
            print!(
                "{}",
                table::render(
                    &["score", "keyword", "vector", "id", "kind", "content"],
                    &rows,
                    72
                )
            );
            Ok(())
        }
        Command::List {
            namespace,
            limit,
            cursor,
            user,
        } => {
            let store = raw(&url).await?;
            let mut filter = Filter::new();
            if let Some(u) = user {
                filter = filter.user(u);
            }
            let mut request = ListRequest::new().with_filter(filter);
            request.limit = Some(limit);
            request.cursor = cursor;
            let page = store.list(&namespace, &request).await.map_err(err)?;
            if json_out {
                return print_json(&json!(page));
            }
            print!(
                "{}",
                table::render(&ITEM_HEADERS, &item_rows(&page.items), 72)
            );
            if let Some(c) = page.next_cursor {
                println!("next page: --cursor {c}");
            }
            Ok(())
        }
        Command::Delete { namespace, id } => {
            let store = raw(&url).await?;
            store.delete(&namespace, &id).await.map_err(err)?;
            if json_out {
                print_json(&json!({ "deleted": 1 }))
            } else {
                println!("deleted {id}");
                Ok(())
            }
        }
        Command::Clear {
            namespace,
            user,
            session,
            kind,
            all,
        } => {
            let store = raw(&url).await?;
            let mut filter = Filter::new();
            if let Some(u) = user {
                filter = filter.user(u);
            }
            if let Some(s) = session {
                filter = filter.session(s);
            }
            if let Some(k) = kind {
                filter = filter.kind(Kind::parse(&k));
            }
            let request = if all {
                ClearRequest::everything()
            } else {
                ClearRequest::matching(filter)
            };
            let n = store.clear(&namespace, &request).await.map_err(err)?;
            if json_out {
                print_json(&json!({ "cleared": n }))
            } else {
                println!("cleared {n} items");
                Ok(())
            }
        }
        Command::Namespaces => {
            let store = raw(&url).await?;
            let list = store.list_namespaces().await.map_err(err)?;
            if json_out {
                return print_json(&json!(list));
            }
            for ns in list {
                println!("{ns}");
            }
            Ok(())
        }
        Command::Stats => {
            let store = raw(&url).await?;
            let pin = store.embedding_pin().await.map_err(err)?;
            let mut rows = Vec::new();
            let mut out = Vec::new();
            for ns in store.list_namespaces().await.map_err(err)? {
                let live = store.count(&ns, CountOptions::live()).await.map_err(err)?;
                let all = store.count(&ns, CountOptions::all()).await.map_err(err)?;
                rows.push(vec![ns.clone(), live.to_string(), (all - live).to_string()]);
                out.push(json!({ "namespace": ns, "live": live, "soft_deleted": all - live }));
            }
            if json_out {
                return print_json(&json!({
                    "backend": store.backend(),
                    "embedding": pin.map(|p| json!({"model": p.model, "dim": p.dim})),
                    "namespaces": out,
                }));
            }
            println!("backend: {}", store.backend());
            match pin {
                Some(p) => println!("embedding: {} ({} dimensions)", p.model, p.dim),
                None => println!("embedding: none pinned yet"),
            }
            print!(
                "{}",
                table::render(&["namespace", "live", "soft-deleted"], &rows, 60)
            );
            Ok(())
        }
        Command::Sweep { dry_run } => {
            let store = raw(&url).await?;
            let now = Timestamp::now();
            if dry_run {
                let expired = store.list_expired(now, 100_000).await.map_err(err)?;
                if json_out {
                    return print_json(&json!({ "would_delete": expired, "dry_run": true }));
                }
                let rows: Vec<Vec<String>> = expired
                    .iter()
                    .map(|e| vec![e.namespace.clone(), e.id.clone(), e.expires_at.to_rfc3339()])
                    .collect();
                print!(
                    "{}",
                    table::render(&["namespace", "id", "expired at"], &rows, 60)
                );
                println!("{} expired items would be deleted (dry run)", expired.len());
                return Ok(());
            }
            let report = Sweeper::new(store).sweep_once(now).await.map_err(err)?;
            if json_out {
                print_json(&json!({
                    "found": report.found,
                    "deleted": report.deleted,
                    "raced": report.raced,
                }))
            } else {
                println!(
                    "deleted {} expired items ({} found, {} no longer expired)",
                    report.deleted, report.found, report.raced
                );
                Ok(())
            }
        }
        Command::Forget {
            user,
            namespace,
            #[cfg(feature = "redis")]
            events,
        } => {
            let store = raw(&url).await?;
            #[cfg(feature = "redis")]
            let log = match &events {
                Some(spec) => Some(forget::event_log(spec).await?),
                None => None,
            };
            let namespaces = namespaces_of(&store, namespace.into_iter().collect()).await?;
            let done = forget::forget_user(&store, &user, &namespaces).await;
            let report = &done.report;
            let total = done.items();
            // What the deletes may have left in the backend's own files goes too.
            let touched: Vec<String> = report.keys().cloned().collect();
            let cleaned = store.scrub(&touched).await.map_err(err)?;
            let vectors: u64 = report.values().map(|f| f.vectors).sum();
            #[cfg(feature = "redis")]
            let event_count = match &log {
                Some(log) => Some(forget::forget_events(log, report).await?),
                None => None,
            };
            #[cfg(not(feature = "redis"))]
            let event_count: Option<u64> = None;
            if json_out {
                let per: Vec<Value> = report
                    .iter()
                    .map(|(ns, f)| json!({"namespace": ns, "items": f.items, "vectors": f.vectors, "messages": f.messages, "summaries": f.summaries, "other": f.other}))
                    .collect();
                print_json(&json!({
                    "user": user, "items": total, "vectors": vectors, "events": event_count,
                    "namespaces": per, "cleaned": cleaned,
                    "error": done.failure.as_ref().map(ToString::to_string),
                }))?;
                return forget::stopped(&done);
            }
            let rows: Vec<Vec<String>> = report
                .iter()
                .map(|(ns, f)| {
                    vec![
                        ns.clone(),
                        f.items.to_string(),
                        f.vectors.to_string(),
                        f.messages.to_string(),
                        f.summaries.to_string(),
                        f.other.to_string(),
                    ]
                })
                .collect();
            print!(
                "{}",
                table::render(
                    &[
                        "namespace",
                        "items",
                        "vectors",
                        "messages",
                        "summaries",
                        "other"
                    ],
                    &rows,
                    60
                )
            );
            println!(
                "forgot user {user}: {total} items and {vectors} vectors deleted in {}",
                plural(report.len(), "namespace")
            );
            if let Some(n) = event_count {
                println!("and {n} events deleted from the event log");
            }
            for line in &cleaned {
                println!("cleaned {line}");
            }
            forget::stopped(&done)?;
            Ok(())
        }
        Command::Export { namespaces, out } => {
            let store = raw(&url).await?;
            let namespaces = namespaces_of(&store, namespaces).await?;
            let total = transfer::count_exported(&store, &namespaces)
                .await
                .map_err(err)?;
            let bar = progress(total, "export", false);
            let done = if out == "-" {
                let mut w = std::io::BufWriter::new(std::io::stdout().lock());
                transfer::export(&store, &namespaces, &mut w, &bar).await
            } else {
                let file = memlayer::files::create_private(&PathBuf::from(&out))
                    .map_err(|e| format!("creating {out}: {e}"))?;
                let mut w = std::io::BufWriter::new(file);
                transfer::export(&store, &namespaces, &mut w, &bar).await
            }
            .map_err(err)?;
            bar.finish_and_clear();
            eprintln!(
                "exported {} ({} with vectors, {}) from {}",
                plural(done.items, "item"),
                done.vectors,
                plural(done.blobs, "shared blob"),
                plural(namespaces.len(), "namespace")
            );
            Ok(())
        }
        Command::Keys { action } => keys_cmd::run(&url, action, json_out).await,
        Command::Import {
            file,
            from,
            namespace,
            map,
        } if from != importers::Format::Memlayer => {
            import_cmd::foreign(&url, &file, from, &namespace, &map, json_out).await
        }
        Command::Import { file, .. } => {
            let store = raw(&url).await?;
            let done = if file == "-" {
                let bar = ProgressBar::hidden();
                let mut r = BufReader::new(std::io::stdin().lock());
                transfer::import(&store, &mut r, &bar).await
            } else {
                let f = std::fs::File::open(&file).map_err(|e| format!("opening {file}: {e}"))?;
                let len = f.metadata().map(|m| m.len()).unwrap_or(0);
                let bar = progress(len, "import", true);
                let mut r = BufReader::new(f);
                let done = transfer::import(&store, &mut r, &bar).await;
                bar.finish_and_clear();
                done
            }
            .map_err(err)?;
            if json_out {
                return print_json(
                    &json!({"imported": done.items, "vectors": done.vectors, "blobs": done.blobs}),
                );
            }
            println!(
                "imported {} items ({} with vectors, {} shared blobs)",
                done.items, done.vectors, done.blobs
            );
            Ok(())
        }
        Command::Reembed {
            to,
            namespaces,
            max_items,
        } => {
            let source = raw(&url).await?;
            let target_raw = raw(&to).await?;
            let pin = target_raw.embedding_pin().await.map_err(err)?;
            let (embedder, what) = memlayer::embed::embedder_for(pin.as_ref())
                .await
                .map_err(err)?;
            eprintln!("memlayer: target {what}");
            let target = memlayer::embed::EmbeddingStore::new(target_raw, embedder)
                .await
                .map_err(err)?;
            let namespaces = namespaces_of(&source, namespaces).await?;
            let total = transfer::count_exported(&source, &namespaces)
                .await
                .map_err(err)?;
            let bar = progress(total, "reembed", false);
            let done = transfer::reembed(&source, &target, &namespaces, max_items, &bar)
                .await
                .map_err(err)?;
            bar.finish_and_clear();
            if json_out {
                return print_json(&json!({
                    "embedded": done.embedded,
                    "skipped": done.skipped,
                    "vectorless": done.vectorless,
                }));
            }
            println!(
                "re-embedded {} items ({} already done, {} without content)",
                done.embedded, done.skipped, done.vectorless
            );
            Ok(())
        }
    }
}
