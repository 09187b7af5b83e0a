"""The size of an encoded image read from its header, in the graph, before anything is decoded.

TensorFlow's decoders allocate the whole image as soon as they have read its header, so a
250 KB PNG of 16000 x 16000 zeros becomes gigabytes. The sizes here come from the same header
fields the decoders read:

    JPEG  tf.image.extract_jpeg_shape (libjpeg reads the frame header only)
    PNG   the IHDR chunk, which must come first: width and height are bytes 16-23, big-endian
    GIF   the logical screen (bytes 6-9) and the first frame's image descriptor, whichever is
          larger in each dimension. TensorFlow's GIF decoder reads *every* frame into memory even
          when it returns only the first, so the file is cut after its first frame (the GIF
          trailer appended) before decoding: a thousand-frame animation costs one frame.
    BMP   width and height are little-endian int32 at bytes 18 and 22 (a negative height means
          top-down rows), as TensorFlow's BMP decoder reads them.

`encoded_sizes` gives, per element, [height, width, bytes to decode]; `decode_rgb` decodes one
element from those bytes.
"""

from __future__ import annotations

import tensorflow as tf

# Magic numbers, in the order of the size readers below (tf.io.decode_image checks the same).
MAGIC = (
    ("JPEG", b"\xff\xd8\xff"),
    ("PNG", b"\x89PNG"),
    ("GIF", b"GIF8"),
    ("BMP", b"BM"),
)
_UNKNOWN = len(MAGIC)


def recognised(image_bytes: tf.Tensor) -> tf.Tensor:
    """bool [B]: whether each element starts like one of the formats the signature decodes."""
    return _format_index(image_bytes) < _UNKNOWN


def _format_index(image_bytes: tf.Tensor) -> tf.Tensor:
    """int32 index into MAGIC of each element's format (len(MAGIC) when unknown)."""
    index = tf.fill(tf.shape(image_bytes), _UNKNOWN)
    for i, (_, magic) in reversed(list(enumerate(MAGIC))):
        match = tf.strings.substr(image_bytes, 0, len(magic)) == magic
        index = tf.where(match, i, index)
    return index


def _bytes_at(data: tf.Tensor, position, count: int) -> tf.Tensor:
    """int64 [count]: data[position:position + count], zeros past the end (never an error)."""
    length = tf.strings.length(data)
    start = tf.minimum(tf.cast(position, tf.int32), length)
    chunk = tf.strings.substr(data, start, count)
    padded = tf.strings.substr(tf.strings.join([chunk, b"\0" * count]), 0, count)
    return tf.cast(tf.io.decode_raw(padded, tf.uint8), tf.int64)


def _unsigned_32(four_bytes: tf.Tensor, big_endian: bool = False) -> tf.Tensor:
    weights = [256**3, 256**2, 256, 1] if big_endian else [1, 256, 256**2, 256**3]
    return tf.reduce_sum(four_bytes * tf.constant(weights, tf.int64))


def _jpeg_size(data):
    shape = tf.cast(tf.image.extract_jpeg_shape(data), tf.int64)
    return shape[0], shape[1]


def _png_size(data):
    header = _bytes_at(data, 16, 8)
    return _unsigned_32(header[4:], big_endian=True), _unsigned_32(header[:4], big_endian=True)


def _bmp_size(data):
    header = _bytes_at(data, 18, 8)
    width, height = _unsigned_32(header[:4]), _unsigned_32(header[4:])
    return tf.abs(_signed_32(height)), tf.abs(_signed_32(width))


def _signed_32(value: tf.Tensor) -> tf.Tensor:
    return tf.where(value >= 2**31, value - 2**32, value)


def _colour_table_bytes(flags: tf.Tensor) -> tf.Tensor:
    """Bytes of the colour table announced by a GIF packed-fields byte (0 if none)."""
    return tf.where(flags >= 128, 3 * 2 ** (flags % 8 + 1), tf.zeros_like(flags))


