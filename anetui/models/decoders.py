"""Decoders for the generative workload: the zoo's decoder rows as Hugging Face folders.

Every runtime that generates (PyTorch through transformers, MLX through mlx-lm, ONNX
Runtime GenAI through its builder, Core ML through a conversion) loads a *folder*
(``config.json`` + ``model.safetensors``), so a decoder by name is made once into one:
random weights from ``WEIGHTS_SEED`` saved with ``save_pretrained`` in the cache, keyed
by the row and the transformers version. A user's own folder is used as it is.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from anetui.errors import one_line
from anetui.models.spec import DECODER_KIND, WEIGHTS_SEED, ModelError, ModelSpec
from anetui.models.zoo import ZOO, ZooModel

#: The folder's files: what ``save_pretrained`` writes for a small model.
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"


def decoder_rows() -> list[ZooModel]:
    """The zoo rows whose workload is generation."""
    return [row for row in ZOO.values() if row.workload == "generate"]


def save_random_decoder(row: ZooModel, folder: Path) -> Path:
    """Build ``row``'s model with random weights from ``WEIGHTS_SEED`` (fp32) and write it
    to ``folder`` with ``save_pretrained`` (safetensors); returns ``folder``."""
    import torch

    from anetui.models.hf import quiet_transformers, zoo_config

    transformers = _transformers()
    config = zoo_config(row)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(WEIGHTS_SEED)
        model = getattr(transformers, row.model)(config)
    model.eval()
    # Generation settings in the folder would change what a runtime does by default
    # (sampling, early stop); the workload sets its own, so the folder carries none.
    model.generation_config = transformers.GenerationConfig()
    folder.mkdir(parents=True, exist_ok=True)
    with quiet_transformers():  # no "Writing model shards" bar on stderr
        model.save_pretrained(str(folder), safe_serialization=True)
    return folder


def decoder_folder(row: ZooModel, root: Path | None = None) -> Path:
    """The cached folder of a zoo decoder, made on first use (atomically: built in a
    temporary folder beside it and renamed into place)."""
    from anetui.models.cache import cache_root, make_key

    transformers = _transformers()
    key = make_key(
        {
            "decoder": row.name,
            "config": row.config,
            "model": row.model,
            "args": {k: repr(v) for k, v in sorted(row.config_args.items())},
            "seed": WEIGHTS_SEED,
            "transformers": transformers.__version__,
        }
    )
    base = (root or cache_root()) / "decoders"
    folder = base / f"{row.name}-{key[:16]}"
    if (folder / WEIGHTS_FILE).is_file() and (folder / CONFIG_FILE).is_file():
        return folder
    base.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{row.name}-", dir=base))
    try:
        save_random_decoder(row, work)
        try:
            work.rename(folder)
        except OSError:  # another process made it first: theirs is the same model
            if not (folder / WEIGHTS_FILE).is_file():
                raise
    except ModelError:
        raise
    except Exception as exc:
        raise ModelError(f"cannot make the {row.name} decoder: {one_line(exc)}") from None
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    return folder


def is_decoder_folder(path: Path) -> bool:
    """A Hugging Face folder whose architecture generates tokens (``…ForCausalLM`` or
    ``…LMHeadModel``), read from ``config.json`` without importing transformers."""
    try:
        raw = json.loads((path / CONFIG_FILE).read_text())
    except (OSError, ValueError):
        return False
    architectures = raw.get("architectures") if isinstance(raw, dict) else None
    if not isinstance(architectures, list) or not architectures:
        return False
    return str(architectures[0]).endswith(("ForCausalLM", "LMHeadModel"))


def _transformers() -> Any:
    from anetui.models.hf import _transformers as load

    return load()


#: Prompt and generated tokens per run when --prompt-len / --gen-len are not given.
DEFAULT_PROMPT_LEN = 64
DEFAULT_GEN_LEN = 32


def decoder_spec(
    name: str,
    folder: Path,
    *,
    prompt_len: int | None,
    gen_len: int | None,
    batch_size: int = 1,
    seq_len: int | None = None,
    overrides: int = 0,
) -> ModelSpec:
    """The generative workload's spec for a decoder folder: the prompt ``input_ids``
    (1, prompt_len) of token ids uniform over the vocabulary from the input seed, and
    ``gen_len`` tokens per run. One-line errors for what the workload cannot take."""
    from anetui.models.hf import _max_length, folder_config
    from anetui.models.inputs import InputSpec
    from anetui.models.spec import GenerationSpec

    if seq_len is not None:
        raise ModelError("--seq-len: a decoder's prompt length is --prompt-len")
    if batch_size != 1 or overrides:
        raise ModelError(
            "the generative workload runs one sequence (batch 1) of --prompt-len token ids: "
            "--batch-size, --input and --input-shape do not apply"
        )
    prompt = DEFAULT_PROMPT_LEN if prompt_len is None else prompt_len
    generate = DEFAULT_GEN_LEN if gen_len is None else gen_len
    if prompt < 1 or generate < 1:
        raise ModelError(
            f"bad --prompt-len {prompt} / --gen-len {generate}: both must be at least 1"
        )
    config, arch = folder_config(folder)
    if not arch.endswith(("ForCausalLM", "LMHeadModel")):
        raise ModelError(
            f"{name}: architecture {arch} does not generate tokens (a …ForCausalLM is needed)"
        )
    longest = _max_length(config)
    if longest is not None and prompt + generate > longest:
        raise ModelError(
            f"--prompt-len {prompt} + --gen-len {generate} is longer than the model's "
            f"{longest} positions"
        )
    vocab = int(config.vocab_size)
    return ModelSpec(
        name=name,
        kind=DECODER_KIND,
        path=folder,
        inputs=(InputSpec("input_ids", (1, prompt), "int64", "tokens", vocab),),
        generation=GenerationSpec(prompt, generate, vocab),
    )
