"""Worklists people can read: fields read from the released file at release, filters, sorting,
AI result and review state, roles, and a capped number of queries."""

import datetime
import io
from pathlib import Path

import pydicom
import pytest
from django.core.management import call_command
from django.urls import reverse
from pydicom.uid import generate_uid

from clinic_ai.accounts.models import Role
from clinic_ai.deidentification.models import DeidProfile, PatientLink
from clinic_ai.inference.models import Ensemble, InferenceResult, ResultStatus
from clinic_ai.labelling.models import Label, LabellingSettings, LabelSource
from clinic_ai.studies import storage
from clinic_ai.studies.models import Image, ImageStatus, Series, Study
from tests.conftest import run_pipeline_inline, upload_through_api
from tests.studies.dicom_variants import ORIGINAL_NAME, ct_variant

pytestmark = pytest.mark.django_db


def _profile(project, **options):
    DeidProfile.objects.update_or_create(project=project, defaults={"ocr_enabled": False, **options})


def _upload(client, user, project, files: dict):
    client.force_login(user)
    upload_through_api(client, project, files)
    run_pipeline_inline()
    client.logout()


# --- Fields read at release --------------------------------------------------------------------


def test_release_copies_pseudonym_age_sex_body_part_and_descriptions_from_the_released_file(
    client, project, radiologist
):
    _profile(project, clean_descriptors=True, retain_patient_characteristics=True)
    _upload(client, radiologist, project, {"a.dcm": ct_variant(patient_id="MRN-1", age="045Y", sex="F")})
    image = Image.objects.get()
    assert image.status == ImageStatus.RELEASED
    released = pydicom.dcmread(storage.media_path(image.released_path), stop_before_pixels=True)
    study, series = Study.objects.get(), Series.objects.get()
    # What the study says is what the released file says, and the file holds the pseudonym.
    assert study.patient_pseudonym == released.PatientID == PatientLink.objects.get().pseudonym
    assert study.patient_pseudonym.startswith("ANON-") and "MRN-1" not in study.patient_pseudonym
    assert (study.patient_age, study.patient_sex, study.age_display) == ("045Y", "F", "45 y")
    assert study.body_part == series.body_part == "CHEST"
    assert study.study_description == released.StudyDescription == "CT CHEST WITH CONTRAST"
    assert series.series_description == released.SeriesDescription == "AXIAL LUNG WINDOW"
    # The study date is the released file's (shifted), not the original's.
    assert study.study_date == datetime.datetime.strptime(released.StudyDate, "%Y%m%d").date()
    assert study.study_date != datetime.date(2024, 1, 5)
    page = client_get_as(client, radiologist, reverse("studies:worklist")).content.decode()
    assert study.patient_pseudonym in page and "45 y" in page and "female" in page and "CHEST" in page
    assert "AXIAL LUNG WINDOW" in page and "MRN-1" not in page and "Doe" not in page


def test_without_retain_patient_characteristics_or_clean_descriptors_the_fields_stay_empty(
    client, project, radiologist
):
    _profile(project, clean_descriptors=False, retain_patient_characteristics=False)
    _upload(client, radiologist, project, {"a.dcm": ct_variant(patient_id="MRN-2", age="061Y", sex="M")})
    released = pydicom.dcmread(storage.media_path(Image.objects.get().released_path), stop_before_pixels=True)
    assert "PatientAge" not in released or not released.PatientAge
    study, series = Study.objects.get(), Series.objects.get()
    assert study.patient_pseudonym.startswith("ANON-")  # the pseudonym is always there
    assert (study.patient_age, study.patient_sex) == ("", "")
    assert (study.study_description, series.series_description) == ("", "")
    page = client_get_as(client, radiologist, reverse("studies:worklist")).content.decode()
    assert "61 y" not in page and "male" not in page


