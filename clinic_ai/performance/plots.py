"""The dashboard's figures as inline SVG, drawn on the server: no JavaScript, no CDN, nothing to
vendor. Pure Python (no Django): each function takes the numbers from `metrics` and returns one
``<svg>`` string. Every text is escaped here; colours are presentation attributes, never ``style``
(the CSP allows no inline styles).
"""

from __future__ import annotations

from html import escape

BLUE = "#0d6efd"
GREY = "#6c757d"
LIGHT = "#dee2e6"
DARK = "#212529"
ORANGE = "#fd7e14"


def _num(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".") if value != int(value) else str(int(value))


class Svg:
    """A tiny SVG writer: shapes in pixel coordinates, a title for screen readers."""

    def __init__(self, width: int, height: int, *, title: str, element_id: str = ""):
        self.width, self.height = width, height
        self.title = title
        self.element_id = element_id
        self.parts: list[str] = []

    def line(self, x1, y1, x2, y2, *, stroke=DARK, width=1.0, dash: str = "") -> None:
        extra = f' stroke-dasharray="{dash}"' if dash else ""
        self.parts.append(
            f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{stroke}" '
            f'stroke-width="{width}"{extra}/>'
        )

    def polyline(self, points, *, stroke=BLUE, width=2.0) -> None:
        coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        self.parts.append(
            f'<polyline points="{coords}" fill="none" stroke="{stroke}" stroke-width="{width}" '
            'stroke-linejoin="round"/>'
        )

    def rect(self, x, y, w, h, *, fill="none", stroke="", tooltip: str = "") -> None:
        edge = f' stroke="{stroke}"' if stroke else ""
        body = f"<title>{escape(tooltip)}</title>" if tooltip else ""
        self.parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" fill="{fill}"{edge}>{body}</rect>'
        )

    def circle(self, cx, cy, r, *, fill=BLUE, tooltip: str = "") -> None:
        body = f"<title>{escape(tooltip)}</title>" if tooltip else ""
        self.parts.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="{r:.1f}" fill="{fill}">{body}</circle>')

    def text(self, x, y, content, *, size=12, anchor="middle", fill=DARK, bold=False, rotate=False) -> None:
        attrs = f'x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" fill="{fill}"'
        attrs += ' font-family="system-ui, sans-serif"'
        if bold:
            attrs += ' font-weight="600"'
        if rotate:
            attrs += f' transform="rotate(-90 {x:.1f} {y:.1f})"'
        self.parts.append(f"<text {attrs}>{escape(str(content))}</text>")

    def render(self) -> str:
        ident = f' id="{escape(self.element_id)}"' if self.element_id else ""
        return (
            f'<svg xmlns="http://www.w3.org/2000/svg"{ident} viewBox="0 0 {self.width} {self.height}" '
            f'width="100%" role="img"><title>{escape(self.title)}</title>'
            f'<rect width="{self.width}" height="{self.height}" fill="#ffffff"/>' + "".join(self.parts) + "</svg>"
        )


class _Axes:
    """A unit square (or [0, n] × [0, 1]) mapped to a plotting area, with grid, ticks and titles."""

    def __init__(self, svg: Svg, *, left=56, top=16, right=16, bottom=48, x_max=1.0):
        self.svg = svg
        self.x0, self.y0 = left, top
        self.w, self.h = svg.width - left - right, svg.height - top - bottom
        self.x_max = x_max

    def px(self, x: float, y: float) -> tuple[float, float]:
        return self.x0 + x / self.x_max * self.w, self.y0 + (1.0 - y) * self.h

    def frame(self, *, x_title: str, y_title: str, x_ticks=True) -> None:
        svg = self.svg
        for i in range(6):
            v = i / 5
            _, y = self.px(0, v)
            svg.line(self.x0, y, self.x0 + self.w, y, stroke=LIGHT)
            svg.text(self.x0 - 6, y + 4, _num(v), size=12, anchor="end", fill=GREY)
            if x_ticks:
                x, _ = self.px(v * self.x_max, 0)
                svg.line(x, self.y0, x, self.y0 + self.h, stroke=LIGHT)
                svg.text(x, self.y0 + self.h + 16, _num(v), size=12, fill=GREY)
        svg.rect(self.x0, self.y0, self.w, self.h, stroke=GREY)
        svg.text(self.x0 + self.w / 2, svg.height - 8, x_title, size=13)
        svg.text(14, self.y0 + self.h / 2, y_title, size=13, rotate=True)


def roc_svg(points: list[dict], *, auroc: float | None, operating_point: tuple[float, float] | None = None) -> str:
    """The ROC curve with the chance diagonal, and the point the threshold gives."""
    svg = Svg(360, 340, title="ROC curve", element_id="roc-curve")
    axes = _Axes(svg)
    axes.frame(x_title="1 − specificity (false positive rate)", y_title="Sensitivity (true positive rate)")
    svg.line(*axes.px(0, 0), *axes.px(1, 1), stroke=GREY, dash="4 4")
    if points:
        svg.polyline([axes.px(p["fpr"], p["tpr"]) for p in points])
    if operating_point is not None:
        fpr, tpr = operating_point
        tip = f"At the threshold: sensitivity {tpr:.2f}, 1 − specificity {fpr:.2f}"
        svg.circle(*axes.px(fpr, tpr), 5, fill=ORANGE, tooltip=tip)
    if auroc is not None:
        x, y = axes.px(0.97, 0.05)
        svg.text(x, y, f"AUROC {auroc:.3f}", size=13, anchor="end", bold=True)
    else:
        x, y = axes.px(0.5, 0.5)
        svg.text(x, y - 12, "Needs cases of both classes", size=13, fill=GREY)
    return svg.render()


