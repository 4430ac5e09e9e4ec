"""Micro-batching: the inputs of concurrent requests joined into forward passes of exactly
``max_batch`` rows, so that an answer never depends on which requests shared its pass.

Requests ``submit`` their encoded inputs (x (n, ...), and a sequence mask (n, T) or None) and
wait; one worker task takes what is pending once ``max_batch`` rows are waiting, or the oldest
has waited ``max_wait`` seconds, or no other request is being read (nobody to wait for), and
runs the passes in one thread of its own (the network is used by one pass at a time; numpy
lets the event loop read requests meanwhile), or, where the last passes of that shape have
cost under ``INLINE`` seconds (their median), in the event loop itself: handing a pass of
microseconds to a thread and back costs more than the pass (a thread waiting for the GIL
waits up to Python's switch interval, 5 ms, on a busy processor).

Inputs of one shape are stacked and cut into passes of ``max_batch`` rows; the last is padded
with copies of its first row. A float32 matrix product picks its kernel by the size of the
problem (and nncli's own kernels run from a size on), so the same row can come out a few
roundings apart in a batch of 3 and in one of 64; with every pass the same size, each row's
outputs are those of the row alone, whoever it shared the pass with.

A model of several inputs is fed a dict {input name: (n, ...) array} and a dict of masks (its
text inputs'); every array of the dict is joined, cut and padded alike (``mapped``), so a
pass of such a model is as fixed in size as any other.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Feed = Any  # an array (n, ...), or a dict {input name: (n, ...) array}; a mask may be None
Forward = Callable[[Feed, Feed], np.ndarray]
Finish = Callable[[np.ndarray], dict[str, list]]  # outputs (n, ...) -> {key: one value a row}
INLINE = 0.002  # seconds: a pass that costs less runs in the event loop (module docstring)
COSTS = 5  # the passes of a shape whose median cost decides (a busy moment is one of them)


@dataclass
class Job:
    """One request's inputs, and where its outputs go."""

    x: Feed
    mask: Feed
    done: asyncio.Future
    finish: Finish | None = None
    since: float = field(default_factory=time.monotonic)

    @property
    def rows(self) -> int:
        return count(self.x)

    @property
    def shape(self) -> tuple[Any, ...]:
        """What must agree for two jobs to share a pass: per-row shapes and dtypes (each
        input's, for a dict)."""
        return *signature(self.x), signature(self.mask)


def count(x: Feed) -> int:
    """The rows of an array, or of each (equally long) array of a dict."""
    return len(next(iter(x.values()))) if isinstance(x, dict) else len(x)


def mapped(work: Callable[[np.ndarray], np.ndarray], value: Feed) -> Feed:
    """``work`` on an array, or on each array of a dict (its names kept); None stays None."""
    if isinstance(value, dict):
        return {name: None if a is None else work(a) for name, a in value.items()}
    return None if value is None else work(value)


def joined(values: list[Feed]) -> Feed:
    """Feeds of one form (``Job.shape``'s), their rows one after the other."""
    if values[0] is None:
        return None
    if isinstance(values[0], dict):
        return {name: np.concatenate([v[name] for v in values]) for name in values[0]}
    return np.concatenate(values)


def signature(value: Feed) -> Any:
    """An array's per-row shape and dtype, a dict's by input name, or None."""
    if isinstance(value, dict):
        return tuple((name, signature(a)) for name, a in value.items())
    return None if value is None else (value.shape[1:], value.dtype.str)


def padded(rows: np.ndarray, size: int) -> np.ndarray:
    """(n, ...) -> (size, ...), the missing rows copies of the first (a real input, so the
    pass computes nothing a real row would not)."""
    if len(rows) == size:
        return rows
    return np.concatenate([rows, np.repeat(rows[:1], size - len(rows), axis=0)])


def window(a: np.ndarray, rows: slice, size: int) -> np.ndarray:
    """Rows ``rows`` of ``a``, padded to ``size`` (``padded``)."""
    return padded(a[rows], size)


