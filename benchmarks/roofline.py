"""The floor under an epoch: how fast a model's training could go at this CPU's peak, per ISA.

A training epoch has a fixed arithmetic cost: every convolution and dense layer's
multiply-adds, forward (once) and backward (about twice: gradients of the inputs and of the
weights). No input pipeline, precision trick short of a cheaper number format, or framework
overhead saved can make the epoch faster than that cost divided by the most floating-point
operations per second the CPU does. This script measures that peak (the best of short bursts of
a large float32 matrix product through TensorFlow, so through oneDNN and its ISA cap, and the
bfloat16 one where the ISA has it), counts each preset's operations from its Keras layers, and
prints the floor of a training epoch for each, next to the notebook's way's measured epoch from
``benchmarks/speed.py`` when its results file is given: the largest speed-up a same-model,
same-number-format path could ever show.

    python benchmarks/roofline.py --isa native,AVX512_CORE,AVX2 \
        [--speed outputs/benchmarks/speed.json] [--experiments cnn_baseline speedrun_cnn]

Each ISA runs in a process of its own with ``ONEDNN_MAX_CPU_ISA`` set (``native``: unset). The
peak is the best burst, taken before a throttling host slows down, so the floor is optimistic:
a real epoch is slower, and a ratio against the floor is an upper bound.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

# The proxy's training split with speed.py's validation hold-out (cnn_baseline's 10,000).
TRAIN_IMAGES, VAL_IMAGES = 97_934, 10_000
# Backward costs about two forward passes (input gradients and weight gradients).
TRAINING_PASSES = 3
CAPS = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA")


def peak_flops(dtype: str, size: int = 1024, burst_seconds: float = 0.5, bursts: int = 8) -> float:
    """The best floating-point operations per second of ``size``-square matrix products."""
    import tensorflow as tf

    a, b = (tf.cast(tf.random.normal((size, size)), dtype) for _ in range(2))
    product = tf.function(lambda x, y: tf.linalg.matmul(x, y))
    product(a, b).numpy()  # trace and warm up
    best = 0.0
    for _ in range(bursts):
        count, started = 0, time.perf_counter()
        while time.perf_counter() - started < burst_seconds:
            product(a, b).numpy()
            count += 1
        best = max(best, 2 * size**3 * count / (time.perf_counter() - started))
    return best


def forward_flops(model) -> int:
    """Floating-point operations of one image's forward pass through the convolutions and
    dense layers (the rest, activations and normalization, is a few percent and left out)."""
    import keras

    total = 0
    for layer in _layers(model):
        if isinstance(layer, keras.layers.Conv2D):
            _, height, width, filters = layer.output.shape
            kernel_height, kernel_width = layer.kernel_size
            channels = layer.input.shape[-1]
            total += 2 * height * width * filters * kernel_height * kernel_width * channels
        elif isinstance(layer, keras.layers.Dense):
            total += 2 * layer.input.shape[-1] * layer.units
    return total


def _layers(model):
    for layer in model.layers:
        if hasattr(layer, "layers"):
            yield from _layers(layer)
        else:
            yield layer


def measure(experiments: list[str]) -> dict:
    """This process's ISA: the peaks and each experiment's epoch floor."""
    import tensorflow as tf

    from benchmarks.speed import compose
    from emnist_bench.training.fit import build_model
    from emnist_bench.training.runtime import cpu_has_bfloat16

    peaks = {"float32": peak_flops("float32")}
    if cpu_has_bfloat16():  # the flags and the ISA cap both allow it
        peaks["bfloat16"] = peak_flops(tf.bfloat16.name)
    models = {}
    for name in experiments:
        cfg = compose([f"+experiment={name}", "data.download=false"])
        flops = forward_flops(build_model(cfg, 47))
        epoch = (TRAIN_IMAGES * TRAINING_PASSES + VAL_IMAGES) * flops
        models[name] = {
            "forward_mflop_per_image": flops / 1e6,
            "epoch_tflop": epoch / 1e12,
            "floor_seconds": {dtype: epoch / peak for dtype, peak in peaks.items()},
        }
    return {"peak_gflops": {k: v / 1e9 for k, v in peaks.items()}, "models": models}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--isa", default="native", help="comma-separated: native,AVX512_CORE,AVX2")
    parser.add_argument("--experiments", nargs="+", default=["cnn_baseline", "speedrun_cnn"])
    parser.add_argument(
        "--speed", type=Path, help="speed.py --isa's JSON: the notebook way's seconds per epoch"
    )
    parser.add_argument("--out", type=Path, default=REPO / "outputs/benchmarks/roofline.json")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.experiments)))
        return
    results = {}
    for isa in args.isa.split(","):
        env = {k: v for k, v in os.environ.items() if k not in CAPS}
        if isa != "native":
            env["ONEDNN_MAX_CPU_ISA"] = isa
        command = [sys.executable, __file__, "--child", "--experiments", *args.experiments]
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
        results[isa] = json.loads(done.stdout.strip().splitlines()[-1])
    notebook = _notebook_epochs(args.speed)
    print(
        "| ISA | peak GFLOP/s (float32; bfloat16) | preset | TFLOP per epoch | floor s/epoch "
        "| notebook's way s/epoch | largest possible ratio |"
    )
    print("|---|---|---|---|---|---|---|")
    for isa, found in results.items():
        peaks = "; ".join(f"{v:.0f}" for v in found["peak_gflops"].values())
        for name, model in found["models"].items():
            floor = min(model["floor_seconds"].values())
            seen = notebook.get(isa) if name == "cnn_baseline" else None
            ratio = f"{seen / floor:.1f}x" if seen else "-"
            print(f"| {isa} | {peaks} | `{name}` | {model['epoch_tflop']:.2f} | {floor:.1f} | "
                  f"{f'{seen:.1f}' if seen else '-'} | {ratio} |")  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"Wrote {args.out}")


def _notebook_epochs(path: Path | None) -> dict[str, float]:
    """The notebook's way's seconds per epoch per ISA, from speed.py's JSON: the faster of
    end to end and the in-process step median, so the ratio against the floor stays a bound."""
    if path is None:
        return {}
    found = json.loads(path.read_text())
    epochs = {}
    for isa, result in found.items():
        end_to_end = (result.get("end_to_end") or {}).get("notebook") or {}
        step = result.get("notebook") or {}
        end_to_end, step = end_to_end.get("seconds_per_epoch"), step.get("seconds_per_epoch")
        if end_to_end or step:
            epochs[isa] = min(v for v in (end_to_end, step) if v)
    return epochs


if __name__ == "__main__":
    main()
