import csv
import io
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import render
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET

from clinic_ai.labelling.models import UNGRADABLE
from clinic_ai.labelling.selectors import labelling_settings_for
from clinic_ai.performance import plots, selectors, services
from clinic_ai.performance.selectors import (
    DECISIONS,
    REFERENCE_WITH_REVIEWS,
    REFERENCE_WITHOUT_REVIEWS,
    REFERENCES,
    TRUTH_SOURCES,
    get_performance_project_for_user,
)

PAGE_SIZE = 50


def _text(request, name: str, limit: int = 200) -> str:
    """A query parameter as plain text; anything odd simply matches no choice."""
    return request.GET.get(name, "")[:limit]


def _choices(request, project):
    """The ensemble, member and class the page is about: what was asked when it is one of the
    project's, else the defaults (the active ensemble, the ensemble itself, the positive class)."""
    ensembles = selectors.ensembles_for_project(project)
    ensemble = selectors.pick_ensemble(ensembles, _text(request, "ensemble"))
    members = selectors.member_names(ensemble)
    member = _text(request, "member")
    if member not in {name for name, _ in members}:
        member = ""
    classes = selectors.positive_classes(project)
    positive = _text(request, "cls")
    if positive not in classes:
        positive = classes[0] if classes else ""
    return ensembles, ensemble, members, member, classes, positive


def _reference(request) -> str:
    """Whether the radiologists' reviews of the AI's results count as the reference standard."""
    reference = _text(request, "reference")
    return reference if reference in REFERENCES else REFERENCE_WITH_REVIEWS


