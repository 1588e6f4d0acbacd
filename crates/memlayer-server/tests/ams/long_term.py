"""The real agent-memory-client (0.14.0) against a memlayer server: long-term memory, the
memory prompt, forgetting, summary views, and the client's OpenAI and Anthropic tool calls.

Run by tests/ams_compat.rs as `python long_term.py BASE_URL RUN_ID`; every check asserts
results, not just status codes, and works in namespaces of its own run. The server embeds with
the hash embedder (lexical similarity), so "close in meaning" here means "shares words".
"""

import asyncio
import json
import sys
import warnings
from datetime import datetime, timedelta, timezone

from agent_memory_client import MemoryAPIClient, MemoryClientConfig
from agent_memory_client.exceptions import MemoryNotFoundError, MemoryServerError
from agent_memory_client.filters import Entities, MemoryType, Namespace, SessionId, Topics, UserId
from agent_memory_client.models import (
    ClientMemoryRecord,
    ForgetPolicy,
    MemoryMessage,
    RecencyConfig,
    WorkingMemory,
)

warnings.simplefilter("ignore", DeprecationWarning)


def rec(id, text, **kw):
    return ClientMemoryRecord(id=id, text=text, **kw)


def ids(results):
    return [m.id for m in results.memories]


async def check_crud_and_dedup(c, ns):
    await c.create_long_term_memory(
        [
            rec("m1", "Alice prefers dark mode in every editor", user_id="alice", session_id="s1",
                memory_type="semantic", topics=["preferences", "ui"], entities=["alice", "dark_mode"]),
            rec("m2", "Alice flew to Lisbon for a conference in May", user_id="alice", session_id="s2",
                memory_type="episodic", topics=["travel"], entities=["alice", "lisbon"]),
            rec("m3", "Bob drinks green tea every afternoon", user_id="bob", session_id="s3",
                memory_type="semantic", topics=["preferences", "food"], entities=["bob", "tea"]),
            rec("m4", "Bob said hello in the chat", user_id="bob", session_id="s3",
                memory_type="message", topics=["chat"], entities=["bob"]),
        ]
    )
    m1 = await c.get_long_term_memory("m1")
    assert m1.text == "Alice prefers dark mode in every editor", m1
    assert m1.namespace == ns and m1.user_id == "alice" and m1.session_id == "s1", m1
    assert m1.memory_type == "semantic" and sorted(m1.topics) == ["preferences", "ui"], m1
    assert sorted(m1.entities) == ["alice", "dark_mode"] and m1.memory_hash, m1
    m2 = await c.get_long_term_memory("m2")
    assert m2.memory_type == "episodic", m2

    # Overwrite by id: same id, new text, still one memory.
    await c.create_long_term_memory(
        [rec("m1", "Alice prefers dark mode in every editor and terminal", user_id="alice",
             session_id="s1", memory_type="semantic", topics=["preferences", "ui"],
             entities=["alice", "dark_mode"])]
    )
    m1b = await c.get_long_term_memory("m1")
    assert m1b.text.endswith("and terminal"), m1b
    assert m1b.memory_hash != m1.memory_hash, (m1b.memory_hash, m1.memory_hash)
    everything = await c.search_long_term_memory(text="", limit=50)
    assert sorted(ids(everything)) == ["m1", "m2", "m3", "m4"], ids(everything)
    assert everything.total == 4, everything.total

    # Hash dedup: the same text, user and session under a new id is not stored again...
    await c.create_long_term_memory(
        [rec("m3-dup", "Bob drinks green tea every afternoon", user_id="bob", session_id="s3",
             memory_type="semantic")]
    )
    try:
        await c.get_long_term_memory("m3-dup")
        raise AssertionError("a duplicate by hash was stored")
    except MemoryNotFoundError:
        pass
    # ...unless deduplication is off.
    await c.create_long_term_memory(
        [rec("m3-copy", "Bob drinks green tea every afternoon", user_id="bob", session_id="s3",
             memory_type="semantic")],
        deduplicate=False,
    )
    copy = await c.get_long_term_memory("m3-copy")
    assert copy.memory_hash == (await c.get_long_term_memory("m3")).memory_hash, copy
    await c.delete_long_term_memories(["m3-copy"])

    # Another namespace is another world.
    await c.create_long_term_memory(
        [rec("x1", "Alice prefers dark mode in every editor", namespace=f"{ns}-other", user_id="alice")]
    )
    mine = await c.search_long_term_memory(text="dark mode editor", limit=10)
    assert "x1" not in ids(mine), ids(mine)
    theirs = await c.search_long_term_memory(text="dark mode editor", namespace=Namespace(eq=f"{ns}-other"))
    assert ids(theirs) == ["x1"], ids(theirs)
    both = await c.search_long_term_memory(
        text="", namespace=Namespace(in_=[ns, f"{ns}-other"]), user_id=UserId(eq="alice"), limit=10
    )
    assert sorted(ids(both)) == ["m1", "m2", "x1"], ids(both)
    await c.delete_long_term_memories(["x1"])


