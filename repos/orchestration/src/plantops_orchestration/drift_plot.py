"""The drift report's plot: a small SVG written by hand (no plotting library beside Airflow).

Two panels, each comparing the reference photos (the champion's validation photos) with
the predictions of the window: the novelty score, with the model's threshold, and the
confidence. Bars are fractions of each side, so sets of different sizes compare.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

WIDTH, PANEL_H, MARGIN, BINS = 640, 220, 40, 20
REFERENCE_COLOUR, WINDOW_COLOUR = "#4c78a8", "#e45756"


def _fractions(values: Sequence[float], low: float, high: float) -> list[float]:
    counts = [0] * BINS
    span = (high - low) or 1.0
    for v in values:
        counts[min(BINS - 1, max(0, int((v - low) / span * BINS)))] += 1
    return [c / len(values) for c in counts] if values else [0.0] * BINS


def _panel(
    top: int,
    title: str,
    reference: Sequence[float],
    window: Sequence[float],
    marker: float | None,
) -> list[str]:
    parts = [f'<text x="{MARGIN}" y="{top + 16}" font-size="13">{escape(title)}</text>']
    if not reference or not window:
        parts.append(f'<text x="{MARGIN}" y="{top + 60}" font-size="12">no data to compare</text>')
        return parts
    values = [*reference, *window, *([marker] if marker is not None else [])]
    low, high = min(values), max(values)
    if high == low:
        high = low + 1.0
    plot_w, plot_h, base = WIDTH - 2 * MARGIN, PANEL_H - 60, top + PANEL_H - 24
    ref, win = _fractions(reference, low, high), _fractions(window, low, high)
    tallest = max(max(ref), max(win)) or 1.0
    bar = plot_w / BINS / 2
    for i in range(BINS):
        x = MARGIN + i * plot_w / BINS
        for offset, share, colour in ((0, ref[i], REFERENCE_COLOUR), (bar, win[i], WINDOW_COLOUR)):
            h = share / tallest * plot_h
            parts.append(
                f'<rect x="{x + offset:.1f}" y="{base - h:.1f}" width="{bar:.1f}" '
                f'height="{h:.1f}" fill="{colour}"/>'
            )
    if marker is not None:
        mx = MARGIN + (marker - low) / (high - low) * plot_w
        parts.append(
            f'<line x1="{mx:.1f}" y1="{base - plot_h}" x2="{mx:.1f}" y2="{base}" '
            'stroke="black" stroke-dasharray="4 3"/>'
            f'<text x="{mx + 3:.1f}" y="{base - plot_h + 10}" font-size="11">threshold</text>'
        )
    parts.append(
        f'<text x="{MARGIN}" y="{base + 16}" font-size="11">{low:.3g}</text>'
        f'<text x="{WIDTH - MARGIN}" y="{base + 16}" font-size="11" '
        f'text-anchor="end">{high:.3g}</text>'
    )
    return parts


def drift_svg(
    title: str,
    reference_novelty: Sequence[float],
    window_novelty: Sequence[float],
    threshold: float | None,
    reference_confidence: Sequence[float],
    window_confidence: Sequence[float],
) -> str:
    height = 2 * PANEL_H + 50
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        'font-family="sans-serif">',
        '<rect width="100%" height="100%" fill="white"/>',
        f'<text x="{MARGIN}" y="20" font-size="15">{escape(title)}</text>',
        f'<rect x="{WIDTH - 250}" y="10" width="10" height="10" fill="{REFERENCE_COLOUR}"/>'
        f'<text x="{WIDTH - 235}" y="19" font-size="11">reference (validation photos)</text>',
        f'<rect x="{WIDTH - 250}" y="26" width="10" height="10" fill="{WINDOW_COLOUR}"/>'
        f'<text x="{WIDTH - 235}" y="35" font-size="11">predictions in the window</text>',
    ]
    parts += _panel(40, "novelty score", reference_novelty, window_novelty, threshold)
    parts += _panel(40 + PANEL_H, "confidence", reference_confidence, window_confidence, None)
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
