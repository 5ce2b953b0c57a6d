"""Embeds texts through the official OpenAI Python client against a fathom server.

Used by tests/serve.rs (the client must work unchanged). Prints JSON: the vectors the client
decoded (it asks for base64 by default), the model and the usage it reported.

    python scripts/openai_client_check.py BASE_URL API_KEY TEXT...
"""

import json
import sys

from openai import OpenAI


def main() -> None:
    base_url, api_key, *texts = sys.argv[1:]
    client = OpenAI(base_url=base_url, api_key=api_key, max_retries=0)
    many = client.embeddings.create(model="all-MiniLM-L6-v2", input=texts)
    one = client.embeddings.create(model="all-MiniLM-L6-v2", input=texts[0], encoding_format="float")
    short = client.embeddings.create(model="all-MiniLM-L6-v2", input=texts[0], dimensions=64)
    print(
        json.dumps(
            {
                "model": many.model,
                "vectors": [d.embedding for d in many.data],
                "indexes": [d.index for d in many.data],
                "prompt_tokens": many.usage.prompt_tokens,
                "float_vector": one.data[0].embedding,
                "short_len": len(short.data[0].embedding),
            }
        )
    )


if __name__ == "__main__":
    main()