async def check_search(c, ns):
    # Semantic: the memory whose words the query shares comes first, at a small distance.
    r = await c.search_long_term_memory(text="Bob drinks green tea every afternoon", limit=3)
    assert r.memories[0].id == "m3" and r.memories[0].dist < 0.01, r.memories[0]
    assert all(a.dist <= b.dist for a, b in zip(r.memories, r.memories[1:])), [m.dist for m in r.memories]

    # distance_threshold keeps only what is close enough.
    r = await c.search_long_term_memory(text="Bob drinks green tea every afternoon", distance_threshold=0.1)
    assert ids(r) == ["m3"] and r.total == 1, (ids(r), r.total)

    # Filters with the client's spellings (in_, not_eq, not_in, none) and AMS's (any, all).
    async def only(expected, **filters):
        got = await c.search_long_term_memory(text="", limit=50, **filters)
        assert sorted(ids(got)) == sorted(expected), (filters, ids(got))
        assert got.total == len(expected), (filters, got.total)

    await only(["m1", "m2"], user_id=UserId(eq="alice"))
    await only(["m3", "m4"], user_id=UserId(not_eq="alice"))
    await only(["m1", "m2", "m3", "m4"], user_id=UserId(in_=["alice", "bob"]))
    await only(["m3", "m4"], user_id=UserId(not_in=["alice"]))
    await only(["m3", "m4"], session_id=SessionId(eq="s3"))
    await only(["m1", "m2"], session_id=SessionId(not_in=["s3"]))
    await only(["m2"], session_id=SessionId(in_=["s2"]))
    await only(["m1", "m3"], topics=Topics(any=["preferences"]))
    await only(["m1"], topics=Topics(all=["preferences", "ui"]))
    await only(["m2", "m4"], topics=Topics(none=["preferences"]))
    await only(["m1", "m2"], entities=Entities(any=["alice"]))
    await only(["m3"], entities=Entities(all=["bob", "tea"]))
    await only(["m1", "m2"], entities=Entities(none=["bob"]))
    await only(["m1", "m3"], memory_type=MemoryType(eq="semantic"))
    await only(["m2", "m4"], memory_type=MemoryType(in_=["episodic", "message"]))
    await only(["m4"], memory_type=MemoryType(not_in=["semantic", "episodic"]))
    await only(["m3"], topics=Topics(any=["preferences"]), user_id=UserId(eq="bob"))
    await only([], topics=Topics(all=["preferences", "travel"]))
    await only(["m1", "m2", "m3", "m4"], namespace=Namespace(eq=ns))

    # AMS's own spellings (eq, ne, any, all) straight over HTTP, as other AMS clients send them.
    async def raw(body, expected):
        resp = await c._client.post("/v1/long-term-memory/search", json={"text": "", "limit": 50, **body})
        assert resp.status_code == 200, resp.text
        got = sorted(m["id"] for m in resp.json()["memories"])
        assert got == sorted(expected), (body, got)

    await raw({"namespace": {"eq": ns}, "user_id": {"ne": "alice"}}, ["m3", "m4"])
    await raw({"namespace": {"eq": ns}, "session_id": {"any": ["s1", "s2"]}}, ["m1", "m2"])
    await raw({"namespace": {"eq": ns}, "topics": {"all": ["preferences", "food"]}}, ["m3"])
    await raw({"namespace": {"eq": ns}, "memory_type": {"ne": "semantic"}}, ["m2", "m4"])
    bad = await c._client.post("/v1/long-term-memory/search", json={"text": "x", "topics": {"sorta": ["a"]}})
    assert bad.status_code == 422 and "sorta" in bad.json()["detail"], bad.text
    bad = await c._client.post("/v1/long-term-memory/search", json={"text": "x", "search_mode": "psychic"})
    assert bad.status_code == 422 and "search_mode" in bad.json()["detail"], bad.text

    # Created-at ranges.
    future = datetime.now(timezone.utc) + timedelta(days=1)
    resp = await c._client.post(
        "/v1/long-term-memory/search",
        json={"text": "", "namespace": {"eq": ns}, "created_at": {"gt": future.isoformat()}},
    )
    assert resp.json()["total"] == 0, resp.text

    # Paging: limit, offset, total, next_offset.
    p1 = await c.search_long_term_memory(text="", limit=3, offset=0)
    p2 = await c.search_long_term_memory(text="", limit=3, offset=3)
    assert len(p1.memories) == 3 and p1.total == 4 and p1.next_offset == 3, (ids(p1), p1.total, p1.next_offset)
    assert len(p2.memories) == 1 and p2.next_offset is None, (ids(p2), p2.next_offset)
    assert set(ids(p1)).isdisjoint(ids(p2)), (ids(p1), ids(p2))

    # Keyword and hybrid modes.
    for mode in ["keyword", "hybrid"]:
        resp = await c._client.post(
            "/v1/long-term-memory/search",
            json={"text": "Lisbon conference", "namespace": {"eq": ns}, "search_mode": mode},
        )
        assert resp.status_code == 200, resp.text
        got = resp.json()["memories"]
        assert got and got[0]["id"] == "m2", (mode, got)
    resp = await c._client.post(
        "/v1/long-term-memory/search",
        json={"text": "Lisbon", "namespace": {"eq": ns}, "search_mode": "keyword"},
    )
    assert [m["id"] for m in resp.json()["memories"]] == ["m2"], resp.text