def test_the_backfill_command_reads_released_files_of_older_rows(client, project, radiologist):
    _profile(project, clean_descriptors=True)
    _upload(client, radiologist, project, {"a.dcm": ct_variant(patient_id="MRN-3")})
    # As a row released before the fields existed.
    Study.objects.update(patient_pseudonym="", patient_age="", patient_sex="", body_part="", study_description="")
    Series.objects.update(body_part="", series_description="")
    call_command("worklist_fields_backfill", stdout=io.StringIO())
    study = Study.objects.get()
    assert study.patient_pseudonym.startswith("ANON-") and study.patient_age == "045Y"
    assert Series.objects.get().series_description == "AXIAL LUNG WINDOW"


def test_fields_are_read_from_the_released_copy_not_the_quarantined_original(client, project, radiologist, settings):
    """The original is kept in quarantine for a while (retention); the study still carries only
    what the released file holds."""
    settings.QUARANTINE_RETENTION_DAYS = 7
    _profile(project, clean_descriptors=True)
    _upload(client, radiologist, project, {"a.dcm": ct_variant(patient_id="MRN-4")})
    image = Image.objects.get()
    assert image.quarantine_path  # the original is still there...
    original = Path(storage.quarantine_path(image.quarantine_path)).read_bytes()
    assert b"MRN-4" in original and ORIGINAL_NAME.encode() in original
    values = " ".join(
        str(v) for v in Study.objects.values_list("patient_pseudonym", "study_description", "body_part").get()
    )
    assert "MRN-4" not in values and "Doe" not in values  # ...and nothing of it reached the study


def client_get_as(client, user, url):
    client.force_login(user)
    response = client.get(url)
    client.logout()
    assert response.status_code == 200, response.status_code
    return response


# --- The worklist ----------------------------------------------------------------------------------


@pytest.fixture
def three_patients(client, project, radiologist):
    """Three studies of three patients: CT chest 2024-01-05, CT chest 2023-06-01, MR head 2022-03-03
    (dates as in the originals; the released ones are shifted per patient)."""
    _profile(project, clean_descriptors=True)
    uid_a = generate_uid()
    _upload(
        client,
        radiologist,
        project,
        {
            "a.dcm": ct_variant(patient_id="P-A", study_date="20240105", study_uid=uid_a),
            "b.dcm": ct_variant(patient_id="P-B", study_date="20230601", age="070Y", sex="M"),
            "c.dcm": ct_variant(patient_id="P-C", study_date="20220303", modality="MR", body_part="HEAD"),
        },
    )
    a = Study.objects.get(modality="CT", patient_age="045Y")
    b = Study.objects.get(patient_age="070Y")
    c = Study.objects.get(modality="MR")
    assert all(s.patient_pseudonym for s in (a, b, c))
    a.original_uid = uid_a  # to file more images into it
    return [a, b, c]


def _rows(client, query=""):
    response = client.get(reverse("studies:worklist") + query)
    assert response.status_code == 200
    return [str(s.pk) for s in response.context["page"]]


def test_filters_by_pseudonym_modality_and_date_range(client, radiologist, three_patients):
    client.force_login(radiologist)
    a, b, c = three_patients
    assert set(_rows(client)) == {str(s.pk) for s in three_patients}
    assert _rows(client, f"?patient={a.patient_pseudonym[5:12].lower()}") == [str(a.pk)]
    assert _rows(client, "?patient=NOBODY") == []
    assert _rows(client, "?modality=MR") == [str(c.pk)]
    day = b.study_date
    assert _rows(client, f"?date_from={day}&date_to={day}") == [str(b.pk)]
    before = sorted(s.study_date for s in three_patients)[1]
    assert set(_rows(client, f"?date_to={before}")) == {str(s.pk) for s in three_patients if s.study_date <= before}


