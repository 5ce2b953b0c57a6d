"""What the Python sides of scripts/bench-embed.sh share: the documents and the vector check.
No torch here, so importing it does not inflate a process's peak RSS."""
import json

import numpy as np


def read_docs(path, limit):
    """SciFact-style JSONL: `title + " " + text` per document, the first `limit` (0: all)."""
    docs = []
    with open(path) as f:
        for line in f:
            if line.strip():
                d = json.loads(line)
                docs.append(d.get("title", "") + " " + d.get("text", ""))
            if limit and len(docs) >= limit:
                break
    return docs


def min_cosine(path, vectors):
    """The lowest cosine between each row of `vectors` and the same line of the JSONL file `path`."""
    other = np.array([json.loads(l) for l in open(path) if l.strip()], dtype=np.float64)
    ours = np.asarray(vectors, dtype=np.float64)
    cos = (other * ours).sum(1) / (np.linalg.norm(other, axis=1) * np.linalg.norm(ours, axis=1))
    return float(cos.min())
