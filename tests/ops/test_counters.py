"""The in-process rate-limit counters: the same answers as the ``limits`` library's sliding window
counter that ``RateLimits`` used before (a hit, then the window's stats), from one operation, on
a clock the test moves (no sleeping), and a bounded number of identities."""

from __future__ import annotations

import math
import random
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from limits import RateLimitItem, parse_many
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter

from bookshelf.config import Settings
from bookshelf.ops.counters import MemoryCounter, window_count
from bookshelf.ops.ratelimit import STRICT, RateLimits, Verdict
from tests.conftest import make_settings

HOUR = 3600
# A window start, plus a fraction so no step falls exactly on a window's edge by accident.
EPOCH = 1_800_000_000.0 + 0.123


class Clock:
    def __init__(self, now: float = EPOCH) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def rate_limits(clock: Clock, **overrides: Any) -> RateLimits:
    values = {
        "rate_limit_enabled": True,
        "rate_limit_default": "5/minute",
        "rate_limit_auth": "3/hour",
        **overrides,
    }
    return RateLimits(make_settings("sqlite+aiosqlite:///unused.db", **values), clock=clock)


class ReferenceLimits:
    """What ``RateLimits._hit`` did before counters.py: limits' hit, then get_window_stats."""

    def __init__(self, default: str, auth: str) -> None:
        self.limiter = SlidingWindowCounterRateLimiter(MemoryStorage())
        self.items = {"default": parse_many(default), STRICT: parse_many(auth)}

    async def hit(self, name: str, identities: tuple[str, ...], now: float) -> Verdict:
        items: list[RateLimitItem] = self.items[STRICT if name == STRICT else "default"]
        verdicts = []
        for identity in identities:
            for item in items:
                allowed = await self.limiter.hit(item, name, identity)
                stats = await self.limiter.get_window_stats(item, name, identity)
                reset = max(0, math.ceil(stats.reset_time - now))
                verdicts.append(Verdict(allowed, item.amount, stats.remaining, reset))
        refused = [v for v in verdicts if not v.allowed]
        if refused:
            return max(refused, key=lambda v: v.reset_seconds)
        return min(verdicts, key=lambda v: v.remaining)


@pytest.mark.parametrize(
    ("default", "auth", "seed"),
    [
        ("5/minute", "3/hour", 1),
        ("2/second;7/minute", "3/hour", 2),
        ("4/minute;20/hour", "1/minute;5/hour", 3),
        ("1/second", "2/minute", 4),
        ("0/minute", "3/hour", 5),
    ],
)
async def test_answers_equal_limits_sliding_window_counter(
    monkeypatch: pytest.MonkeyPatch, default: str, auth: str, seed: int
) -> None:
    clock = Clock()
    # limits reads time.time() itself: give its modules the test's clock.
    fake_time = SimpleNamespace(time=clock)
    monkeypatch.setattr("limits.aio.storage.memory.time", fake_time)
    monkeypatch.setattr("limits.aio.strategies.time", fake_time)
    reference = ReferenceLimits(default, auth)
    limits = rate_limits(clock, rate_limit_default=default, rate_limit_auth=auth)
    requests = [
        ("default", ("address:a",)),
        ("default", ("user:u", "address:a")),
        ("default", ("user:v", "address:b")),
        (STRICT, ("address:a",)),
        (STRICT, ("user:u", "address:c")),
    ]
    generator = random.Random(seed)
    compared = []
    for _ in range(600):
        # Mostly bursts inside a window, now and then a step across one or two windows.
        clock.now += generator.choice([0.05, 0.3, 1.7, 4.9, 13.3, 41.0, 97.0, 1900.0])
        name, identities = generator.choice(requests)
        expected = await reference.hit(name, identities, clock.now)
        assert await limits.hit(name, identities) == expected, (clock.now - EPOCH, name)
        compared.append(expected)
    if default.startswith("0/"):
        return
    # The sequence reached both answers and every part of the verdict moved.
    assert {v.allowed for v in compared} == {True, False}
    assert len({v.remaining for v in compared}) > 1
    assert len({v.reset_seconds for v in compared}) > 1


