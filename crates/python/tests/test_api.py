"""Shapes, dtypes and options as sentence-transformers has them."""

import numpy as np
import pytest

import fathom
from conftest import cosines, minilm_dir, read_reference

TEXTS = ["The weather is lovely today.", "It's so sunny outside!", "He drove to the stadium."]


def test_module_exports():
    assert fathom.__version__
    assert fathom.SentenceTransformer.__module__ == "fathom"
    assert "SentenceTransformer" in fathom.__all__


def test_a_list_gives_a_float32_matrix_and_a_string_a_vector(model):
    batch = model.encode(TEXTS)
    assert isinstance(batch, np.ndarray)
    assert batch.dtype == np.float32 and batch.shape == (3, 384)
    one = model.encode(TEXTS[0])
    assert one.dtype == np.float32 and one.shape == (384,)
    np.testing.assert_allclose(one, batch[0], atol=1e-6)
    assert batch.flags["C_CONTIGUOUS"] and batch.flags["WRITEABLE"]


def test_a_one_item_list_is_still_a_matrix(model):
    assert model.encode([TEXTS[0]]).shape == (1, 384)


def test_an_empty_list_gives_what_sentence_transformers_gives(model):
    # sentence-transformers 6.2 returns np.array([]) for [] (shape (0,), float64), and [] without
    # convert_to_numpy.
    empty = model.encode([])
    assert isinstance(empty, np.ndarray) and empty.shape == (0,) and empty.dtype == np.float64
    assert model.encode([], convert_to_numpy=False) == []


def test_tuples_generators_and_numpy_string_arrays_are_batches(model):
    want = model.encode(TEXTS)
    np.testing.assert_array_equal(model.encode(tuple(TEXTS)), want)
    np.testing.assert_array_equal(model.encode(t for t in TEXTS), want)
    np.testing.assert_array_equal(model.encode(np.array(TEXTS)), want)


def test_convert_to_numpy_false_gives_a_list_of_vectors(model):
    rows = model.encode(TEXTS, convert_to_numpy=False)
    assert isinstance(rows, list) and len(rows) == 3
    assert all(r.shape == (384,) and r.dtype == np.float32 for r in rows)
    np.testing.assert_array_equal(np.stack(rows), model.encode(TEXTS))


def test_vectors_are_unit_length_for_a_model_with_a_normalize_module(model):
    norms = np.linalg.norm(model.encode(TEXTS), axis=1)
    np.testing.assert_allclose(norms, 1.0, atol=1e-5)


def test_normalize_embeddings_on_a_model_without_normalize(variant_dir):
    model = fathom.SentenceTransformer(str(variant_dir("mean-no-normalize")))
    raw = model.encode(TEXTS)
    assert np.abs(np.linalg.norm(raw, axis=1) - 1).max() > 1e-2
    unit = model.encode(TEXTS, normalize_embeddings=True)
    np.testing.assert_allclose(unit, raw / np.linalg.norm(raw, axis=1, keepdims=True), atol=1e-6)


def test_truncate_dim_cuts_then_normalize_embeddings_renormalizes(model):
    # sentence-transformers: the model's modules (Normalize at full width), then truncate_dim,
    # then normalize_embeddings.
    full = model.encode(TEXTS)
    cut = fathom.SentenceTransformer(str(minilm_dir()), truncate_dim=64)
    assert cut.truncate_dim == 64 and cut.get_sentence_embedding_dimension() == 64
    got = cut.encode(TEXTS)
    assert got.shape == (3, 64)
    np.testing.assert_allclose(got, full[:, :64], atol=1e-6)
    renormalized = cut.encode(TEXTS, normalize_embeddings=True)
    np.testing.assert_allclose(renormalized, full[:, :64] / np.linalg.norm(full[:, :64], axis=1, keepdims=True), atol=1e-6)
    # Per call, and settable; a width over the model's is the whole vector, as in sentence-transformers.
    assert model.encode(TEXTS, truncate_dim=32).shape == (3, 32)
    cut.truncate_dim = None
    assert cut.encode(TEXTS).shape == (3, 384) and cut.get_sentence_embedding_dimension() == 384
    assert model.encode(TEXTS, truncate_dim=1000).shape == (3, 384)


def test_dimension_and_max_seq_length(model):
    assert model.get_sentence_embedding_dimension() == 384
    assert model.get_embedding_dimension() == 384
    assert model.max_seq_length == 256
    assert model.device == "cpu"
    assert model.similarity_fn_name == "cosine"
    assert "all-MiniLM-L6-v2" in repr(model) and "bert" in repr(model)