async def check_recency(c, ns):
    old = datetime.now(timezone.utc) - timedelta(days=60)
    await c.create_long_term_memory(
        [
            rec("r-old", "coffee with oat milk every single morning", created_at=old, last_accessed=old,
                user_id="carol"),
            rec("r-new", "coffee with oat milk", user_id="carol"),
        ]
    )
    query = "coffee with oat milk every single morning"
    plain = await c.search_long_term_memory(text=query, user_id=UserId(eq="carol"), limit=2)
    # Recency off: the better match (the old one) first. Searching marks both as accessed, so
    # the recency check below runs on a fresh pair.
    assert ids(plain) == ["r-old", "r-new"], ids(plain)
    await c.create_long_term_memory(
        [
            rec("q-old", query, created_at=old, last_accessed=old, user_id="dave"),
            rec("q-new", "coffee with oat milk", user_id="dave"),
        ]
    )
    boosted = await c.search_long_term_memory(
        text=query,
        user_id=UserId(eq="dave"),
        limit=2,
        recency=RecencyConfig(recency_boost=True, semantic_weight=0.5, recency_weight=0.5),
    )
    assert ids(boosted) == ["q-new", "q-old"], [(m.id, m.dist) for m in boosted.memories]
    # Recall counts as access: last_accessed moved to now.
    q_old = await c.get_long_term_memory("q-old")
    assert q_old.last_accessed > datetime.now(timezone.utc) - timedelta(minutes=5), q_old.last_accessed
    await c.delete_long_term_memories(["r-old", "r-new", "q-old", "q-new"])


