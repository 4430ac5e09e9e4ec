"""Micro-batching: concurrent requests share forward passes of exactly --max-batch rows, and each
answer is the one the request gets alone."""

from __future__ import annotations

import asyncio
import csv
import io

import numpy as np
import pytest
from conftest import concurrently, rows_of, typed
from helpers import invoke

from nncli.serve.batching import Batcher, padded, passes

IRIS = {"sepal_length_cm", "sepal_width_cm", "petal_length_cm", "petal_width_cm"}


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, 60))  # a hang fails, it does not block


class Recorder:
    """A forward pass that records the shapes it is given; its outputs depend on the size of
    the pass (as a float32 product's roundings may), ``x * 10 + rows``."""

    def __init__(self):
        self.shapes = []

    def __call__(self, x, mask):
        self.shapes.append((x.shape, None if mask is None else mask.shape))
        return x * 10 + len(x)


def test_concurrent_jobs_share_passes_of_exactly_max_batch_rows():
    forward = Recorder()

    async def main():
        batcher = Batcher(forward, max_batch=8, max_wait=0.2)
        await batcher.start()
        xs = [np.full((1, 3), i, dtype=np.float32) for i in range(20)]
        answers = await asyncio.gather(*(batcher.submit(x, None) for x in xs))
        await batcher.stop()
        return batcher, xs, answers

    batcher, xs, answers = run(main())
    assert forward.shapes == [((8, 3), None)] * 3  # 20 rows: 8 + 8 + 4 padded to 8
    assert batcher.passes == 3 and batcher.rounds == 3
    for x, answer in zip(xs, answers, strict=True):
        np.testing.assert_array_equal(answer, x * 10 + 8)  # the size of every pass


def test_inputs_of_other_shapes_go_through_passes_of_their_own():
    forward = Recorder()

    async def main():
        batcher = Batcher(forward, max_batch=4, max_wait=0.2)
        await batcher.start()
        short = (np.ones((2, 3, 1), np.float32), np.ones((2, 3), bool))
        long = (np.ones((1, 5, 1), np.float32), np.ones((1, 5), bool))
        answers = await asyncio.gather(batcher.submit(*short), batcher.submit(*long))
        await batcher.stop()
        return answers

    first, second = run(main())
    assert sorted(forward.shapes) == [((4, 3, 1), (4, 3)), ((4, 5, 1), (4, 5))]
    assert first.shape == (2, 3, 1) and second.shape == (1, 5, 1)


def test_a_request_larger_than_a_pass_takes_several():
    forward = Recorder()
    x = np.arange(10, dtype=np.float32)[:, None]
    out, made = passes(forward, x, None, 4)
    assert made == 3 and [s for s, _ in forward.shapes] == [(4, 1)] * 3
    np.testing.assert_array_equal(out, x * 10 + 4)
    np.testing.assert_array_equal(padded(x[:3], 5)[3:], x[[0, 0]])  # copies of a real row


def test_a_lone_request_waits_at_most_max_wait():
    async def main():
        batcher = Batcher(Recorder(), max_batch=64, max_wait=0.05)
        await batcher.start()
        answer = await asyncio.wait_for(batcher.submit(np.ones((1, 2), np.float32), None), 10)
        await batcher.stop()
        return answer

    assert run(main()).shape == (1, 2)


def test_a_failed_pass_fails_each_of_its_requests():
    def broken(x, mask):
        raise RuntimeError("a bug")

    async def main():
        batcher = Batcher(broken, max_batch=4, max_wait=0.1)
        await batcher.start()
        jobs = [batcher.submit(np.ones((1, 2), np.float32), None) for _ in range(3)]
        results = await asyncio.gather(*jobs, return_exceptions=True)
        await batcher.stop()
        return results

    assert [type(r) for r in run(main())] == [RuntimeError] * 3


