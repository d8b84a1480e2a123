"""``model.summary()``: Keras 3's box table, reproduced as plain text without ``rich``.

Keras 3 renders the summary with ``rich`` (``keras/src/utils/summary_utils.py``). This module
reimplements the parts of that rendering a sequential model uses (column-width fitting,
word wrapping and folding inside cells, the ``HEAVY_HEAD`` box, cropping to the console width),
so that ``print_fn`` receives the same text Keras passes it when output is not a terminal.

Duck-typed model interface (the lead's ``Sequential`` satisfies it):

- ``model.name: str``; ``model.layers: list``;
- each layer: ``.name``, ``.built``, ``.count_params() -> int``, ``.output_shape`` (a tuple such
  as ``(None, 16)``; may be missing, ``None`` or raise while unbuilt), ``type(layer).__name__``;
  optionally ``.weights`` and ``.trainable`` (only for ``show_trainable=True``) and ``.layers``
  (only for ``expand_nested=True``);
- ``model.trainable_weights`` / ``model.non_trainable_weights``: objects with ``.shape``
  (and optionally ``.dtype``, default ``float32``);
- ``model.optimizer``: ``None`` or an object with ``.built`` and ``.variables`` (objects with
  ``.shape``); its parameters are listed once it is built (optionally gated by
  ``model.compiled``).
"""

from __future__ import annotations

import math
import os
import re
import shutil
import sys
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

__all__ = ["print_summary", "count_params", "weight_memory_size", "readable_memory_size"]

# rich's box.HEAVY_HEAD: (left, horizontal, cross, right) for each kind of rule.
_TOP = ("┏", "━", "┳", "┓")
_HEAD_ROW = ("┡", "━", "╇", "┩")
_ROW = ("├", "─", "┼", "┤")
_BOTTOM = ("└", "─", "┴", "┘")
_HEAD_VERTICAL = "┃"
_VERTICAL = "│"

_WORD = re.compile(r"\s*\S+\s*")
_TRAILING_SPACE = re.compile(r"\s+$")


# --------------------------------------------------------------------------------------------
# Parameter counting and sizes (Keras's summary_utils helpers).


def count_params(weights: Iterable[Any]) -> int:
    """Total number of scalars in ``weights`` (objects with a ``.shape``)."""
    return int(sum(math.prod(w.shape) for w in weights))


def _dtype_bits(dtype: Any) -> int:
    if dtype is None:
        return 32
    dt = np.dtype(getattr(dtype, "name", dtype))
    return 1 if dt == np.bool_ else dt.itemsize * 8


def weight_memory_size(weights: Iterable[Any]) -> float:
    """Bytes taken by the distinct objects in ``weights`` (``float32`` unless ``.dtype`` says)."""
    unique = {id(w): w for w in weights}.values()
    bits = sum(math.prod(w.shape) * _dtype_bits(getattr(w, "dtype", None)) for w in unique)
    return bits / 8


def readable_memory_size(size: float) -> str:
    """Format a byte count as Keras does: ``"908.00 B"``, ``"1.01 KB"`` (base 1024)."""
    units = ["B", "KB", "MB", "GB", "TB", "PB"]
    for unit in units:
        if size / 1024 < 1:
            return f"{size:.2f} {unit}"
        size /= 1024
    return f"{size:.2f} {units[-1]}"


# --------------------------------------------------------------------------------------------
# The subset of rich's text layout used by a summary.


def _char_cells(ch: str) -> int:
    if unicodedata.combining(ch):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def _cell_len(text: str) -> int:
    return len(text) if text.isascii() else sum(_char_cells(c) for c in text)


def _set_cell_size(text: str, total: int) -> str:
    """Crop or right-pad ``text`` to exactly ``total`` cells."""
    if text.isascii():
        return text[:total] if len(text) >= total else text + " " * (total - len(text))
    out, used = [], 0
    for ch in text:
        w = _char_cells(ch)
        if used + w > total:
            break
        out.append(ch)
        used += w
    return "".join(out) + " " * (total - used)


def _crop(text: str, width: int) -> str:
    return _set_cell_size(text, width) if _cell_len(text) > width else text


def _chop_cells(text: str, width: int) -> list[str]:
    if text.isascii():
        return [text[i : i + width] for i in range(0, len(text), width)]
    lines, line, used = [], "", 0
    for ch in text:
        w = _char_cells(ch)
        if used + w > width and line:
            lines.append(line)
            line, used = "", 0
        line += ch
        used += w
    if line:
        lines.append(line)
    return lines