def _cell(value):
    """A text cell a spreadsheet would run as a formula (a class or model name an admin typed) is
    quoted; our numbers are never negative, so no figure is touched."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _csv_response(rows: list[list], filename: str) -> HttpResponse:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerows([_cell(v) for v in row] for row in rows)
    response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _pct(num: int, den: int) -> tuple[str, str]:
    return (f"{num / den:.1%}", f"{num} of {den}") if den else ("–", "undefined: no cases")


def _summary(data: dict) -> list[tuple[str, str, str, str]]:
    """(id, name, value, detail) of the figures shown as numbers above the plots."""
    f = data["figures"]
    c = f["confusion"]
    ci = f["auroc_ci"]
    auroc_detail = "needs cases of both classes"
    if ci is not None:
        auroc_detail = f"95% CI {ci['low']:.3f}–{ci['high']:.3f} ({ci['resamples']} bootstrap resamples)"
    return [
        (
            "cases-used",
            "Cases used",
            str(data["used"]),
            f"{data['ungradable']} ungradable excluded, {data['without_truth']} without truth"
            + (f", {data['unscored']} without a usable probability" if data["unscored"] else ""),
        ),
        ("auroc", "AUROC", "–" if f["auroc"] is None else f"{f['auroc']:.3f}", auroc_detail),
        ("sensitivity", "Sensitivity", *_pct(c["tp"], c["tp"] + c["fn"])),
        ("specificity", "Specificity", *_pct(c["tn"], c["tn"] + c["fp"])),
        ("ppv", "PPV", *_pct(c["tp"], c["tp"] + c["fp"])),
        ("npv", "NPV", *_pct(c["tn"], c["tn"] + c["fn"])),
        ("ece", "ECE", "–" if f["ece"] is None else f"{f['ece']:.3f}", f"{len(f['calibration'])} equal-width bins"),
    ]


def _negative_name(project, positive: str) -> str:
    names = list(project.class_names)
    if len(names) == 2 and positive == names[1]:
        return names[0]
    return f"not {positive}"


@login_required
@require_GET
def dashboard(request, project_id):
    """ROC, AUROC with its bootstrap interval, confusion matrix, calibration, label distribution and
    agreement with radiologists over time, for one ensemble version or one of its members."""
    project = get_performance_project_for_user(request.user, project_id)
    ensembles, ensemble, members, member, classes, positive = _choices(request, project)
    reference = _reference(request)
    context = {
        "project": project,
        "ensembles": ensembles,
        "ensemble": ensemble,
        "members": members,
        "member": member,
        "member_label": dict(members).get(member, ""),
        "classes": classes,
        "positive": positive,
        "negative": _negative_name(project, positive),
        "truth_sources": TRUTH_SOURCES,
        "reference": reference,
        "references": REFERENCES.items(),
        "reviews_are_truth": reference != REFERENCE_WITHOUT_REVIEWS,
        "readers_see_ai_result": labelling_settings_for(project).readers_see_ai_result,
        "query": urlencode(
            {"ensemble": ensemble.pk if ensemble else "", "member": member, "cls": positive, "reference": reference}
        ),
        "query_without_reviews": urlencode(
            {
                "ensemble": ensemble.pk if ensemble else "",
                "member": member,
                "cls": positive,
                "reference": REFERENCE_WITHOUT_REVIEWS,
            }
        ),
    }
    if ensemble is not None and positive:
        data = selectors.performance_dashboard(project, ensemble, member=member, positive=positive, reference=reference)
        figures = data["figures"]
        rates = figures["rates"]
        operating = None
        if rates["sensitivity"] is not None and rates["specificity"] is not None:
            operating = (1.0 - rates["specificity"], rates["sensitivity"])
        # The SVG builder escapes every text it draws; nothing else goes into these strings.
        context.update(
            data=data,
            figures=figures,
            summary=_summary(data),
            rates=rates,
            truth_source_counts=[(s, data["truth_sources"][s]) for s in TRUTH_SOURCES],
            roc_svg=mark_safe(plots.roc_svg(figures["roc"], auroc=figures["auroc"], operating_point=operating)),
            calibration_svg=mark_safe(plots.calibration_svg(figures["calibration"])),
            confusion_svg=mark_safe(
                plots.confusion_svg(figures["confusion"], positive=positive, negative=context["negative"])
            ),
            agreement_svg=mark_safe(plots.agreement_svg(data["agreement"], period=data["period"])),
            distribution=[
                (name, data["truth_distribution"].get(name, 0), data["call_distribution"].get(name, 0))
                for name in sorted(
                    set(data["truth_distribution"]) | set(data["call_distribution"]), key=lambda n: (n == UNGRADABLE, n)
                )
            ],
        )
    return render(request, "performance/dashboard.html", context)


@login_required
@require_GET
def dashboard_csv(request, project_id):
    """The dashboard's figures as one long table: figure, label, x, y, count."""
    project = get_performance_project_for_user(request.user, project_id)
    _, ensemble, _, member, _, positive = _choices(request, project)
    reference = _reference(request)
    rows: list[list] = [["figure", "label", "x", "y", "count"]]
    if ensemble is not None and positive:
        data = selectors.performance_dashboard(project, ensemble, member=member, positive=positive, reference=reference)
        f = data["figures"]
        ci = f["auroc_ci"] or {}
        summary = {
            "ensemble": ensemble.label,
            "member": member or "(ensemble)",
            "positive_class": positive,
            "reference_standard": reference,
            "threshold": f["threshold"],
            "results": data["results"],
            "cases_used": data["used"],
            "ungradable_excluded": data["ungradable"],
            "without_truth": data["without_truth"],
            "without_usable_probability": data["unscored"],
            "auroc": f["auroc"],
            "auroc_ci_low": ci.get("low"),
            "auroc_ci_high": ci.get("high"),
            "bootstrap_resamples": ci.get("resamples"),
            "bootstrap_seed": ci.get("seed"),
            "ece": f["ece"],
            **f["rates"],
        }
        rows += [["summary", key, "", "" if value is None else value, ""] for key, value in summary.items()]
        rows += [
            ["roc", "" if p["threshold"] is None else round(p["threshold"], 6), round(p["fpr"], 6), round(p["tpr"], 6)]
            + [""]
            for p in f["roc"]
        ]
        rows += [["confusion", key, "", "", value] for key, value in f["confusion"].items()]
        rows += [
            [
                "calibration",
                f"{b['lower']:.1f}-{b['upper']:.1f}",
                "" if b["mean_predicted"] is None else round(b["mean_predicted"], 6),
                "" if b["observed"] is None else round(b["observed"], 6),
                b["count"],
            ]
            for b in f["calibration"]
        ]
        rows += [["truth_distribution", k, "", "", v] for k, v in data["truth_distribution"].items()]
        rows += [["call_distribution", k, "", "", v] for k, v in data["call_distribution"].items()]
        rows += [["truth_source", s, "", "", data["truth_sources"][s]] for s in TRUTH_SOURCES]
        rows += [
            [f"agreement_{data['period']}", r["start"].isoformat(), "", round(r["fraction"], 6), r["total"]]
            for r in data["agreement"]
        ]
        services.performance_export_record(
            actor=request.user, project=project, ensemble=ensemble, kind="figures", rows=len(rows) - 1
        )
    return _csv_response(rows, f"performance-{project.pk}.csv")


