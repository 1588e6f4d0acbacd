//! Reading a BEIR-format dataset (`../shared/docs/EVAL.md`), with the optional `namespace` and
//! `metadata` fields, and turning its documents into memory items.

use std::collections::HashMap;
use std::io::BufRead;
use std::path::Path;

use anyhow::{Context, Result, bail};
use chrono::{NaiveDate, NaiveTime, TimeZone, Utc};
use memlayer::{Kind, MemoryItem, Tier, Timestamp};
use serde_json::{Map, Value};

/// One document or query of a dataset.
#[derive(Clone, Debug)]
pub struct Record {
    pub id: String,
    pub text: String,
    pub namespace: Option<String>,
    pub metadata: Map<String, Value>,
    /// The document before this one in its conversation session, if the dataset is one.
    pub follows: Option<String>,
}

impl Record {
    /// The query's category (LoCoMo's `metadata.category`), when it has one.
    pub fn category(&self) -> Option<u64> {
        self.metadata.get("category").and_then(Value::as_u64)
    }
}

/// A BEIR dataset: corpus, queries and graded relevance judgements.
#[derive(Debug)]
pub struct Dataset {
    pub name: String,
    pub corpus: Vec<Record>,
    pub queries: Vec<Record>,
    /// query id -> (doc id -> grade)
    pub qrels: HashMap<String, HashMap<String, u32>>,
}

fn read_jsonl(path: &Path, is_corpus: bool) -> Result<Vec<Record>> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut out = Vec::new();
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(&line)
            .with_context(|| format!("{}:{}: not JSON", path.display(), n + 1))?;
        let id = match &v["_id"] {
            Value::String(s) => s.clone(),
            Value::Number(x) => x.to_string(),
            _ => bail!("{}:{}: no _id", path.display(), n + 1),
        };
        let text = v["text"].as_str().unwrap_or_default();
        let title = if is_corpus {
            v["title"].as_str().unwrap_or_default()
        } else {
            ""
        };
        let text = if title.is_empty() {
            text.to_owned()
        } else {
            format!("{title} {text}")
        };
        let namespace = v["namespace"].as_str().map(str::to_owned);
        let metadata = match &v["metadata"] {
            Value::Object(m) => m.clone(),
            Value::Null => Map::new(),
            _ => bail!("{}:{}: metadata is not an object", path.display(), n + 1),
        };
        out.push(Record {
            id,
            text,
            namespace,
            metadata,
            follows: None,
        });
    }
    Ok(out)
}

/// Loads `corpus.jsonl`, `queries.jsonl` and `qrels/test.tsv` from `dir`.
pub fn load(dir: &Path) -> Result<Dataset> {
    let corpus = read_jsonl(&dir.join("corpus.jsonl"), true)?;
    let queries = read_jsonl(&dir.join("queries.jsonl"), false)?;
    let mut qrels: HashMap<String, HashMap<String, u32>> = HashMap::new();
    let path = dir.join("qrels").join("test.tsv");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    for (n, line) in text.lines().enumerate() {
        let cols: Vec<&str> = line.split('\t').collect();
        if cols.len() < 3 || (n == 0 && cols[0] == "query-id") {
            continue;
        }
        let grade: f64 = cols[2]
            .trim()
            .parse()
            .with_context(|| format!("{}:{}", path.display(), n + 1))?;
        if grade > 0.0 {
            qrels
                .entry(cols[0].to_owned())
                .or_default()
                .insert(cols[1].to_owned(), grade as u32);
        }
    }
    let name = dir
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "dataset".into());
    let mut corpus = corpus;
    link_conversations(&mut corpus);
    Ok(Dataset {
        name,
        corpus,
        queries,
        qrels,
    })
}