async def test_a_limit_slides_into_the_next_window() -> None:
    clock = Clock(60 * 30_000_000 + 30.0)  # half-way through a minute
    limits = rate_limits(clock)
    burst = [await limits.hit("default", ("address:a",)) for _ in range(6)]
    assert burst[:5] == [Verdict(True, 5, n, 30) for n in (4, 3, 2, 1, 0)]
    # Refused, and not counted; the window ends in 30 s.
    assert burst[5] == Verdict(False, 5, 0, 30)
    clock.now += 45.0  # 15 s into the next minute: 5 * 45/60 = 3.75 of the last one still count
    verdict = await limits.hit("default", ("address:a",))
    # floor(3.75 + 1) = 4 spent; one more unit of the old window slides out every 60/5 = 12 s,
    # the next in 45 % 12 = 9 s.
    assert verdict == Verdict(True, 5, 1, 9)
    clock.now += 9.5  # 3.75 -> 2.96 of the old window, 1 of this one: two more, then none
    again = [await limits.hit("default", ("address:a",)) for _ in range(3)]
    assert [v.allowed for v in again] == [True, True, False]
    clock.now += 2 * 60  # two windows later nothing is remembered (24.5 s into a minute)
    assert await limits.hit("default", ("address:a",)) == Verdict(True, 5, 4, 36)


async def test_the_tightest_identity_decides() -> None:
    clock = Clock()
    limits = rate_limits(clock, rate_limit_default="5/minute;100/hour")
    for _ in range(3):
        await limits.hit("default", ("address:a",))
    # The address has 1 left of its minute, the user 4: the address's count is the answer.
    shared = await limits.hit("default", ("user:u", "address:a"))
    assert (shared.allowed, shared.limit, shared.remaining) == (True, 5, 1)
    await limits.hit("default", ("address:a",))
    refused = await limits.hit("default", ("user:u", "address:a"))
    assert (refused.allowed, refused.limit, refused.remaining) == (False, 5, 0)


def test_a_window_counted_on_its_first_instant_resets_after_a_whole_window() -> None:
    """limits answers 0 s here (a remainder of exactly 0); the truth is a whole window."""
    counter = MemoryCounter(5, 60)
    assert counter.hit("address:a", 60 * 30_000_000.0) == (True, 4, 60)
    assert window_count(True, 5, 60, 0, 0.0, 1, 120.0).reset_seconds == 60


def test_identities_past_the_bound_forget_the_least_recently_counted() -> None:
    counter = MemoryCounter(2, HOUR, max_keys=3)
    now = EPOCH
    for identity in ("a", "b", "c"):
        counter.hit(identity, now)
    counter.hit("a", now)  # a spent its budget and is now the most recently counted
    assert counter.hit("a", now).allowed is False
    counter.hit("d", now)  # past the bound: b goes, a stays
    assert (len(counter), counter.evicted) == (3, 1)
    assert counter.hit("a", now).allowed is False
    assert counter.hit("b", now) == (True, 1, math.ceil(HOUR - (EPOCH % HOUR)))
    assert (len(counter), counter.evicted) == (3, 2)  # b came back as a new identity: c went


def test_many_identities_stay_within_the_bound() -> None:
    counter = MemoryCounter(10, 60, max_keys=1000)
    now = EPOCH
    for n in range(5000):
        now += 0.001
        counter.hit(f"address:{n}", now)
    assert len(counter) == 1000
    assert counter.evicted == 4000


def test_identities_whose_windows_ended_are_dropped_before_any_live_one() -> None:
    counter = MemoryCounter(10, 60, max_keys=100)
    now = EPOCH
    for n in range(100):
        counter.hit(f"old:{n}", now)
    now += 60
    for _ in range(5):
        counter.hit("old:0", now)  # still inside the sliding window of its last counts
    now += 60  # every other old identity's windows have both ended; old:0's have not
    counter.hit("new", now)
    assert (len(counter), counter.evicted) == (2, 0)
    # Its counts survived: floor(5 * 59.877/60 + 1) spent (a new identity would have 9 left).
    assert counter.hit("old:0", now).remaining == 5


async def test_rate_limits_bound_every_budget(settings: Settings) -> None:
    clock = Clock()
    limits = RateLimits(
        settings.model_copy(update={"rate_limit_enabled": True, "rate_limit_default": "5/minute"}),
        clock=clock,
        max_keys=10,
    )
    for n in range(50):
        await limits.hit("default", (f"address:{n}",))
        await limits.hit(STRICT, (f"address:{n}",))
    assert [len(counter) for counter in limits.memory.budget("default", limits.default)] == [10]
    assert [len(counter) for counter in limits.memory.budget(STRICT, limits.auth)] == [10]


def test_without_redis_the_redis_client_is_not_loaded(tmp_path: Path) -> None:
    """coredis is ~16 MiB of a process: loaded only when BOOKSHELF_REDIS_URL is set."""
    script = (
        "import sys; from bookshelf.main import create_app; from tests.conftest import "
        f"make_settings; create_app(make_settings('sqlite+aiosqlite:///{tmp_path}/x.db')); "
        "print(' '.join(sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout.split()
    assert [name for name in loaded if name.split(".")[0] == "coredis"] == []
