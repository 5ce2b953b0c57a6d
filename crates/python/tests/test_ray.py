"""fathom.ray on a real two-node Ray cluster (ray.cluster_utils.Cluster, on loopback) writing to
moto's S3 server: the collection it builds equals what `fathom ingest` builds from the same
folder, `fathom serve` answers searches on it, a re-run re-embeds only what changed and deletes
what is gone, and a worker killed mid-run still leaves a complete, duplicate-free collection.

The CLI is the workspace's release binary: $FATHOM_BIN (scripts/test.sh sets it), else
$CARGO_TARGET_DIR/release/fathom or ~/.cache/fathom/target/release/fathom. Missing: a failure.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

import fathom
import fathom.ray

from conftest import cosines, fixtures, minilm_dir

import lance  # noqa: E402
import ray  # noqa: E402
from ray.cluster_utils import Cluster  # noqa: E402

BUCKET = "fathom-ray"


def fathom_bin() -> str:
    candidates = [os.environ.get("FATHOM_BIN")]
    if os.environ.get("CARGO_TARGET_DIR"):
        candidates.append(os.path.join(os.environ["CARGO_TARGET_DIR"], "release", "fathom"))
    candidates.append(os.path.expanduser("~/.cache/fathom/target/release/fathom"))
    for c in candidates:
        if c and os.path.isfile(c):
            return c
    raise AssertionError(f"the fathom binary is missing (looked at {candidates}): build it, or set FATHOM_BIN")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3():
    moto = Path(sys.executable).with_name("moto_server")
    assert moto.is_file(), f"{moto} is missing: run scripts/setup.sh"
    port = free_port()
    proc = subprocess.Popen([str(moto), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.time() + 30
    while True:
        try:
            req = urllib.request.Request(f"{endpoint}/{BUCKET}", method="PUT")
            urllib.request.urlopen(req, timeout=2)
            break
        except Exception:
            assert time.time() < deadline, "moto_server did not start"
            time.sleep(0.2)
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT": endpoint,
        "AWS_ALLOW_HTTP": "true",
    }
    options = {
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
        "region": "us-east-1",
        "endpoint": endpoint,
        "allow_http": "true",
    }
    yield {"env": env, "options": options}
    proc.kill()
    proc.wait()


@pytest.fixture(scope="module")
def cluster():
    # Two nodes of one CPU each: Ray schedules the workers on both, as on two machines.
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    c.add_node(num_cpus=1)
    c.wait_for_nodes()
    ray.init(address=c.address)
    assert len([n for n in ray.nodes() if n["Alive"]]) == 2
    yield c
    ray.shutdown()
    c.shutdown()


def scifact(n: int, skip: int = 0):
    lines = (fixtures().parent / "data" / "scifact" / "corpus.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines[skip : skip + n]]


def make_folder(path: Path, n: int) -> Path:
    """SciFact abstracts as text files, a Markdown file, a Word document (read by the parser child
    `python -m fathom._parse`), a binary file and a JSON file without a text field (both skipped)."""
    path.mkdir(parents=True)
    for doc in scifact(n):
        (path / "abstracts").mkdir(exist_ok=True)
        (path / "abstracts" / f"{doc['_id']}.txt").write_text(f"{doc['title']}\n\n{doc['text']}\n")
    (path / "notes.md").write_text("# Ray\n\nfathom on Ray writes lance fragments.\n\n" * 20)
    import docx

    d = docx.Document()
    d.add_heading("Quarterly report", 1)
    d.add_paragraph("Revenue from deep-sea cable repairs grew by a third this quarter.")
    d.save(path / "report.docx")
    (path / "blob.bin").write_bytes(bytes(range(256)) * 10)
    (path / "data.json").write_text('{"a": 1}')
    return path


def run_cli(s3, *args, cwd):
    env = {**os.environ, **s3["env"]}
    out = subprocess.run([fathom_bin(), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    return out.stdout


def rows(uri, s3):
    ds = lance.dataset(uri, storage_options=s3["options"])
    t = ds.to_table().sort_by([("source_id", "ascending"), ("chunk_index", "ascending")])
    return ds, t


def assert_same_collection(cli_uri, ray_uri, s3):
    cli_ds, cli = rows(cli_uri, s3)
    ray_ds, got = rows(ray_uri, s3)
    assert got.num_rows == cli.num_rows > 0
    for col in ["chunk_id", "source_id", "source_hash", "chunk_index", "byte_start", "byte_end",
                "char_start", "char_end", "text", "metadata", "location"]:
        assert got.column(col).to_pylist() == cli.column(col).to_pylist(), col
    a = np.stack(got.column("vector").to_numpy(zero_copy_only=False))
    b = np.stack(cli.column("vector").to_numpy(zero_copy_only=False))
    assert cosines(a, b).min() > 0.99999
    assert len(set(got.column("chunk_id").to_pylist())) == got.num_rows, "duplicate chunks"
    # The model record the CLI and the server check.
    meta = {k: v for k, v in ray_ds.schema.metadata.items() if k.startswith(b"fathom.")}
    assert meta == {k: v for k, v in cli_ds.schema.metadata.items() if k.startswith(b"fathom.")}
    assert ray_ds.schema == cli_ds.schema
    assert {i.name for i in ray_ds.describe_indices()} == {i.name for i in cli_ds.describe_indices()} == {"text_fts"}


def test_ray_ingest_equals_the_cli_serves_and_resyncs(cluster, s3, tmp_path):
    work = tmp_path
    folder = make_folder(work / "docs", 40)
    model = str(minilm_dir())
    run_cli(s3, "ingest", "docs", "--store", f"s3://{BUCKET}/cli", "--model", model, cwd=work)
    old = os.getcwd()
    os.chdir(work)  # the source ids are the folder as named ("docs/..."), as with the CLI
    try:
        summary = fathom.ray.ingest("docs", f"s3://{BUCKET}/ray", model=model, num_workers=2,
                                    storage_options=s3["options"], batch_size=8)
    finally:
        os.chdir(old)
    assert summary["added"] == 42, summary  # 40 abstracts, notes.md, report.docx
    assert summary["skipped"] == 2 and summary["errors"] == [], summary
    assert_same_collection(f"s3://{BUCKET}/cli/default.lance", f"s3://{BUCKET}/ray/default.lance", s3)
    _, t = rows(f"s3://{BUCKET}/ray/default.lance", s3)
    docx_rows = [r for r in t.to_pylist() if r["source_id"] == "docs/report.docx"]
    assert docx_rows and "cable repairs" in docx_rows[0]["text"]

    # `fathom serve` on the store Ray wrote: a search finds the document it quotes.
    doc = scifact(1, skip=7)[0]
    port = free_port()
    env = {**os.environ, **s3["env"]}
    server = subprocess.Popen([fathom_bin(), "serve", "--store", f"s3://{BUCKET}/ray", "--model", model,
                               "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)
                break
            except Exception:
                assert server.poll() is None, server.stderr.read().decode()
                assert time.time() < deadline, "fathom serve did not start"
                time.sleep(0.3)
        for mode in ["vector", "hybrid", "text"]:
            body = json.dumps({"query": doc["title"], "k": 3, "mode": mode}).encode()
            req = urllib.request.Request(f"http://127.0.0.1:{port}/search", data=body,
                                         headers={"content-type": "application/json"})
            hits = json.load(urllib.request.urlopen(req, timeout=30))["hits"]
            assert hits[0]["source"] == f"docs/abstracts/{doc['_id']}.txt", (mode, hits)
    finally:
        server.terminate()
        server.wait()

    # Re-run with one file changed and one removed: only the changed one is embedded again.
    changed = folder / "abstracts" / f"{scifact(1, skip=3)[0]['_id']}.txt"
    changed.write_text("A new abstract about ocean floor mapping with autonomous submarines.\n")
    removed = folder / "abstracts" / f"{scifact(1, skip=5)[0]['_id']}.txt"
    removed.unlink()
    # A document that no longer parses keeps what was stored for it; a file that is binary now
    # loses its chunks (both as the CLI does).
    (folder / "report.docx").write_bytes(b"PK\x03\x04 broken")
    (folder / "notes.md").write_bytes(b"\x00\x01binary now")
    os.chdir(work)
    try:
        again = fathom.ray.ingest("docs", f"s3://{BUCKET}/ray", model=model, num_workers=2,
                                  storage_options=s3["options"], batch_size=8)
    finally:
        os.chdir(old)
    assert (again["added"], again["updated"], again["deleted"], again["unchanged"]) == (0, 1, 2, 38), again
    assert [e["source"] for e in again["errors"]] == ["docs/report.docx"], again
    _, t = rows(f"s3://{BUCKET}/ray/default.lance", s3)
    ids = set(t.column("source_id").to_pylist())
    assert "docs/report.docx" in ids and "docs/notes.md" not in ids
    run_cli(s3, "ingest", "docs", "--store", f"s3://{BUCKET}/cli", "--model", model, cwd=work)
    assert_same_collection(f"s3://{BUCKET}/cli/default.lance", f"s3://{BUCKET}/ray/default.lance", s3)


def ray_worker_pids():
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [int(line.split()[0]) for line in out.splitlines() if "ray::MapWorker" in line or "_Writer" in line]


def test_a_worker_killed_mid_run_leaves_a_complete_collection(cluster, s3, tmp_path):
    work = tmp_path
    make_folder(work / "docs", 300)
    model = str(minilm_dir())
    result = {}

    def run():
        try:
            result["summary"] = fathom.ray.ingest(str(work / "docs"), f"s3://{BUCKET}/killed", model=model,
                                                  num_workers=2, storage_options=s3["options"], batch_size=4)
        except BaseException as e:  # noqa: BLE001 - reported by the assertion below
            result["error"] = e

    from pyarrow import fs as pafs

    fs, base = fathom.ray._filesystem(f"s3://{BUCKET}/killed/default.lance/data", s3["options"])

    def fragments_written():
        try:
            return len(fs.get_file_info(pafs.FileSelector(base, allow_not_found=True)))
        except OSError:
            return 0

    thread = threading.Thread(target=run)
    thread.start()
    killed = None
    deadline = time.time() + 300
    # Kill a worker once both are embedding and some batches are written, while the run is on.
    while thread.is_alive() and killed is None and time.time() < deadline:
        pids = ray_worker_pids()
        if len(pids) >= 2 and fragments_written() >= 4:
            killed = pids[0]
            os.kill(killed, signal.SIGKILL)
            assert thread.is_alive(), "the run ended before the kill"
        time.sleep(0.1)
    thread.join(600)
    assert killed is not None, "no Ray worker was seen to kill"
    assert "error" not in result, result.get("error")
    summary = result["summary"]
    assert summary["added"] == 302 and summary["errors"] == [], summary
    _, t = rows(f"s3://{BUCKET}/killed/default.lance", s3)
    ids = t.column("chunk_id").to_pylist()
    assert len(ids) == len(set(ids)), "duplicate chunks after a worker died"
    sources = set(t.column("source_id").to_pylist())
    assert len(sources) == 302
    # Each source's chunks are whole: indexes 0..n-1.
    per_source = {}
    for sid, i in zip(t.column("source_id").to_pylist(), t.column("chunk_index").to_pylist()):
        per_source.setdefault(sid, []).append(i)
    assert all(sorted(v) == list(range(len(v))) for v in per_source.values())


def test_two_runs_at_once_leave_one_copy_of_each_file(cluster, s3, tmp_path):
    make_folder(tmp_path / "docs", 60)
    model = str(minilm_dir())
    results = []

    def run():
        try:
            results.append(fathom.ray.ingest(str(tmp_path / "docs"), f"s3://{BUCKET}/twice", model=model,
                                              num_workers=1, storage_options=s3["options"], batch_size=8))
        except BaseException as e:  # noqa: BLE001 - reported by the assertion below
            results.append(e)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    assert len(results) == 2 and all(isinstance(r, dict) for r in results), results
    # Both planned before either committed: each embedded and committed every file.
    assert [r["added"] for r in results] == [62, 62], results
    _, t = rows(f"s3://{BUCKET}/twice/default.lance", s3)
    ids = t.column("chunk_id").to_pylist()
    assert len(ids) == len(set(ids)), "a file's chunks are stored twice"
    assert len(set(t.column("source_id").to_pylist())) == 62


def test_dedupe_keeps_one_copy_of_a_source_committed_twice(tmp_path):
    """The repair after a commit, on a real lance dataset holding what two racing runs leave: one
    source committed twice with the same hash, and one with two different hashes."""
    schema = fathom.ray.collection_schema("m", 2, True)

    def table(source, hash_, n):
        cols = {
            "chunk_id": [f"{source}-{hash_}-{i}" for i in range(n)], "source_id": [source] * n,
            "source_hash": [hash_] * n, "chunk_index": list(range(n)), "byte_start": [0] * n,
            "byte_end": [1] * n, "char_start": [0] * n, "char_end": [1] * n, "text": ["t"] * n,
            "metadata": [None] * n, "location": [None] * n, "vector": np.ones(2 * n, dtype=np.float32),
        }
        return fathom.ray._rows_table(cols, schema, 2)

    uri = str(tmp_path / "c.lance")
    lance.write_dataset(table("a", "h1", 3), uri, schema=schema)
    lance.write_dataset(table("b", "h1", 2), uri, mode="append")
    lance.write_dataset(table("a", "h1", 3), uri, mode="append")  # the same copy again
    lance.write_dataset(table("b", "h2", 4), uri, mode="append")  # a newer copy of b
    fathom.ray._dedupe(uri, None, ["a", "b"])
    got = lance.dataset(uri).to_table().to_pylist()
    assert sorted((r["source_id"], r["source_hash"], r["chunk_index"]) for r in got) == [
        ("a", "h1", 0), ("a", "h1", 1), ("a", "h1", 2), ("b", "h1", 0), ("b", "h1", 1)]


def test_a_bucket_as_the_source(cluster, s3, tmp_path):
    """Files in a bucket prefix (read by the workers from S3), synced twice: the second run after
    one object changed and one was deleted."""
    from pyarrow import fs as pafs

    fs, base = fathom.ray._filesystem(f"s3://{BUCKET}/src", s3["options"])
    docs = scifact(6, skip=20)
    for d in docs:
        with fs.open_output_stream(f"{base}/abstracts/{d['_id']}.txt") as f:
            f.write(f"{d['title']}\n\n{d['text']}\n".encode())
    with fs.open_output_stream(f"{base}/.hidden/skip.txt") as f:
        f.write(b"hidden")
    model = str(minilm_dir())
    store = f"s3://{BUCKET}/from-bucket"
    first = fathom.ray.ingest(f"s3://{BUCKET}/src", store, model=model, num_workers=2,
                              storage_options=s3["options"], batch_size=2)
    assert (first["added"], first["errors"]) == (6, []), first
    _, t = rows(f"{store}/default.lance", s3)
    want = sorted(f"s3://{BUCKET}/src/abstracts/{d['_id']}.txt" for d in docs)
    assert sorted(set(t.column("source_id").to_pylist())) == want
    # The same chunks as the package makes from the same bytes.
    ing = fathom.Ingestor(fathom.SentenceTransformer(model))
    text = f"{docs[0]['title']}\n\n{docs[0]['text']}\n"
    mine = [c["text"] for c in ing.chunk(text)]
    assert [r["text"] for r in t.to_pylist() if r["source_id"].endswith(f"/{docs[0]['_id']}.txt")] == mine

    with fs.open_output_stream(f"{base}/abstracts/{docs[1]['_id']}.txt") as f:
        f.write(b"Changed: a note on hydrothermal vents.")
    fs.delete_file(f"{base}/abstracts/{docs[2]['_id']}.txt")
    again = fathom.ray.ingest(f"s3://{BUCKET}/src", store, model=model, num_workers=2,
                              storage_options=s3["options"], batch_size=2)
    assert (again["added"], again["updated"], again["deleted"], again["unchanged"]) == (0, 1, 1, 4), again
    _, t = rows(f"{store}/default.lance", s3)
    assert len(set(t.column("source_id").to_pylist())) == 5
    assert any("hydrothermal" in x for x in t.column("text").to_pylist())


def test_a_collection_of_another_model_is_refused_and_an_older_one_gains_locations(cluster, tmp_path):
    folder = make_folder(tmp_path / "docs", 3)
    model = str(minilm_dir())
    tiny = str(fixtures() / "tiny" / "bert")
    store = str(tmp_path / "store")
    fathom.ray.ingest(str(folder), store, model=tiny, num_workers=1)
    with pytest.raises(ValueError, match="holds vectors of"):
        fathom.ray.ingest(str(folder), store, model=model, num_workers=1)

    # A collection written before chunks had locations (no `location` column).
    old = fathom.ray.collection_schema(model, 384, True)
    old = old.remove(old.get_field_index("location"))
    lance.write_dataset(old.empty_table(), str(tmp_path / "old" / "default.lance"), schema=old)
    s = fathom.ray.ingest(str(folder), str(tmp_path / "old"), model=model, num_workers=1)
    assert s["added"] == 5 and s["errors"] == [], s
    t = lance.dataset(str(tmp_path / "old" / "default.lance")).to_table()
    assert "location" in t.column_names and t.num_rows > 0
