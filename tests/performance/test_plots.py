"""The SVG figures: well-formed, escaped, and drawn where the numbers say."""

import xml.etree.ElementTree as ET
from datetime import date

from clinic_ai.performance import metrics, plots
from tests.performance.conftest import S, Y

NS = {"svg": "http://www.w3.org/2000/svg"}


def _parse(svg: str):
    return ET.fromstring(svg)


def test_roc_svg_draws_the_curve_the_diagonal_and_the_auroc():
    points = metrics.roc_points(Y, S)
    root = _parse(plots.roc_svg(points, auroc=metrics.auroc(Y, S), operating_point=(0.25, 0.5)))
    assert root.get("id") == "roc-curve"
    curve = root.find("svg:polyline", NS).get("points").split()
    assert len(curve) == len(points) == 8
    texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert "AUROC 0.719" in texts and "Sensitivity (true positive rate)" in texts
    dashed = [line for line in root.iter("{http://www.w3.org/2000/svg}line") if line.get("stroke-dasharray")]
    assert len(dashed) == 1  # the chance diagonal
    assert root.find("svg:circle", NS) is not None  # the operating point
    assert "style=" not in plots.roc_svg(points, auroc=0.5)  # the CSP allows no inline styles


def test_confusion_svg_shows_each_count_and_escapes_class_names():
    svg = plots.confusion_svg({"tp": 2, "fp": 1, "tn": 3, "fn": 2}, positive="<script>x</script>", negative="a&b")
    root = _parse(svg)
    texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert ["3", "1", "2", "2"] == [t for t in texts if t and t.isdigit()]
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "a&amp;b" in svg
    assert "75% of row" in texts and "50% of row" in texts


def test_calibration_and_agreement_svgs_parse_with_and_without_data():
    _parse(plots.calibration_svg(metrics.calibration_bins(Y, S, bins=5)))
    assert "No cases yet" in plots.calibration_svg(metrics.calibration_bins([], [], bins=5))
    _, rows = metrics.agreement_over_time([(date(2026, 3, d), d % 2 == 0) for d in range(1, 20)])
    root = _parse(plots.agreement_svg(rows, period="day"))
    assert len(root.findall("svg:circle", NS)) == 19
    assert "No reviews yet" in plots.agreement_svg([], period="week")