def _sub_blocks_end(raw: tf.Tensor, position: tf.Tensor) -> tf.Tensor:
    """Position of the zero length byte that ends the data sub-blocks starting at `position`
    (each sub-block is a length byte and that many bytes)."""
    last = tf.size(raw, out_type=tf.int64) - 1

    def at(i):
        return tf.cast(tf.gather(raw, tf.minimum(i, last)), tf.int64)

    return tf.while_loop(
        lambda i: (at(i) > 0) & (i < last),
        lambda i: (i + 1 + at(i),),
        (position,),
        maximum_iterations=tf.cast(last + 1, tf.int32),
    )[0]


def _gif_size_and_length(data):
    """int64 [3] of a GIF: height, width, bytes up to the end of its first frame.

    After the header and global colour table come extensions (0x21, label, sub-blocks) and then
    the first image descriptor (0x2C: left, top, width, height, flags; its colour table; one
    byte of LZW code size; sub-blocks). A file whose first frame does not end within it keeps
    its full length (the decoder then reports it).
    """
    length = tf.cast(tf.strings.length(data), tf.int64)
    raw = tf.io.decode_raw(tf.strings.join([data, b"\0" * 16]), tf.uint8)
    last = tf.size(raw, out_type=tf.int64) - 1

    def at(i, count=1):
        return tf.cast(
            tf.gather(raw, tf.minimum(i + tf.range(count, dtype=tf.int64), last)), tf.int64
        )

    screen = at(tf.constant(6, tf.int64), 5)
    first_block = tf.while_loop(
        lambda i: tf.equal(at(i)[0], 0x21) & (i < length),
        lambda i: (_sub_blocks_end(raw, i + 2) + 1,),
        (13 + _colour_table_bytes(screen[4]),),
    )[0]
    descriptor = at(first_block, 10)
    image_data = first_block + 11 + _colour_table_bytes(descriptor[9])
    end = _sub_blocks_end(raw, image_data) + 1
    found = tf.equal(descriptor[0], 0x2C) & (end <= length)
    frame_height = tf.where(found, descriptor[7] + 256 * descriptor[8], 0)
    frame_width = tf.where(found, descriptor[5] + 256 * descriptor[6], 0)
    return tf.stack(
        [
            tf.maximum(screen[2] + 256 * screen[3], frame_height),
            tf.maximum(screen[0] + 256 * screen[1], frame_width),
            tf.where(found, end, length),
        ]
    )


def _size_and_length(data: tf.Tensor) -> tf.Tensor:
    """int64 [3] of one element: height, width, bytes to decode."""
    length = tf.cast(tf.strings.length(data), tf.int64)

    def sized(reader):
        return lambda: tf.stack([*reader(data), length])

    def unknown():
        return tf.stack([tf.zeros_like(length), tf.zeros_like(length), length])

    gif = lambda: _gif_size_and_length(data)  # noqa: E731
    branches = [sized(_jpeg_size), sized(_png_size), gif, sized(_bmp_size)]
    return tf.switch_case(_format_index(data), branches, default=unknown)


def encoded_sizes(image_bytes: tf.Tensor) -> tf.Tensor:
    """int64 [B, 3]: each element's height, width and the bytes of it to decode."""
    return tf.map_fn(
        _size_and_length, image_bytes, fn_output_signature=tf.TensorSpec([3], tf.int64)
    )


def decode_rgb(data: tf.Tensor, decode_length: tf.Tensor) -> tf.Tensor:
    """uint8 [h, w, 3] of one element, from its first `decode_length` bytes (a GIF cut after
    its first frame gets the trailer byte 0x3B)."""
    cut = decode_length < tf.cast(tf.strings.length(data), tf.int64)
    data = tf.cond(
        cut,
        lambda: tf.strings.join(
            [tf.strings.substr(data, 0, tf.cast(decode_length, tf.int32)), b";"]
        ),
        lambda: data,
    )
    image = tf.io.decode_image(data, channels=3, dtype=tf.uint8, expand_animations=False)
    return tf.ensure_shape(image, [None, None, 3])
