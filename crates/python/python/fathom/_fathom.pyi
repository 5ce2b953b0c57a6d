from typing import Iterable, Literal, Optional, Sequence, Union, overload

import numpy as np
import numpy.typing as npt

__version__: str

Precision = Literal["float32", "bfloat16", "float16"]
Dtype = Literal["float32", "int8", "bfloat16", "float16"]

class Tokenizer:
    def __call__(
        self,
        text: Union[str, Sequence[str]],
        add_special_tokens: bool = True,
        truncation: bool = False,
        max_length: Optional[int] = None,
    ) -> dict[str, list]: ...
    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]: ...
    def tokenize(self, text: str) -> list[str]: ...
    def decode(self, ids: Sequence[int], skip_special_tokens: bool = True) -> str: ...
    @overload
    def convert_tokens_to_ids(self, tokens: str) -> Optional[int]: ...
    @overload
    def convert_tokens_to_ids(self, tokens: Sequence[str]) -> list[Optional[int]]: ...
    def convert_ids_to_tokens(self, ids: Sequence[int]) -> list[Optional[str]]: ...
    @property
    def vocab_size(self) -> int: ...
    @property
    def model_max_length(self) -> int: ...
    def __len__(self) -> int: ...

class SentenceTransformer:
    def __init__(
        self,
        model_name_or_path: str,
        device: Optional[str] = "cpu",
        revision: Optional[str] = None,
        cache_folder: Optional[str] = None,
        truncate_dim: Optional[int] = None,
        dtype: Dtype = "float32",
    ) -> None: ...
    def encode(
        self,
        sentences: Union[str, Iterable[str]],
        prompt_name: Optional[str] = None,
        prompt: Optional[str] = None,
        batch_size: int = 32,
        show_progress_bar: Optional[bool] = None,
        precision: Optional[Precision] = None,
        convert_to_numpy: bool = True,
        convert_to_tensor: bool = False,
        normalize_embeddings: bool = False,
        truncate_dim: Optional[int] = None,
    ) -> Union[npt.NDArray[np.float32], list[npt.NDArray[np.float32]]]: ...
    def encode_query(
        self,
        sentences: Union[str, Iterable[str]],
        prompt_name: Optional[str] = None,
        prompt: Optional[str] = None,
        batch_size: int = 32,
        show_progress_bar: Optional[bool] = None,
        precision: Optional[Precision] = None,
        convert_to_numpy: bool = True,
        convert_to_tensor: bool = False,
        normalize_embeddings: bool = False,
        truncate_dim: Optional[int] = None,
    ) -> Union[npt.NDArray[np.float32], list[npt.NDArray[np.float32]]]: ...
    def encode_document(
        self,
        sentences: Union[str, Iterable[str]],
        prompt_name: Optional[str] = None,
        prompt: Optional[str] = None,
        batch_size: int = 32,
        show_progress_bar: Optional[bool] = None,
        precision: Optional[Precision] = None,
        convert_to_numpy: bool = True,
        convert_to_tensor: bool = False,
        normalize_embeddings: bool = False,
        truncate_dim: Optional[int] = None,
    ) -> Union[npt.NDArray[np.float32], list[npt.NDArray[np.float32]]]: ...
    def similarity(self, embeddings1: npt.ArrayLike, embeddings2: npt.ArrayLike) -> npt.NDArray[np.float32]: ...
    @property
    def similarity_fn_name(self) -> str: ...
    def get_sentence_embedding_dimension(self) -> int: ...
    def get_embedding_dimension(self) -> int: ...
    max_seq_length: int
    truncate_dim: Optional[int]
    @property
    def prompts(self) -> dict[str, str]: ...
    @property
    def default_prompt_name(self) -> Optional[str]: ...
    @property
    def device(self) -> str: ...
    @property
    def dtype(self) -> Dtype: ...
    @property
    def tokenizer(self) -> Tokenizer: ...

class CrossEncoder:
    def __init__(
        self,
        model_name_or_path: str,
        device: Optional[str] = "cpu",
        revision: Optional[str] = None,
        cache_folder: Optional[str] = None,
        max_length: Optional[int] = None,
        dtype: Dtype = "float32",
    ) -> None: ...
    def predict(
        self,
        sentences: Union[tuple[str, str], Sequence[tuple[str, str]]],
        batch_size: int = 32,
        show_progress_bar: Optional[bool] = None,
        activation_fn: Optional[object] = None,
        apply_softmax: bool = False,
        convert_to_numpy: bool = True,
        convert_to_tensor: bool = False,
    ) -> Union[float, npt.NDArray[np.float32]]: ...
    def rank(
        self,
        query: str,
        documents: Sequence[str],
        top_k: Optional[int] = None,
        return_documents: bool = False,
        batch_size: int = 32,
        show_progress_bar: Optional[bool] = None,
        activation_fn: Optional[object] = None,
        apply_softmax: bool = False,
        convert_to_numpy: bool = True,
        convert_to_tensor: bool = False,
    ) -> list[dict[str, Union[int, float, str]]]: ...
    @property
    def num_labels(self) -> int: ...
    @property
    def max_length(self) -> int: ...

class SparseEncoder:
    def __init__(
        self,
        model_name_or_path: str,
        device: Optional[str] = "cpu",
        revision: Optional[str] = None,
        cache_folder: Optional[str] = None,
        dtype: Dtype = "float32",
    ) -> None: ...
    def encode(
        self,
        sentences: Union[str, Sequence[str]],
        batch_size: int = 32,
        show_progress_bar: Optional[bool] = None,
        convert_to_tensor: bool = False,
        convert_to_sparse_tensor: bool = False,
    ) -> npt.NDArray[np.float32]: ...
    def decode(
        self, embedding: npt.NDArray[np.float32], top_k: Optional[int] = None
    ) -> list[tuple[str, float]]: ...
    @property
    def max_seq_length(self) -> int: ...
    def get_sentence_embedding_dimension(self) -> int: ...
