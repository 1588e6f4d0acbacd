//! Long-term memory: facts, profiles and experiences, deduplicated and superseded over time.
//!
//! - **Exact duplicates** never add a row: an item's id is derived from its owner, its
//!   extraction type and the fingerprint of its normalised content, so adding the same thing
//!   twice (even from two processes at once) writes one item, whose confidence, importance and
//!   tags are merged.
//! - **Near duplicates** (cosine at or above a threshold, when the store embeds: wrap it in
//!   `memlayer_embed::EmbeddingStore`) are replaced: the new item supersedes the old one.
//! - **Facts with a subject and a predicate**: the same owner, subject and predicate with
//!   another object closes the old fact (`valid_to`, `superseded_by`); the same object raises
//!   the existing fact's confidence instead of adding.
//!
//! Superseded items stay reachable through `Filter::as_of` and `predecessors`.

use memlayer_store::types::{Kind, MemoryItem, Tier, Timestamp};
use memlayer_store::{
    DynStore, Error, ErrorKind, Filter, MemoryStoreExt, Result, SearchMode, SearchRequest,
};
use serde_json::Value as Json;
use sha2::{Digest, Sha256};

use crate::short_term::Scope;

/// What an extraction produced, which decides the kind and tier of the stored item.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ExtractionType {
    /// Facts about the user: `user_profile` items, semantic tier.
    UserProfile,
    /// Lessons of the agent: `agent_experience` items, episodic tier.
    AgentExperience,
    /// Facts about the world: `fact` items, semantic tier.
    Facts,
}

impl ExtractionType {
    /// The stable name (`user_profile`, `agent_experience`, `facts`).
    pub fn as_str(self) -> &'static str {
        match self {
            ExtractionType::UserProfile => "user_profile",
            ExtractionType::AgentExperience => "agent_experience",
            ExtractionType::Facts => "facts",
        }
    }

    /// Parses the stable name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "user_profile" => Some(ExtractionType::UserProfile),
            "agent_experience" => Some(ExtractionType::AgentExperience),
            "facts" => Some(ExtractionType::Facts),
            _ => None,
        }
    }

    /// The item kind it is stored as.
    pub fn kind(self) -> Kind {
        match self {
            ExtractionType::Facts => Kind::Fact,
            other => Kind::Custom(other.as_str().to_owned()),
        }
    }

    /// The tier it is stored in.
    pub fn tier(self) -> Tier {
        match self {
            ExtractionType::AgentExperience => Tier::Episodic,
            _ => Tier::Semantic,
        }
    }
}

/// A subject-predicate-object statement, for supersession.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Triple {
    /// Who or what it is about (`user`, `the project`).
    pub subject: String,
    /// The relation (`lives_in`, `prefers`).
    pub predicate: String,
    /// The value (`Berlin`).
    pub object: String,
}

impl Triple {
    /// A triple.
    pub fn new(
        subject: impl Into<String>,
        predicate: impl Into<String>,
        object: impl Into<String>,
    ) -> Self {
        Triple {
            subject: subject.into(),
            predicate: predicate.into(),
            object: object.into(),
        }
    }
}

/// Something to remember.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct NewMemory {
    /// What kind of memory.
    pub extraction: ExtractionType,
    /// The text.
    pub content: String,
    /// The statement, when it is one.
    pub triple: Option<Triple>,
    /// 0..=1.
    pub importance: f32,
    /// 0..=1.
    pub confidence: f32,
    /// Tags.
    pub tags: Vec<String>,
    /// The tier, when not the extraction type's own.
    pub tier: Option<Tier>,
    /// How long it lives, when not the tier's time to live.
    pub ttl: Option<std::time::Duration>,
    /// Caller metadata (`extra`); the keys the orchestrator sets itself win.
    pub metadata: serde_json::Map<String, Json>,
}

impl NewMemory {
    /// A memory of `extraction` type with `content`, importance 0.5, confidence 0.8.
    pub fn new(extraction: ExtractionType, content: impl Into<String>) -> Self {
        NewMemory {
            extraction,
            content: content.into(),
            triple: None,
            importance: 0.5,
            confidence: 0.8,
            tags: Vec::new(),
            tier: None,
            ttl: None,
            metadata: serde_json::Map::new(),
        }
    }

    /// Stores it in `tier` rather than the extraction type's.
    pub fn with_tier(mut self, tier: Tier) -> Self {
        self.tier = Some(tier);
        self
    }