def _divide_line(text: str, width: int, fold: bool) -> list[int]:
    """Offsets at which to break ``text`` (word wrap; over-long words folded if ``fold``)."""
    breaks: list[int] = []
    offset = 0
    for match in _WORD.finditer(text):
        start, word = match.start(), match.group(0)
        word_len = _cell_len(word.rstrip())
        if width - offset >= word_len:
            offset += _cell_len(word)
        elif word_len > width:
            if not fold:
                if start:
                    breaks.append(start)
                offset = _cell_len(word)
                continue
            pieces = _chop_cells(word, width)
            for i, piece in enumerate(pieces):
                if start:
                    breaks.append(start)
                if i == len(pieces) - 1:
                    offset = _cell_len(piece)
                else:
                    start += len(piece)
        elif offset and start:
            breaks.append(start)
            offset = _cell_len(word)
    return breaks


def _truncate(line: str, width: int, overflow: str, pad: bool = False) -> str:
    length = _cell_len(line)
    if length > width:
        if overflow == "ellipsis":
            line = _set_cell_size(line, width - 1) + "…"
        else:
            line = _set_cell_size(line, width)
    if pad and length < width:
        line += " " * (width - length)
    return line


def _wrap(text: str, width: int, justify: str, overflow: str) -> list[str]:
    """Word-wrap ``text`` to ``width`` cells as rich's ``Text.wrap`` does.

    ``justify`` is ``left``/``right``/``center`` (lines padded to ``width``) or ``default``;
    ``overflow`` is ``fold`` (split over-long words) or ``ellipsis`` (crop them with ``…``).
    """
    lines: list[str] = []
    for paragraph in text.split("\n"):
        offsets = _divide_line(paragraph, width, fold=overflow == "fold")
        for a, b in zip([0, *offsets], [*offsets, len(paragraph)], strict=True):
            line = paragraph[a:b]
            if len(line) > width:  # drop trailing whitespace beyond the width
                ws = _TRAILING_SPACE.search(line)
                if ws is not None:
                    line = line[: len(line) - min(len(ws.group(0)), len(line) - width)]
            if justify == "left":
                line = _truncate(line, width, overflow, pad=True)
            elif justify in ("right", "center"):
                line = _truncate(line.rstrip(), width, overflow)
                gap = width - _cell_len(line)
                left = gap if justify == "right" else gap // 2
                line = " " * left + line + " " * (gap - left)
            lines.append(_truncate(line, width, overflow))
    return lines


def _ratio_reduce(
    total: int, ratios: list[int], maximums: list[int], values: list[int]
) -> list[int]:
    ratios = [r if m else 0 for r, m in zip(ratios, maximums, strict=True)]
    total_ratio = sum(ratios)
    if not total_ratio:
        return values[:]
    remaining, out = total, []
    for ratio, maximum, value in zip(ratios, maximums, values, strict=True):
        if ratio and total_ratio > 0:
            distributed = min(maximum, round(ratio * remaining / total_ratio))
            out.append(value - distributed)
            remaining -= distributed
            total_ratio -= ratio
        else:
            out.append(value)
    return out


def _ratio_distribute(total: int, ratios: list[int]) -> list[int]:
    total_ratio, remaining, out = sum(ratios), total, []
    for ratio in ratios:
        distributed = math.ceil(ratio * remaining / total_ratio) if total_ratio > 0 else remaining
        out.append(distributed)
        total_ratio -= ratio
        remaining -= distributed
    return out


def _fit_widths(requested: list[int], table_width: int) -> list[int]:
    """rich's width fitting for fixed-width columns in a table of ``table_width`` characters.

    Returns each column's width including its one-space padding on both sides.
    """
    max_width = table_width - (len(requested) + 1)  # minus the vertical rules
    widths = [min(w + 2, max_width) if max_width >= 1 else 0 for w in requested]
    widths = [w or 1 for w in widths]
    total = sum(widths)
    if total > max_width:
        widths = _ratio_reduce(total - max_width, [1] * len(widths), widths, widths)
        total = sum(widths)
        widths = [0 if w < 1 else w for w in widths]
    if total < max_width:
        pad = _ratio_distribute(max_width - total, widths)
        widths = [w + p for w, p in zip(widths, pad, strict=True)]
    return widths


