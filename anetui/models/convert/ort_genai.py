"""A decoder's Hugging Face folder -> an ONNX Runtime GenAI model folder (``model.onnx`` +
``genai_config.json``), made by onnxruntime-genai's own model builder
(``onnxruntime_genai.models.builder``) offline, fp32 for the CPU execution provider, and
cached like the other conversions (keyed by the folder's digest, the builder's version,
the precision and the provider).

The builder insists on a tokenizer: it calls ``AutoTokenizer.from_pretrained`` on its
input folder before anything else (``get_hf_details``), and copies the tokenizer into its
output (``save_processing``). The workload feeds token ids and never tokenizes text, so a
placeholder does: a ``tokenizers`` WordLevel tokenizer over the config's ``vocab_size``
(token ``<i>`` is id ``i``). It is never written into the user's folder: the builder reads
a staging folder in the cache entry that links the folder's own files and adds the
placeholder; the staging folder is removed once the model is built.

The builder runs as a subprocess (``python -m onnxruntime_genai.models.builder``, its
documented command line): it prints its progress on stdout, which in anetui carries
results (``--json``), and its package puts its own folder on ``sys.path`` to import
top-level modules named ``builders`` and ``quantization``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from anetui.errors import AnetuiError
from anetui.models.cache import Cache, make_key, model_digest
from anetui.models.convert.common import Build, cached_conversion
from anetui.models.spec import ModelSpec
from anetui.versions import package_version

#: The cache entry's artefact: the builder's output folder.
ARTEFACT = "model"
#: The builder's precisions anetui asks for: fp32, and int4 weights (MatMulNBits,
#: round-to-nearest in blocks, no calibration data) for the quantized sibling.
PRECISIONS = ("fp32", "int4")
PROVIDER = "cpu"
#: What the placeholder tokenizer is (part of the key: a different one is a new entry).
TOKENIZER = "tokenizers WordLevel, token '<i>' = id i, over config.json's vocab_size"
#: Files of the user's folder not linked into the staging folder: its own tokenizer, if
#: any, would be loaded instead of the placeholder (and may need sentencepiece or tiktoken).
TOKENIZER_FILES = re.compile(
    r"^(tokenizer.*|special_tokens_map\.json|added_tokens\.json|vocab\..*|merges\.txt"
    r"|.*\.model|.*\.tiktoken|chat_template.*)$"
)
#: The builder's own exception line at the end of its output.
ERROR_LINE = re.compile(r"^[A-Za-z_.]*(Error|Exception|Interrupt): .+")


class GenAIConversionError(AnetuiError):
    """The builder could not make the model; one line for the user."""


@dataclass(frozen=True)
class GenAIModel:
    """A built (or cached) GenAI model folder."""

    path: Path
    cached: bool
    seconds: float


def cache_key(folder: Path, precision: str = "fp32") -> str:
    return make_key(
        {
            "target": "ort-genai",
            "model": {"folder": model_digest(folder)},
            "onnxruntime-genai": package_version("onnxruntime-genai"),
            # The builder reads the checkpoint through transformers.
            "transformers": package_version("transformers"),
            "precision": precision,
            "execution_provider": PROVIDER,
            "tokenizer": TOKENIZER,
        }
    )


def is_valid(path: Path) -> bool:
    """The builder's config and the ONNX file it names are there."""
    config = json.loads((path / "genai_config.json").read_text())
    filename = config["model"]["decoder"]["filename"]
    return bool((path / filename).is_file())


def convert(
    spec: ModelSpec,
    *,
    precision: str = "fp32",
    cache: Cache | None = None,
    progress: Callable[[str], None] | None = None,
) -> GenAIModel:
    """The decoder folder ``spec.path`` as a GenAI model folder in ``precision`` (one of
    :data:`PRECISIONS`); a cache hit builds nothing."""
    if precision not in PRECISIONS:
        raise GenAIConversionError(f"no {precision} build (the builder's are {PRECISIONS})")
    if package_version("onnxruntime-genai") is None:
        raise GenAIConversionError("onnxruntime-genai not installed (pip install 'anetui[genai]')")
    folder = spec.path
    if folder is None or not (folder / "config.json").is_file():
        raise GenAIConversionError(f"{spec.describe()} is not a Hugging Face folder (config.json)")
    got = cached_conversion(
        cache or Cache("ort-genai"),
        cache_key(folder, precision),
        ARTEFACT,
        is_valid,
        lambda: _prepare(folder, precision),
        progress=progress,
        doing=f"building {folder} with onnxruntime-genai's model builder ({precision}, cpu)",
    )
    return GenAIModel(got.path, got.hit, got.seconds())


