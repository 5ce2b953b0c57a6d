"""Sentence-transformer embeddings in Rust: the sentence-transformers API without PyTorch.

>>> from fathom import SentenceTransformer
>>> model = SentenceTransformer("sentence-transformers/all-MiniLM-L6-v2")
>>> embeddings = model.encode(["The weather is lovely today.", "It's so sunny outside!"])
>>> model.similarity(embeddings, embeddings).shape
(2, 2)

Rerankers and SPLADE models likewise, as sentence-transformers' CrossEncoder and SparseEncoder:

>>> from fathom import CrossEncoder
>>> reranker = CrossEncoder("cross-encoder/ms-marco-MiniLM-L6-v2")
>>> reranker.rank("How many people live in Berlin?", ["Berlin has 3.5 million people.", "Paris is in France."])

The ingest's steps, with the CLI's code (every format, chunking in the model's tokens, the hash),
and ``fathom.ray`` to run a whole sync on Ray Data workers:

>>> from fathom import Ingestor, read_document
>>> read_document("report.docx")["sections"]       # [(text, location JSON), ...]
>>> Ingestor(model).chunk(open("notes.md").read(), format="markdown")
"""

from ._fathom import (
    CrossEncoder,
    Ingestor,
    SentenceTransformer,
    SparseEncoder,
    Tokenizer,
    __version__,
    read_document,
    sync_plan,
    walk_folder,
)

__all__ = [
    "CrossEncoder",
    "Ingestor",
    "SentenceTransformer",
    "SparseEncoder",
    "Tokenizer",
    "__version__",
    "read_document",
    "sync_plan",
    "walk_folder",
]
