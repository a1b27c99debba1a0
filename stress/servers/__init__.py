"""servers: example servers on mn_runtime's network layer, what users point real clients at; the
tests (tests/test_net_servers.py, tests/test_servers_hostile.py) and the benchmarks
(stress.benchmarks.redis) run them. docs/netpoller.md, "Servers under hostile clients".

- resp: a Redis-protocol key-value server (`python -m stress.servers.resp --listen HOST:PORT`);
- http: an HTTP/1.1 keep-alive server (`python -m stress.servers.http --listen HOST:PORT`);
- asyncio_resp: the RESP server over asyncio streams (or uvloop), for comparison;
- serving: what they share: the accept loop and each connection's limits;
- resp_parser, http_parser: their sans-IO request parsers.
"""
