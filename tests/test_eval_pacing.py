"""The judge's send control (evaluate/pacing.py) on a simulated clock: its arithmetic step by step, and whole runs
against a token-bucket rate limit simulated event by event (no sleeping, no wall clock: the same numbers on any
machine). The real thing, against the loopback server over HTTP, is bench/bench_judge.py."""

import asyncio
import heapq
import math
from collections import deque

import pytest

from cosmos_exp.evaluate.pacing import CUT, AdaptiveGate


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_slow_start_doubles_the_window_each_round_trip_up_to_the_ceiling():
    clock = Clock()
    gate = AdaptiveGate(32, start_window=4, now=clock)
    sends = [gate.sent() for _ in range(4)]
    assert gate.slot() == math.inf  # the window of 4 is full
    clock.t = 0.1
    for s in sends:
        gate.answered(s)
    assert gate.limit() == 8  # one more per answer
    for _ in range(10):
        gate.answered(gate.sent())
    assert gate.limit() == 18
    for _ in range(40):
        gate.answered(gate.sent())
    assert gate.limit() == 32  # the ceiling, eval.judge.concurrency


def answer_after(gate, clock, rtt):
    sent = gate.sent()
    clock.t += rtt
    gate.answered(sent)
    clock.t -= rtt


def test_a_429_paces_at_a_cut_of_the_window_then_of_the_measured_rate_and_a_burst_cuts_once():
    clock = Clock()
    gate = AdaptiveGate(32, start_window=5, now=clock)
    gate.refused(gate.sent(), retry_after_s=0.05)  # before any answer: no rate known, a smaller window
    assert gate.rate is None and gate.limit() == 2 and gate.cuts == 1
    for i in range(60):  # round trips of 0.1 s; the window grows to 32 (the ceiling)
        clock.t = 0.5 + i * 0.02
        answer_after(gate, clock, 0.1)
    assert gate.limit() == 32 and gate.latency == pytest.approx(0.1)
    burst = [gate.sent() for _ in range(5)]
    clock.t = 1.8
    gate.refused(burst[0], retry_after_s=0.2)
    # Leaving the window: it sent 32 per 0.1 s round trip.
    assert gate.rate == pytest.approx(CUT * 320) and gate.cuts == 2
    assert gate.slot() == pytest.approx(0.2)  # Retry-After: nothing goes out before it has passed
    for s in burst[1:]:  # sent before the cut: the same burst, no second cut
        gate.refused(s, None)
    assert gate.cuts == 2
    clock.t = 2.0
    late = gate.sent()  # sent after the cut: its refusal cuts from the lower of the rate and the answers ...
    clock.t = 2.05
    rate = gate.rate
    gate.refused(late, None)
    measured = sum(1 for i in range(60) if 0.5 + i * 0.02 + 0.1 >= 2.05 - 1.0) / 1.0
    assert measured < CUT * rate  # ... which lag the sends by a round trip: trusted down to one more CUT
    assert gate.cuts == 3 and gate.rate == pytest.approx(CUT * CUT * rate)


def test_the_rate_grows_fast_back_to_the_last_cut_and_probes_slowly_past_it():
    clock = Clock()
    gate = AdaptiveGate(4, start_window=4, now=clock)
    answer_after(gate, clock, 0.1)
    gate.refused(gate.sent(), None)  # the window of 4 per 0.1 s: 40/s
    assert gate.rate == pytest.approx(CUT * 40)
    rates = []
    for i in range(1, 1001):  # growth is counted in requests sent
        clock.t = 0.05 * i
        answer_after(gate, clock, 0.1)
        rates.append(gate.rate)
    back = next(i for i, r in enumerate(rates) if r >= 40 - 1e-9)
    assert back <= 11  # back to the old level: +1% a request
    assert 40 < rates[back + 100] < 40 * 1.1  # just past it, a few per cent per hundred requests
    assert rates[-1] > 2 * 40  # and faster the longer no refusal comes


def test_fixed_concurrency_ignores_the_signal():
    clock = Clock()
    gate = AdaptiveGate(32, adaptive=False, now=clock)
    assert gate.limit() == 32
    s = gate.sent()
    gate.refused(s, retry_after_s=5.0)
    assert gate.rate is None and gate.cuts == 0 and gate.slot() == 0


def simulate(limit: float, burst: float, latency: float, calls: int, adaptive: bool, ceiling: int = 32):
    """Send `calls` requests through the gate to a token-bucket server; a refused request returns at once with
    Retry-After (the time to the next token) and is sent again after it. Returns (answers/s over the limit,
    share of requests refused)."""
    clock = Clock()
    gate = AdaptiveGate(ceiling, adaptive=adaptive, now=clock)
    tokens, filled_at = burst, 0.0
    events, waiting, ready = [], [], deque(range(calls))
    answered = refused = seq = 0
    while answered < calls:
        while ready and gate.slot() == 0:
            call = ready.popleft()
            sent = gate.sent()
            tokens, filled_at = min(burst, tokens + (clock.t - filled_at) * limit), clock.t
            if tokens >= 1:
                tokens -= 1
                heapq.heappush(events, (clock.t + latency, seq, "ok", sent, call, None))
            else:
                heapq.heappush(events, (clock.t + 0.001, seq, "429", sent, call, (1 - tokens) / limit))
            seq += 1
        nxt = [events[0][0]] if events else []
        nxt += [waiting[0][0]] if waiting else []
        pace = gate.slot() if ready else math.inf
        nxt += [clock.t + pace] if pace not in (0, math.inf) else []
        clock.t = max(clock.t, min(nxt))
        while events and events[0][0] <= clock.t:
            _, _, kind, sent, call, retry = heapq.heappop(events)
            if kind == "ok":
                gate.answered(sent)
                answered += 1
            else:
                gate.refused(sent, retry)
                refused += 1
                heapq.heappush(waiting, (clock.t + retry, seq, call))
                seq += 1
        while waiting and waiting[0][0] <= clock.t:
            ready.append(heapq.heappop(waiting)[2])
    return answered / clock.t / limit, refused / (answered + refused)


@pytest.mark.parametrize("limit,burst,latency", [(40, 10, 0.1), (5, 2, 1.5), (200, 20, 0.05), (40, 1, 0.1), (8, 8, 1.5)])
def test_adaptive_rides_the_limit_where_fixed_concurrency_is_refused(limit, burst, latency):
    share, rejected = simulate(limit, burst, latency, int(limit * 60), adaptive=True)  # a minute at the limit
    assert share >= 0.9 and rejected < 0.05, (share, rejected)
    # Fixed concurrency 32 (each refused request waits its own Retry-After): most requests refused.
    fixed_share, fixed_rejected = simulate(limit, burst, latency, int(limit * 5), adaptive=False)
    assert fixed_rejected > 0.5 and fixed_rejected > 10 * rejected


def test_without_a_limit_the_window_opens_to_the_ceiling():
    share, rejected = simulate(1e6, 1e6, 0.1, 3000, adaptive=True)
    assert rejected == 0 and share * 1e6 > 0.95 * 32 / 0.1  # calls/s near ceiling / latency


def test_waiters_go_out_in_order_as_the_window_allows():
    async def main():
        gate = AdaptiveGate(2, adaptive=False)
        order = []

        async def one(i):
            sent = await gate.acquire()
            order.append(i)
            await asyncio.sleep(0.001 * (3 - i % 3))
            gate.answered(sent)

        await asyncio.gather(*(one(i) for i in range(9)))
        assert order == list(range(9)) and gate.in_flight == 0

    asyncio.run(main())
