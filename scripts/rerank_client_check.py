"""Reranks and embeds through the clients people already point at such servers: Cohere's official
Python SDK (`cohere.Client.rerank`, what LangChain's `CohereRerank` and LlamaIndex's
`CohereRerank` call) against `POST /v1/rerank`, and Hugging Face's `InferenceClient` against the
text-embeddings-inference root route `POST /`.

Used by tests/serve.rs (the clients must work unchanged). Prints JSON with what each client
returned.

    python scripts/rerank_client_check.py BASE_URL API_KEY MODEL QUERY DOCUMENT...
"""

import json
import sys

import cohere
from huggingface_hub import InferenceClient


def main() -> None:
    base_url, api_key, model, query, *documents = sys.argv[1:]
    co = cohere.Client(base_url=base_url, api_key=api_key)
    ranked = co.rerank(model=model, query=query, documents=documents, top_n=2,
                       return_documents=True)
    hf = InferenceClient(model=base_url, token=api_key)
    vector = hf.feature_extraction(documents[0])
    print(json.dumps({
        "results": [
            {"index": r.index, "relevance_score": r.relevance_score,
             "text": r.document.text if r.document else None}
            for r in ranked.results
        ],
        "id": ranked.id,
        "feature_extraction_shape": list(vector.shape),
        "feature_extraction": vector.reshape(-1).tolist(),
    }))


if __name__ == "__main__":
    main()
