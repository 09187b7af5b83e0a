"""How much one request may ask of a server: the export options that bound a signature's memory.

Every signature checks these in the graph, from the request's shape or the encoded files'
headers, before it decodes, converts or resizes anything, so a small request cannot make the
server allocate gigabytes:

    max_batch_size      images in one request. Default 256: at 224x224 a ResNet-50 needs about
                        7 MB per image for its activations on CPU (measured with
                        tf.function inference here), so 256 images stay near 2 GB; it is also
                        the `max_batch_size` of the TF Serving batching example written beside
                        the export, which must match (a merged batch larger than the graph
                        accepts would fail every request in it).
    max_image_pixels    height x width of one image, as sent or as its header declares it.
                        Default 2**24 = 16,777,216 (4096 x 4096): a 12-16 megapixel photo
                        passes; decoded as 8-bit RGB it is 48 MB.
    max_request_pixels  the sum of height x width over the images of one request. Default
                        2**25 = 33,554,432: two images of the largest size, about 100 MB of
                        decoded 8-bit RGB.

A request over a limit fails with an InvalidArgument error whose message names the limit and
its value. The limits are recorded in the export's metadata. With a model of free input size
(images go in at their own size) the pixel limits also bound what the network computes on.
"""

from __future__ import annotations

import dataclasses

from reszoo.errors import ExportError

DEFAULT_MAX_BATCH_SIZE = 256
DEFAULT_MAX_IMAGE_PIXELS = 2**24
DEFAULT_MAX_REQUEST_PIXELS = 2**25
# TensorFlow's own decoders refuse images of 2**29 pixels or more: a larger limit is meaningless.
_MOST_PIXELS = 2**29


@dataclasses.dataclass(frozen=True)
class ServingLimits:
    """The three limits of one export (see the module docstring for the defaults' reasons)."""

    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE
    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS
    max_request_pixels: int = DEFAULT_MAX_REQUEST_PIXELS

    def __post_init__(self):
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ExportError(f"{field.name} must be a positive integer; got {value!r}")
        for name in ("max_image_pixels", "max_request_pixels"):
            if getattr(self, name) > _MOST_PIXELS:
                raise ExportError(
                    f"{name}={getattr(self, name)} is above 2**29, the most pixels TensorFlow's "
                    "decoders accept; choose a smaller limit"
                )

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    def check_fits(self, height: int, width: int) -> None:
        """An export must accept one image of the model's own size (its warm-up request)."""
        pixels = height * width
        for name in ("max_image_pixels", "max_request_pixels"):
            if getattr(self, name) < pixels:
                raise ExportError(
                    f"{name}={getattr(self, name)} is below one {height}x{width} image "
                    f"({pixels} pixels), the model's input size: every request of that size "
                    f"would be refused; raise {name}"
                )


def batching_parameters(limits: ServingLimits, num_batch_threads: int = 4) -> str:
    """TF Serving's batching_parameters file (text protobuf, BatchingParameters of
    tensorflow_serving/servables/tensorflow/session_bundle_config.proto) whose max_batch_size
    is this export's: merged batches then never exceed what the graph accepts."""
    return (
        "# TF Serving batching for this export: tensorflow_model_server --enable_batching \\\n"
        "#   --batching_parameters_file=<this file>\n"
        "# max_batch_size must equal the export's max_batch_size (reszoo_metadata.json: limits):\n"
        "# a larger merged batch would be refused by the graph, failing every request in it.\n"
        f"max_batch_size {{ value: {limits.max_batch_size} }}\n"
        "# Wait up to 2 ms for more requests before running a partial batch.\n"
        "batch_timeout_micros { value: 2000 }\n"
        "# Queue at most this many batches; beyond it requests are refused (UNAVAILABLE).\n"
        "max_enqueued_batches { value: 16 }\n"
        "# Threads running batches: about the number of CPU cores given to the server.\n"
        f"num_batch_threads {{ value: {num_batch_threads} }}\n"
    )
