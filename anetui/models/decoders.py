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
from anetui.models.spec import WEIGHTS_SEED, ModelError
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

    from anetui.models.hf import zoo_config

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
    return bool(architectures) and str(architectures[0]).endswith(
        ("ForCausalLM", "LMHeadModel")
    )


def _transformers() -> Any:
    from anetui.models.hf import _transformers as load

    return load()
