"""A real Model2Vec static model distilled from a sentence-transformer folder with model2vec's own
`distill` (each vocabulary token through the transformer, PCA to 256 dimensions, SIF weighting:
how minishlab's potion models start), for `fathom eval` and the static-model benchmarks where
the hub's potion models cannot be fetched.

    python scripts/distill_static.py MODEL_DIR OUT_DIR [--pca-dims 256]
"""
import argparse
import os

from model2vec.distill import distill


def main():
    p = argparse.ArgumentParser()
    p.add_argument("model")
    p.add_argument("out")
    p.add_argument("--pca-dims", type=int, default=256)
    args = p.parse_args()
    if os.path.exists(os.path.join(args.out, "model.safetensors")):
        print(f"{args.out} exists")
        return
    model = distill(model_name=args.model, pca_dims=args.pca_dims, device="cpu")
    model.save_pretrained(args.out)
    print(f"{args.model} -> {args.out}: {model.embedding.shape}")


if __name__ == "__main__":
    main()
