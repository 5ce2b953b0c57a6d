"""fathom as a step of a Ray Data pipeline: files to a fathom collection on many machines.

The workers run the CLI's own code (reading every format, chunking in the model's tokens,
hashing, embedding) through the ``fathom`` package, and write lance fragments; the driver commits
them in one lance transaction. The result is a collection that ``fathom serve``, ``fathom
search``, the MCP tools and the search page read as they read one built by ``fathom ingest``,
on a folder or on object storage.

>>> import ray, fathom.ray
>>> ray.init()                                   # or ray.init(address="auto") on a cluster
>>> summary = fathom.ray.ingest("docs", "s3://bucket/fathom-data",
...                             model="sentence-transformers/all-MiniLM-L6-v2",
...                             num_workers=8, dtype="int8")
>>> summary["added"], summary["updated"], summary["deleted"]

Needs ``ray[data]`` and ``pylance`` (the lance release fathom links, see the README). Files are
read from ``source`` by the workers, so every node must see it at the same path (a shared or
network file system), as with ``fathom ingest --shard`` on several machines.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any, Iterable

import numpy as np
import pyarrow as pa

from ._fathom import (
    Ingestor,
    SentenceTransformer,
    collection_columns,
    collection_indexes,
    collection_metadata_keys,
    is_scratch_name,
    sync_plan,
    vector_index_params,
    walk_folder,
)

__all__ = ["Embed", "collection_schema", "ingest", "walk_bucket"]

# The store's index names, and the row count from which vector search gets an IVF_PQ index.
TEXT_INDEX, VECTOR_INDEX, ANN_THRESHOLD = collection_indexes()

_ARROW_TYPES = {"utf8": pa.string(), "uint32": pa.uint32(), "uint64": pa.uint64()}


def collection_schema(model: str, dimension: int, normalized: bool) -> pa.Schema:
    """The Arrow schema of a fathom collection for this model, with the model recorded in its
    metadata as the CLI records it (what ``fathom serve`` checks on open)."""
    fields = []
    for name, kind, nullable in collection_columns():
        if kind == "vector":
            kind_type = pa.list_(pa.field("item", pa.float32(), True), dimension)
        else:
            kind_type = _ARROW_TYPES[kind]
        fields.append(pa.field(name, kind_type, nullable))
    keys = collection_metadata_keys()
    meta = dict(zip(keys, [model, str(dimension), "true" if normalized else "false"]))
    return pa.schema(fields, metadata=meta)


def _rows_table(columns: dict, schema: pa.Schema, dimension: int) -> pa.Table:
    arrays = []
    for field in schema:
        values = columns[field.name]
        if pa.types.is_fixed_size_list(field.type):
            flat = pa.array(np.asarray(values, dtype=np.float32), pa.float32())
            arrays.append(pa.FixedSizeListArray.from_arrays(flat, dimension))
        else:
            arrays.append(pa.array(values, field.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def _limit_threads() -> None:
    """One worker's model uses the CPUs Ray gave it, not every core of the node (which the
    other workers on it share)."""
    if "RAYON_NUM_THREADS" in os.environ:
        return
    try:
        import ray

        if not ray.is_initialized():  # not in a Ray worker (asking would start a local Ray)
            return
        cpus = ray.get_runtime_context().get_assigned_resources().get("CPU")
    except Exception:  # not in a Ray worker
        return
    if cpus:
        os.environ["RAYON_NUM_THREADS"] = str(max(1, int(cpus)))


class Embed:
    """A callable class for ``Dataset.map_batches``: loads the model once per worker and turns a
    batch of files (columns ``source_id`` and ``path``, relative to ``root``; optional
    ``stored_hash``) into rows of a fathom collection (``collection_schema``'s columns).

    ``ds.map_batches(fathom.ray.Embed, fn_constructor_kwargs={"model": ..., "root": ...},
    compute=ray.data.ActorPoolStrategy(size=4), batch_format="pyarrow")``. ``dtype`` is
    "float32", "int8" or "bfloat16"; ``device`` "cpu", "cuda" or ``None`` (the default: the
    worker's GPU when it has one and the wheel was built with CUDA, else its CPUs; give GPU
    workers ``num_gpus=1``). The other keywords are
    ``fathom.Ingestor``'s (chunk_tokens, overlap, json_field, ocr, ...).
    """

    def __init__(
        self,
        model: str,
        root: str,
        *,
        dtype: str = "float32",
        device: str | None = None,
        source_options: dict | None = None,
        **options: Any,
    ) -> None:
        _limit_threads()
        self.root = os.fspath(root)
        self.source_options = source_options
        self.model = SentenceTransformer(model, device=device, dtype=dtype)
        self.ingestor = Ingestor(self.model, **options)
        name, dimension, normalized = self.ingestor.model_spec
        self.dimension = dimension
        self.schema = collection_schema(name, dimension, normalized)

    def process(self, batch: dict) -> tuple[pa.Table, list[dict]]:
        """The rows of the batch's changed files, and what happened to each file."""
        ids = [str(s) for s in batch["source_id"]]
        paths = [str(p) for p in batch["path"]]
        stored = batch.get("stored_hash")
        stored = [None] * len(ids) if stored is None else [s if s else None for s in stored]
        if _is_uri(self.root):
            read, failed = [], {}
            for i, p, s in zip(ids, paths, stored):
                try:
                    read.append((i, p, self._read(p), s))
                except OSError as e:  # gone since the listing, or refused: kept, as the CLI does
                    failed[i] = {"source_id": i, "status": "unreadable", "hash": None, "chunks": 0,
                                 "kind": "error", "message": f"unreadable: {e}", "warnings": []}
            columns, done = self.ingestor.process_bytes(read)
            by_id = {d["source_id"]: d for d in done}
            statuses = [failed.get(i) or by_id[i] for i in ids]
        else:
            columns, statuses = self.ingestor.process(self.root, list(zip(ids, paths, stored)))
        return _rows_table(columns, self.schema, self.dimension), statuses

    def _read(self, rel: str) -> bytes:
        """An object's bytes under a bucket root."""
        if not hasattr(self, "_fs"):
            self._fs, self._base = _filesystem(self.root, self.source_options)
        limit = self.ingestor.max_file_size
        with self._fs.open_input_stream(f"{self._base}/{rel}") as f:
            data = f.read(limit + 1)
        if len(data) > limit:  # grew since the listing: refused before it is all in memory
            raise OSError(f"grew past the size limit of {limit} bytes while being read")
        return data

    def __call__(self, batch: Any) -> pa.Table:
        table, _ = self.process(_as_columns(batch))
        return table


def _is_uri(source: str) -> bool:
    return "://" in source


def _filesystem(uri: str, options: dict | None):
    """A pyarrow file system and base path for a bucket URI. For S3, lance's storage options
    (endpoint, region, keys, allow_http) and the AWS_* variables the CLI reads configure it."""
    from pyarrow import fs as pafs

    scheme, rest = uri.split("://", 1)
    if scheme not in ("s3", "s3a"):
        filesystem, path = pafs.FileSystem.from_uri(uri)
        return filesystem, path.rstrip("/")
    opts = {k.lower().removeprefix("aws_"): v for k, v in (options or {}).items()}
    env = os.environ.get
    endpoint = opts.get("endpoint") or opts.get("endpoint_url") or env("AWS_ENDPOINT") or env("AWS_ENDPOINT_URL")
    kw: dict[str, Any] = {}
    if endpoint:
        kw["scheme"], kw["endpoint_override"] = endpoint.split("://", 1) if "://" in endpoint else ("https", endpoint)
    key, secret = opts.get("access_key_id") or env("AWS_ACCESS_KEY_ID"), opts.get("secret_access_key") or env(
        "AWS_SECRET_ACCESS_KEY"
    )
    if key and secret:
        kw["access_key"], kw["secret_key"] = key, secret
        token = opts.get("session_token") or env("AWS_SESSION_TOKEN")
        if token:
            kw["session_token"] = token
    region = opts.get("region") or env("AWS_REGION") or env("AWS_DEFAULT_REGION")
    if region:
        kw["region"] = region
    return pafs.S3FileSystem(**kw), rest.rstrip("/")


def walk_bucket(uri: str, storage_options: dict | None = None, *, include=(), exclude=(),
                hidden: bool = False, max_file_size: int = 20 * 1024 * 1024) -> dict:
    """Lists a bucket prefix as ``walk_folder`` lists a folder (hidden and scratch files left
    out, objects over the size limit apart); source ids are the objects' URIs. There is no
    .gitignore in a bucket. ``include``/``exclude`` are matched with Python's ``fnmatch`` on the
    path under the prefix, where ``*`` also crosses ``/`` (unlike the CLI's gitignore-style
    globs): ``*.md`` is every Markdown file at any depth."""
    import fnmatch

    from pyarrow import fs as pafs

    filesystem, base = _filesystem(uri, storage_options)
    prefix = uri.rstrip("/") + "/"
    files, too_large = [], []
    infos = filesystem.get_file_info(pafs.FileSelector(base, recursive=True, allow_not_found=False))
    for info in sorted(infos, key=lambda i: i.path):
        if info.type != pafs.FileType.File:
            continue
        rel = info.path[len(base) + 1 :]
        parts = rel.split("/")
        if (not hidden and any(p.startswith(".") for p in parts)) or is_scratch_name(parts[-1]):
            continue
        if include and not any(fnmatch.fnmatch(rel, g) for g in include):
            continue
        if any(fnmatch.fnmatch(rel, g) for g in exclude):
            continue
        if info.size > max_file_size:
            too_large.append(prefix + rel)
            continue
        files.append((prefix + rel, rel, info.size))
    return {"files": files, "too_large": too_large, "outside": [], "unreadable": [], "complete": True,
            "prefix": prefix, "problems": []}


def _as_columns(batch: Any) -> dict:
    if isinstance(batch, pa.Table):
        return {name: batch.column(name).to_pylist() for name in batch.column_names}
    return {name: list(values) for name, values in batch.items()}


class _Writer(Embed):
    """``Embed`` that also writes its rows as uncommitted lance fragments of ``uri`` and hands on
    what happened to each file, with the fragments' metadata (JSON) on the batch's first row.
    A task Ray retries writes new files; only the fragments of the attempt that returned are
    committed, so a retried task leaves neither duplicates nor gaps (unreferenced files of a
    dead attempt are removed by the store's upkeep)."""

    def __init__(self, model: str, root: str, uri: str, storage_options: dict | None, **kw):
        super().__init__(model, root, **kw)
        self.uri = uri
        self.storage_options = storage_options

    def __call__(self, batch: Any) -> dict:
        import lance

        table, statuses = self.process(_as_columns(batch))
        fragments = []
        if table.num_rows:
            written = lance.fragment.write_fragments(
                table,
                self.uri,
                schema=self.schema,
                mode="append",
                storage_options=self.storage_options,
            )
            fragments = [json.dumps(f.to_json()) for f in written]
        n = len(statuses)
        return {
            "source_id": [s["source_id"] for s in statuses],
            "status": [s["status"] for s in statuses],
            "hash": [s["hash"] or "" for s in statuses],
            "chunks": [s["chunks"] for s in statuses],
            "message": [s["message"] or "" for s in statuses],
            "warnings": [json.dumps(s["warnings"]) for s in statuses],
            "fragments": [json.dumps(fragments)] + [""] * (n - 1) if n else [],
        }


def _sql_list(ids: Iterable[str]) -> list[str]:
    """`source_id IN (...)` predicates of at most 500 ids each (SQL strings, quotes doubled)."""
    ids = list(ids)
    out = []
    for i in range(0, len(ids), 500):
        quoted = ", ".join("'" + s.replace("'", "''") + "'" for s in ids[i : i + 500])
        out.append(f"source_id IN ({quoted})")
    return out


def _open(uri: str, storage_options: dict | None):
    import lance

    try:
        return lance.dataset(uri, storage_options=storage_options)
    except (FileNotFoundError, ValueError, OSError) as e:
        if "not found" in str(e).lower() or "does not exist" in str(e).lower():
            return None
        raise


def _short_name(model: str) -> str:
    name = model.rstrip("/").split("@")[0]
    return name.replace("\\", "/").rsplit("/", 1)[-1]


def _check_model(ds, name: str, dimension: int, normalized: bool, collection: str) -> None:
    keys = collection_metadata_keys()
    meta = {k.decode() if isinstance(k, bytes) else k: v.decode() if isinstance(v, bytes) else v
            for k, v in (ds.schema.metadata or {}).items()}
    if keys[0] not in meta:
        raise ValueError(f"`{ds.uri}` is not a fathom collection (no model recorded in it)")
    stored = (meta[keys[0]], int(meta[keys[1]]), meta[keys[2]] == "true")
    if (_short_name(stored[0]), stored[1], stored[2]) != (_short_name(name), dimension, normalized):
        raise ValueError(
            f"collection `{collection}` holds vectors of {stored[0]} ({stored[1]} dimensions), "
            f"not of {name} ({dimension} dimensions); use another collection"
        )


def _commit(uri, storage_options, schema, new_fragments, replace_ids, retries=20):
    """Commits the new fragments and the deletion of `replace_ids`' old chunks in one lance
    transaction (a reader sees a source's old chunks or its new ones, never both); on a conflict
    with another writer it re-reads and tries again. Returns the new dataset, and whether lance
    rebased the commit over another writer's (only then can two copies of a file exist)."""
    import lance

    for attempt in range(retries):
        ds = _open(uri, storage_options)
        if ds is None:
            op = lance.LanceOperation.Overwrite(schema, new_fragments)
            try:
                return lance.LanceDataset.commit(uri, op, storage_options=storage_options, max_retries=0), False
            except Exception:
                if _open(uri, storage_options) is None:
                    raise
                continue  # another writer created it first: commit over theirs
        removed, updated = [], []
        predicate = " OR ".join(_sql_list(replace_ids))
        if predicate:
            # One scan finds the fragments that hold these sources; only those are rewritten.
            hit = ds.to_table(columns=[], filter=predicate, with_row_address=True).column("_rowaddr")
            ids = {a >> 32 for a in hit.to_pylist()}
            for fragment in ds.get_fragments():
                if fragment.fragment_id not in ids:
                    continue
                meta = fragment.delete(predicate)
                if meta is None:
                    removed.append(fragment.fragment_id)
                else:
                    updated.append(meta)
        op = lance.LanceOperation.Update(
            removed_fragment_ids=removed,
            updated_fragments=updated,
            new_fragments=new_fragments,
        )
        try:
            done = lance.LanceDataset.commit(uri, op, read_version=ds.version, storage_options=storage_options)
            return done, done.version != ds.version + 1
        except Exception as e:  # a conflicting commit by another writer: recompute the deletions
            if "conflict" not in str(e).lower() or attempt == retries - 1:
                raise
            time.sleep(0.05 * (attempt + 1))
    raise RuntimeError("unreachable")


def _dedupe(uri: str, storage_options: dict | None, source_ids: list[str]) -> None:
    """Two runs that embed the same file at the same moment can each commit its chunks (lance
    rebases one commit over the other, as neither touched a fragment the other changed). Then
    one copy is kept: the source hash whose rows come first in the dataset, and one row per
    chunk id. Both runs choose the same survivors, so the collection converges, and a later
    sync re-embeds the file if the copy kept is not its current one."""
    ds = _open(uri, storage_options)
    if ds is None or not source_ids:
        return
    extra: list[int] = []
    t = ds.to_table(
        columns=["source_id", "source_hash", "chunk_id"],
        filter=" OR ".join(_sql_list(source_ids)),
        with_row_address=True,
    )
    first_hash: dict[str, str] = {}
    seen: set[str] = set()
    for addr, sid, h, cid in sorted(
        zip(*(t.column(c).to_pylist() for c in ["_rowaddr", "source_id", "source_hash", "chunk_id"]))
    ):
        if h != first_hash.setdefault(sid, h) or cid in seen:
            extra.append(addr)
        seen.add(cid)
    for i in range(0, len(extra), 1000):
        ds.delete("_rowaddr IN (" + ", ".join(str(a) for a in extra[i : i + 1000]) + ")")


def _update_indexes(uri: str, storage_options: dict | None, dimension: int) -> None:
    """The indexes ``fathom ingest`` keeps, refreshed as the store does it: a commit lost to
    another writer (a second run, a server's upkeep) is retried with jitter on the newer
    version, and after eight losses left to the next write or the server's upkeep, unless the
    collection has no text index at all (the rows are committed and searchable either way)."""
    import random

    for attempt in range(8):
        ds = _open(uri, storage_options)
        if ds is None:  # nothing was ever written
            return
        try:
            return _update_indexes_once(ds, dimension)
        except Exception as e:
            if "conflict" not in str(e).lower():
                raise
            if attempt == 7:
                if TEXT_INDEX in {i.name for i in _open(uri, storage_options).describe_indices()}:
                    return
                raise
            time.sleep(0.05 * (attempt + 1) + random.random() * 0.1)


def _update_indexes_once(ds, dimension: int) -> None:
    names = {i.name for i in ds.describe_indices()}
    if TEXT_INDEX not in names:
        ds.create_scalar_index("text", "INVERTED", name=TEXT_INDEX)
    rows = ds.count_rows()
    if VECTOR_INDEX not in names and rows >= ANN_THRESHOLD:
        partitions, sub_vectors = vector_index_params(dimension, rows)
        ds.create_index(
            "vector",
            index_type="IVF_PQ",
            name=VECTOR_INDEX,
            metric="cosine",
            num_partitions=partitions,
            num_sub_vectors=sub_vectors,
            num_bits=8,
            max_iters=50,
        )
    if names & {TEXT_INDEX, VECTOR_INDEX}:
        ds.optimize.optimize_indices()


def ingest(
    source: str | os.PathLike,
    store: str,
    collection: str = "default",
    model: str | None = None,
    num_workers: int | None = None,
    *,
    dtype: str = "float32",
    device: str | None = None,
    batch_size: int = 256,
    storage_options: dict | None = None,
    include: Iterable[str] = (),
    exclude: Iterable[str] = (),
    hidden: bool = False,
    no_ignore: bool = False,
    follow_links: bool = False,
    max_file_size: int = 20 * 1024 * 1024,
    num_cpus_per_worker: float = 1,
    ray_remote_args: dict | None = None,
    **options: Any,
) -> dict:
    """Syncs collection ``collection`` of ``store`` (a folder or ``s3://``/``gs://``/``az://``
    URI, as ``fathom --store``) with ``source``, on Ray, as ``fathom ingest source`` would.
    ``source`` is a folder every worker sees at that path, or a bucket prefix (``s3://b/docs``,
    ``gs://…``; read with pyarrow's file systems, S3 configured by ``storage_options`` and the
    ``AWS_*`` variables, listed by ``walk_bucket``): new and changed files are read, chunked and embedded on ``num_workers`` workers
    (``None``: Ray's autoscaling pool), unchanged ones are skipped by hash, the new rows and the
    removal of changed files' old rows are committed in one lance transaction, files that are
    gone are deleted after a complete run, and the indexes are refreshed.

    ``model`` defaults to all-MiniLM-L6-v2 (the CLI's default). ``dtype`` ("float32", "int8",
    "bfloat16") and ``device`` (``None``: a GPU where the worker has one and the wheel has
    CUDA; pass ``ray_remote_args={"num_gpus": 1}`` to place workers on GPUs) are each worker's. The other keywords are ``fathom.Ingestor``'s
    (chunk_tokens, overlap, json_field, ocr, max_chunks_per_file, ...). Returns a summary dict
    with the CLI's counts: added, updated, unchanged, deleted, skipped, errors (a list), chunks,
    seconds. ``batch_size`` files go to a worker at a time and become one lance fragment: 256
    measured twice as fast as 64 for a static model (per-batch costs), and keeps the fragments
    few; a failed worker's batch is what Ray runs again.
    """
    import ray

    start = time.monotonic()
    model = model or "sentence-transformers/all-MiniLM-L6-v2"
    root = os.fspath(source)
    uri = f"{store.rstrip('/')}/{collection}.lance"

    # The driver needs the model's chunking and record, not its speed: int8 loads the smallest.
    probe = Ingestor(SentenceTransformer(model, device="cpu", dtype="int8"), **options)
    name, dimension, normalized = probe.model_spec
    schema = collection_schema(name, dimension, normalized)
    options.setdefault("chunk_tokens", probe.chunk_tokens)
    options.setdefault("overlap", probe.overlap)
    del probe

    if _is_uri(root):
        walked = walk_bucket(root, storage_options, include=list(include), exclude=list(exclude),
                             hidden=hidden, max_file_size=max_file_size)
    else:
        walked = walk_folder(
            root,
            include=list(include),
            exclude=list(exclude),
            max_file_size=max_file_size,
            hidden=hidden,
            no_ignore=no_ignore,
            follow_links=follow_links,
        )
    prefix = walked["prefix"]
    ds = _open(uri, storage_options)
    stored: dict[str, str] = {}
    if ds is not None:
        _check_model(ds, name, dimension, normalized, collection)
        if ds.schema.get_field_index("location") < 0:
            # A collection written before chunks had locations: the column is added (nulls), as
            # the CLI adds it on its next write, so that the workers' fragments fit its schema.
            ds.add_columns(pa.schema([pa.field("location", pa.string(), True)]))
        table = ds.to_table(columns=["source_id", "source_hash"])
        for sid, h in zip(table.column(0).to_pylist(), table.column(1).to_pylist()):
            if sid.startswith(prefix):
                stored[sid] = h

    items = [
        {"source_id": sid, "path": rel, "stored_hash": stored.get(sid, "")}
        for sid, rel, _size in walked["files"]
    ]
    results: list[dict] = []
    if items:
        if not ray.is_initialized():
            ray.init()
        workers = num_workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        # Blocks of at most a batch, and enough of them (eight a worker) that the last ones
        # spread over the workers instead of leaving one busy while the others wait.
        blocks = min(len(items), max(-(-len(items) // batch_size), 8 * workers))
        data = ray.data.from_items(items, override_num_blocks=blocks)
        remote_args = {"num_cpus": num_cpus_per_worker, **(ray_remote_args or {})}
        out = data.map_batches(
            _Writer,
            fn_constructor_kwargs={
                "model": model,
                # The workers' working folder is not the driver's: they get the folder's full path.
                "root": root if _is_uri(root) else os.path.abspath(root),
                "source_options": storage_options if _is_uri(root) else None,
                "uri": uri,
                "storage_options": storage_options,
                "dtype": dtype,
                "device": device,
                "follow_links": follow_links,
                "max_file_size": max_file_size,
                **options,
            },
            batch_size=batch_size,
            compute=ray.data.ActorPoolStrategy(
                size=num_workers,
                min_size=None if num_workers else 1,
                max_size=None if num_workers else max(1, int(ray.cluster_resources().get("CPU", 1))),
            ),
            **remote_args,
        )
        results = out.take_all()

    import lance

    fragments = [
        lance.FragmentMetadata.from_json(f)
        for r in results
        if r["fragments"]
        for f in json.loads(r["fragments"])
    ]
    by_status: dict[str, list[dict]] = {}
    for r in results:
        by_status.setdefault(r["status"], []).append(r)
    embedded = [r for r in by_status.get("embedded", []) if r["chunks"]]
    skipped = by_status.get("skipped", [])
    # Whatever the collection holds for an embedded file, or a file with no text now, when the
    # commit is made (its old chunks, or those another run committed meanwhile) goes in it.
    replace = [r["source_id"] for r in embedded] + [
        r["source_id"] for r in skipped if r["source_id"] in stored
    ]
    if fragments or replace:
        _, rebased = _commit(uri, storage_options, schema, fragments, replace)
        if rebased:
            _dedupe(uri, storage_options, [r["source_id"] for r in embedded])
    # The plan sees every walked file: one without a hash (not read, a reader that failed
    # before hashing, a result that never came back) is kept, as the CLI keeps what it cannot read.
    hashed = {r["source_id"]: r["hash"] for r in results if r["hash"]}
    too_large = walked["too_large"] + [r["source_id"] for r in by_status.get("too_large", [])]
    left_out = set(too_large)
    unreadable = walked["unreadable"] + [
        sid for sid, _rel, _size in walked["files"] if sid not in hashed and sid not in left_out
    ]
    plan = sync_plan(stored, list(hashed.items()), too_large + walked["outside"], unreadable, walked["complete"])
    deleted = plan["delete"]
    if deleted:
        ds = _open(uri, storage_options)
        for predicate in _sql_list(deleted):
            ds.delete(predicate)
    _update_indexes(uri, storage_options, dimension)
    errors = [
        {"source": r["source_id"], "error": r["message"], "kind": "error"}
        for r in by_status.get("failed", []) + by_status.get("unreadable", [])
    ] + [
        {"source": r["source_id"], "error": w, "kind": "truncated" if "chunks" in w else "lossy_utf8"}
        for r in results
        for w in json.loads(r["warnings"])
    ] + [
        {"source": p["source_id"], "error": p["message"], "kind": p["kind"]}
        for p in walked["problems"]
    ]
    return {
        "added": sum(1 for r in embedded if r["source_id"] not in stored),
        "updated": sum(1 for r in embedded if r["source_id"] in stored),
        "unchanged": len(by_status.get("unchanged", [])),
        "deleted": len(deleted) + sum(1 for r in skipped if r["source_id"] in stored),
        "skipped": len(skipped) + len(too_large),
        "chunks": sum(r["chunks"] for r in embedded),
        "errors": errors,
        "seconds": time.monotonic() - start,
    }
