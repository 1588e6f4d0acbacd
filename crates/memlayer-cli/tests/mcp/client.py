"""The official Python MCP client (mcp==2.3.0) driving `memlayer mcp` over stdio.

Run by tests/mcp.rs as `python client.py MEMLAYER_BIN STORE_URL`; every check asserts results.
"""

import asyncio
import json
import sys

from mcp import ClientSession, StdioServerParameters, stdio_client


def payload(result):
    assert not result.is_error, result
    return json.loads(result.content[0].text)


async def main(binary: str, url: str) -> None:
    params = StdioServerParameters(command=binary, args=["--url", url, "mcp", "--namespace", "agent", "--allow", "agent,elsewhere"])
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as s:
            init = await s.initialize()
            # The server introduces itself as memlayer, not as the protocol library, and tells
            # the model when to remember and when to recall.
            assert init.server_info.name == "memlayer", init.server_info
            assert init.instructions and "Recall" in init.instructions, init.instructions
            tools = {t.name: t for t in (await s.list_tools()).tools}
            assert set(tools) == {"remember", "recall", "get", "list", "update", "history", "forget",
                                  "conversation_append", "conversation_window", "briefing"}, tools
            assert "query" in tools["recall"].input_schema["properties"], tools["recall"].input_schema

            # remember: added, then recognised as a duplicate.
            r = payload(await s.call_tool("remember", {"content": "Alice is vegetarian", "user": "alice", "tags": ["diet"]}))
            assert r["outcome"] == "added" and r["memory"]["kind"] == "fact", r
            alice_id = r["memory"]["id"]
            r = payload(await s.call_tool("remember", {"content": "Alice is vegetarian", "user": "alice"}))
            assert r["outcome"] == "duplicate" and r["memory"]["id"] == alice_id, r
            payload(await s.call_tool("remember", {"content": "Bob is allergic to peanuts", "user": "bob"}))
            payload(await s.call_tool("remember", {"content": "Carol prefers window seats", "user": "carol",
                                                   "type": "user_profile", "namespace": "elsewhere"}))

            # recall in every mode, with filters.
            for mode in ["hybrid", "keyword", "vector"]:
                r = payload(await s.call_tool("recall", {"query": "vegetarian Alice", "mode": mode, "limit": 3}))
                assert r["memories"][0]["id"] == alice_id, (mode, r)
            r = payload(await s.call_tool("recall", {"query": "vegetarian", "mode": "keyword", "user": "bob"}))
            assert r["memories"] == [], r
            r = payload(await s.call_tool("recall", {"query": "", "mode": "recent", "tags": ["diet"]}))
            assert [m["id"] for m in r["memories"]] == [alice_id], r
            r = payload(await s.call_tool("recall", {"query": "window seats", "namespace": "elsewhere"}))
            assert r["memories"][0]["content"] == "Carol prefers window seats", r
            r = payload(await s.call_tool("recall", {"query": "window seats", "mode": "keyword"}))
            assert r["memories"] == [], ("namespaces are walls", r)
            bad = await s.call_tool("recall", {"query": "x", "mode": "psychic"})
            assert bad.is_error and "psychic" in bad.content[0].text, bad

            # A namespace outside --allow is refused by every tool, and nothing is written.
            for tool, args in [
                ("remember", {"content": "planted by a prompt injection"}),
                ("recall", {"query": "window seats"}),
                ("forget", {"user": "carol"}),
                ("conversation_append", {"session": "s9", "role": "human", "content": "x"}),
                ("conversation_window", {"session": "s9"}),
            ]:
                refused = await s.call_tool(tool, {**args, "namespace": "other-tenant"})
                assert refused.is_error and "not open to this server" in refused.content[0].text, (tool, refused)
            r = payload(await s.call_tool("recall", {"query": "window seats", "namespace": "elsewhere"}))
            assert r["memories"][0]["content"] == "Carol prefers window seats", ("forget was refused", r)

            # A conversation and its window: whole rounds, newest last.
            for role, text in [("human", "hi"), ("ai", "hello!"), ("human", "book a table"), ("ai", "done")]:
                payload(await s.call_tool("conversation_append", {"session": "s1", "user": "alice", "role": role, "content": text}))
            w = payload(await s.call_tool("conversation_window", {"session": "s1", "user": "alice", "max_rounds": 1}))
            assert [m["content"] for m in w["messages"]] == ["book a table", "done"], w
            assert w["rounds_total"] == 2 and w["rounds_kept"] == 1, w

            # forget one memory, then everything of a user.
            r = payload(await s.call_tool("forget", {"id": alice_id}))
            assert r["deleted"] == 1, r
            r = payload(await s.call_tool("recall", {"query": "vegetarian", "mode": "keyword"}))
            assert r["memories"] == [], r
            missing = await s.call_tool("forget", {"id": alice_id})
            assert missing.is_error, missing
            r = payload(await s.call_tool("forget", {"user": "alice"}))
            assert r["deleted"] == 4, ("the four messages of s1", r)
            w = payload(await s.call_tool("conversation_window", {"session": "s1", "user": "alice"}))
            assert w["messages"] == [], w
    print("all checks passed")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