/// Links each turn of a conversation dataset (documents with a `session` in their metadata,
/// in corpus order) to the turn before it in the same namespace and session, as the
/// orchestrator links the messages it appends.
fn link_conversations(corpus: &mut [Record]) {
    for i in 1..corpus.len() {
        let (before, after) = corpus.split_at_mut(i);
        let (prev, r) = (&before[i - 1], &mut after[0]);
        let session = r.metadata.get("session");
        if session.is_some()
            && prev.namespace == r.namespace
            && prev.metadata.get("session") == session
        {
            r.follows = Some(prev.id.clone());
        }
    }
}

/// The namespace a record lives in during a run.
pub fn namespace_of(dataset: &str, ns: Option<&str>) -> String {
    match ns {
        Some(ns) => format!("eval-{dataset}-{ns}"),
        None => format!("eval-{dataset}"),
    }
}

/// A document as the memory item an application would write: the text as content, and the
/// metadata EVAL.md names mapped to the item's fields (`user_id`, `session_id` or LoCoMo's
/// `session`, `created_at` or LoCoMo's `session_time`); anything else goes to `extra`.
pub fn item_of(dataset: &str, r: &Record) -> Result<MemoryItem> {
    let mut item = MemoryItem::new(
        namespace_of(dataset, r.namespace.as_deref()),
        Kind::Fact,
        r.text.clone(),
    )
    .with_id(r.id.clone())
    .with_tier(Tier::Semantic);
    for (key, value) in &r.metadata {
        let text = match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        match key.as_str() {
            "user_id" => item = item.with_user(text),
            "session_id" | "session" => item = item.with_session(text),
            "created_at" | "session_time" => {
                let at = Timestamp::parse_rfc3339(&text)
                    .or_else(|| parse_session_time(&text))
                    .with_context(|| format!("{}: {key} {text:?} is not a time", r.id))?;
                item.created_at = at;
                item.updated_at = at;
            }
            _ => item = item.with_extra(key.clone(), value.clone()),
        }
    }
    if let Some(prev) = &r.follows {
        item = item.with_extra(memlayer::ranking::context::FOLLOWS, prev.clone());
    }
    Ok(item)
}

/// LoCoMo's session times, as written in the data: `1:56 pm on 8 May, 2023`.
pub fn parse_session_time(s: &str) -> Option<Timestamp> {
    let (clock, date) = s.split_once(" on ")?;
    let time = NaiveTime::parse_from_str(&clock.trim().to_uppercase(), "%I:%M %p").ok()?;
    let date = NaiveDate::parse_from_str(date.trim(), "%d %B, %Y").ok()?;
    let at = Utc.from_utc_datetime(&date.and_time(time));
    Some(Timestamp::from_millis(at.timestamp_millis()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_times_parse_as_written() {
        let at = parse_session_time("1:56 pm on 8 May, 2023").map(Timestamp::to_rfc3339);
        assert_eq!(at.as_deref(), Some("2023-05-08T13:56:00.000Z"));
        let at = parse_session_time("12:09 am on 13 September, 2023").map(Timestamp::to_rfc3339);
        assert_eq!(at.as_deref(), Some("2023-09-13T00:09:00.000Z"));
        assert!(parse_session_time("yesterday").is_none());
    }

    #[test]
    fn metadata_maps_to_item_fields() -> Result<()> {
        let mut metadata = Map::new();
        metadata.insert("session".into(), Value::from(3));
        metadata.insert("session_time".into(), Value::from("1:56 pm on 8 May, 2023"));
        metadata.insert("speaker".into(), Value::from("Caroline"));
        let r = Record {
            id: "conv-1|D3:1".into(),
            text: "Caroline: hello".into(),
            namespace: Some("conv-1".into()),
            metadata,
            follows: None,
        };
        let item = item_of("locomo", &r)?;
        assert_eq!(item.namespace, "eval-locomo-conv-1");
        assert_eq!(item.metadata.session_id.as_deref(), Some("3"));
        assert_eq!(item.created_at.to_rfc3339(), "2023-05-08T13:56:00.000Z");
        assert_eq!(item.metadata.extra["speaker"], "Caroline");
        Ok(())
    }
}