def test_sorts_by_study_date_and_pseudonym(client, radiologist, three_patients):
    client.force_login(radiologist)
    by_date = sorted(three_patients, key=lambda s: s.study_date, reverse=True)
    assert _rows(client, "?sort=-study_date") == [str(s.pk) for s in by_date]
    assert _rows(client, "?sort=study_date") == [str(s.pk) for s in reversed(by_date)]
    by_name = sorted(three_patients, key=lambda s: s.patient_pseudonym)
    assert _rows(client, "?sort=patient_pseudonym") == [str(s.pk) for s in by_name]
    assert len(_rows(client, "?sort=nonsense")) == 3  # an unknown order is the default one


def test_ai_summary_counts_positive_results_of_the_active_ensemble_only(client, project, radiologist, three_patients):
    a, b, c = three_patients
    # A second and third image in study a.
    more = {f"a{i}.dcm": ct_variant(patient_id="P-A", study_uid=a.original_uid) for i in (1, 2)}
    _upload(client, radiologist, project, more)
    images = list(Image.objects.filter(study=a))
    assert len(images) == 3
    active = Ensemble.objects.create(project=project, slug="active", name="Active", is_active=True)
    old = Ensemble.objects.create(project=project, slug="old", name="Old", is_active=False)
    for image, labels in zip(images, (["pneumonia"], ["pneumonia"], ["normal"]), strict=True):
        InferenceResult.objects.create(image=image, ensemble=active, status=ResultStatus.DONE, labels=labels)
        InferenceResult.objects.create(image=image, ensemble=old, status=ResultStatus.DONE, labels=["pneumonia"])
    only_b = Image.objects.get(study=b)
    InferenceResult.objects.create(image=only_b, ensemble=active, status=ResultStatus.RUNNING)
    Label.objects.create(
        project=project, image=images[0], reader=radiologist, values=["pneumonia"], source=LabelSource.REVIEW
    )
    Label.objects.create(  # a label of another source, and a past review: neither counts
        project=project, image=images[1], reader=radiologist, values=["normal"], source=LabelSource.READER
    )
    Label.objects.create(
        project=project,
        image=images[2],
        reader=radiologist,
        values=["normal"],
        source=LabelSource.REVIEW,
        is_current=False,
    )
    client.force_login(radiologist)
    page = {str(s.pk): s for s in client.get(reverse("studies:worklist")).context["page"]}
    assert page[str(a.pk)].ai.text == "2 of 3 pneumonia"
    assert page[str(a.pk)].reviewed_count == 1
    assert page[str(b.pk)].ai.text == "1 running"
    assert page[str(c.pk)].ai.text == "No result"
    html = client.get(reverse("studies:worklist")).content.decode()
    assert "2 of 3 pneumonia" in html and "1 of 3 reviewed" in html


def test_a_clinician_sees_the_ai_summary_only_where_readers_may_see_ai_results(
    client, project, clinician, three_patients
):
    ensemble = Ensemble.objects.create(project=project, slug="e", name="E", is_active=True)
    for image in Image.objects.all():
        InferenceResult.objects.create(image=image, ensemble=ensemble, status=ResultStatus.DONE, labels=["pneumonia"])
    client.force_login(clinician)
    page = list(client.get(reverse("studies:worklist")).context["page"])
    assert page and all(study.ai is None for study in page)
    assert "pneumonia" not in client.get(reverse("studies:worklist")).content.decode()
    LabellingSettings.objects.create(project=project, readers_see_ai_result=True)
    page = list(client.get(reverse("studies:worklist")).context["page"])
    assert all(study.ai.text == "1 of 1 pneumonia" for study in page)


@pytest.mark.parametrize(("who", "sees"), [("radiologist", 3), ("clinician", 3), ("project_admin", 3), ("outsider", 0)])
def test_worklist_by_role(client, three_patients, who, sees, request):
    client.force_login(request.getfixturevalue(who))
    assert len(_rows(client)) == sees
    if sees == 0:
        html = client.get(reverse("studies:worklist")).content.decode()
        assert not any(s.patient_pseudonym in html for s in three_patients)


