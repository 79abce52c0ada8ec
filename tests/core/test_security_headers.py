"""Every page, as every demo role and as a visitor, carries the CSP and the usual security headers."""

import io
from pathlib import Path

import pytest
from django.core.management import call_command
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from clinic_ai.accounts.models import Project, User
from clinic_ai.deidentification.models import DeidProfile
from clinic_ai.studies.models import Image, ImageStatus
from tests.conftest import run_pipeline_inline, upload_through_api
from tests.deidentification.synthetic import ultrasound_bytes

pytestmark = pytest.mark.django_db

ROLES = ("demo-admin", "demo-radiologist", "demo-clinician")
# Endpoints that answer POSTs from page scripts only (JSON or a redirect), with no page of their own.
POST_ONLY = {
    "logout",
    "accounts:member_set",
    "accounts:member_remove",
    "studies:upload_batch_create",
    "studies:upload_file_create",
    "studies:upload_chunk",
    "studies:upload_batch_finish",
    "studies:upload_labels_csv",
    "deidentification:image_mask_preview",
    "deidentification:image_mask_release",
    "inference:image_inference_rerun",
    "inference:project_queue",
    "inference:ensemble_activate",
    "labelling:settings_update",
    "labelling:label_api",
    "labelling:undo_api",
    "labelling:adjudicate",
    "review:decide",
}


def _names(patterns, prefix=""):
    for entry in patterns:
        if isinstance(entry, URLResolver):
            if entry.app_name == "admin":
                continue
            yield from _names(entry.url_patterns, f"{entry.namespace}:" if entry.namespace else prefix)
        elif isinstance(entry, URLPattern) and entry.name:
            yield prefix + entry.name


@pytest.fixture
def site(client):
    """The demo project with a released multi-frame image and a held ultrasound."""
    from pydicom.data import get_testdata_file

    call_command("demo_setup", stdout=io.StringIO())
    project = Project.objects.get()
    client.force_login(User.objects.get(username="demo-radiologist"))
    multiframe = Path(get_testdata_file("emri_small.dcm")).read_bytes()
    batch, _ = upload_through_api(client, project, {"mr.dcm": multiframe, "us.dcm": ultrasound_bytes(seed=7)})
    run_pipeline_inline()
    client.logout()
    released = Image.objects.get(status=ImageStatus.RELEASED)
    held = Image.objects.get(status=ImageStatus.HELD)
    assert released.frames > 1
    membership = project.memberships.first()
    from clinic_ai.inference.models import InferenceResult

    result = InferenceResult.objects.get(image=released)
    return {
        "home": reverse("home"),
        "password_change": reverse("password_change"),
        "password_change_done": reverse("password_change_done"),
        "accounts:project_create": reverse("accounts:project_create"),
        "accounts:project_detail": reverse("accounts:project_detail", args=[project.pk]),
        "accounts:project_update": reverse("accounts:project_update", args=[project.pk]),
        "studies:worklist": reverse("studies:worklist"),
        "studies:study_detail": reverse("studies:study_detail", args=[released.study_id]),
        "studies:image_detail": reverse("studies:image_detail", args=[released.pk]) + "?frame=1",
        "studies:image_preview": reverse("studies:image_preview", args=[released.pk]),
        "studies:image_pixels": reverse("studies:image_pixels", args=[released.pk, 1]),
        "studies:image_pixels (VOI LUT)": reverse("studies:image_pixels", args=[released.pk, 1]) + "?voi=0",
        "studies:image_original": reverse("studies:image_original", args=[held.pk]),
        "studies:upload_create": reverse("studies:upload_create", args=[project.pk]),
        "studies:upload_batch_status": reverse("studies:upload_batch_status", args=[batch["id"]]),
        "deidentification:held_list": reverse("deidentification:held_list"),
        "deidentification:image_mask": reverse("deidentification:image_mask", args=[held.pk]),
        "deidentification:image_mask_source": reverse("deidentification:image_mask_source", args=[held.pk]),
        "deidentification:patient_links": reverse("deidentification:patient_links", args=[project.pk]),
        "deidentification:audit_list": reverse("deidentification:audit_list", args=[project.pk]) + "?page=1",
        "deidentification:audit_export": reverse("deidentification:audit_export", args=[project.pk]),
        "deidentification:image_mask_thumbnail": reverse("deidentification:image_mask_thumbnail", args=[held.pk]),
        "studies:worklist (filtered)": reverse("studies:worklist") + "?patient=ANON&sort=-study_date",
        "deidentification:profile_update": reverse("deidentification:profile_update", args=[project.pk]),
        "inference:image_inference": reverse("inference:image_inference", args=[released.pk]),
        "inference:result_heatmap": reverse("inference:result_heatmap", args=[result.pk, "ensemble"]),
        "inference:registry": reverse("inference:registry", args=[project.pk]),
        "inference:project_progress": reverse("inference:project_progress", args=[project.pk]),
        "labelling:label_home": reverse("labelling:label_home"),
        "labelling:project_labelling": reverse("labelling:project_labelling", args=[project.pk]),
        "labelling:label_queue": reverse("labelling:label_queue", args=[project.pk]),
        "labelling:queue_api": reverse("labelling:queue_api", args=[project.pk]),
        "labelling:adjudication_list": reverse("labelling:adjudication_list", args=[project.pk]),
        "labelling:label_export": reverse("labelling:label_export", args=[project.pk, "csv"]),
        "review:worklist": reverse("review:worklist", args=[project.pk]) + "?state=all",
        "review:review_image": reverse("review:review_image", args=[project.pk, released.pk]),
        "performance:dashboard": reverse("performance:dashboard", args=[project.pk]),
        "performance:dashboard_csv": reverse("performance:dashboard_csv", args=[project.pk]),
        "performance:prediction_list": reverse("performance:prediction_list", args=[project.pk]),
        "performance:prediction_csv": reverse("performance:prediction_csv", args=[project.pk]),
        # Not pages of ours, but served by us all the same:
        "admin:index": reverse("admin:index"),
        "admin:studies_image_changelist": reverse("admin:studies_image_changelist"),
        "admin:studies_image_change": reverse("admin:studies_image_change", args=[released.pk]),
        "admin:deidentification_deidprofile_change": reverse(
            "admin:deidentification_deidprofile_change", args=[DeidProfile.objects.get().pk]
        ),
        "admin:accounts_project_change": reverse("admin:accounts_project_change", args=[project.pk]),
        "admin:core_auditevent_changelist": reverse("admin:core_auditevent_changelist"),
        "static": "/static/js/common.js",
        "not_found": "/no-such-page/",
        "member_remove (GET)": reverse("accounts:member_remove", args=[project.pk, membership.pk]),
    }