def calibration_svg(bins: list[dict]) -> str:
    """The reliability curve: observed fraction against mean predicted probability per bin; dot area
    follows the bin's count; the diagonal is perfect calibration."""
    svg = Svg(360, 340, title="Calibration plot", element_id="calibration-plot")
    axes = _Axes(svg)
    axes.frame(x_title="Mean predicted probability", y_title="Observed fraction positive")
    svg.line(*axes.px(0, 0), *axes.px(1, 1), stroke=GREY, dash="4 4")
    filled = [b for b in bins if b["count"]]
    if filled:
        largest = max(b["count"] for b in filled)
        svg.polyline([axes.px(b["mean_predicted"], b["observed"]) for b in filled], width=1.5)
        for b in filled:
            radius = 3 + 5 * (b["count"] / largest) ** 0.5
            svg.circle(
                *axes.px(b["mean_predicted"], b["observed"]),
                radius,
                tooltip=f"{_num(b['lower'])}–{_num(b['upper'])}: {b['count']} cases, "
                f"predicted {b['mean_predicted']:.2f}, observed {b['observed']:.2f}",
            )
    else:
        x, y = axes.px(0.5, 0.5)
        svg.text(x, y - 12, "No cases yet", size=13, fill=GREY)
    return svg.render()


def confusion_svg(counts: dict[str, int], *, positive: str, negative: str) -> str:
    """The 2 × 2 table: rows are the reference standard, columns the model's call; each cell's shade
    is its share of its row."""
    svg = Svg(360, 250, title="Confusion matrix", element_id="confusion-matrix")
    left, top, cell = 130, 52, 100
    table = [
        (negative, [(counts["tn"], "true negative"), (counts["fp"], "false positive")]),
        (positive, [(counts["fn"], "false negative"), (counts["tp"], "true positive")]),
    ]
    svg.text(left + cell, 16, "Model's call", size=13, bold=True)
    svg.text(left + cell / 2, 40, negative[:18], size=12)
    svg.text(left + 1.5 * cell, 40, positive[:18], size=12)
    svg.text(14, top + cell, "Reference standard", size=13, bold=True, rotate=True)
    for row, (truth, cells) in enumerate(table):
        svg.text(left - 8, top + row * cell + cell / 2 + 4, truth[:16], size=12, anchor="end")
        row_total = sum(count for count, _ in cells)
        for col, (count, name) in enumerate(cells):
            share = count / row_total if row_total else 0.0
            x, y = left + col * cell, top + row * cell
            svg.rect(x, y, cell, cell, fill=_blend(share), stroke="#ffffff", tooltip=f"{name}: {count}")
            ink = "#ffffff" if share > 0.55 else DARK
            svg.text(x + cell / 2, y + cell / 2, count, size=20, fill=ink, bold=True)
            svg.text(x + cell / 2, y + cell / 2 + 20, f"{share:.0%} of row" if row_total else "–", size=11, fill=ink)
    return svg.render()


def _blend(share: float) -> str:
    """White to the theme's blue."""
    lo, hi = (248, 249, 250), (13, 110, 253)
    r, g, b = (round(a + (c - a) * share) for a, c in zip(lo, hi, strict=True))
    return f"#{r:02x}{g:02x}{b:02x}"


def agreement_svg(rows: list[dict], *, period: str) -> str:
    """Per day or week, the fraction of radiologists' decisions that agreed with the model's call."""
    svg = Svg(720, 280, title="Agreement with radiologists over time", element_id="agreement-plot")
    n = len(rows)
    axes = _Axes(svg, left=56, right=24, bottom=64, x_max=max(n, 1))
    axes.frame(x_title=f"{'Day' if period == 'day' else 'Week starting'}", y_title="Agreed", x_ticks=False)
    if not rows:
        x, y = axes.px(0.5, 0.5)
        svg.text(x, y, "No reviews yet", size=13, fill=GREY)
        return svg.render()
    positions = [axes.px(i + 0.5, r["fraction"]) for i, r in enumerate(rows)]
    if n > 1:
        svg.polyline(positions)
    step = max(1, n // 10)  # at most about ten date labels, so they stay readable
    for i, (row, (x, y)) in enumerate(zip(rows, positions, strict=True)):
        svg.circle(x, y, 4, tooltip=f"{row['start'].isoformat()}: {row['agreed']} of {row['total']} agreed")
        if i % step == 0:
            svg.text(x, axes.y0 + axes.h + 16, row["start"].strftime("%d %b"), size=11, fill=GREY)
            svg.text(x, axes.y0 + axes.h + 30, f"n={row['total']}", size=10, fill=GREY)
    return svg.render()