async def check_edit_delete(c, ns):
    before = await c.get_long_term_memory("m4")
    edited = await c.edit_long_term_memory("m4", {"text": "Bob said goodbye in the chat", "topics": ["chat", "farewell"]})
    assert edited.text == "Bob said goodbye in the chat", edited
    assert sorted(edited.topics) == ["chat", "farewell"] and edited.user_id == "bob", edited
    assert edited.memory_hash != before.memory_hash, edited
    got = await c.get_long_term_memory("m4")
    assert got.text == edited.text and got.created_at == before.created_at, got
    r = await c.search_long_term_memory(text="", topics=Topics(any=["farewell"]))
    assert ids(r) == ["m4"], ids(r)
    try:
        await c.edit_long_term_memory("m4", {"id": "other"})
        raise AssertionError("editing the id was accepted")
    except MemoryServerError as e:
        assert e.status_code == 422 and "id" in str(e), e
    try:
        await c.edit_long_term_memory("nope", {"text": "x"})
        raise AssertionError("editing a missing memory succeeded")
    except MemoryNotFoundError:
        pass

    ack = await c.delete_long_term_memories(["m4", "does-not-exist"])
    assert ack.status == "ok, deleted 1 memories", ack
    # The reference server answers an empty list with 200 and a count of 0.
    none = await c.delete_long_term_memories([])
    assert none.status == "ok, deleted 0 memories", none
    try:
        await c.get_long_term_memory("m4")
        raise AssertionError("a deleted memory is still there")
    except MemoryNotFoundError:
        pass


async def check_prompt(c, ns):
    await c.put_working_memory(
        "p1",
        WorkingMemory(
            session_id="p1",
            messages=[
                MemoryMessage(role="user", content="I am planning a trip"),
                MemoryMessage(role="assistant", content="Where to?"),
            ],
            context="The user likes travelling.",
        ),
    )
    prompt = await c.memory_prompt(
        query="Where did Alice fly for the conference?",
        session_id="p1",
        long_term_search={"text": "Alice flew Lisbon conference", "limit": 2},
    )
    msgs = prompt["messages"]
    texts = [m["content"]["text"] for m in msgs]
    assert msgs[0]["role"] == "system" and "The user likes travelling." in texts[0], msgs
    assert texts[1:3] == ["I am planning a trip", "Where to?"], texts
    assert [m["role"] for m in msgs[1:3]] == ["user", "assistant"], msgs
    assert msgs[3]["role"] == "system" and "Lisbon" in texts[3] and "(ID: m2)" in texts[3], texts[3]
    assert msgs[-1] == {"role": "user", "content": {"type": "text", "text": "Where did Alice fly for the conference?"}}, msgs[-1]

    # A small context window keeps only the newest messages that fit.
    small = await c.memory_prompt(query="hi", session_id="p1", context_window_max=5)
    small_texts = [m["content"]["text"] for m in small["messages"]]
    assert "I am planning a trip" not in small_texts and "Where to?" in small_texts, small_texts

    # Long-term search alone.
    only_ltm = await c.memory_prompt(query="tea", long_term_search={"text": "green tea", "limit": 1})
    assert len(only_ltm["messages"]) == 2 and "green tea" in only_ltm["messages"][0]["content"]["text"], only_ltm


