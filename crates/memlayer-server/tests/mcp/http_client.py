"""The official Python MCP client (mcp==2.3.0) driving `/mcp` of a running memlayer server over
Streamable HTTP, with API keys.

Run by tests/mcp_http.rs as `python http_client.py BASE_URL WRITER READER OUTSIDER`: WRITER may
write namespaces agent and elsewhere, READER may read agent, OUTSIDER may write only other.
Every check asserts.
"""

import asyncio
import contextlib
import json
import sys

import httpx2
from mcp import ClientSession
from mcp.client.streamable_http import create_mcp_http_client, streamable_http_client

TOOLS = {"remember", "recall", "get", "list", "update", "history", "forget",
         "conversation_append", "conversation_window", "briefing"}


def payload(result):
    assert not result.is_error, result
    return json.loads(result.content[0].text)


def refused(result, words):
    assert result.is_error, result
    text = result.content[0].text
    assert words in text, (words, text)
    return text


@contextlib.asynccontextmanager
async def connect(base, token):
    async with create_mcp_http_client(headers={"Authorization": f"Bearer {token}"}) as http:
        async with streamable_http_client(f"{base}/mcp", http_client=http) as (read, write, *_):
            async with ClientSession(read, write) as s:
                init = await s.initialize()
                yield s, init


