"""Plots drawn on the server as inline SVG: no script, crisp at any zoom, and readable by screen
readers (each chart has a title and description, and every bar a tooltip with its numbers)."""

from __future__ import annotations

from .layout import esc


def histogram_svg(counts: list[int], title: str, desc: str, svg_id: str) -> str:
    """A bar chart of score bands 0-10 % ... 90-100 %; bars scale to the largest band."""
    width, height, pad, axis = 320, 140, 6, 18
    n = len(counts) or 1
    peak = max(counts) if counts and max(counts) > 0 else 1
    bar_w = (width - 2 * pad) / n
    bars, labels = [], []
    for i, count in enumerate(counts):
        h = (height - axis - pad) * count / peak
        x = pad + i * bar_w
        y = height - axis - h
        band = f"{i * 100 // n}–{(i + 1) * 100 // n} %"
        bars.append(
            f'<rect x="{x + 1:.1f}" y="{y:.1f}" width="{bar_w - 2:.1f}" height="{h:.1f}" '
            f'fill="#3b6fb6" data-band="{i}" data-count="{count}">'
            f"<title>{esc(band)}: {count}</title></rect>"
        )
        if count:
            labels.append(
                f'<text x="{x + bar_w / 2:.1f}" y="{max(y - 2, 10):.1f}" font-size="10" '
                f'text-anchor="middle">{count}</text>'
            )
    ticks = "".join(
        f'<text x="{pad + i * bar_w:.1f}" y="{height - 4}" font-size="9">{i * 100 // n}</text>'
        for i in range(0, n, 2)
    )
    return (
        f'<svg id="{esc(svg_id)}" role="img" aria-labelledby="{esc(svg_id)}-t {esc(svg_id)}-d" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'xmlns="http://www.w3.org/2000/svg"><title id="{esc(svg_id)}-t">{esc(title)}</title>'
        f'<desc id="{esc(svg_id)}-d">{esc(desc)}</desc>'
        f'<line x1="{pad}" y1="{height - axis}" x2="{width - pad}" y2="{height - axis}" '
        f'stroke="#555"/>{"".join(bars)}{"".join(labels)}{ticks}</svg>'
    )


def heat_style(rate: float) -> str:
    """A background from white (never fails) to deep red (always fails), with readable text."""
    r, g, b = 255, int(255 - 180 * rate), int(255 - 180 * rate)
    color = "#fff" if rate > 0.6 else "#1b1b1b"
    return f"background:rgb({r},{g},{b});color:{color}"