def _prepare(folder: Path, precision: str) -> tuple[Build, dict[str, Any]]:
    def build(target: Path) -> dict[str, Any]:
        # Beside the artefact in the staging entry, removed before it is renamed into place.
        source, scratch = target.parent / "source", target.parent / "builder-cache"
        try:
            stage_source(folder, source)
            run_builder(source, target, scratch, shown_as=folder, precision=precision)
        finally:
            shutil.rmtree(source, ignore_errors=True)
            shutil.rmtree(scratch, ignore_errors=True)
        return {
            "builder": "python -m onnxruntime_genai.models.builder",
            "precision": precision,
            "execution_provider": PROVIDER,
            "tokenizer": f"placeholder: {TOKENIZER}",
        }

    return build, {
        "model": str(folder),
        "onnxruntime-genai": package_version("onnxruntime-genai"),
        "transformers": package_version("transformers"),
    }


def stage_source(folder: Path, source: Path) -> None:
    """``source``: links to ``folder``'s files (its own tokenizer left out) and the
    placeholder tokenizer. Nothing is written into ``folder``."""
    source.mkdir(parents=True)
    for item in sorted(folder.iterdir()):
        if not TOKENIZER_FILES.match(item.name):
            (source / item.name).symlink_to(item.resolve())
    write_placeholder_tokenizer(vocab_size(folder), source)


def vocab_size(folder: Path) -> int:
    """config.json's ``vocab_size`` (or its ``text_config``'s)."""
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError) as exc:
        raise GenAIConversionError(f"cannot read {folder / 'config.json'}: {exc}") from None
    size = config.get("vocab_size") or (config.get("text_config") or {}).get("vocab_size")
    if not isinstance(size, int) or size <= 0:
        raise GenAIConversionError(f"{folder / 'config.json'} names no vocab_size")
    return size


def write_placeholder_tokenizer(size: int, folder: Path) -> None:
    """``tokenizer.json`` (WordLevel, ``<i>`` -> i for i < ``size``, split on whitespace)
    and a ``tokenizer_config.json`` that names transformers' fast tokenizer class."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    tokenizer = Tokenizer(models.WordLevel({f"<{i}>": i for i in range(size)}, unk_token="<0>"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer.save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(
        json.dumps({"tokenizer_class": "PreTrainedTokenizerFast", "unk_token": "<0>"}) + "\n"
    )


def run_builder(
    source: Path, target: Path, scratch: Path, *, shown_as: Path, precision: str = "fp32"
) -> None:
    """The builder's command line on ``source`` into ``target``, offline; its output is
    kept for the error message only. A failure is one line naming ``shown_as``."""
    command = [
        sys.executable,
        "-m",
        "onnxruntime_genai.models.builder",
        "--input",
        str(source),
        "--output",
        str(target),
        "--precision",
        precision,
        "--execution_provider",
        PROVIDER,
        "--cache_dir",
        str(scratch),
        "--extra_options",
        "hf_token=false",
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    # subprocess.run kills the builder if this thread is interrupted.
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise GenAIConversionError(
            failure_line(done.stdout + "\n" + done.stderr, source, shown_as, done.returncode)
        )


def failure_line(output: str, source: Path, shown_as: Path, returncode: int) -> str:
    """One line from the builder's output: its last exception, the staging path replaced
    by the user's folder; an architecture it does not know is said in words."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if ERROR_LINE.match(line)]
    line = errors[-1] if errors else (lines[-1] if lines else f"exit status {returncode}")
    line = line.replace(str(source), str(shown_as))
    if line.startswith("NotImplementedError") and "not currently supported" in line:
        architecture = _architecture(shown_as)
        version = package_version("onnxruntime-genai")
        return (
            f"onnxruntime-genai {version}'s model builder does not support the "
            f"{architecture} architecture ({shown_as})"
        )
    return f"the onnxruntime-genai model builder failed on {shown_as}: {line[:300]}"


def _architecture(folder: Path) -> str:
    try:
        architectures = json.loads((folder / "config.json").read_text()).get("architectures")
        return str(architectures[0])
    except Exception:  # any unreadable config: the words still say what happened
        return "model's"