async def main(base, writer, reader, outsider):
    # Without a key, /mcp is refused before any tool runs.
    async with httpx2.AsyncClient() as http:
        r = await http.post(f"{base}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                            headers={"Accept": "application/json, text/event-stream"})
        assert r.status_code == 401, (r.status_code, r.text)

    async with connect(base, writer) as (s, init):
        assert init.server_info.name == "memlayer", init.server_info
        assert init.instructions and "briefing" in init.instructions and "Recall" in init.instructions
        tools = {t.name: t for t in (await s.list_tools()).tools}
        assert set(tools) == TOOLS, set(tools)
        props = tools["remember"].input_schema["properties"]
        for field in ["content", "kind", "tier", "user", "session", "tags", "metadata", "ttl", "namespace"]:
            assert field in props and props[field].get("description"), (field, props)
        for name, t in tools.items():
            assert t.description, name
            for field, schema in t.input_schema.get("properties", {}).items():
                assert schema.get("description"), (name, field)

        # remember, with tier, ttl and metadata; get shows every field.
        r = payload(await s.call_tool("remember", {
            "content": "Alice is vegetarian", "user": "alice", "tags": ["diet"], "kind": "facts",
            "tier": "episodic", "ttl": "30d", "metadata": {"source": "chat-42"}}))
        assert r["outcome"] == "added", r
        alice = r["memory"]["id"]
        got = payload(await s.call_tool("get", {"id": alice}))["memory"]
        assert got["tier"] == "episodic" and got["metadata"]["extra"]["source"] == "chat-42", got
        assert got["expires_at"] and "embedding" not in got, got
        r = payload(await s.call_tool("remember", {"content": "Alice is vegetarian", "user": "alice"}))
        assert r["outcome"] == "duplicate" and r["memory"]["id"] == alice, r
        payload(await s.call_tool("remember", {"content": "Alice prefers window seats", "user": "alice", "kind": "user_profile"}))
        payload(await s.call_tool("remember", {"content": "Bob is allergic to peanuts", "user": "bob", "tags": ["diet"]}))
        payload(await s.call_tool("remember", {"content": "Carol likes jazz", "user": "carol", "namespace": "elsewhere"}))

        # recall: per-signal scores; namespaces are walls.
        r = payload(await s.call_tool("recall", {"query": "vegetarian Alice", "mode": "hybrid", "limit": 3}))
        top = r["memories"][0]
        assert top["id"] == alice and top["keyword_score"] is not None and top["vector_score"] is not None, r
        r = payload(await s.call_tool("recall", {"query": "jazz", "mode": "keyword"}))
        assert r["memories"] == [], r
        r = payload(await s.call_tool("recall", {"query": "jazz", "mode": "keyword", "namespace": "elsewhere"}))
        assert len(r["memories"]) == 1, r
        refused(await s.call_tool("recall", {"query": "x", "mode": "psychic"}), "psychic")

        # list pages with a cursor.
        first = payload(await s.call_tool("list", {"limit": 2}))
        assert len(first["memories"]) == 2 and first["next_cursor"], first
        second = payload(await s.call_tool("list", {"limit": 2, "cursor": first["next_cursor"]}))
        ids = [m["id"] for m in first["memories"] + second["memories"]]
        assert len(ids) == 3 and len(set(ids)) == 3, ids

        # update supersedes; the old version stays reachable; history shows both.
        r = payload(await s.call_tool("update", {"id": alice, "content": "Alice is vegan"}))
        vegan = r["memory"]["id"]
        assert r["superseded"] == alice and vegan != alice, r
        old = payload(await s.call_tool("get", {"id": alice}))["memory"]
        assert old["superseded_by"] == vegan and old["content"] == "Alice is vegetarian", old
        h = payload(await s.call_tool("history", {"id": alice}))["versions"]
        assert [v["content"] for v in h] == ["Alice is vegetarian", "Alice is vegan"], h
        assert [v["current"] for v in h] == [False, True], h
        assert payload(await s.call_tool("history", {"id": vegan}))["versions"] == h
        r = payload(await s.call_tool("recall", {"query": "Alice", "mode": "keyword"}))
        assert alice not in [m["id"] for m in r["memories"]], r
        refused(await s.call_tool("update", {"id": alice, "content": "again"}), "superseded")

        # A conversation and its window, by rounds and by token budget.
        for role, text in [("human", "hi"), ("ai", "hello!"), ("human", "book a table for two tonight"), ("ai", "done")]:
            payload(await s.call_tool("conversation_append", {"session": "s1", "user": "alice", "role": role, "content": text}))
        w = payload(await s.call_tool("conversation_window", {"session": "s1", "user": "alice", "max_rounds": 1}))
        assert [m["content"] for m in w["messages"]] == ["book a table for two tonight", "done"], w
        w = payload(await s.call_tool("conversation_window", {"session": "s1", "user": "alice", "max_tokens": 10}))
        assert w["tokens"] <= 10 and (w["rounds_kept"], w["rounds_total"]) == (1, 2), w

        # briefing: profile first, then what the topic needs, within the budget.
        b = payload(await s.call_tool("briefing", {"user": "alice", "topic": "what does alice eat", "max_tokens": 200}))
        assert [m["content"] for m in b["profile"]] == ["Alice prefers window seats"], b
        assert [m["content"] for m in b["memories"]][:1] == ["Alice is vegan"], b
        assert b["tokens"] <= 200, b
        small = payload(await s.call_tool("briefing", {"user": "alice", "topic": "food", "max_tokens": 7}))
        assert small["tokens"] <= 7 and small["profile"] and not small["memories"], small

        # A malformed call is a tool error, and changes nothing.
        before = payload(await s.call_tool("list", {"limit": 100}))["memories"]
        for tool, args in [("remember", {"contents": "typo"}), ("remember", {}), ("forget", {"id": 7}),
                           ("recall", {"query": "x", "limit": "many"}), ("remember", {"content": "x", "ttl": "soon"})]:
            bad = await s.call_tool(tool, args)
            assert bad.is_error, (tool, args, bad)
        refused(await s.call_tool("forget", {}), "give an id")
        assert payload(await s.call_tool("list", {"limit": 100}))["memories"] == before

        # forget: by filter and by user, with exact counts.
        r = payload(await s.call_tool("forget", {"tags": ["diet"], "user": "bob"}))
        assert r["deleted"] == 1, r
        r = payload(await s.call_tool("forget", {"user": "alice"}))
        assert r["deleted"] == 7, ("three memory versions and four messages", r)

    # A read key reads and may not write; nothing it tried landed.
    async with connect(base, reader) as (s, _):
        r = payload(await s.call_tool("recall", {"query": "jazz", "mode": "keyword"}))
        assert r["memories"] == [], r
        for tool, args in [("remember", {"content": "planted"}), ("forget", {"user": "carol"}),
                           ("conversation_append", {"session": "s9", "role": "human", "content": "x"}),
                           ("update", {"id": "x", "content": "y"})]:
            refused(await s.call_tool(tool, args), "write scope")
        refused(await s.call_tool("recall", {"query": "jazz", "namespace": "elsewhere"}), "not open")
        assert payload(await s.call_tool("list", {}))["memories"] == [], "the read key wrote nothing"

    # A key for another namespace sees none of these, through any tool.
    async with connect(base, outsider) as (s, _):
        for tool, args in [("recall", {"query": "jazz"}), ("list", {}), ("get", {"id": "x"}),
                           ("history", {"id": "x"}), ("briefing", {"user": "carol"}),
                           ("forget", {"user": "carol"}), ("remember", {"content": "x"})]:
            refused(await s.call_tool(tool, {**args, "namespace": "elsewhere"}), "not open")
        r = payload(await s.call_tool("remember", {"content": "Dana plays chess", "user": "dana"}))
        assert r["outcome"] == "added", ("its own namespace is the default", r)

    async with connect(base, writer) as (s, _):
        r = payload(await s.call_tool("recall", {"query": "jazz", "mode": "keyword", "namespace": "elsewhere"}))
        assert len(r["memories"]) == 1, ("the outsider changed nothing", r)
    print("all checks passed")


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
