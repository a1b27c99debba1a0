"""stress: the stress and chaos suite of mn_runtime (`python -m stress --list`; docs/stress.md)."""
