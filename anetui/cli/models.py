"""`anetui models`: every model name anetui knows, one per line (name, family, what)."""

from __future__ import annotations

import click


@click.command()
@click.option(
    "--family",
    type=click.Choice(["all", "transformers", "decoders", "torchvision"]),
    default="all",
    show_default=True,
    help="Only the names of one family.",
)
def models(family: str) -> None:
    """List the model names `--model` takes: transformer models built from their
    transformers config classes and torchvision's classifiers, all with random weights
    (nothing is downloaded). Tab-separated: name, family, description. The decoders
    run the generative workload (--prompt-len, --gen-len).

    A path works too: a Hugging Face folder (config.json + *.safetensors; a …ForCausalLM
    with --prompt-len/--gen-len generates) or a model file (.pt2, .pt, .onnx, .mlpackage,
    .pte, OpenVINO .xml).
    """
    from anetui.models.zoo import ZOO, torchvision_names

    for row in ZOO.values():
        group = "decoders" if row.workload == "generate" else "transformers"
        if family in ("all", group):
            click.echo(f"{row.name}\t{group}\t{row.summary}")
    if family in ("all", "torchvision"):
        for name in torchvision_names():
            click.echo(f"{name}\ttorchvision\tclassifier, 3xRxR image input")
