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

# The ingest's steps (fathom-docs, the CLI's code); fathom.ray runs them on Ray workers.

class Ingestor:
    def __init__(
        self,
        model: SentenceTransformer,
        *,
        chunk_tokens: Optional[int] = None,
        overlap: Optional[int] = None,
        max_chunks_per_file: int = 10000,
        json_field: Optional[str] = None,
        ocr: str = "auto",
        isolate: bool = True,
        timeout: float = 60.0,
        max_memory: int = 1 << 30,
        max_file_size: int = 20 * 1024 * 1024,
        follow_links: bool = False,
    ) -> None: ...
    @property
    def chunk_tokens(self) -> int: ...
    @property
    def overlap(self) -> int: ...
    @property
    def model_spec(self) -> tuple[str, int, bool]: ...
    @property
    def max_file_size(self) -> int: ...
    def source_hash(self, data: bytes) -> str: ...
    def chunk(self, text: str, format: str = "text") -> list[dict[str, Union[str, int]]]: ...
    def process(
        self, root: str, items: Sequence[tuple[str, str, Optional[str]]]
    ) -> tuple[dict[str, object], list[dict[str, object]]]: ...
    def process_bytes(
        self, items: Sequence[tuple[str, str, bytes, Optional[str]]]
    ) -> tuple[dict[str, object], list[dict[str, object]]]: ...

def collection_columns() -> list[tuple[str, str, bool]]: ...
def collection_metadata_keys() -> tuple[str, str, str]: ...
def collection_indexes() -> tuple[str, str, int]: ...
def vector_index_params(dimension: int, rows: int) -> tuple[int, int]: ...
def is_scratch_name(name: str) -> bool: ...
def source_hash_of(data: bytes, chunk_tokens: int, overlap: int) -> str: ...
def walk_folder(
    root: str,
    *,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    max_file_size: int = 20 * 1024 * 1024,
    hidden: bool = False,
    no_ignore: bool = False,
    follow_links: bool = False,
    source_prefix: Optional[str] = None,
) -> dict[str, object]: ...
def sync_plan(
    stored: dict[str, str],
    hashed: Sequence[tuple[str, str]],
    excluded: Sequence[str],
    unreadable: Sequence[str],
    complete: bool,
) -> dict[str, list[str]]: ...
def read_document(
    path: str,
    data: Optional[bytes] = None,
    *,
    json_field: Optional[str] = None,
    ocr: str = "auto",
    isolate: bool = True,
    timeout: float = 60.0,
    max_memory: int = 1 << 30,
) -> dict[str, object]: ...
