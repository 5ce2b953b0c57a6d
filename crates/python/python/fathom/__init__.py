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
"""

from ._fathom import CrossEncoder, SentenceTransformer, SparseEncoder, Tokenizer, __version__

__all__ = ["CrossEncoder", "SentenceTransformer", "SparseEncoder", "Tokenizer", "__version__"]