async def check_tool_calls(c, ns):
    openai_create = {
        "id": "call_1",
        "type": "function",
        "function": {
            "name": "eagerly_create_long_term_memory",
            "arguments": json.dumps({"memories": [{"id": "t1", "text": "Erin is allergic to peanuts",
                                                   "memory_type": "semantic", "topics": ["health"]}]}),
        },
    }
    res = await c.resolve_tool_call(openai_create, session_id="tools", user_id="erin")
    assert res["success"], res
    t1 = await c.get_long_term_memory("t1")
    assert t1.user_id == "erin" and t1.namespace == ns, t1

    anthropic_search = {"type": "tool_use", "id": "tu_1", "name": "search_memory",
                        "input": {"query": "Erin allergic peanuts", "max_results": 3}}
    res = await c.resolve_tool_call(anthropic_search, session_id="tools")
    assert res["success"], res
    found = res["result"]["memories"]
    assert found[0]["id"] == "t1" and found[0]["relevance_score"] > 0.5, found

    # Lazily created memories go through working memory and become long-term memory.
    anthropic_lazy = {"type": "tool_use", "id": "tu_2", "name": "lazily_create_long_term_memory",
                      "input": {"text": "Erin runs marathons on weekends", "memory_type": "episodic",
                                "topics": ["sport"]}}
    res = await c.resolve_tool_call(anthropic_lazy, session_id="tools", user_id="erin")
    assert res["success"] and res["result"]["success"], res
    lazy = await c.search_long_term_memory(text="", topics=Topics(any=["sport"]))
    assert [m.text for m in lazy.memories] == ["Erin runs marathons on weekends"], ids(lazy)
    wm = await c.get_working_memory("tools")
    assert wm.memories and wm.memories[0].persisted_at is not None, wm.memories

    results = await c.resolve_tool_calls(
        [
            {"id": "call_2", "type": "function",
             "function": {"name": "get_long_term_memory", "arguments": json.dumps({"memory_id": "t1"})}},
            {"type": "tool_use", "id": "tu_3", "name": "edit_long_term_memory",
             "input": {"memory_id": "t1", "text": "Erin is allergic to peanuts and shellfish"}},
            {"id": "call_3", "type": "function", "function": {"name": "get_current_datetime", "arguments": "{}"}},
            {"id": "call_4", "type": "function", "function": {"name": "no_such_tool", "arguments": "{}"}},
        ],
        session_id="tools",
    )
    assert results[0]["success"] and results[0]["result"]["memory"].text == "Erin is allergic to peanuts", results[0]
    assert results[1]["success"] and results[1]["result"]["memory"].text.endswith("shellfish"), results[1]
    assert results[2]["success"] and "iso_utc" in results[2]["result"], results[2]
    assert not results[3]["success"] and "no_such_tool" in results[3]["error"], results[3]

    res = await c.resolve_tool_call(
        {"type": "tool_use", "id": "tu_4", "name": "delete_long_term_memories", "input": {"memory_ids": ["t1"]}},
        session_id="tools",
    )
    assert res["success"] and res["result"]["status"] == "ok, deleted 1 memories", res
    try:
        await c.get_long_term_memory("t1")
        raise AssertionError("deleted through a tool call but still there")
    except MemoryNotFoundError:
        pass


async def check_forget(c, ns):
    fns = f"{ns}-forget"
    long_ago = datetime.now(timezone.utc) - timedelta(days=400)
    await c.create_long_term_memory(
        [
            rec("f-old", "an old note about gardening", namespace=fns, created_at=long_ago, last_accessed=long_ago),
            rec("f-old-pinned", "an old note about sailing", namespace=fns, created_at=long_ago, last_accessed=long_ago),
            rec("f-new1", "a new note about cooking", namespace=fns),
            rec("f-new2", "a new note about chess", namespace=fns),
        ]
    )
    dry = await c.forget_long_term_memories(ForgetPolicy(max_age_days=365), namespace=fns, dry_run=True,
                                            pinned_ids=["f-old-pinned"])
    assert dry.dry_run and dry.deleted_ids == ["f-old"] and dry.scanned == 4, dry
    assert (await c.get_long_term_memory("f-old")).id == "f-old"
    done = await c.forget_long_term_memories(ForgetPolicy(max_age_days=365), namespace=fns,
                                             pinned_ids=["f-old-pinned"])
    assert done.deleted == 1 and done.deleted_ids == ["f-old"] and not done.dry_run, done
    try:
        await c.get_long_term_memory("f-old")
        raise AssertionError("forgotten but still there")
    except MemoryNotFoundError:
        pass
    # A budget keeps the most recently used.
    budget = await c.forget_long_term_memories(ForgetPolicy(budget=2), namespace=fns)
    assert budget.deleted_ids == ["f-old-pinned"], budget
    left = await c.search_long_term_memory(text="", namespace=Namespace(eq=fns))
    assert sorted(ids(left)) == ["f-new1", "f-new2"], ids(left)
    try:
        await c.forget_long_term_memories(ForgetPolicy(memory_type_allowlist=["dreams"]), namespace=fns)
        raise AssertionError("a bad memory type was accepted")
    except MemoryServerError as e:
        assert e.status_code == 422 and "memory_type_allowlist" in str(e), e