def test_long_inputs_are_cut_at_max_seq_length(model):
    long = "word " * 1000
    capped = "word " * 300
    np.testing.assert_allclose(model.encode(long), model.encode(capped), atol=1e-6)


def test_similarity_is_cosine_as_a_matrix(model):
    emb = model.encode(TEXTS)
    sim = model.similarity(emb, emb)
    assert isinstance(sim, np.ndarray) and sim.shape == (3, 3) and sim.dtype == np.float32
    np.testing.assert_allclose(np.diag(sim), 1.0, atol=1e-5)
    assert sim[0, 1] > sim[0, 2]  # the two sentences about the weather
    # Single vectors, lists and unnormalized float64 input.
    assert model.similarity(emb[0], emb).shape == (1, 3)
    raw = emb.astype(np.float64) * 3.0
    np.testing.assert_allclose(model.similarity(raw.tolist(), raw[:2]), sim[:, :2], atol=1e-5)
    with pytest.raises(ValueError, match="one width"):
        model.similarity(emb, emb[:, :10])


def test_prompts_follow_sentence_transformers(variant_dir):
    folder = variant_dir("prompt-query")
    model = fathom.SentenceTransformer(str(folder))
    assert model.prompts == {"query": "query: ", "passage": "passage: ", "document": ""}
    assert model.default_prompt_name is None
    texts, want = read_reference(folder / "reference.jsonl")
    # encode_query uses the "query" prompt, as encode(prompt_name="query") and a raw prompt do.
    query = model.encode_query(texts)
    assert cosines(query, want).min() >= 0.9999
    np.testing.assert_array_equal(query, model.encode(texts, prompt_name="query"))
    np.testing.assert_array_equal(query, model.encode(texts, prompt="query: "))
    # prompt wins over prompt_name.
    np.testing.assert_array_equal(model.encode(texts, prompt="query: ", prompt_name="passage"), query)
    # encode_document uses "document", empty here (sentence-transformers 6 puts "document" first
    # and always has it), so it equals a plain encode.
    np.testing.assert_array_equal(model.encode_document(texts), model.encode(texts))
    assert cosines(model.encode(texts, prompt_name="passage"), query).min() < 0.9999
    # "query" is a known (empty) prompt for any model, as in sentence-transformers.
    plain = fathom.SentenceTransformer(str(minilm_dir()))
    np.testing.assert_array_equal(plain.encode_query(TEXTS), plain.encode(TEXTS))
    np.testing.assert_array_equal(plain.encode(TEXTS, prompt_name="query"), plain.encode(TEXTS))


def test_batch_size_and_show_progress_bar_are_accepted(model):
    want = model.encode(TEXTS)
    np.testing.assert_array_equal(model.encode(TEXTS, batch_size=1, show_progress_bar=True), want)


def test_tokenizer(model):
    tok = model.tokenizer
    ids = tok.encode("Hello world")
    assert ids == [101, 7592, 2088, 102]  # [CLS] hello world [SEP] in all-MiniLM-L6-v2's vocabulary
    assert tok.encode("Hello world", add_special_tokens=False) == [7592, 2088]
    assert tok.tokenize("Hello worldly") == ["hello", "world", "##ly"]
    assert tok.decode(ids) == "hello world"
    assert tok.convert_tokens_to_ids(["hello", "world"]) == [7592, 2088]
    assert tok.convert_tokens_to_ids("hello") == 7592
    assert tok.convert_ids_to_tokens([7592, 2088]) == ["hello", "world"]
    assert tok.vocab_size == len(tok) == 30522
    assert tok.model_max_length == 256
    batch = tok(["Hello world", "Hi"])
    assert batch["input_ids"] == [[101, 7592, 2088, 102], [101, 7632, 102]]
    assert batch["attention_mask"] == [[1, 1, 1, 1], [1, 1, 1]]
    assert batch["token_type_ids"] == [[0, 0, 0, 0], [0, 0, 0]]
    assert tok("Hello world")["input_ids"] == ids
    long = "word " * 1000
    assert len(tok(long)["input_ids"]) == 1002
    assert len(tok(long, truncation=True)["input_ids"]) == 256
    cut = tok(long, truncation=True, max_length=10)["input_ids"]
    assert len(cut) == 10 and cut[0] == 101 and cut[-1] == 102
    assert "Tokenizer" in repr(tok)