def test_a_held_study_is_not_on_the_list_of_a_clinician_but_is_on_its_uploaders(
    client, project, radiologist, clinician, member_of
):
    from tests.deidentification.synthetic import ultrasound_bytes

    DeidProfile.objects.update_or_create(project=project, defaults={"ocr_enabled": True})
    _upload(client, radiologist, project, {"us.dcm": ultrasound_bytes()})
    assert Image.objects.get().status == ImageStatus.HELD
    client.force_login(clinician)
    assert _rows(client) == []
    client.force_login(member_of(project, Role.RADIOLOGIST))  # another radiologist: not theirs
    assert _rows(client) == []
    client.force_login(radiologist)
    assert len(_rows(client)) == 1


@pytest.mark.parametrize(("who", "status"), [("radiologist", 200), ("clinician", 200), ("outsider", 404)])
def test_study_page_shows_the_fields_by_role(client, three_patients, who, status, request):
    a = three_patients[0]
    client.force_login(request.getfixturevalue(who))
    response = client.get(reverse("studies:study_detail", args=[a.pk]))
    assert response.status_code == status
    if status == 200:
        html = response.content.decode()
        assert a.patient_pseudonym in html and "AXIAL LUNG WINDOW" in html and "45 y" in html


def test_worklist_queries_are_capped_whatever_the_number_of_studies(
    client, project, radiologist, three_patients, django_assert_max_num_queries
):
    ensemble = Ensemble.objects.create(project=project, slug="e", name="E", is_active=True)
    for image in Image.objects.all():
        InferenceResult.objects.create(image=image, ensemble=ensemble, status=ResultStatus.DONE, labels=["normal"])
        Label.objects.create(project=project, image=image, reader=radiologist, values=["normal"], source="review")
    client.force_login(radiologist)
    client.get(reverse("studies:worklist"))  # warm the session
    with django_assert_max_num_queries(10):
        response = client.get(reverse("studies:worklist") + "?sort=-study_date&modality=CT")
    assert len(response.context["page"]) == 2
    with django_assert_max_num_queries(11):  # the worklist's, plus the access check's two
        client.get(reverse("studies:study_detail", args=[three_patients[0].pk]))


def _bare_studies(project, user, n):
    """n released studies as rows only (the worklist reads no file), for pagination and query caps."""
    for i in range(n):
        study = Study.objects.create(
            project=project,
            study_instance_uid=f"2.25.{i + 1}",
            modality="CT",
            patient_pseudonym=f"ANON-BARE{i:04d}",
            study_date=datetime.date(2020, 1, 1) + datetime.timedelta(days=i),
        )
        series = Series.objects.create(study=study, series_instance_uid=f"2.25.{i + 1}.1", series_description="AP")
        Image.objects.create(
            project=project,
            study=study,
            series=series,
            uploaded_by=user,
            kind="dicom",
            status=ImageStatus.RELEASED,
            sha256=f"{i:064d}",
            rows=8,
            columns=8,
        )


def test_worklist_paginates_and_keeps_the_filters(client, project, radiologist, django_assert_max_num_queries):
    from clinic_ai.studies.views import PAGE_SIZE

    _bare_studies(project, radiologist, PAGE_SIZE + 3)
    client.force_login(radiologist)
    client.get(reverse("studies:worklist"))
    with django_assert_max_num_queries(10):
        first = client.get(reverse("studies:worklist") + "?sort=patient_pseudonym&modality=CT")
    second = client.get(reverse("studies:worklist") + "?sort=patient_pseudonym&modality=CT&page=2")
    ids = [s.patient_pseudonym for s in first.context["page"]] + [s.patient_pseudonym for s in second.context["page"]]
    assert ids == [f"ANON-BARE{i:04d}" for i in range(PAGE_SIZE + 3)]
    assert "sort=patient_pseudonym&amp;modality=CT&amp;page=2" in first.content.decode()
