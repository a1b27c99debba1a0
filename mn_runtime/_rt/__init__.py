"""_rt: the runtime's internals. Go's names for Go's mechanisms; see sched.py for the essay."""
