#!/usr/bin/env python3
"""Drives fathom's MCP tools with the official MCP Python SDK (`mcp` on PyPI), as an agent would.

    check_mcp.py stdio --query Q --expect-source S [--ingest-path P] -- fathom mcp ARGS...
    check_mcp.py http --url http://127.0.0.1:PORT/mcp --api-key KEY --query Q --expect-source S

Lists the tools, calls each, sends bad arguments (each must come back as an MCP error, and the
server must go on answering), and prints the median round trip of `search`. Exits non-zero with
the failed check's message.
"""

import argparse
import asyncio
import statistics
import sys
import time
import urllib.error
import urllib.request

import httpx2
from mcp import ClientSession, MCPError, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client


class Failure(Exception):
    pass


def check(cond, message):
    if not cond:
        raise Failure(message)


async def tool_error(session, name, args):
    """Calls a tool that must fail; returns the error's text."""
    try:
        result = await session.call_tool(name, args)
    except MCPError as e:
        return e.message
    check(result.is_error, f"{name}({args}) should fail, got {result.structured_content}")
    return " ".join(getattr(c, "text", "") for c in result.content)


async def ok(session, name, args):
    result = await session.call_tool(name, args)
    text = " ".join(getattr(c, "text", "") for c in result.content)
    check(not result.is_error, f"{name}({args}) failed: {text}")
    check(result.structured_content is not None, f"{name} returned no structured content")
    return result.structured_content


async def exercise(session, args, transport):
    init = await session.initialize()
    check(init.server_info.name == "fathom", f"server name {init.server_info.name}")
    check(init.instructions and "search" in init.instructions, "instructions name the tools")

    tools = {t.name: t for t in (await session.list_tools()).tools}
    expected = {"search", "list_collections", "list_sources", "get_chunk"}
    if args.ingest_path:
        expected |= {"ingest", "get_job"}
    check(set(tools) == expected, f"tools {sorted(tools)}, expected {sorted(expected)}")
    for t in tools.values():
        check(len(t.description or "") > 40, f"{t.name} has no real description")
        check(t.input_schema.get("type") == "object", f"{t.name} input schema")
    check(tools["search"].input_schema.get("required") == ["query"], "search requires query only")
    modes = str(tools["search"].input_schema)
    check("hybrid" in modes and "vector" in modes and "text" in modes, "modes in the schema")

    found = await ok(session, "search", {"query": args.query, "k": 5})
    passages = found["passages"]
    check(passages, "search found nothing")
    sources = [p["source"] for p in passages]
    check(args.expect_source in sources, f"{args.expect_source} not in {sources}")
    for mode in ("vector", "text", "hybrid"):
        r = await ok(session, "search", {"query": args.query, "k": 3, "mode": mode})
        check(r["passages"], f"{mode} search found nothing")
    only = await ok(session, "search", {"query": args.query, "k": 5,
                                        "filters": [f"source={args.expect_source}"]})
    check({p["source"] for p in only["passages"]} == {args.expect_source}, "filtered search")

    collections = (await ok(session, "list_collections", {}))["collections"]
    default = [c for c in collections if c["name"] == "default"]
    check(default and default[0]["chunks"] > 0, f"default collection in {collections}")
    listed = (await ok(session, "list_sources", {}))["sources"]
    check(args.expect_source in [s["source"] for s in listed], "list_sources")

    if args.location_query:
        # A hit in a paged document says where it is, in search and in get_chunk.
        found = (await ok(session, "search", {"query": args.location_query, "k": 5}))["passages"]
        check(found, f"nothing found for {args.location_query!r}")
        top = found[0]
        check(top.get("location") == args.expect_location,
              f"the top hit for {args.location_query!r} is at {top.get('location')!r} "
              f"in {top['source']}, expected {args.expect_location!r}")
        around = (await ok(session, "get_chunk", {"source": top["source"],
                                                  "chunk_index": top["chunk_index"]}))["passages"]
        check(any(c.get("location") == args.expect_location for c in around),
              f"get_chunk lost the location: {around}")

    hit = passages[sources.index(args.expect_source)]
    chunk = (await ok(session, "get_chunk", {"source": hit["source"],
                                             "chunk_index": hit["chunk_index"],
                                             "neighbours": 1}))["passages"]
    same = [c for c in chunk if c["chunk_index"] == hit["chunk_index"]]
    check(same and same[0]["text"] == hit["text"], "get_chunk returns the passage search found")

    # Bad arguments: each an error naming the problem; the server goes on.
    bad = [
        ("search", {"query": args.query, "k": 0}, "k"),
        ("search", {"query": args.query, "k": "many"}, "invalid type"),
        ("search", {}, "query"),
        ("search", {"query": "  "}, "query"),
        ("search", {"query": args.query, "mode": "fuzzy"}, "fuzzy"),
        ("search", {"query": args.query, "filters": ["nonsense"]}, "filter"),
        ("search", {"query": args.query, "collection": "nope"}, "nope"),
        # The servers these checks run against have no --reranker: asking for one says how.
        ("search", {"query": args.query, "rerank": True}, "--reranker"),
        ("get_chunk", {"source": "missing.md", "chunk_index": 0}, "no chunk"),
        ("get_chunk", {"source": hit["source"], "chunk_index": 0, "neighbours": 99}, "neighbours"),
        ("no_such_tool", {}, "not found"),
    ]
    if args.ingest_path:
        bad.append(("ingest", {"path": "../../etc"}, "ingest roots"))
        bad.append(("get_job", {"id": "job-999"}, "job-999"))
    for name, call_args, expect in bad:
        message = await tool_error(session, name, call_args)
        check(expect.lower() in message.lower(), f"{name}({call_args}): {message!r} lacks {expect!r}")
    await ok(session, "search", {"query": args.query})

    if args.ingest_path:
        job = await ok(session, "ingest", {"path": args.ingest_path,
                                           "collection": args.ingest_collection})
        deadline = time.monotonic() + 180
        while job["state"] in ("queued", "running"):
            check(time.monotonic() < deadline, f"ingest job never finished: {job}")
            await asyncio.sleep(0.2)
            job = await ok(session, "get_job", {"id": job["id"]})
        check(job["state"] == "done" and job["summary"]["added"] > 0, f"ingest job: {job}")
        r = await ok(session, "search", {"query": args.query,
                                         "collection": args.ingest_collection})
        check(r["passages"], "nothing found in the ingested collection")

    rtts = []
    for _ in range(20):
        t0 = time.perf_counter()
        await session.call_tool("search", {"query": args.query, "k": 5})
        rtts.append((time.perf_counter() - t0) * 1000)
    print(f"MCP search round trip over {transport}: median {statistics.median(rtts):.1f} ms, "
          f"max {max(rtts):.1f} ms (20 calls, k=5)")