def _assert_headers(response, settings, where):
    csp = response.headers.get("Content-Security-Policy", "")
    assert csp == settings.CONTENT_SECURITY_POLICY, where
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "frame-ancestors 'none'" in csp
    assert response.headers.get("X-Content-Type-Options") == "nosniff", where
    assert response.headers.get("Referrer-Policy") == "same-origin", where
    if not where.startswith("static"):  # WhiteNoise answers before the clickjacking middleware; the CSP covers it
        assert response.headers.get("X-Frame-Options") == "DENY", where


def test_every_page_of_ours_is_in_the_list_below():
    ours = set(_names(get_resolver().url_patterns))
    listed = {"login"} | POST_ONLY

    # The fixture's keys, without building the site.
    import inspect

    source = inspect.getsource(site)
    for name in ours - listed:
        assert f'"{name}"' in source, f"{name} is not checked for security headers"


@pytest.mark.parametrize("username", [*ROLES, None])
def test_every_page_carries_the_security_headers(client, site, settings, username):
    if username:
        client.force_login(User.objects.get(username=username))
    statuses = {}
    for name, url in {**site, "login": reverse("login")}.items():
        response = client.get(url)
        statuses[name] = response.status_code
        assert response.status_code < 500, name
        _assert_headers(response, settings, f"{name} as {username}")
    if username == "demo-admin":
        # The admin sees (nearly) everything: the list checked pages, not error pages.
        assert statuses["studies:image_detail"] == statuses["deidentification:image_mask"] == 200
        assert statuses["admin:studies_image_change"] == 200
        assert statuses["review:worklist"] == statuses["review:review_image"] == 200
        assert statuses["performance:dashboard"] == statuses["performance:prediction_list"] == 200
        assert statuses["deidentification:image_mask_thumbnail"] == statuses["deidentification:audit_export"] == 200


def test_error_pages_carry_the_headers_too(client, settings):
    _assert_headers(client.get("/no-such-page/"), settings, "404")
    _assert_headers(client.post(reverse("login"), {"username": "x"}), settings, "login form error")