def passes(forward: Forward, x: Feed, mask: Feed, size: int) -> tuple[np.ndarray, int]:
    """The outputs of every row of x in passes of exactly ``size`` rows -> (outputs, passes);
    every input and mask of a dict padded alike."""
    parts, rows = [], count(x)
    for start in range(0, rows, size):
        cut = functools.partial(window, rows=slice(start, min(start + size, rows)), size=size)
        parts.append(forward(mapped(cut, x), mapped(cut, mask))[: min(size, rows - start)])
    return np.concatenate(parts), len(parts)


class Batcher:
    """Joins concurrent requests' inputs into fixed-size forward passes (module docstring).
    ``observe(rows, passes)`` hears of each round's real rows and its pass count; ``passes``
    and ``rounds`` count them too."""

    def __init__(
        self,
        forward: Forward,
        max_batch: int,
        max_wait: float,
        observe: Callable[[int, int], None] | None = None,
    ):
        self.forward, self.max_batch, self.max_wait = forward, int(max_batch), float(max_wait)
        self.observe = observe
        self.pending: deque[Job] = deque()
        self.waiting_rows = 0
        self.coming = 0  # requests begun and not yet submitted (``expect``)
        self.passes = self.rounds = 0
        self.cost: dict[Any, deque[float]] = {}  # seconds the last passes of a shape took
        self.calling = 0  # calls (``call``) in the forward thread
        self.inline = 0  # rounds run in the event loop
        self.busy = False  # a round in the forward thread
        self.task: asyncio.Task | None = None
        self.executor: ThreadPoolExecutor | None = None
        self.arrived: asyncio.Event | None = None

    async def start(self) -> None:
        self.arrived = asyncio.Event()
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="nncli-forward")
        self.task = asyncio.create_task(self.work(), name="nncli-batcher")

    async def stop(self, patience: float = 5.0) -> None:
        """Answer what is pending (waiting at most ``patience`` seconds), then end the worker
        and its thread."""
        deadline = time.monotonic() + patience
        while self.pending and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        if self.executor is not None:
            self.executor.shutdown(wait=True)

    @contextlib.contextmanager
    def expect(self) -> Iterator[None]:
        """Around a request's reading and encoding: while any is under way, a pending job
        waits (at most max_wait) for it to share its pass; with none coming, it waits for
        nobody."""
        self.coming += 1
        try:
            yield
        finally:
            self.coming -= 1
            if self.arrived is not None:
                self.arrived.set()  # a gathering round looks again

    async def submit(self, x: Feed, mask: Feed, finish: Finish | None = None) -> Any:
        """A request's inputs -> the network's outputs for them, row for row; with ``finish``
        (a function of outputs whose every list holds one value a row, in order), its values
        for them instead: applied once to all the rows of a round's jobs that share it, each
        job given its rows' part (one call for a round, not one a request)."""
        if self.task is None or self.arrived is None:
            raise RuntimeError("the batcher is not running")
        job = Job(x, mask, asyncio.get_running_loop().create_future(), finish)
        self.pending.append(job)
        self.waiting_rows += job.rows
        self.arrived.set()
        return await job.done

    async def call(self, work: Callable[..., Any], *args: Any) -> Any:
        """``work(*args)`` in the forward thread, between passes (the network serves one caller
        at a time): a text model's generation, window after window."""
        if self.executor is None:
            raise RuntimeError("the batcher is not running")
        self.calling += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self.executor, work, *args)
        finally:
            self.calling -= 1

    async def work(self) -> None:
        assert self.arrived is not None
        loop = asyncio.get_running_loop()
        while True:
            if not self.pending:
                self.arrived.clear()
                await self.arrived.wait()
                continue  # woken by a job, or by a request that ended without one
            await self.gather()
            jobs = self.take()
            try:
                await self.round(jobs, loop)
            except Exception as exc:  # a fault outside the passes: its requests hear of it, and
                for job in jobs:  # the worker goes on (a dead worker would hang every request)
                    settle(job.done, None, exc)

    async def round(self, jobs: list[Job], loop: asyncio.AbstractEventLoop) -> None:
        """The passes of ``jobs``, in the event loop where they are cheap, else in the thread."""
        if self.cheap(jobs):  # in the loop: no thread to hand it to and back
            self.inline += 1
            self.run(jobs, settle)
            await asyncio.sleep(0)  # the answered requests go on before the next round
        else:
            self.busy = True
            try:
                await loop.run_in_executor(self.executor, self.run, jobs, threadsafe(loop))
            finally:
                self.busy = False

    def cheap(self, jobs: list[Job]) -> bool:
        """Whether the passes of ``jobs`` may run in the event loop: the last pass of each of
        their shapes cost under INLINE (a shape not yet seen: tried there once), and no
        ``call`` is using the network in the forward thread."""
        if self.calling or self.busy:
            return False
        shapes = {job.shape for job in jobs}
        return all(median(self.cost.get(shape, (0.0,))) < INLINE for shape in shapes)

    async def gather(self) -> None:
        """Wait until max_batch rows are pending, or the oldest job has waited max_wait, or no
        other request is on its way (``expect``)."""
        assert self.arrived is not None
        while self.pending and self.waiting_rows < self.max_batch and self.coming:
            left = self.pending[0].since + self.max_wait - time.monotonic()
            if left <= 0:
                return
            self.arrived.clear()
            try:
                await asyncio.wait_for(self.arrived.wait(), left)
            except asyncio.TimeoutError:  # noqa: UP041  (not the builtin before Python 3.11)
                return

    def take(self) -> list[Job]:
        """The pending jobs up to max_batch rows (at least one job, however many rows)."""
        jobs, rows = [], 0
        while self.pending and (not jobs or rows + self.pending[0].rows <= self.max_batch):
            job = self.pending.popleft()
            jobs.append(job)
            rows += job.rows
        self.waiting_rows -= rows
        return jobs

    def run(self, jobs: list[Job], hand: Callable[..., None]) -> None:
        """In the forward thread or the loop: one group of passes per input shape, each
        timed; each job's outputs (or the error) given to ``hand(done, result, error)``."""
        groups: dict[Any, list[Job]] = {}
        for job in jobs:
            groups.setdefault((job.shape, job.finish), []).append(job)
        count = 0
        for (shape, finish), group in groups.items():
            began = time.perf_counter()
            try:
                x, mask = joined([job.x for job in group]), joined([job.mask for job in group])
                outputs, made = passes(self.forward, x, mask, self.max_batch)
                took = (time.perf_counter() - began) / made
                results = outputs if finish is None else finish(outputs)
            except Exception as exc:  # a bug: every job of the group hears of it
                for job in group:
                    hand(job.done, None, exc)
                continue
            self.cost.setdefault(shape, deque(maxlen=COSTS)).append(took)
            count += made
            start = 0
            for job in group:
                hand(job.done, part(results, slice(start, start + job.rows)), None)
                start += job.rows
        self.passes += count
        self.rounds += 1
        if self.observe is not None:
            self.observe(sum(job.rows for job in jobs), count)


def part(results: Any, rows: slice) -> Any:
    """Rows ``rows`` of outputs, or of each list of a ``Finish``'s values."""
    if isinstance(results, dict):
        return {key: values[rows] for key, values in results.items()}
    return results[rows]


def median(values: Any) -> float:
    """The median of a few numbers (numpy's costs more than the pass it judges)."""
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def threadsafe(loop: asyncio.AbstractEventLoop) -> Callable[..., None]:
    """``settle`` as the forward thread calls it: in the event loop's thread, soon."""
    return lambda *given: loop.call_soon_threadsafe(settle, *given)


def settle(done: asyncio.Future, result: Any, error: BaseException | None) -> None:
    """A job's future given its outputs or error, unless its request has gone."""
    if done.done():
        return
    if error is not None:
        done.set_exception(error)
    else:
        done.set_result(result)
