//! The OpenAPI 3.1 document of the native API, served at `/openapi.json`.

use serde_json::{Value, json};

fn op(summary: &str, body: Option<&str>, ok: &str) -> Value {
    let mut o = json!({
        "summary": summary,
        "responses": {
            ok: { "description": "success" },
            "400": { "$ref": "#/components/responses/Error" },
            "401": { "$ref": "#/components/responses/Error" },
            "403": { "$ref": "#/components/responses/Error" },
            "422": { "$ref": "#/components/responses/Error" },
            "503": { "$ref": "#/components/responses/Error" }
        }
    });
    if let Some(schema) = body {
        o["requestBody"] = json!({
            "required": true,
            "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{schema}") } } }
        });
    }
    o
}

/// The document.
pub fn document() -> Value {
    let ns =
        json!({ "name": "ns", "in": "path", "required": true, "schema": { "type": "string" } });
    let id =
        json!({ "name": "id", "in": "path", "required": true, "schema": { "type": "string" } });
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "memlayer",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Memory for LLM agents: items, search, conversations and long-term memories over any memlayer store."
        },
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
            "responses": {
                "Error": {
                    "description": "an error",
                    "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } }
                }
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "properties": { "error": { "type": "object", "properties": {
                        "kind": { "type": "string" }, "message": { "type": "string" }, "field": { "type": "string" }
                    }, "required": ["kind", "message"] } }
                },
                "Item": {
                    "type": "object",
                    "description": "A memory item; namespace comes from the path, id is generated when absent.",
                    "required": ["kind", "content"],
                    "properties": {
                        "id": { "type": "string" }, "kind": { "type": "string" }, "content": { "type": "string" },
                        "status": { "enum": ["draft", "accepted", "discard"] },
                        "tier": { "enum": ["working", "episodic", "semantic", "procedural"] },
                        "metadata": { "type": "object" }, "tags": { "type": "array", "items": { "type": "string" } },
                        "importance": { "type": "number" }, "confidence": { "type": "number" },
                        "expires_at": { "type": "string" }, "tool_calls": { "type": "array" },
                        "tool_call_id": { "type": "string" }, "tool_name": { "type": "string" },
                        "embedding": { "type": "object", "properties": { "model": { "type": "string" }, "vector": { "type": "array", "items": { "type": "number" } } } }
                    }
                },
                "Items": { "type": "array", "items": { "$ref": "#/components/schemas/Item" } },
                "SearchRequest": {
                    "type": "object",
                    "properties": {
                        "mode": { "enum": ["recent", "keyword", "vector", "hybrid"] },
                        "query": { "type": "string" }, "vector": { "type": "array", "items": { "type": "number" } },
                        "filter": { "$ref": "#/components/schemas/Filter" },
                        "limit": { "type": "integer" }, "offset": { "type": "integer" }, "cursor": { "type": "string" },
                        "min_score": { "type": "number", "description": "relevance floor on the mode's own score (BM25, cosine or fused)" },
                        "hybrid": { "type": "object", "properties": {
                            "fusion": { "type": "object", "description": "{method: convex, keyword_weight} or {method: rrf, k}" },
                            "pool_depth": { "type": "integer" },
                            "context_weight": { "type": "number", "description": "0..=1: lift of a message by its linked neighbours" } } }
                    }
                },
                "Filter": {
                    "type": "object",
                    "description": "user/session/task/agent ({match: any|is|unset, value}), kinds, statuses, tags, metadata conditions, exclude_ids, created/updated/accessed ranges, include_expired/superseded/deleted, now, as_of."
                },
                "ListRequest": { "type": "object", "properties": {
                    "filter": { "$ref": "#/components/schemas/Filter" }, "sort": { "type": "string" },
                    "order": { "enum": ["asc", "desc"] }, "limit": { "type": "integer" }, "cursor": { "type": "string" } } },
                "ClearRequest": { "type": "object", "properties": {
                    "filter": { "$ref": "#/components/schemas/Filter" }, "all": { "type": "boolean" } } },
                "Supersede": { "type": "object", "required": ["by"], "properties": { "by": { "type": "string" } } },
                "Reinforce": { "type": "object", "required": ["ids"], "properties": {
                    "ids": { "type": "array", "items": { "type": "string" } }, "at": { "type": "string" } } },
                "Scope": { "type": "object", "properties": {
                    "user": { "type": "string" }, "session": { "type": "string" }, "task": { "type": "string" }, "agent": { "type": "string" } } },
                "Append": { "type": "object", "required": ["scope", "messages"], "properties": {
                    "scope": { "$ref": "#/components/schemas/Scope" }, "messages": { "$ref": "#/components/schemas/Items" } } },
                "Window": { "type": "object", "required": ["scope"], "properties": {
                    "scope": { "$ref": "#/components/schemas/Scope" }, "max_rounds": { "type": "integer" }, "max_tokens": { "type": "integer" } } },
                "Memory": { "type": "object", "required": ["scope", "type", "content"], "properties": {
                    "scope": { "$ref": "#/components/schemas/Scope" },
                    "type": { "enum": ["user_profile", "agent_experience", "facts"] },
                    "content": { "type": "string" }, "subject": { "type": "string" }, "predicate": { "type": "string" },
                    "object": { "type": "string" }, "importance": { "type": "number" }, "confidence": { "type": "number" },
                    "tags": { "type": "array", "items": { "type": "string" } } } },
                "NewKey": { "type": "object", "required": ["name", "scope"], "properties": {
                    "name": { "type": "string" }, "scope": { "enum": ["read", "write", "admin"] },
                    "namespaces": { "type": "array", "items": { "type": "string" }, "description": "required for read and write keys" },
                    "expires": { "type": "string", "description": "a span: 90s, 15m, 12h, 30d, 2w" } } },
                "Rotate": { "type": "object", "properties": {
                    "grace": { "type": "string", "description": "how long the old secret keeps working (a span; 0s by default)" } } }
            }
        },
        "security": [ { "bearer": [] } ],
        "paths": {
            "/health": { "get": op("Liveness", None, "200") },
            "/ready": { "get": op("Readiness: pings the store", None, "200") },
            "/metrics": { "get": op("Prometheus metrics", None, "200") },
            "/namespaces": { "get": op("Namespaces the token may see", None, "200") },
            "/ns/{ns}": {
                "parameters": [ns],
                "get": op("Count items (?include_deleted=true)", None, "200"),
                "delete": op("Hard-delete the namespace", None, "200")
            },
            "/ns/{ns}/items": { "parameters": [ns], "post": op("Upsert one item (201 when new)", Some("Item"), "201") },
            "/ns/{ns}/items/batch": { "parameters": [ns], "post": op("Upsert many, all or nothing (413 above the store's batch limit)", Some("Items"), "200") },
            "/ns/{ns}/items/{id}": {
                "parameters": [ns, id],
                "get": op("Read a live item", None, "200"),
                "put": op("Upsert under this id", Some("Item"), "200"),
                "delete": op("Hard-delete", None, "204")
            },
            "/ns/{ns}/items/{id}/supersede": { "parameters": [ns, id], "post": op("Mark as replaced by another item", Some("Supersede"), "200") },
            "/ns/{ns}/items/{id}/restore": { "parameters": [ns, id], "post": op("Undo a supersession", None, "200") },
            "/ns/{ns}/items/{id}/predecessors": { "parameters": [ns, id], "get": op("Items this one replaced", None, "200") },
            "/ns/{ns}/search": { "parameters": [ns], "post": op("Search in any mode with any filter (the hits' embeddings only with ?vectors=true)", Some("SearchRequest"), "200") },
            "/ns/{ns}/list": { "parameters": [ns], "post": op("List with keyset cursors", Some("ListRequest"), "200") },
            "/ns/{ns}/clear": { "parameters": [ns], "post": op("Soft-delete matching items (all needs all: true)", Some("ClearRequest"), "200") },
            "/ns/{ns}/reinforce": { "parameters": [ns], "post": op("Record accesses", Some("Reinforce"), "200") },
            "/ns/{ns}/conversations/append": { "parameters": [ns], "post": op("Append messages to a scope's conversation", Some("Append"), "200") },
            "/ns/{ns}/conversations/window": { "parameters": [ns], "post": op("The window of a conversation for the next prompt", Some("Window"), "200") },
            "/ns/{ns}/memories": { "parameters": [ns], "post": op("Remember, with dedup and supersession", Some("Memory"), "200") },
            "/ns/{ns}/export": { "parameters": [ns], "get": op("Every item as JSON lines", None, "200") },
            "/ns/{ns}/import": { "parameters": [ns], "post": op("Upsert JSON lines of items", None, "200") },
            "/keys": {
                "get": op("The API keys (admin): never a secret", None, "200"),
                "post": op("Make an API key (admin); its token is in this answer only", Some("NewKey"), "201")
            },
            "/keys/{id}": { "parameters": [id], "delete": op("Revoke a key, by id or name (admin)", None, "200") },
            "/keys/{id}/rotate": { "parameters": [id], "post": op("Give a key a new secret (admin)", Some("Rotate"), "200") },
            "/mcp": { "post": op("The Model Context Protocol over Streamable HTTP (JSON-RPC)", None, "200") }
        }
    })
}
