"""The "saved_model" format: a SavedModel that TF Serving loads as it is.

    <version>/saved_model.pb, variables/, fingerprint.pb
    <version>/assets/class_names.txt              line i = name of class i (a lookup table)
    <version>/assets.extra/reszoo_metadata.json   reszoo/serving/metadata.py
    <version>/assets.extra/tf_serving_warmup_requests   reszoo/serving/warmup.py
    <version>/assets.extra/batching_parameters.txt      TF Serving batching, max_batch_size
                                                        = this export's (limits.py)

One serving function per chosen entry of SIGNATURES, all through one ServingGraph.
"""

from __future__ import annotations

import math
from pathlib import Path

import tensorflow as tf

from reszoo.serving import warmup
from reszoo.serving.graph import ServingGraph
from reszoo.serving.limits import batching_parameters
from reszoo.serving.metadata import METADATA_FILE, write_metadata
from reszoo.serving.signatures import SIGNATURES

CLASS_NAMES_FILE = "class_names.txt"
BATCHING_FILE = "batching_parameters.txt"
# Warm-up size of a free dimension: small (warm-up only initialises), and smaller still if the
# export's pixel limits ask for it.
FREE_DIMENSION_WARMUP = 64


def warmup_size(height, width, limits) -> tuple[int, int]:
    """The size of the warm-up image: the model's own, a free dimension within the limits."""
    if height and width:
        return height, width
    budget = min(limits.max_image_pixels, limits.max_request_pixels)
    free = math.isqrt(budget) if not (height or width) else budget // (height or width)
    side = max(1, min(FREE_DIMENSION_WARMUP, free))
    return height or side, width or side


def check_saved_model(job) -> None:
    """The warm-up request (an image of the model's size) must pass the export's own limits."""
    job.limits.check_fits(*warmup_size(*job.source.input_size, job.limits))


def _serving_function(graph: ServingGraph, name: str):
    """The tf.function of one SIGNATURES entry: request -> the four outputs."""
    entry = SIGNATURES[name]
    spec = tf.TensorSpec(entry.shape, tf.as_dtype(entry.dtype), name=entry.input_name)

    @tf.function(input_signature=[spec])
    def serve(request):
        return graph.outputs(entry.logits(graph, request))

    return serve


def write_saved_model(job, target: Path, scratch: Path) -> None:
    names_path = scratch / CLASS_NAMES_FILE
    names_path.write_text("".join(name + "\n" for name in job.class_names), encoding="utf-8")
    graph = ServingGraph(job.source.model, str(names_path), job.limits)
    functions = {name: _serving_function(graph, name) for name in job.signatures}
    for name, function in functions.items():
        setattr(graph.module, name, function)  # tracked, so the SavedModel keeps it
    concrete = {name: function.get_concrete_function() for name, function in functions.items()}
    tf.saved_model.save(graph.module, str(target), signatures=concrete)
    extra = target / "assets.extra"
    extra.mkdir(exist_ok=True)
    records = warmup.warmup_requests(
        job.serving_name, *warmup_size(graph.height, graph.width, job.limits), job.signatures
    )
    warmup.write_warmup_requests(extra / warmup.WARMUP_FILE, records)
    (extra / BATCHING_FILE).write_text(batching_parameters(job.limits))
    write_metadata(extra / METADATA_FILE, job.metadata)