def _rule(parts: tuple[str, str, str, str], widths: list[int]) -> str:
    left, horizontal, cross, right = parts
    return left + cross.join(horizontal * w for w in widths) + right


def _render_table(
    header: list[str], rows: list[list[str]], justify: list[str], widths: list[int]
) -> list[str]:
    out = [_rule(_TOP, widths)]
    all_rows = [header, *rows]
    for index, row in enumerate(all_rows):
        cells = [
            _wrap(text, max(w - 2, 0), j, "ellipsis")
            for text, w, j in zip(row, widths, justify, strict=True)
        ]
        height = max(len(c) for c in cells)
        blank = [" " * max(w - 2, 0) for w in widths]
        if index == 0:  # header cells are bottom-aligned, others top-aligned
            cells = [[b] * (height - len(c)) + c for c, b in zip(cells, blank, strict=True)]
        else:
            cells = [c + [b] * (height - len(c)) for c, b in zip(cells, blank, strict=True)]
        vertical = _HEAD_VERTICAL if index == 0 else _VERTICAL
        for line_no in range(height):
            padded = [
                f" {c[line_no]} " if w >= 2 else "" for c, w in zip(cells, widths, strict=True)
            ]
            out.append(vertical + vertical.join(padded) + vertical)
        if index == 0:
            out.append(_rule(_HEAD_ROW, widths))
        elif index < len(all_rows) - 1:
            out.append(_rule(_ROW, widths))
    out.append(_rule(_BOTTOM, widths))
    return out


def _console_width() -> int:
    """The width rich gives a non-Jupyter console: a std stream's terminal size, $COLUMNS, 80."""
    width = None
    for fd in (0, 1, 2):
        try:
            width = os.get_terminal_size(fd).columns
            break
        except (AttributeError, ValueError, OSError):
            pass
    columns = os.environ.get("COLUMNS")
    if columns is not None and columns.isdigit():
        width = int(columns)
    return width or 80


# --------------------------------------------------------------------------------------------
# The summary itself.


def _format_shape(shape: Any) -> str:
    if (
        isinstance(shape, (list, tuple))
        and shape
        and all(isinstance(s, (list, tuple)) for s in shape)
    ):
        return str([_format_shape(s) for s in shape]).replace("'", "")
    return "(" + ", ".join(str(d) for d in shape) + ")"


def _layer_shape(layer: Any) -> str:
    if not getattr(layer, "built", False):
        return "?"
    try:
        shape = layer.output_shape
    except Exception:  # an unbuilt or shape-less layer
        return "?"
    if shape is None:
        return "?"
    return _format_shape(tuple(shape) if isinstance(shape, list) else shape)


def _layer_params(layer: Any) -> str:
    if not hasattr(layer, "built"):
        return "0"
    if not layer.built:
        return "0 (unbuilt)"
    return f"{layer.count_params():,}"


def _layer_range(layers: Sequence[Any], layer_range: Sequence[str] | None) -> tuple[int, int]:
    if layer_range is None:
        return 0, len(layers)
    if len(layer_range) != 2:
        raise ValueError(
            "layer_range must be a list or tuple of length 2. Received: "
            f"layer_range = {layer_range} of length {len(layer_range)}"
        )
    if not isinstance(layer_range[0], str) or not isinstance(layer_range[1], str):
        raise ValueError(f"layer_range should contain string type only. Received: {layer_range}")
    lower = [i for i, lay in enumerate(layers) if re.match(layer_range[0], lay.name)]
    upper = [i for i, lay in enumerate(layers) if re.match(layer_range[1], lay.name)]
    if not lower or not upper:
        raise ValueError(
            f"Passed layer_names do not match the layer names in the model. Received: {layer_range}"
        )
    if min(lower) > max(upper):
        return min(upper), max(lower) + 1
    return min(lower), max(upper) + 1


