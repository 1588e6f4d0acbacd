"""The real agent-memory-client (0.14.0) against a memlayer server: health and working memory.

Run by tests/ams_compat.rs as `python working_memory.py BASE_URL RUN_ID`; every check asserts
results, not just status codes, and every check works in namespaces of its own run.
"""

import asyncio
import sys
import warnings

from agent_memory_client import MemoryAPIClient, MemoryClientConfig
from agent_memory_client.exceptions import MemoryNotFoundError
from agent_memory_client.models import MemoryMessage, WorkingMemory

warnings.simplefilter("ignore", DeprecationWarning)


async def main(base_url: str, run: str) -> None:
    ns = f"wm-{run}"
    other_ns = f"wm-other-{run}"
    async with MemoryAPIClient(MemoryClientConfig(base_url=base_url, default_namespace=ns)) as c:
        health = await c.health_check()
        assert health.now > 1_700_000_000, health

        # get_or_create: created the first time, found the second.
        created, memory = await c.get_or_create_working_memory("s1", user_id="alice")
        assert created is True and memory.messages == [], (created, memory)
        created, memory = await c.get_or_create_working_memory("s1", user_id="alice")
        assert created is False, created

        # put replaces the whole session; get returns it.
        messages = [
            MemoryMessage(role="user", content="I live in Lyon"),
            MemoryMessage(role="assistant", content="Noted: Lyon"),
        ]
        put = await c.put_working_memory(
            "s1",
            WorkingMemory(session_id="s1", messages=messages, data={"city": "Lyon"}, context="ctx"),
            user_id="alice",
        )
        assert [m.content for m in put.messages] == ["I live in Lyon", "Noted: Lyon"], put
        got = await c.get_working_memory("s1", user_id="alice")
        assert [m.role for m in got.messages] == ["user", "assistant"], got
        assert got.data == {"city": "Lyon"} and got.context == "ctx", got
        assert got.tokens > 0, got

        # append adds to the end; data merges.
        await c.append_messages_to_working_memory(
            "s1", [MemoryMessage(role="user", content="and I like tea")], user_id="alice"
        )
        got = await c.get_working_memory("s1", user_id="alice")
        assert [m.content for m in got.messages][-1] == "and I like tea", got
        await c.update_working_memory_data("s1", {"drink": "tea"}, user_id="alice")
        got = await c.get_working_memory("s1", user_id="alice")
        assert got.data == {"city": "Lyon", "drink": "tea"}, got.data

        # Another user's or another namespace's session of the same id is another session.
        try:
            await c.get_working_memory("s1", user_id="bob")
            raise AssertionError("bob must not see alice's session")
        except MemoryNotFoundError:
            pass
        try:
            await c.get_working_memory("s1", user_id="alice", namespace=other_ns)
            raise AssertionError("another namespace must not see it")
        except MemoryNotFoundError:
            pass

        # Listing pages through the namespace's sessions.
        for i in range(5):
            await c.put_working_memory(
                f"p{i}", WorkingMemory(session_id=f"p{i}", messages=[]), user_id="alice"
            )
        first = await c.list_sessions(limit=4, offset=0)
        second = await c.list_sessions(limit=4, offset=4)
        assert first.total == 6 and second.total == 6, (first, second)
        assert len(first.sessions) == 4 and len(second.sessions) == 2, (first, second)
        assert set(first.sessions) | set(second.sessions) == {"s1", "p0", "p1", "p2", "p3", "p4"}
        mine = await c.list_sessions(user_id="bob")
        assert mine.total == 0, mine

        # Delete, then it is gone.
        ack = await c.delete_working_memory("s1", user_id="alice")
        assert ack.status == "ok", ack
        try:
            await c.get_working_memory("s1", user_id="alice")
            raise AssertionError("deleted session still there")
        except MemoryNotFoundError:
            pass

        # TTL: a session with ttl_seconds expires.
        await c.put_working_memory(
            "short", WorkingMemory(session_id="short", messages=messages, ttl_seconds=1)
        )
        got = await c.get_working_memory("short")
        assert len(got.messages) == 2, got
        await asyncio.sleep(2.2)
        try:
            await c.get_working_memory("short")
            raise AssertionError("the session outlived its ttl")
        except MemoryNotFoundError:
            pass
    print("working memory: all checks passed")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