    /// Lets it expire `ttl` after it is written.
    pub fn with_ttl(mut self, ttl: std::time::Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// Adds a caller metadata key.
    pub fn with_metadata(mut self, key: impl Into<String>, value: Json) -> Self {
        self.metadata.insert(key.into(), value);
        self
    }

    /// The statement it makes.
    pub fn with_triple(mut self, triple: Triple) -> Self {
        self.triple = Some(triple);
        self
    }

    /// Sets the confidence.
    pub fn with_confidence(mut self, confidence: f32) -> Self {
        self.confidence = confidence;
        self
    }

    /// Sets the importance.
    pub fn with_importance(mut self, importance: f32) -> Self {
        self.importance = importance;
        self
    }

    /// Adds a tag.
    pub fn with_tag(mut self, tag: impl Into<String>) -> Self {
        self.tags.push(tag.into());
        self
    }
}

/// What `add` did.
#[derive(Clone, Debug, PartialEq)]
pub enum AddOutcome {
    /// A new item.
    Added(MemoryItem),
    /// The same content was already remembered: merged into it.
    Duplicate(MemoryItem),
    /// The same statement was already remembered: its confidence rose.
    Confirmed(MemoryItem),
    /// The new item replaced an older one (a changed statement, or a near duplicate).
    Superseded {
        /// The new item.
        new: Box<MemoryItem>,
        /// The replaced item, now with `valid_to` and `superseded_by`.
        old: Box<MemoryItem>,
    },
}

impl AddOutcome {
    /// The item that now holds the memory.
    pub fn item(&self) -> &MemoryItem {
        match self {
            AddOutcome::Added(i) | AddOutcome::Duplicate(i) | AddOutcome::Confirmed(i) => i,
            AddOutcome::Superseded { new, .. } => new.as_ref(),
        }
    }
}

/// Lowercase, letters and digits only, single spaces: what "the same content" means.
pub fn normalize(text: &str) -> String {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The fingerprint of a content: a hex digest of its normalised form.
pub fn fingerprint(text: &str) -> String {
    hex(&Sha256::digest(normalize(text).as_bytes())[..16])
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Long-term memories of one namespace.
#[derive(Clone, Debug)]
pub struct LongTermMemory {
    store: DynStore,
    namespace: String,
    near_duplicate: Option<f32>,
}

impl LongTermMemory {
    /// Long-term memory in `namespace`; near duplicates at cosine 0.95 and above.
    pub fn new(store: DynStore, namespace: impl Into<String>) -> Self {
        LongTermMemory {
            store,
            namespace: namespace.into(),
            near_duplicate: Some(0.95),
        }
    }

    /// Sets the near-duplicate threshold (`None` turns the check off).
    pub fn near_duplicate(mut self, threshold: Option<f32>) -> Self {
        self.near_duplicate = threshold;
        self
    }

    /// The store underneath.
    pub fn store(&self) -> &DynStore {
        &self.store
    }

    /// The namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The id an owner's memory of this type and content always gets.
    pub fn id_for(scope: &Scope, extraction: ExtractionType, content: &str) -> String {
        let key = format!(
            "{}\u{1f}{}\u{1f}{}",
            scope.key(),
            extraction.as_str(),
            fingerprint(content)
        );
        format!("ltm-{}", hex(&Sha256::digest(key.as_bytes())[..16]))
    }

    /// Remembers `memory` for the owner `scope`.
    ///
    /// # Errors
    /// `InvalidInput` for an empty content or scores out of 0..=1 (from the store), a scope
    /// without user, session or task; the store's errors otherwise.
    pub async fn add(&self, scope: &Scope, memory: NewMemory) -> Result<AddOutcome> {
        scope.check()?;
        if normalize(&memory.content).is_empty() {
            return Err(Error::invalid(
                "content",
                "has no letters or digits; nothing to remember",
            ));
        }
        let kind = memory.extraction.kind();
        let id = Self::id_for(scope, memory.extraction, &memory.content);
        let now = Timestamp::now();
        let live = Filter::new().at(now);
        // The same content: merge into it.
        if let Some(existing) = self.live(&id, &live).await? {
            let mut merged = existing.clone();
            merged.confidence = merged.confidence.max(memory.confidence);
            merged.importance = merged.importance.max(memory.importance);
            merged.tags.extend(memory.tags.iter().cloned());
            let stored = self.store.upsert(merged).await?;
            return Ok(AddOutcome::Duplicate(stored));
        }
        let mut item = MemoryItem::new(&self.namespace, kind.clone(), &memory.content)
            .with_id(id)
            .with_tier(memory.tier.unwrap_or(memory.extraction.tier()));
        item.metadata.extra = memory.metadata.clone();
        if let Some(ttl) = memory.ttl {
            item.expires_at = Some(now.saturating_add(ttl));
        }
        let mut item = item
            .with_importance(memory.importance)
            .with_confidence(memory.confidence)
            .with_extra("fingerprint", fingerprint(&memory.content))
            .with_extra("extraction", memory.extraction.as_str());
        for t in &memory.tags {
            item = item.with_tag(t.clone());
        }
        scope.stamp(&mut item);
        item.valid_from = Some(now);
        if let Some(triple) = &memory.triple {
            item = item
                .with_extra("subject", normalize(&triple.subject))
                .with_extra("predicate", normalize(&triple.predicate))
                .with_extra("object", normalize(&triple.object));
            let same_relation = scope
                .owner_filter()
                .kind(kind.clone())
                .meta_eq("subject", normalize(&triple.subject))
                .meta_eq("predicate", normalize(&triple.predicate));
            let current = self.store.list_all(&self.namespace, same_relation).await?;
            if let Some(old) = current.into_iter().next() {
                let same_object = old.metadata.extra.get("object")
                    == Some(&Json::String(normalize(&triple.object)));
                if same_object {
                    let mut confirmed = old;
                    confirmed.confidence = raise(confirmed.confidence, memory.confidence);
                    let stored = self.store.upsert(confirmed).await?;
                    return Ok(AddOutcome::Confirmed(stored));
                }
                return self.replace(item, &old.id).await;
            }
        }
        if let Some(threshold) = self.near_duplicate {
            // Hybrid, so a store that does not embed simply has no vector leg (a vector-mode
            // request without a vector is an error); an embedding store embeds the text.
            let request = SearchRequest::new(SearchMode::Hybrid)
                .with_query(memory.content.clone())
                .with_filter(scope.owner_filter().kind(kind))
                .with_limit(5);
            let hits = self.store.search(&self.namespace, &request).await?;
            let nearest = hits
                .hits
                .iter()
                .filter(|h| h.item.id != item.id)
                .filter_map(|h| h.vector_score.map(|s| (s, &h.item.id)))
                .max_by(|a, b| a.0.total_cmp(&b.0).then_with(|| b.1.cmp(a.1)));
            if let Some((score, old_id)) = nearest
                && score >= threshold
            {
                let old_id = old_id.clone();
                return self.replace(item, &old_id).await;
            }
        }
        let stored = self.store.upsert(item).await?;
        Ok(AddOutcome::Added(stored))
    }

    async fn live(&self, id: &str, filter: &Filter) -> Result<Option<MemoryItem>> {
        match self.store.get(&self.namespace, id).await {
            Ok(item) if filter.matches(&item, filter.effective_now()) => Ok(Some(item)),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn replace(&self, item: MemoryItem, old_id: &str) -> Result<AddOutcome> {
        let new = self.store.upsert(item).await?;
        let old = self
            .store
            .supersede(&self.namespace, old_id, &new.id)
            .await?;
        Ok(AddOutcome::Superseded {
            new: Box::new(new),
            old: Box::new(old),
        })
    }

    /// The live memories of an owner, optionally of one type.
    ///
    /// # Errors
    /// The store's errors.
    pub async fn list(
        &self,
        scope: &Scope,
        extraction: Option<ExtractionType>,
    ) -> Result<Vec<MemoryItem>> {
        scope.check()?;
        let mut filter = scope.owner_filter();
        match extraction {
            Some(e) => filter = filter.kind(e.kind()),
            None => {
                for e in [
                    ExtractionType::UserProfile,
                    ExtractionType::AgentExperience,
                    ExtractionType::Facts,
                ] {
                    filter = filter.kind(e.kind());
                }
            }
        }
        self.store.list_all(&self.namespace, filter).await
    }
}

/// Confidence after a confirmation: halfway from the higher of the two to certainty.
fn raise(existing: f32, incoming: f32) -> f32 {
    let base = existing.max(incoming);
    (base + (1.0 - base) * 0.5).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation_ignores_case_punctuation_and_spacing() {
        assert_eq!(
            normalize("  The User lives in BERLIN! "),
            "the user lives in berlin"
        );
        assert_eq!(fingerprint("Likes tea."), fingerprint("likes   TEA"));
        assert_ne!(fingerprint("likes tea"), fingerprint("likes coffee"));
    }

    #[test]
    fn confirmation_raises_confidence_towards_one() {
        assert!((raise(0.6, 0.8) - 0.9).abs() < 1e-6);
        assert!(raise(1.0, 0.2) <= 1.0);
    }

    #[test]
    fn ids_depend_on_owner_type_and_content() {
        let a = Scope::user("alice");
        let b = Scope::user("bob");
        let t = ExtractionType::Facts;
        assert_eq!(
            LongTermMemory::id_for(&a, t, "Likes tea"),
            LongTermMemory::id_for(&a, t, "likes TEA.")
        );
        assert_ne!(
            LongTermMemory::id_for(&a, t, "likes tea"),
            LongTermMemory::id_for(&b, t, "likes tea")
        );
        assert_ne!(
            LongTermMemory::id_for(&a, t, "likes tea"),
            LongTermMemory::id_for(&a, ExtractionType::UserProfile, "likes tea")
        );
    }
}
