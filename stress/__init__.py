"""stress: what pushes and measures mn_runtime from outside the test suite (stress/README.md).

- `python -m stress` (this package's __main__.py and report.py): the runner of the stress scenarios,
  seeded chaos and replay (`python -m stress --list`; docs/stress.md);
- stress.scenarios: the scenarios it runs, one module each;
- stress.benchmarks: speed against the peers, run by hand (`python -m stress.benchmarks.NAME`;
  docs/benchmarks.md), never by the tests;
- stress.servers: example servers on the runtime (RESP, HTTP, and an asyncio twin of the RESP one),
  used by the tests and the benchmarks;
- stress.examples: programs that show a class of bug and what finds it.
"""