def test_a_fault_outside_the_passes_fails_its_request_and_the_worker_goes_on():
    """Inputs the batcher cannot even group (no array): that request hears of the error, and the
    next is answered (a worker that died would leave every request waiting for ever)."""

    async def main():
        batcher = Batcher(lambda x, mask: x, max_batch=4, max_wait=0.0)
        await batcher.start()
        bad = await asyncio.gather(batcher.submit([[1.0, 2.0]], None), return_exceptions=True)
        good = await batcher.submit(np.ones((1, 2)), None)
        await batcher.stop()
        return bad[0], good

    bad, good = run(main())
    assert isinstance(bad, AttributeError) and good.shape == (1, 2)


@pytest.mark.parametrize("max_batch", [16, 5])
def test_concurrent_requests_get_their_lone_answers_and_predicts(serving, models, max_batch):
    """40 requests of 1 to 5 iris rows at once: fewer forward passes than requests (they were
    joined), and each answer equal to the same request's answer alone and to predict --proba
    on the file."""
    checkpoint, data = models["iris"]
    rows = typed(rows_of(data), IRIS)
    starts = np.random.default_rng(0).integers(0, len(rows) - 5, 40)
    requests = [rows[s : s + 1 + i % 5] for i, s in enumerate(starts)]
    written = invoke("predict", checkpoint, data, "--proba").stdout
    expected = list(csv.DictReader(io.StringIO(written)))

    with serving("iris", max_batch=max_batch, max_wait_ms=0) as client:  # nobody to wait for
        alone = [client.post("/predict", json={"rows": r}).json() for r in requests]
    with serving("iris", max_batch=max_batch, max_wait_ms=200) as client:
        joined = concurrently(client, requests)
        used = client.app.state.batcher.passes
    assert joined == alone
    assert used < len(requests)  # joined: 40 requests (120 rows) in fewer passes
    if max_batch == 16:
        assert used <= 12  # 8 passes would hold them: each round packs at least 12 rows
    for start, request, answer in zip(starts, requests, joined, strict=True):
        for k, probabilities in enumerate(answer["probabilities"]):
            row = expected[start + k]
            assert answer["predictions"][k] == row["prediction"]
            assert {f"proba_{label}": repr(p) for label, p in probabilities.items()} == {
                key: value for key, value in row.items() if key.startswith("proba_")
            }
        assert len(answer["predictions"]) == len(request)


def test_cheap_passes_run_in_the_loop_and_dear_ones_in_the_thread():
    """A shape's first pass runs in the event loop; once a pass of that shape has cost over
    INLINE (here a forward that sleeps 5 ms), its next ones go to the forward thread."""
    import time

    from nncli.serve.batching import INLINE

    threads = []

    def forward(x, mask):
        import threading

        threads.append(threading.current_thread().name)
        if x.shape[1] == 2:
            time.sleep(INLINE * 2.5)
        return x

    async def main():
        batcher = Batcher(forward, 4, 0.0)
        await batcher.start()
        for width in (3, 2, 2, 2):
            await batcher.submit(np.ones((1, width)), None)
        await batcher.stop()
        return batcher

    batcher = run(main())
    assert batcher.rounds == 4 and batcher.inline == 2  # the first of each shape
    assert not threads[0].startswith("nncli-forward") and not threads[1].startswith("nncli")
    assert threads[2:] == ["nncli-forward_0"] * 2
    assert min(batcher.cost[((2,), "<f8", None)]) >= INLINE


def test_a_row_of_numbers_needs_no_frame_and_gets_the_frames_inputs(models):
    """iris: clean JSON rows are encoded without a pandas frame, to the bit what the frame
    gives; a missing value or one that overflows float32 goes the frame's way."""
    from nncli.commands.serve import Served
    from nncli.serve.settings import Settings

    served = Served.load(models["iris"][0], Settings())
    rows = typed(rows_of(models["iris"][1]), IRIS)
    for row in rows:
        row.pop("species")
    fast = served.prepare_rows(rows)
    assert fast.frame is None and served.plain_numbers
    frame = served.predictor.prepare_records([{k: repr(v) for k, v in r.items()} for r in rows])
    assert fast.x.dtype == frame.x.dtype and np.array_equal(fast.x, frame.x)
    big = served.block_inputs(np.array([[1e300, 1.0, 1.0, 1.0]]))
    missing = served.block_inputs(np.array([[np.nan, 1.0, 1.0, 1.0]]))
    assert big is None and missing is None
