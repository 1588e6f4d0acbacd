//! Ordered listing and keyset paging over the index's sortable fields.

use memlayer_store::types::MemoryItem;
use memlayer_store::{Cursor, ListRequest, Order, Result, SortKey, SortValue};

use crate::client::{NO_ACCESS, RedisStore};
use crate::codec::{Doc, num};
use crate::filter::Translated;

impl RedisStore {
    pub(crate) fn sort_field(key: SortKey) -> &'static str {
        match key {
            SortKey::Created => "cat",
            SortKey::Updated => "uat",
            SortKey::Accessed => "acc",
            SortKey::AccessCount => "cnt",
            SortKey::Importance => "imp",
        }
    }

    pub(crate) fn sort_value(item: &MemoryItem, key: SortKey) -> f64 {
        match key {
            SortKey::Accessed => item
                .last_accessed_at
                .map_or(NO_ACCESS, |t| t.as_millis() as f64),
            SortKey::Importance => f64::from(item.importance),
            other => match other.value_of(item) {
                SortValue::Int(v) => v as f64,
                SortValue::Float(v) => v,
            },
        }
    }

    /// Items matching `t`, in (key, id) order after `after`, at most `need`: exact keyset
    /// paging built from numeric ranges, with ties on the key ordered by id in Rust.
    pub(crate) async fn ordered(
        &self,
        t: &Translated,
        key: SortKey,
        order: Order,
        after: Option<(f64, String)>,
        need: usize,
    ) -> Result<Vec<MemoryItem>> {
        let field = Self::sort_field(key);
        let desc = order == Order::Desc;
        let mut out: Vec<MemoryItem> = Vec::new();
        let by_id = |items: &mut Vec<MemoryItem>| {
            items.sort_by(|a, b| {
                if desc {
                    b.id.cmp(&a.id)
                } else {
                    a.id.cmp(&b.id)
                }
            });
        };
        let tie_group = |v: f64| format!("{} @{field}:[{} {}]", t.query, num(v), num(v));
        let mut bound: Option<f64> = None;
        if let Some((v, id)) = after {
            let mut tie: Vec<MemoryItem> = self
                .all_docs(&tie_group(v))
                .await?
                .iter()
                .map(Doc::item)
                .collect::<Result<_>>()?;
            tie.retain(|i| {
                (if desc { i.id < id } else { i.id > id }) && Self::passes(i, &t.residual)
            });
            by_id(&mut tie);
            out.extend(tie);
            bound = Some(v);
        }
        while out.len() < need {
            let range = match bound {
                None => String::new(),
                Some(v) if desc => format!(" @{field}:[-inf ({}]", num(v)),
                Some(v) => format!(" @{field}:[({} +inf]", num(v)),
            };
            let want = (need - out.len() + 1).max(10);
            let query = format!("{}{range}", t.query);
            let (total, mut docs) = self
                .search_docs(
                    &query,
                    vec![
                        "SORTBY".into(),
                        field.into(),
                        if desc { "DESC" } else { "ASC" }.into(),
                        "LIMIT".into(),
                        "0".into(),
                        want.to_string().into(),
                    ],
                    false,
                )
                .await?;
            // RediSearch's sorted answer is occasionally short of its own count when the sort
            // field is also range-filtered; then read the range whole and sort here.
            if (docs.len() as u64) < total.min(want as u64) {
                docs = self.all_docs(&query).await?;
                docs.sort_by(|a, b| {
                    let va = a.item().map(|i| Self::sort_value(&i, key)).unwrap_or(0.0);
                    let vb = b.item().map(|i| Self::sort_value(&i, key)).unwrap_or(0.0);
                    let o = va.total_cmp(&vb);
                    if desc { o.reverse() } else { o }
                });
                docs.truncate(want);
            }
            if docs.is_empty() {
                break;
            }
            let items: Vec<MemoryItem> = docs.iter().map(Doc::item).collect::<Result<_>>()?;
            let last = items
                .last()
                .map(|i| Self::sort_value(i, key))
                .unwrap_or(0.0);
            let full = items.len() >= want;
            // RediSearch orders equal values arbitrarily: settle (value, id) order here.
            let mut settled: Vec<MemoryItem> = items
                .iter()
                .filter(|i| Self::sort_value(i, key) != last && Self::passes(i, &t.residual))
                .cloned()
                .collect();
            settled.sort_by(|a, b| {
                let o = Self::sort_value(a, key)
                    .total_cmp(&Self::sort_value(b, key))
                    .then_with(|| a.id.cmp(&b.id));
                if desc { o.reverse() } else { o }
            });
            out.extend(settled);
            let mut tie: Vec<MemoryItem> = if full {
                self.all_docs(&tie_group(last))
                    .await?
                    .iter()
                    .map(Doc::item)
                    .collect::<Result<_>>()?
            } else {
                items
                    .into_iter()
                    .filter(|i| Self::sort_value(i, key) == last)
                    .collect()
            };
            tie.retain(|i| Self::passes(i, &t.residual));
            by_id(&mut tie);
            out.extend(tie);
            if !full {
                break;
            }
            bound = Some(last);
        }
        out.truncate(need);
        Ok(out)
    }

    pub(crate) async fn ordered_page(
        &self,
        namespace: &str,
        request: &ListRequest,
        cursor: Option<Cursor>,
        offset: usize,
    ) -> Result<(Vec<MemoryItem>, Option<String>)> {
        let t = self.translate(namespace, &request.filter, request.filter.effective_now());
        if t.empty {
            return Ok((Vec::new(), None));
        }
        let after = cursor.map(|c| {
            let v = match c.value {
                SortValue::Int(i) if request.sort == SortKey::Accessed && i == i64::MIN => {
                    NO_ACCESS
                }
                SortValue::Int(i) => i as f64,
                SortValue::Float(f) => f,
            };
            (v, c.id)
        });
        let limit = request.effective_limit();
        let mut items = self
            .ordered(&t, request.sort, request.order, after, offset + limit + 1)
            .await?;
        let mut items: Vec<MemoryItem> = items.drain(..).skip(offset).collect();
        let next = if items.len() > limit {
            items.truncate(limit);
            items
                .last()
                .map(|l| Cursor::after(l, request.sort, request.order).encode())
        } else {
            None
        };
        Ok((items, next))
    }
}
