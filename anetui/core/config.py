"""The run's configuration: one frozen object built by the CLI, read by everything."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from anetui.core.agreement import reference_runtime
from anetui.models.inputs import InputOverride, describe_values
from anetui.models.spec import DEFAULT_MODEL, ModelSpec

DEFAULT_WARMUP = 10
DEFAULT_DURATION_S = 10.0
#: Interleaved runs alternate backends in slices of about this long (s) …
INTERLEAVE_SLICE_S = 1.0
#: … or, with --iterations, in this many rounds (fewer when there are fewer iterations).
INTERLEAVE_ROUNDS = 10


@dataclass(frozen=True, slots=True)
class RunConfig:
    """What to measure and how.

    backends: ids in order, or None for "every backend available here".
    iterations / duration_s: timed inferences per backend, by count or by seconds (s);
    exactly one is set. threads: torch intra-op threads, None for torch's default.
    """

    model: str = DEFAULT_MODEL
    batch_size: int = 1
    input_shape: tuple[int, ...] | None = None
    #: --input NAME:SHAPE[:DTYPE] (repeatable) and --seq-len: the model's inputs completed.
    inputs: tuple[InputOverride, ...] = ()
    seq_len: int | None = None
    #: The generative workload (decoders): prompt tokens and tokens generated per run.
    prompt_len: int | None = None
    gen_len: int | None = None
    backends: tuple[str, ...] | None = None
    dtype: str | None = None
    threads: int | None = None
    warmup: int = DEFAULT_WARMUP
    iterations: int | None = None
    duration_s: float | None = DEFAULT_DURATION_S
    interleave: bool = False
    #: Whole runs measured one after another (each its full iterations or seconds): the
    #: run-to-run spread of the medians.
    repeat: int = 1
    reference: str | None = None
    power: str = "none"
    interval_ms: int = 250
    #: Seconds of nothing-running before the backends, to measure the idle baseline.
    idle_seconds: float = 0.0
    replay_speed: float = 1.0
    #: Under sudo, stay root after starting the power source.
    keep_root: bool = False
    #: Rails kept in totals and ratios even when the health checks find them suspect.
    keep_rails: tuple[str, ...] = ()
    out_dir: Path = Path("anetui-snapshots")
    #: A folder of .npy/.npz inputs the quantized siblings calibrate on (None: random
    #: inputs drawn like the benchmark's).
    calibration: Path | None = None

    def __post_init__(self) -> None:
        # The dashboard runs until stopped: neither limit. bench sets exactly one.
        if self.iterations is not None and self.duration_s is not None:
            raise ValueError("set iterations or duration_s, not both")


def schedule(cfg: RunConfig, n_backends: int) -> list[list[tuple[int | None, float | None]]]:
    """Per round, per backend: (iterations, seconds) for that slice of the run — one
    round, or ~1 s slices (``INTERLEAVE_ROUNDS`` with --iterations) when interleaved;
    all of it ``repeat`` times (--repeat)."""
    if not cfg.interleave:
        rounds = 1
    elif cfg.duration_s is not None:
        rounds = max(1, round(cfg.duration_s / INTERLEAVE_SLICE_S))
    else:
        assert cfg.iterations is not None
        rounds = max(1, min(INTERLEAVE_ROUNDS, cfg.iterations))
    slices = []
    for r in range(rounds):
        if cfg.duration_s is not None:
            item: tuple[int | None, float | None] = (None, cfg.duration_s / rounds)
        else:
            assert cfg.iterations is not None
            share = cfg.iterations // rounds + (1 if r < cfg.iterations % rounds else 0)
            item = (share, None)
        slices.append([item] * n_backends)
    return slices * cfg.repeat


def config_dict(
    cfg: RunConfig, spec: ModelSpec, outputs: list[dict[str, object]] | None = None
) -> dict[str, object]:
    """The results' ``config`` entry: what was measured and how. ``input_shape`` is the
    first input's (as in ``anetui.results/1``); ``inputs`` and ``outputs`` name them all."""
    return {
        "model": spec.describe(),
        "model_kind": spec.kind,
        "input_shape": list(spec.input_shape),
        "inputs": [i.as_dict() for i in spec.inputs],
        "outputs": outputs if outputs is not None else [o.as_dict() for o in spec.outputs],
        "warmup": cfg.warmup,
        "iterations": cfg.iterations,
        "duration_s": cfg.duration_s,
        "interleave": cfg.interleave,
        "repeat": cfg.repeat,
        "dtype": cfg.dtype,
        "threads": cfg.threads,
        "power": cfg.power,
        "idle_seconds": cfg.idle_seconds,
        "keep_rails": list(cfg.keep_rails),
        "agreement_reference": reference_runtime(spec),
        "input": describe_values(spec.inputs),
        **(
            {
                "workload": "generate",
                "prompt_len": spec.generation.prompt_len,
                "gen_len": spec.generation.gen_len,
            }
            if spec.generation is not None
            else {}
        ),
    }