def _filtered_cases(request, project):
    ensembles, ensemble, members, *_ = _choices(request, project)
    decision = _text(request, "decision")
    decision = decision if decision in DECISIONS else ""
    disagreement = _text(request, "disagreement")
    disagreement = disagreement if disagreement in ("yes", "no") else ""
    reference = _reference(request)
    cases = []
    if ensemble is not None:
        labels = selectors.project_labels(project, reference=reference)
        cases = selectors.filter_cases(
            selectors.ensemble_cases(project, ensemble, labels), decision=decision, disagreement=disagreement
        )
    return ensembles, ensemble, members, decision, disagreement, reference, cases


@login_required
@require_GET
def prediction_list(request, project_id):
    """Every finished result of an ensemble version with the radiologist's decision and the truth,
    filtered, 50 to a page."""
    project = get_performance_project_for_user(request.user, project_id)
    ensembles, ensemble, _, decision, disagreement, reference, cases = _filtered_cases(request, project)
    page = Paginator(cases, PAGE_SIZE).get_page(_text(request, "page", 20))
    filters = {
        "ensemble": ensemble.pk if ensemble else "",
        "decision": decision,
        "disagreement": disagreement,
        "reference": reference,
    }
    positive = (selectors.positive_classes(project) or [""])[0]
    return render(
        request,
        "performance/prediction_list.html",
        {
            "project": project,
            "ensembles": ensembles,
            "ensemble": ensemble,
            "decision": decision,
            "disagreement": disagreement,
            "decisions": DECISIONS,
            "reference": reference,
            "references": REFERENCES.items(),
            "page": page,
            "rows": [(case, case.probabilities.get(positive)) for case in page.object_list],
            "positive": positive,
            "query": urlencode(filters),
        },
    )


@login_required
@require_GET
def prediction_csv(request, project_id):
    """The filtered predictions, every page, with pseudonymised identifiers only: our random image and
    study ids (images carry no patient pseudonym: it lives in the admin-only link table)."""
    project = get_performance_project_for_user(request.user, project_id)
    _, ensemble, members, decision, disagreement, _, cases = _filtered_cases(request, project)
    classes = list(project.class_names)
    members = [name for name, _ in members]
    header = ["image_id", "study_id", "ensemble", "finished_at", "ai_labels"]
    header += [f"p_{c}" for c in classes]
    header += [f"member_{m}_p_{c}" for m in members for c in classes]
    header += ["truth", "truth_source", "decision", "review_labels", "disagreement"]
    rows: list[list] = [header]
    for case in cases:
        row = [
            str(case.image_id),
            str(case.study_id),
            ensemble.label,
            case.finished_at.isoformat() if case.finished_at else "",
            ";".join(case.labels),
        ]
        row += [_p(case.probabilities.get(c)) for c in classes]
        for m in members:
            probabilities = case.member_probabilities(m) or {}
            row += [_p(probabilities.get(c)) for c in classes]
        row += [
            ";".join(case.truth.values) if case.truth else "",
            case.truth.source if case.truth else "",
            case.decision,
            ";".join(case.review.values) if case.review else "",
            {True: "yes", False: "no", None: ""}[case.disagreement],
        ]
        rows.append(row)
    if ensemble is not None:
        services.performance_export_record(
            actor=request.user, project=project, ensemble=ensemble, kind="predictions", rows=len(cases)
        )
    return _csv_response(rows, f"predictions-{project.pk}.csv")


def _p(value) -> str:
    try:
        return f"{float(value):.6f}"
    except (TypeError, ValueError):
        return ""
