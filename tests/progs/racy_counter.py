"""A check-then-act race across an await: tests/test_sweep.py and docs/stress.md sweep it.

Six goroutines each reserve 2 of the 10 seats left. Each checks there is room, records the booking
on a buffered channel (an await: the goroutine may yield there), then takes the seats. Two
goroutines that both pass the check before either takes its seats overbook. The channel never
blocks (it has room for every booking), so a plain run rarely yields there; chaos mode asks
goroutines to yield at such calls, and finds the race in a few seeds.

With `--fixed` a Mutex is held across check and act, and no seed overbooks.
"""

import sys

import mn_runtime as mn

SEATS = 10
GUESTS = 6
EACH = 2


class Hall:
    def __init__(self) -> None:
        self.free = SEATS
        self.booked = 0
        self.mu = mn.Mutex()


async def book(hall: Hall, log: mn.Chan) -> None:
    if hall.free >= EACH:  # check
        await log.send(EACH)  # an await between the check and the act
        hall.free -= EACH  # act
        hall.booked += EACH


async def book_fixed(hall: Hall, log: mn.Chan) -> None:
    async with hall.mu:
        await book(hall, log)


async def main() -> None:
    fixed = "--fixed" in sys.argv[1:]
    hall = Hall()
    log = mn.Chan(GUESTS)
    gs = [mn.go(book_fixed if fixed else book, hall, log) for _ in range(GUESTS)]
    for g in gs:
        await g.join()
    assert hall.free >= 0, f"overbooked: {hall.booked} seats booked of {SEATS}"
    assert hall.free + hall.booked == SEATS