def summary_text(
    model: Any,
    line_length: int | None = None,
    positions: Sequence[float] | None = None,
    expand_nested: bool = False,
    show_trainable: bool = False,
    layer_range: Sequence[str] | None = None,
) -> str:
    """Return the text :func:`print_summary` prints (lines joined with ``\\n``, final ``\\n``)."""
    header = ["Layer (type)", "Output Shape", "Param #"]
    justify = ["left", "left", "right"]
    default_line_length = 88
    positions = list(positions or [0.45, 0.80, 1.0])
    if show_trainable:
        default_line_length += 12
        positions = [p * 0.90 for p in positions] + [1.0]
        header.append("Trainable")
        justify.append("center")
    default_line_length = min(default_line_length, shutil.get_terminal_size().columns - 4)
    line_length = line_length or default_line_length

    column_widths, current = [], 0
    for pos in positions:
        width = int(pos * line_length) - current
        if width < 4:
            raise ValueError("Insufficient console width to print summary.")
        column_widths.append(width)
        current += width

    def layer_rows(layer: Any, level: int = 0) -> list[list[str]]:
        prefix = "   " * level + "└ " if level else ""
        fields = [
            f"{prefix}{layer.name} ({type(layer).__name__})",
            _layer_shape(layer),
            _layer_params(layer),
        ]
        if show_trainable:
            if len(getattr(layer, "weights", None) or ()) > 0:
                fields.append("Y" if getattr(layer, "trainable", True) else "N")
            else:
                fields.append("-")
        rows = [fields]
        if expand_nested and getattr(layer, "layers", None):
            for sub in layer.layers:
                rows.extend(layer_rows(sub, level + 1))
        return rows

    layers = list(model.layers)
    lo, hi = _layer_range(layers, layer_range)
    rows = [row for layer in layers[lo:hi] for row in layer_rows(layer)]

    trainable = list(getattr(model, "trainable_weights", None) or [])
    non_trainable = list(getattr(model, "non_trainable_weights", None) or [])
    optimizer = getattr(model, "optimizer", None)
    optimizer_built = bool(
        getattr(model, "compiled", True)
        and optimizer is not None
        and getattr(optimizer, "built", False)
    )
    opt_vars = list(optimizer.variables) if optimizer_built else []

    counts = [count_params(trainable), count_params(non_trainable), count_params(opt_vars)]
    sizes = [weight_memory_size(trainable), weight_memory_size(non_trainable)]
    sizes.append(weight_memory_size(opt_vars) if optimizer_built else 0)

    table = _render_table(header, rows, justify, _fit_widths(column_widths, line_length))
    console_width = _console_width()
    texts = [f'Model: "{model.name}"']
    totals = [
        (" Total params: ", sum(counts), sum(sizes)),
        (" Trainable params: ", counts[0], sizes[0]),
        (" Non-trainable params: ", counts[1], sizes[1]),
    ]
    if optimizer_built:
        totals.append((" Optimizer params: ", counts[2], sizes[2]))
    footer = [f"{label}{n:,} ({readable_memory_size(size)})" for label, n, size in totals]

    # rich wraps free text to the console width and crops wider lines (the table) to it.
    lines = _wrap(texts[0], console_width, "default", "fold")
    lines += [_crop(line, console_width) for line in table]
    for text in footer:
        lines += _wrap(text, console_width, "default", "fold")
    return "".join(line + "\n" for line in lines)


def print_summary(
    model: Any,
    line_length: int | None = None,
    positions: Sequence[float] | None = None,
    print_fn: Callable[[str], Any] | None = None,
    expand_nested: bool = False,
    show_trainable: bool = False,
    layer_range: Sequence[str] | None = None,
) -> None:
    """Print a Keras 3 style summary of a sequential ``model``.

    Args:
        model: A model with the duck-typed interface described in this module's docstring.
        line_length: Total width of the table; default ``min(88, terminal columns - 4)``
            (+12 with ``show_trainable``).
        positions: Right edges of the columns, as fractions of ``line_length``; default
            ``[0.45, 0.80, 1.0]``.
        print_fn: Called once with the whole summary (a string ending in ``\\n``), as Keras 3
            does when it captures its ``rich`` output; default: write to ``sys.stdout``.
        expand_nested: Also list the layers of nested models (objects with ``.layers``).
        show_trainable: Add a ``Trainable`` column (``Y``/``N``/``-``).
        layer_range: ``[first, last]`` layer-name regexes bounding the listed layers.

    Raises:
        ValueError: if a column would be narrower than 4 characters, or ``layer_range`` is
            invalid.
    """
    text = summary_text(
        model,
        line_length=line_length,
        positions=positions,
        expand_nested=expand_nested,
        show_trainable=show_trainable,
        layer_range=layer_range,
    )
    if print_fn is not None:
        print_fn(text)
    else:
        sys.stdout.write(text)
        sys.stdout.flush()
