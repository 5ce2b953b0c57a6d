"""Hub ids: `revision` and `cache_folder` (downloads go there, laid out as huggingface_hub's
cache_dir). There is no network in the tests: a copy already in the cache must load."""

import shutil

import numpy as np
import pytest

import fathom
from conftest import fixtures


def fake_cache(root, repo_id, revision, commit):
    """A cache folder holding `repo_id` at `revision`, as huggingface_hub lays it out."""
    repo = root / ("models--" + repo_id.replace("/", "--"))
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / revision).write_text(commit)
    shutil.copytree(fixtures() / "tiny" / "bert", repo / "snapshots" / commit)
    return root


def test_cache_folder_serves_a_cached_model_offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cache = fake_cache(tmp_path / "cache", "fathom-test/tiny-bert", "main", "0123abcd")
    model = fathom.SentenceTransformer("fathom-test/tiny-bert", cache_folder=str(cache))
    local = fathom.SentenceTransformer(str(fixtures() / "tiny" / "bert"))
    texts = ["a cached model", "loads offline"]
    np.testing.assert_array_equal(model.encode(texts), local.encode(texts))


def test_cache_folder_with_a_revision(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cache = fake_cache(tmp_path / "cache", "fathom-test/tiny-bert", "v1", "4567cdef")
    model = fathom.SentenceTransformer("fathom-test/tiny-bert", revision="v1", cache_folder=str(cache))
    assert model.get_sentence_embedding_dimension() == 32
    with pytest.raises(OSError, match="not in cache_folder"):
        fathom.SentenceTransformer("fathom-test/tiny-bert", revision="v2", cache_folder=str(cache))


def test_cache_folder_falls_back_to_the_cached_copy_when_the_hub_is_unreachable(monkeypatch, tmp_path):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    # Nothing answers on this port: the hub cannot be reached, quickly.
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    cache = fake_cache(tmp_path / "cache", "fathom-test/tiny-bert", "main", "89abcdef")
    model = fathom.SentenceTransformer("fathom-test/tiny-bert", cache_folder=str(cache))
    assert model.encode("still loads").shape == (32,)
    with pytest.raises(OSError, match="could not fetch the file list of `fathom-test/absent@main`"):
        fathom.SentenceTransformer("fathom-test/absent", cache_folder=str(cache))


def test_a_local_folder_ignores_cache_folder_and_revision(tmp_path):
    folder = str(fixtures() / "tiny" / "bert")
    model = fathom.SentenceTransformer(folder, revision="v1", cache_folder=str(tmp_path / "unused"))
    assert model.get_sentence_embedding_dimension() == 32
    assert not (tmp_path / "unused").exists()


def test_without_cache_folder_hub_ids_use_the_hf_home_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    fake_cache(tmp_path / "hub", "fathom-test/tiny-bert", "main", "0123abcd")
    model = fathom.SentenceTransformer("fathom-test/tiny-bert")
    assert model.get_sentence_embedding_dimension() == 32


class FakeHub:
    """A local HTTP server answering the two hub routes hf-hub uses (the file list, and ranged
    file downloads), serving one repository from a folder; it records every path requested."""

    def __init__(self, repo_id, folder, extra_listed=()):
        import hashlib
        import http.server
        import json
        import threading

        files = {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
        commit = "c0ffee" * 6 + "abcd"
        listing = json.dumps({"sha": commit, "siblings": [{"rfilename": n} for n in [*files, *extra_listed]]}).encode()
        self.requested = requested = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                requested.append(self.path)
                if self.path == f"/api/models/{repo_id}/revision/main":
                    return self.reply(200, listing, {})
                prefix = f"/{repo_id}/resolve/main/"
                name = self.path[len(prefix):] if self.path.startswith(prefix) else None
                if name not in files:
                    return self.reply(404, b"not found", {})
                body = files[name]
                start = int(self.headers.get("Range", "bytes=0-").split("=")[1].split("-")[0])
                end = 0 if self.headers.get("Range", "").endswith("-0") else len(body) - 1
                headers = {
                    "etag": '"' + hashlib.sha1(body).hexdigest() + '"',
                    "x-repo-commit": commit,
                    "content-range": f"bytes {start}-{end}/{len(body)}",
                }
                self.reply(206, body[start : end + 1], headers)

            def reply(self, status, body, headers):
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


def test_cache_folder_downloads_what_the_model_needs_into_it(monkeypatch, tmp_path):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "default-home"))
    hub = FakeHub("fathom-test/tiny-bert", fixtures() / "tiny" / "bert", extra_listed=["onnx/model.onnx", "pytorch_model.bin", "../../escape.json", "/abs.json"])
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    try:
        cache = tmp_path / "cache"
        model = fathom.SentenceTransformer("fathom-test/tiny-bert", cache_folder=str(cache))
        local = fathom.SentenceTransformer(str(fixtures() / "tiny" / "bert"))
        np.testing.assert_array_equal(model.encode(["downloaded"]), local.encode(["downloaded"]))
        snapshot = cache / "models--fathom-test--tiny-bert" / "snapshots"
        assert (next(snapshot.iterdir()) / "1_Pooling" / "config.json").is_file()
        assert not (tmp_path / "default-home").exists()
        skipped = ("onnx", "pytorch_model.bin", "escape", "abs.json")
        assert not any(name in p for p in hub.requested for name in skipped), hub.requested
        # A second load finds every file in the cache: only the file list is asked for again.
        before = len(hub.requested)
        fathom.SentenceTransformer("fathom-test/tiny-bert", cache_folder=str(cache))
        assert hub.requested[before:] == ["/api/models/fathom-test/tiny-bert/revision/main"]
    finally:
        hub.close()