async def check_summary_views(c):
    try:
        await c.list_summary_views()
        raise AssertionError("summary views answered")
    except MemoryServerError as e:
        assert e.status_code == 501 and "LLM" in str(e), e


async def check_fields_after_0_15_2(c, ns):
    """`MemoryRecord.metadata` and the `extraction_strategy` search filter, added upstream
    after 0.15.2: this client predates them, so they are sent over its own HTTP connection,
    and the client must still read the records that carry them."""
    http = c._client
    r = await http.post("/v1/long-term-memory/", json={"memories": [
        {"id": "md1", "text": "Quarterly planning notes for the garden club", "namespace": ns,
         "metadata": {"source": "import", "page": 3}, "extraction_strategy": "summary"},
        {"id": "md2", "text": "Garden club meets on Tuesdays", "namespace": ns},
    ]})
    assert r.status_code == 200, r.text
    r = await http.get("/v1/long-term-memory/md1", params={"namespace": ns})
    body = r.json()
    assert body["metadata"] == {"source": "import", "page": 3}, body
    assert body["extraction_strategy"] == "summary", body
    r = await http.get("/v1/long-term-memory/md2", params={"namespace": ns})
    assert r.json()["extraction_strategy"] == "discrete" and r.json()["metadata"] is None, r.json()
    # The old client still reads a record that carries the new fields.
    got = await c.get_long_term_memory("md1")
    assert got.id == "md1" and got.text.startswith("Quarterly"), got

    async def strategy_ids(flt):
        r = await http.post("/v1/long-term-memory/search", json={
            "text": "garden club", "namespace": {"eq": ns}, "extraction_strategy": flt, "limit": 10})
        assert r.status_code == 200, r.text
        return sorted(m["id"] for m in r.json()["memories"] if m["id"].startswith("md"))

    assert await strategy_ids({"eq": "summary"}) == ["md1"]
    assert await strategy_ids({"eq": "discrete"}) == ["md2"]
    assert await strategy_ids("discrete") == ["md2"]
    assert await strategy_ids({"any": ["summary", "discrete"]}) == ["md1", "md2"]
    # An edit can change the metadata; a bad strategy is refused, naming the field.
    r = await http.patch("/v1/long-term-memory/md1", params={"namespace": ns},
                         json={"metadata": {"source": "edited"}})
    assert r.status_code == 200 and r.json()["metadata"] == {"source": "edited"}, r.text
    r = await http.post("/v1/long-term-memory/", json={"memories": [
        {"id": "md3", "text": "x", "namespace": ns, "extraction_strategy": "guess"}]})
    assert r.status_code == 422 and "extraction_strategy" in r.text, r.text
    await c.delete_long_term_memories(["md1", "md2"])


async def main(base_url: str, run: str) -> None:
    ns = f"ltm-{run}"
    async with MemoryAPIClient(MemoryClientConfig(base_url=base_url, default_namespace=ns)) as c:
        await check_crud_and_dedup(c, ns)
        await check_search(c, ns)
        await check_recency(c, ns)
        await check_edit_delete(c, ns)
        await check_prompt(c, ns)
        await check_tool_calls(c, ns)
        await check_forget(c, ns)
        await check_summary_views(c)
        await check_fields_after_0_15_2(c, ns)
    print("all checks passed")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