async def run_stdio(args):
    command = args.command
    params = StdioServerParameters(command=command[0], args=command[1:])
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            await exercise(session, args, "stdio")


async def run_http(args):
    # Without the key: refused before MCP is reached.
    request = urllib.request.Request(args.url, data=b"{}", method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        urllib.request.urlopen(request, timeout=10)
        raise Failure("/mcp answered without the API key")
    except urllib.error.HTTPError as e:
        check(e.code == 401, f"/mcp without the key: HTTP {e.code}")
    headers = {"Authorization": f"Bearer {args.api_key}"}
    async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=300)) as http:
        async with streamable_http_client(args.url, http_client=http) as (read, write):
            async with ClientSession(read, write) as session:
                await exercise(session, args, "streamable HTTP")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("transport", choices=["stdio", "http"])
    p.add_argument("--url")
    p.add_argument("--api-key")
    p.add_argument("--query", required=True)
    p.add_argument("--expect-source", required=True)
    p.add_argument("--ingest-path")
    p.add_argument("--ingest-collection", default="agent")
    p.add_argument("--location-query", help="a query whose top hit is in a paged document")
    p.add_argument("--expect-location", help='that hit\'s location label, e.g. "p. 2"')
    argv = sys.argv[1:]
    command = argv[argv.index("--") + 1:] if "--" in argv else []
    args = p.parse_args(argv[:argv.index("--")] if "--" in argv else argv)
    args.command = command
    try:
        asyncio.run(run_stdio(args) if args.transport == "stdio" else run_http(args))
    except Failure as e:
        print(f"FAILED: {e}", file=sys.stderr)
        sys.exit(1)
    print("mcp: all checks passed")


if __name__ == "__main__":
    main()
