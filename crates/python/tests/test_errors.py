"""Bad input is a Python exception that says what is wrong; nothing panics across into Python."""

import json

import numpy as np
import pytest

import fathom
from conftest import fixtures, minilm_dir


def test_a_missing_model_folder_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        fathom.SentenceTransformer(str(tmp_path / "no-such-model"))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        fathom.SentenceTransformer("./models/no-such-model/really")


def test_a_folder_without_model_files_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        fathom.SentenceTransformer(str(tmp_path))


def test_a_bad_model_file_is_a_value_error(tmp_path):
    import shutil

    folder = tmp_path / "broken"
    shutil.copytree(fixtures() / "tiny" / "bert", folder)
    (folder / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="config.json"):
        fathom.SentenceTransformer(str(folder))
    config = json.loads((fixtures() / "tiny" / "bert" / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "model_type": "gpt9"}))
    with pytest.raises(ValueError, match="gpt9"):
        fathom.SentenceTransformer(str(folder))


def test_an_invalid_model_id_is_an_os_error():
    with pytest.raises(OSError, match="neither a model folder nor a hub id"):
        fathom.SentenceTransformer("not a model id!")


def test_a_hub_id_not_cached_offline_is_an_os_error(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    with pytest.raises(OSError, match="fathom-test/absent@v9"):
        fathom.SentenceTransformer("fathom-test/absent", revision="v9")


def test_wrong_argument_types_are_type_errors(model):
    with pytest.raises(TypeError, match="item 1 is int"):
        model.encode(["fine", 42])
    with pytest.raises(TypeError, match="expected a str or a list of str"):
        model.encode(42)
    with pytest.raises(TypeError, match="expected a str or a list of str"):
        model.encode(b"bytes")
    with pytest.raises(TypeError):
        model.encode(["x"], normalize_embeddings="yes")
    with pytest.raises(TypeError):
        model.encode(["x"], no_such_option=True)
    with pytest.raises(TypeError):
        fathom.SentenceTransformer(42)
    with pytest.raises(TypeError):
        model.tokenizer.encode(42)


def test_bad_argument_values_are_value_errors(model):
    with pytest.raises(ValueError, match="Prompt name 'nope' not found"):
        model.encode(["x"], prompt_name="nope")
    with pytest.raises(ValueError, match="precision 'float64' is not supported"):
        model.encode(["x"], precision="float64")
    with pytest.raises(ValueError, match="quantize"):
        model.encode(["x"], precision="int8")
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        model.encode(["x"], batch_size=0)
    with pytest.raises(ValueError, match="PyTorch"):
        model.encode(["x"], convert_to_tensor=True)
    with pytest.raises(ValueError, match="truncate_dim"):
        model.encode(["x"], truncate_dim=0)
    with pytest.raises(ValueError, match="truncate_dim"):
        fathom.SentenceTransformer(str(minilm_dir()), truncate_dim=0)
    with pytest.raises(ValueError, match="max_position_embeddings \\(512\\)"):
        model.max_seq_length = 100_000
    with pytest.raises(ValueError, match="1-d or 2-d"):
        model.similarity(np.zeros((2, 2, 2)), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="unknown device `tpu`"):
        fathom.SentenceTransformer(str(minilm_dir()), device="tpu")
    assert model.max_seq_length == 256


def test_cuda_in_a_cpu_build_says_how_to_get_it():
    with pytest.raises(RuntimeError, match="CUDA"):
        fathom.SentenceTransformer(str(minilm_dir()), device="cuda")
    with pytest.raises(RuntimeError, match="CUDA"):
        fathom.SentenceTransformer(str(minilm_dir()), device="cuda:1")


def test_float16_on_cpu_says_it_needs_cuda(model):
    with pytest.raises(RuntimeError, match="CUDA"):
        model.encode(["x"], precision="float16")


def test_an_error_leaves_the_model_usable(model):
    with pytest.raises(ValueError):
        model.encode(["x"], prompt_name="nope")
    assert model.encode(["x"]).shape == (1, 384)
