"""benchmarks: speed, measured by hand, never by the tests (docs/benchmarks.md has the figures and the
commands). Each module is a script, `python -m stress.benchmarks.NAME --help`:

- core: the scheduler (spawn, yield, CPU-mixed, GIL, memory per parked G) against asyncio and threads;
- chan: channels (ping-pong, fan-out, select) against asyncio, uvloop and trio;
- net: the loopback echo against asyncio, uvloop, gevent and threads, and 10k idle connections;
- redis: redis-benchmark against stress.servers.resp and its asyncio twin;
- instr: instructions per echo round trip under valgrind;
- ab: two copies of the package side by side on the ping-pong, timed or under valgrind;
- hooks_ab: what the tracer's event sites cost with tracing off;
- trace: what tracing costs, off, metrics and full;
- locks: lock acquisitions per operation, and the locks two Ms contend for;
- offload: CPU-mixed work past one interpreter (process pools, futures);
- ft: scaling on a free-threaded CPython against the peers there.
"""
