//! Every scenario of the suite. Each takes a [`Ctx`](crate::Ctx) and panics on a violation.
//!
//! The list in [`__for_each_scenario!`](crate::__for_each_scenario) is the single source of
//! scenario names, capabilities and contract sentences: the `suite!` macro and [`SCENARIOS`]
//! (which `docs/conformance.md` is written from) both expand it.

mod clear;
mod concurrency;
mod crud;
mod filters;
mod hybrid;
mod keyword;
mod lifecycle;
mod listing;
mod tenancy;
mod vector;

pub use clear::*;
pub use concurrency::*;
pub use crud::*;
pub use filters::*;
pub use hybrid::*;
pub use keyword::*;
pub use lifecycle::*;
pub use listing::*;
pub use tenancy::*;
pub use vector::*;

/// The one list of scenarios: `name [capabilities] "contract";`.
#[doc(hidden)]
#[macro_export]
macro_rules! __for_each_scenario {
    ($($args:tt)*) => {
        $crate::__expand_scenarios! { [$($args)*]
            crud_roundtrip [] "1. Upsert then get returns identical content, kind, kind fields, status, metadata, tags, tier and timestamps.";
            crud_missing_is_not_found [] "2. Get of a missing id, or of an id in another namespace, is NotFound.";
            crud_upsert_replaces_in_place ["vector_search"] "3. Upserting an existing id replaces it in place: one row, count unchanged, one vector hit.";
            crud_batch_repeats_an_id [] "3. A batch that names an id twice, or an id already stored, applies its items in order: as many upserts one after another.";
            crud_version_and_created_at [] "4. Version is 1 after insert and grows by exactly 1 per upsert; created_at is kept even if the caller sends another; updated_at advances.";
            crud_same_id_in_two_namespaces ["keyword_search", "vector_search", "hybrid_search"] "5. The same id written in two namespaces is two items: each namespace's writes, reads, versions, searches and deletes see only its own.";
            crud_delete_twice_is_not_found [] "6. Delete then get is NotFound; a second delete is NotFound.";
            crud_persists_across_reopen [] "7. File and server stores keep items, vectors and the model pin across close and reopen; a closed store answers Unavailable.";
            crud_invalid_input_names_field [] "Bad input is InvalidInput naming the field and the limit, and never alters stored data.";
            crud_status_transitions [] "Only draft->accepted, draft->discard and accepted->discard are legal status moves; others are InvalidInput.";
            clear_soft_deletes_exact_count [] "8. clear(filter) soft-deletes the matching live items and returns exactly their number; search and get no longer see them.";
            clear_refuses_empty_filter [] "9. A clear whose filter selects everything is InvalidInput unless the explicit all flag is set.";
            count_live_and_deleted [] "10. count() counts live items; count(include_deleted) counts every id written and not hard-deleted.";
            clear_then_upsert_revives [] "11. Re-upserting a soft-deleted id revives it.";
            search_recent_newest_first [] "12. recent mode returns live items newest first, capped by limit (default 10).";
            search_recent_cursor_is_stable [] "12. Cursor pages never repeat or skip an item, even while new items are inserted.";
            search_offset_pages [] "12. Offset pages of every mode partition the ranking without repeats.";
            search_keyword_case_and_word_forms ["keyword_search"] "13. Keyword search is case-insensitive and matches word forms (cats finds cat).";
            search_keyword_ranks_by_bm25 ["keyword_search"] "13. Keyword search ranks by BM25: rarer terms and denser matches rank higher.";
            search_keyword_top_k_is_the_ranking_head ["keyword_search"] "13. A keyword search's hits at any limit are the head of its full ranking, with the same scores, also when most items hold the query's common terms and under an owner filter.";
            search_keyword_syntax_is_literal ["keyword_search"] "13. Keyword search never matches on %, _, * or other syntax: they are literal.";
            search_keyword_hostile_input ["keyword_search"] "14. Hostile keyword input never errors and never alters data; a plain query afterwards still works.";
            search_filters_compose_in_every_mode ["keyword_search", "vector_search", "hybrid_search"] "15. Every filter field composes with every mode.";
            search_selective_filter_fills_limit ["keyword_search", "vector_search", "hybrid_search"] "15. A selective filter still returns limit hits when that many match.";
            search_owner_change_moves_item [] "15. An upsert that changes an item's user, session, task or agent moves it between the filters naming them; a deleted item leaves them.";
            search_bounded_items_beside_plain_ones [] "15. Items with a future expiry or a validity interval are found beside plain ones, and an expired one never, in every mode, under owner and kind filters and in list and count, also after an upsert moves an item from one group to the other.";
            search_metadata_keys_are_safe [] "16. Unknown metadata keys and keys with dots, quotes or SQL in them are handled safely, never interpolated.";
            search_metadata_is_typed [] "Metadata numbers compare as numbers, never as text, and a string never equals a number.";
            list_sorts_and_pages [] "list sorts by every key in both directions, breaks ties by id, and cursor pages cover every item once.";
            vector_exact_then_near ["vector_search"] "17. The exact vector ranks first, the near one second; no hit from another namespace or user.";
            vector_crowded_by_other_namespace ["vector_search"] "17. A namespace's vector search fills limit from its own items when another namespace holds many nearer vectors.";
            vector_zero_and_non_finite ["vector_search"] "18. Cosine with a zero vector is 0, never NaN; NaN or infinite components are InvalidInput.";
            vector_dimension_is_pinned ["vector_search"] "A store pins model and dimension on first use; another dimension is InvalidInput naming both numbers.";
            vector_reads_across_the_pin ["vector_search"] "Reads made before a store pins its model (get, filtered search) keep working after the pin, with the vectors.";
            vector_vectorless_and_stale ["vector_search", "keyword_search"] "19. A vectorless item is keyword-searchable but never a vector hit; re-upserting with a vector makes it one; without removes it.";
            vector_removed_items_vanish ["vector_search"] "20. After delete, clear or namespace delete, vector search no longer returns the removed items.";
            hybrid_fills_both_scores ["hybrid_search"] "21. Hybrid returns a final score and fills both per-signal scores when both signals hit.";
            hybrid_lexical_older_beats_newer ["hybrid_search"] "22. A lexically matching older item outranks a non-matching newer one.";
            hybrid_no_signal_is_recency ["hybrid_search"] "23. An empty or signal-less hybrid query falls back to recency and says so in the scores.";
            hybrid_fusion_is_deterministic ["hybrid_search"] "24. Fusion is deterministic: the same data and query give the same order, ties broken by id.";
            hybrid_context_lifts_replies ["hybrid_search"] "24a. In hybrid search a message is lifted by the fused score of the message it follows or that follows it; context weight 0 ranks without links; the weight is checked.";
            search_relevance_floor ["hybrid_search"] "24b. A relevance floor leaves out hits scoring below it, in the mode's own score; a floor that is not a finite number is InvalidInput naming `min_score`.";
            hybrid_leaves_out_unsupported_hits ["hybrid_search"] "24c. Hybrid leaves out a hit no signal speaks for (fused score 0): the vector leg's least similar item, not found by keyword, does not pad the answer.";
            tenancy_users_never_mix [] "25. A search scoped to alice never returns bob's items; items with no user are invisible to named users and vice versa.";
            namespace_delete_counts [] "26. Namespace delete returns the number deleted and leaves siblings untouched; an unknown namespace returns 0.";
            namespace_list_and_reassign [] "26. list namespaces lists each once; reassign moves only listed ids present in the source, vectors included.";
            tenancy_no_cross_namespace_oracle ["vector_search"] "26a. No answer in one namespace depends on what another holds: write, get, delete, supersede, restore, predecessors, reinforce, expiry and reassign treat another namespace's ids exactly as free ones.";
            lifecycle_expired_hidden [] "27. Expired items are hidden by default and shown with include_expired; now overrides the clock.";
            lifecycle_delete_if_expired_before [] "28. delete-if-expired-before deletes only if still expired at the cutoff; NotFound otherwise.";
            lifecycle_reinforce [] "29. Reinforce adds 1 to access_count, sets last_accessed_at, slides only expiring items, ignores missing ids.";
            lifecycle_decay [] "Decay scales importance and confidence of idle items towards a floor, atomically, without a version bump; bad arguments name the field.";
            lifecycle_supersede_and_time_travel [] "30. Supersede hides the item and stamps valid_to; as_of before shows it; restore undoes both; predecessors lists replaced ids.";
            concurrency_mixed_operations [] "31. 8 tasks x 25 mixed operations finish with no error but NotFound on racing deletes, and final counts are exact.";
            concurrency_same_id_no_lost_update [] "32. 16 concurrent upserts of one id end with version 17 (Conflicts retried), never a silent loss.";
            batch_with_invalid_item_stores_none ["atomic_batch"] "33. A batch upsert containing one invalid item stores none of the batch.";
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __expand_scenarios {
    ([tests $backend:ident, $make:expr] $($name:ident [$($cap:literal),*] $doc:literal;)*) => {
        $( $crate::__emit_test!($backend, $make, $name); )*
    };
    ([consts] $($name:ident [$($cap:literal),*] $doc:literal;)*) => {
        /// Every scenario, in suite order.
        pub const SCENARIOS: &[$crate::Scenario] = &[
            $( $crate::Scenario { name: stringify!($name), requires: &[$($cap),*], contract: $doc } ),*
        ];
    };
}

crate::__for_each_scenario!(consts);

#[cfg(test)]
mod tests {
    use memlayer_store::Capabilities;

    use super::SCENARIOS;

    /// A capability a scenario requires must be a real flag: an unknown name reads as off, and
    /// a typo would skip the scenario on every backend.
    #[test]
    fn every_required_capability_is_a_flag() {
        let flags = Capabilities::full().flags().map(|(name, _)| name);
        for scenario in SCENARIOS {
            for cap in scenario.requires {
                assert!(
                    flags.contains(cap),
                    "{} requires {cap:?}, which is not a capability flag ({flags:?})",
                    scenario.name
                );
            }
        }
    }
}
