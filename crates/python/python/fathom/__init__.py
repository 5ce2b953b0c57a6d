"""Sentence-transformer embeddings in Rust: the sentence-transformers API without PyTorch.

>>> from fathom import SentenceTransformer
>>> model = SentenceTransformer("sentence-transformers/all-MiniLM-L6-v2")
>>> embeddings = model.encode(["The weather is lovely today.", "It's so sunny outside!"])
>>> model.similarity(embeddings, embeddings).shape
(2, 2)
"""

from ._fathom import SentenceTransformer, Tokenizer, __version__

__all__ = ["SentenceTransformer", "Tokenizer", "__version__"]
