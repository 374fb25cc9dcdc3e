"""Options shared by several commands, and the one builder of a RunConfig from them."""

from __future__ import annotations

import contextlib
import math
import os
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click

from anetui.core.config import RunConfig
from anetui.models.inputs import InputError, InputOverride, parse_input_option
from anetui.models.spec import DEFAULT_MODEL, parse_input_shape

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

#: Signals that stop a run the way Ctrl+C does: partial results kept, exit 128 + N.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class StopRequests:
    """Turns SIGINT, SIGTERM and SIGHUP into a clean stop: remembers the first signal and
    sets the stop events registered (a session's), so the run ends with partial results
    kept and the exit code 128 + that signal's number (130, 143, 129)."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._events: list[threading.Event] = []

    def stop(self, event: threading.Event) -> None:
        """Set ``event`` on a stop signal (at once if one already came)."""
        self._events.append(event)
        if self.signum is not None:
            event.set()

    def _handle(self, signum: int, _frame: object) -> None:
        if self.signum is None:
            self.signum = signum
        for event in self._events:
            event.set()

    @contextlib.contextmanager
    def handling(self, signals: tuple[signal.Signals, ...] = STOP_SIGNALS) -> Iterator[None]:
        """Install the handler for ``signals`` in this block (main thread only, as
        ``signal.signal`` requires; elsewhere a no-op)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {s: signal.signal(s, self._handle) for s in signals}
        try:
            yield
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)


class FiniteFloatRange(click.FloatRange):
    """click's FloatRange that also refuses NaN and infinity (which pass its min/max
    comparisons: every comparison with NaN is false), so `--duration nan` is a usage
    error at once, not a failure, or an endless run, later."""

    name = "finite float range"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return number


def check_output_path(path: Path | None, option: str) -> None:
    """Fail now, not after a long measurement, when ``path`` cannot be written: it must
    not be a folder, and the nearest folder that exists on its way (missing ones are
    created when writing) must be a folder this process may write in."""
    if path is None:
        return
    if path.is_dir():
        raise click.BadParameter(f"{path} is a folder; give a file name", param_hint=option)
    if path.exists() and not os.access(path, os.W_OK):
        raise click.BadParameter(f"{path} is not writable", param_hint=option)
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise click.BadParameter(f"{folder} is not a folder", param_hint=option)
    if not os.access(folder, os.W_OK | os.X_OK):
        raise click.BadParameter(f"cannot create files in {folder}", param_hint=option)


def backend_list(
    _ctx: click.Context, _param: click.Parameter, value: str | None
) -> tuple[str, ...] | None:
    if value is None:
        return None
    ids = tuple(dict.fromkeys(v.strip() for v in value.split(",") if v.strip()))
    if not ids:
        raise click.BadParameter("give at least one backend id, e.g. torch-cpu,torch-cpu-opt")
    from anetui.backends.registry import REGISTRY

    unknown = [i for i in ids if i not in REGISTRY]
    if unknown:
        raise click.BadParameter(
            f"unknown backend {', '.join(unknown)} (known: {', '.join(REGISTRY)})"
        )
    return ids


#: What a shared option below returns: a decorator for a command function.
OptionDecorator = Callable[[Callable[..., None]], Callable[..., None]]

# One declaration per option that several commands take: the name, type, range, default
# and metavar stay the same everywhere; the help is the command's own where it differs.


def model_option(
    *,
    help: str = "A model name (`anetui models` lists them: transformers such as bert-base "
    "and torchvision classifiers, random weights, nothing downloaded), a Hugging Face "
    "folder (config.json + *.safetensors) or a model file: .pt2 (torch.export), "
    "TorchScript .pt, Core ML .mlpackage, .onnx (+ .onnx.data), ExecuTorch .pte or "
    "OpenVINO .xml.",
) -> OptionDecorator:
    return click.option("--model", default=DEFAULT_MODEL, show_default=True, help=help)


def input_list(
    _ctx: click.Context, _param: click.Parameter, value: tuple[str, ...]
) -> tuple[InputOverride, ...]:
    try:
        return tuple(parse_input_option(v) for v in value)
    except InputError as exc:
        raise click.BadParameter(str(exc)) from None


def input_options() -> OptionDecorator:
    """--input NAME:SHAPE[:DTYPE] (repeatable) and --seq-len: a model's named inputs."""
    return option_group(
        click.option(
            "--input",
            "input_specs",
            multiple=True,
            callback=input_list,
            metavar="NAME:SHAPE[:DTYPE]",
            help="A named input's shape (and dtype: float32, float16, int64, int32, "
            "bool), e.g. input_ids:1,64 (repeatable); completes or overrides what the "
            "model declares. A wrong name lists the model's inputs.",
        ),
        click.option(
            "--seq-len",
            type=click.IntRange(min=1),
            help="Sequence length of text models (default 128 for the transformers "
            "names), and the size of any symbolic non-batch dimension of a model file.",
        ),
    )


