"""examples: programs that show a class of bug and what finds it.

- racy_bank: a check-then-act race across an await, which a chaos seed sweep finds and replays
  (`python -m stress.examples.racy_bank --sweep 20`).
"""
