"""The GIL is released while the model runs, and one model serves several threads at once."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from conftest import read_reference, fixtures


def test_threads_encoding_at_once_get_the_single_threaded_results(model, reference):
    texts, _ = reference
    batches = [texts[i::4] for i in range(4)] * 4  # 16 calls of 10 texts, 4 threads
    want = [model.encode(b) for b in batches]
    with ThreadPoolExecutor(max_workers=4) as pool:
        got = list(pool.map(model.encode, batches))
    for w, g in zip(want, got):
        np.testing.assert_array_equal(g, w)
    # Singles and other options interleaved from several threads, too.
    with ThreadPoolExecutor(max_workers=4) as pool:
        singles = list(pool.map(model.encode, texts))
    np.testing.assert_allclose(np.stack(singles), model.encode(texts), atol=1e-5)


def test_other_python_threads_run_while_the_model_works(model):
    # A long encode; a Python thread ticking meanwhile must get ticks in while it runs. With the GIL
    # held for the whole call it could not.
    docs = [
        line
        for line in (fixtures().parent / "data" / "scifact" / "corpus.jsonl").read_text().splitlines()[:200]
        if line.strip()
    ]
    ticks = []
    stop = threading.Event()

    def tick():
        while not stop.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.001)

    ticker = threading.Thread(target=tick)
    ticker.start()
    try:
        start = time.perf_counter()
        model.encode(docs)
        end = time.perf_counter()
    finally:
        stop.set()
        ticker.join()
    assert end - start > 0.2, f"the encode took only {end - start:.3f}s: too short to tell"
    inside = [t for t in ticks if start + 0.05 < t < end - 0.05]
    assert len(inside) >= 10, f"{len(inside)} ticks during a {end - start:.2f}s encode"