def generation_options() -> OptionDecorator:
    """--prompt-len and --gen-len: the generative workload of a decoder."""
    return option_group(
        click.option(
            "--prompt-len",
            type=click.IntRange(min=1),
            help="Decoders (generative workload): prompt tokens prefilled per run (default "
            "64), token ids uniform over the vocabulary from a fixed seed; with a Hugging "
            "Face folder of a …ForCausalLM it selects the generative workload.",
        ),
        click.option(
            "--gen-len",
            type=click.IntRange(min=1),
            help="Decoders: tokens generated per run, greedy, exactly this many (default "
            "32; the first comes from the prefill).",
        ),
    )


def batch_size_option(
    *,
    help: str = "Batch size: the first dimension of every input (images: (N, 3, R, R) at "
    "the model's own resolution R).",
) -> OptionDecorator:
    return click.option(
        "--batch-size", type=click.IntRange(min=1), default=1, show_default=True, help=help
    )


def input_shape_option(*, help: str) -> OptionDecorator:
    return click.option("--input-shape", metavar="N,C,H,W", help=help)


def backends_option(*, help: str) -> OptionDecorator:
    """--backends ID,ID,…: checked against the registry, duplicates dropped."""
    return click.option(
        "--backends", "backend_ids", callback=backend_list, metavar="ID,ID,…", help=help
    )


def power_option(*, default: str, help: str) -> OptionDecorator:
    """--power SOURCE: the one power source to measure with (`bench`, the dashboard)."""
    return click.option(
        "--power", "power_spec", default=default, show_default=True, metavar="SOURCE", help=help
    )


def iterations_option(*, default: int | None = None, help: str) -> OptionDecorator:
    return click.option(
        "--iterations",
        type=click.IntRange(min=1),
        default=default,
        show_default=default is not None,
        help=help,
    )


def duration_option(*, help: str) -> OptionDecorator:
    return click.option(
        "--duration", "duration_s", type=FiniteFloatRange(min=0, min_open=True), help=help
    )


def interval_ms_option(*, help: str) -> OptionDecorator:
    return click.option(
        "--interval-ms", type=click.IntRange(min=10), default=250, show_default=True, help=help
    )


def keep_root_option(*, help: str) -> OptionDecorator:
    return click.option("--keep-root", is_flag=True, help=help)


def file_option(*param_decls: str, help: str) -> OptionDecorator:
    """A file path (a folder is refused), e.g. ``file_option("--json", "json_path", …)``."""
    return click.option(*param_decls, type=click.Path(dir_okay=False, path_type=Path), help=help)


def option_group(*options: OptionDecorator) -> OptionDecorator:
    """One decorator for several options, shown in --help in the order given."""

    def decorate(command: Callable[..., None]) -> Callable[..., None]:
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


#: --interval-ms, --speed and --keep-root, shared by `bench`, `power` and the dashboard.
sampling_options = option_group(
    interval_ms_option(help="Power sampling interval (ms)."),
    click.option(
        "--speed",
        type=FiniteFloatRange(min=0, min_open=True),
        default=1.0,
        show_default=True,
        help="Replay speed for replay:FILE.",
    ),
    keep_root_option(
        help="Under sudo, stay root after starting the power source (default: drop to the "
        "invoking user before loading models or writing files)."
    ),
)


#: Suspect rails (power/health.py) leave totals and ratios unless kept; bench, dashboard.
keep_rail_option = click.option(
    "--keep-rail",
    "keep_rails",
    multiple=True,
    metavar="RAIL",
    help="Keep this rail in totals and ratios even when the counter checks find it "
    "suspect (repeatable). Default: suspect rails are left out, with a warning.",
)


#: What to run and how: shared by `bench` and the dashboard.
run_options = option_group(
    backends_option(
        help="Backends to run, comma-separated. Default: every backend available here."
    ),
    model_option(),
    batch_size_option(),
    input_shape_option(help="The first input's shape, overriding --batch-size."),
    input_options(),
    generation_options(),
    click.option(
        "--dtype",
        type=click.Choice(["fp32", "fp16", "bf16"]),
        help="Precision for the backends that can compute in it (the others say why not). "
        "Default: each backend's own (fp32; fp16 for Core ML and torch-cuda-graph).",
    ),
    click.option(
        "--threads",
        type=click.IntRange(min=1),
        help="Intra-op CPU threads (torch, ONNX Runtime, OpenVINO, ExecuTorch). "
        "Default: each runtime's own.",
    ),
    click.option(
        "--warmup",
        type=click.IntRange(min=0),
        default=10,
        show_default=True,
        help="Untimed inferences per backend before timing.",
    ),
    click.option(
        "--reference",
        metavar="ID",
        help="Backend the ratios are taken against. Default: torch-cpu, else the first.",
    ),
)


def run_config(
    *,
    input_shape: str | None,
    backend_ids: tuple[str, ...] | None,
    input_specs: tuple[InputOverride, ...] = (),
    **fields: Any,
) -> RunConfig:
    """The RunConfig for the shared options (``--input-shape`` parsed here)."""
    shape = parse_input_shape(input_shape) if input_shape else None
    return RunConfig(input_shape=shape, backends=backend_ids, inputs=input_specs, **fields)
