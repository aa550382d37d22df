"""How fast the judge sends: a concurrency ceiling, and an adaptive send rate that rides a server's rate limit.

Until the server first refuses a request (HTTP 429): a window of requests in flight that starts at
`start_window` and grows by one per answered request (doubling each round trip, TCP's slow start) up to the
ceiling, `eval.judge.concurrency`; while it grows, its sends are spread over the round trip instead of going out
in bursts, so a refusal means the rate was too high, not the burst. A server without a rate limit therefore
sees fixed concurrency after a few round trips.

A 429 switches to a paced send rate: `CUT` times what the window was sending (window / round trip). From then on
each 429 of a request sent after the last cut (one burst of refusals cuts once) multiplies the rate by `CUT`,
starting from the lower of the current rate and the rate of answers over the last second (the server's own
limit, measured; it lags a round trip, so it may lower the start by one more `CUT` at most). Between cuts the rate grows per request sent: quickly back to where the last cut happened,
then past it slowly at first and faster the longer no refusal comes (the concave-then-convex probe of TCP CUBIC,
counted in requests so that the share of refused requests does not depend on how high the limit is). It spends
most of its time just under the limit and crosses it about once per few hundred requests. A `Retry-After`
pauses every send until it has passed: the server said when to come back, and a storm of retries helps nobody.

The clock is injectable (`now`), so the controller's arithmetic is tested without sleeping.
"""

import asyncio
import math
import time
from collections import deque
from typing import Callable, Deque, Optional

CUT = 0.9  # multiplicative decrease of the send rate on a 429
FAST_STEP = 0.01  # relative growth per request sent while below the rate of the last cut (back in ~10)
PROBE_STEP = 0.0005  # relative growth per request just past it ...
PROBE_DOUBLING = 100  # ... doubling every this many requests without a refusal, up to FAST_STEP
MIN_RATE = 0.05  # requests/s: never stop entirely (a Retry-After pause is how a server stops us)
WINDOW_S = 1.0  # the span over which the rate of answers is measured


class AdaptiveGate:
    def __init__(self, max_concurrency: int, adaptive: bool = True, start_window: int = 4,
                 now: Callable[[], float] = time.monotonic) -> None:
        self.ceiling = max(1, int(max_concurrency))
        self.adaptive = adaptive
        self.now = now
        # Slow start (adaptive only): the window of requests in flight before the first 429.
        self.window = float(min(self.ceiling, max(1, start_window))) if adaptive else float(self.ceiling)
        self.rate: Optional[float] = None  # requests/s once paced; None: not paced
        self.last_cut_rate: Optional[float] = None
        self.last_cut_at = -math.inf  # send time after which a 429 may cut again
        self.pause_until = -math.inf
        self.next_send = -math.inf
        self._probed = 0  # requests sent since the rate last rose past the rate of the last cut
        self.latency: Optional[float] = None  # round-trip time of answered requests, smoothed
        self.in_flight = 0
        self.cuts = 0
        self._answers: Deque[float] = deque()  # completion times of answered requests within WINDOW_S
        self._started = now()
        self._waiters: Deque[asyncio.Future] = deque()
        self._timer: Optional[asyncio.TimerHandle] = None

    # -- the arithmetic (no awaiting) -------------------------------------------------------------------------

    def slot(self) -> float:
        """Seconds until the next request may go out (0: now); counts nothing."""
        t = self.now()
        if self.in_flight >= self.limit():
            return math.inf
        return max(0.0, self.pause_until - t, self.next_send - t)

    def limit(self) -> int:
        return self.ceiling if self.rate is not None else max(1, min(self.ceiling, int(self.window)))

    def sent(self) -> float:
        """Record a request going out now; returns its send time (hand it back to answered/refused)."""
        t = self.now()
        self.in_flight += 1
        if self.rate is not None:
            self._grow()
            self.next_send = max(t, self.next_send) + 1.0 / self.rate
        elif self.adaptive and self.latency and self.window < self.ceiling:  # a growing window, spread out
            self.next_send = max(t, self.next_send) + self.latency / self.window
        return t

    def answered(self, sent_at: float) -> None:
        """Any response that is not a 429 (an error answer still means the server let it through)."""
        self._finish()
        t = self.now()
        self.latency = t - sent_at if self.latency is None else 0.8 * self.latency + 0.2 * (t - sent_at)
        self._answers.append(t)
        while self._answers and self._answers[0] < t - WINDOW_S:
            self._answers.popleft()
        if self.rate is None and self.adaptive:
            self.window = min(float(self.ceiling), self.window + 1.0)

    def refused(self, sent_at: float, retry_after_s: Optional[float]) -> None:
        """A 429: pause for Retry-After, and cut the rate once per burst of refusals."""
        self._finish()
        if not self.adaptive:  # fixed concurrency: each refused request waits on its own (the caller's retry)
            return
        t = self.now()
        if retry_after_s is not None and retry_after_s > 0:
            self.pause_until = max(self.pause_until, t + retry_after_s)
        if sent_at < self.last_cut_at:
            return
        if self.rate is None:
            if not self.latency:  # refused before any answer: no rate to pace at yet, so a smaller window
                self.window = max(1.0, self.window / 2)
                self.last_cut_at = t
                self.cuts += 1
                return
            # Leaving the window: it sent about window / round trip (what was answered is bounded by the window).
            base = self.window / self.latency
        else:
            # The answers of the last second measure the limit, but lag the sends by a round trip: trusted down to
            # one more CUT, so a cut during a ramp (or a short lull) is never deeper than CUT squared.
            measured = self.answer_rate(t)
            base = self.rate if measured is None else max(CUT * self.rate, min(self.rate, measured))
        self.rate = max(MIN_RATE, CUT * base)
        self.last_cut_rate = base
        self.last_cut_at = t
        self._probed = 0
        self.next_send = max(self.next_send, t + 1.0 / self.rate)
        self.cuts += 1

    def answer_rate(self, t: float) -> Optional[float]:
        """Answers per second over the last WINDOW_S (or since the start, when that is shorter)."""
        span = min(WINDOW_S, t - self._started)
        if not self._answers or span <= 0.05:
            return None
        return sum(1 for a in self._answers if a >= t - WINDOW_S) / span

    def _grow(self) -> None:
        """One request's worth of growth: fast back to the last cut, then a probe that speeds up."""
        if self.rate < self.last_cut_rate:
            self.rate = min(self.last_cut_rate, self.rate * (1.0 + FAST_STEP))
            return
        step = min(FAST_STEP, PROBE_STEP * 2.0 ** (self._probed / PROBE_DOUBLING))
        self._probed += 1
        self.rate *= 1.0 + step

    def unused(self) -> None:
        """A slot taken but no request sent (the budget stopped it)."""
        self._finish()

    def _finish(self) -> None:
        self.in_flight -= 1
        self._dispatch()

    # -- awaiting: waiters in arrival order, each let through when the window and the pace allow ------------

    async def acquire(self) -> float:
        """Wait for a slot, record the send; returns the send time."""
        if not self._waiters and self.slot() <= 0:
            return self.sent()
        fut = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        self._dispatch()
        return await fut

    def _dispatch(self) -> None:
        """Let waiters through while there is room; otherwise wake again when the pace allows (or on a finish)."""
        while self._waiters:
            if self._waiters[0].done():  # cancelled
                self._waiters.popleft()
                continue
            wait = self.slot()
            if wait > 0:
                if wait != math.inf:
                    if self._timer is not None:
                        self._timer.cancel()
                    self._timer = asyncio.get_running_loop().call_later(wait, self._dispatch)
                return
            self._waiters.popleft().set_result(self.sent())
