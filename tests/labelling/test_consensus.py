"""Consensus by majority, adjudication where there is none, agreement on the project page, and the
export (pseudonymised identifiers only)."""

import csv
import io
import json

import pytest
from django.urls import reverse
from pydicom import dcmread
from pydicom.data import get_testdata_file

from clinic_ai.accounts.models import Role
from clinic_ai.core.models import AuditEvent
from clinic_ai.labelling import selectors, services
from clinic_ai.labelling.models import Label, LabelSource
from clinic_ai.studies.models import Image
from tests.conftest import run_pipeline_inline, upload_through_api

pytestmark = pytest.mark.django_db


@pytest.fixture
def readers(project, member_of):
    return [member_of(project, Role.CLINICIAN, username=f"reader{i}") for i in range(3)]


def label_all(project, images, readers, table):
    """table[i][j]: reader j's class for image i."""
    for image, row in zip(images, table, strict=True):
        for reader, value in zip(readers, row, strict=True):
            services.label_create(actor=reader, project=project, image=image, values=[value], seconds=1.0)


def test_three_readers_majority_and_no_majority_goes_to_adjudication(
    client, project, readers, radiologist, released_images
):
    images = released_images(3)
    services.labelling_settings_update(actor=None, project=project, readers_per_image=3, readers_see_ai_result=False)
    label_all(
        project,
        images,
        readers,
        [
            ["normal", "normal", "pneumonia"],
            ["pneumonia", "pneumonia", "pneumonia"],
            ["normal", "pneumonia", "ungradable"],
        ],
    )
    consensus = selectors.project_consensus(project)
    assert consensus.images[images[0].pk].final == ["normal"]
    assert consensus.images[images[1].pk].final == ["pneumonia"]
    assert consensus.images[images[2].pk].final is None
    assert [c.image_id for c in consensus.needs_adjudication] == [images[2].pk]

    client.force_login(radiologist)
    page = client.get(reverse("labelling:adjudication_list", args=[project.pk])).content.decode()
    assert str(images[2].pk) in page and str(images[0].pk) not in page
    response = client.post(reverse("labelling:adjudicate", args=[project.pk, images[2].pk]), {"values": "pneumonia"})
    assert response.status_code == 302
    final = Label.objects.get(adjudication=True)
    assert (final.source, final.reader, final.values) == (LabelSource.REVIEW, radiologist, ["pneumonia"])
    assert selectors.project_consensus(project).images[images[2].pk].final == ["pneumonia"]
    assert selectors.project_consensus(project).needs_adjudication == []
    assert AuditEvent.objects.get(action="label.adjudicate").data["image_id"] == str(images[2].pk)
    # A second adjudication replaces the first, which stays as history.
    client.post(reverse("labelling:adjudicate", args=[project.pk, images[2].pk]), {"values": "ungradable"})
    assert list(Label.objects.filter(adjudication=True).values_list("values", "is_current").order_by("created")) == [
        (["pneumonia"], False),
        (["ungradable"], True),
    ]


def test_two_readers_who_disagree_always_need_adjudication(project, readers, released_images):
    images = released_images(2)
    services.labelling_settings_update(actor=None, project=project, readers_per_image=2, readers_see_ai_result=False)
    label_all(project, images, readers[:2], [["normal", "normal"], ["normal", "pneumonia"]])
    consensus = selectors.project_consensus(project)
    assert consensus.images[images[0].pk].final == ["normal"]
    assert [c.image_id for c in consensus.needs_adjudication] == [images[1].pk]


def test_an_image_with_readers_still_missing_is_not_adjudicated(project, readers, released_images):
    image = released_images(1)[0]
    services.labelling_settings_update(actor=None, project=project, readers_per_image=3, readers_see_ai_result=False)
    label_all(project, [image], readers[:2], [["normal", "pneumonia"]])
    assert selectors.project_consensus(project).needs_adjudication == []


def test_the_project_page_shows_cohens_kappa_for_two_readers(client, project, readers, project_admin, released_images):
    images = released_images(4)
    services.labelling_settings_update(actor=None, project=project, readers_per_image=2, readers_see_ai_result=False)
    # (a, b) pairs: (n,n) (p,p) (n,p) (p,n) -> p_o = 0.5, p_e = 0.5 -> kappa 0.
    # Swap the last to (p,p): p_o = 0.75; A: n 2/4, B: n 1/4 -> p_e = 0.5·0.25 + 0.5·0.75 = 0.5 -> kappa 0.5.
    label_all(
        project,
        images,
        readers[:2],
        [["normal", "normal"], ["pneumonia", "pneumonia"], ["normal", "pneumonia"], ["pneumonia", "pneumonia"]],
    )
    client.force_login(project_admin)
    page = client.get(reverse("labelling:project_labelling", args=[project.pk])).content.decode()
    assert "Cohen&#x27;s kappa: 0.500 over 4 images" in page


def test_the_project_page_shows_fleiss_kappa_for_three_readers(client, project, readers, radiologist, released_images):
    images = released_images(4)
    services.labelling_settings_update(actor=None, project=project, readers_per_image=3, readers_see_ai_result=False)
    n, p = "normal", "pneumonia"
    label_all(project, images, readers, [[n, n, n], [p, p, p], [n, n, p], [p, n, p]])  # 1/3 by hand, see test_agreement
    client.force_login(radiologist)
    page = client.get(reverse("labelling:project_labelling", args=[project.pk])).content.decode()
    assert "Fleiss&#x27; kappa: 0.333 over 4 images" in page


def test_clinicians_do_not_see_other_readers_labels_on_the_project_page(client, project, readers, released_images):
    image = released_images(1)[0]
    label_all(project, [image], readers[:1], [["pneumonia"]])
    client.force_login(readers[1])
    page = client.get(reverse("labelling:project_labelling", args=[project.pk])).content.decode()
    assert "pneumonia</td>" not in page and "Consensus" not in page


def _planted_dicom() -> tuple[bytes, dict]:
    ds = dcmread(get_testdata_file("CT_small.dcm"))
    planted = {
        "PatientName": "Needleman^Planted",
        "PatientID": "PID-NEEDLE-4711",
        "AccessionNumber": "ACC-NEEDLE-99",
        "StudyInstanceUID": ds.StudyInstanceUID,
        "SOPInstanceUID": ds.SOPInstanceUID,
        "SeriesInstanceUID": ds.SeriesInstanceUID,
    }
    ds.PatientName = planted["PatientName"]
    ds.PatientID = planted["PatientID"]
    ds.AccessionNumber = planted["AccessionNumber"]
    buffer = io.BytesIO()
    ds.save_as(buffer)
    return buffer.getvalue(), planted


def test_the_export_holds_pseudonymised_identifiers_only(client, project, radiologist, project_admin, clinician):
    data, planted = _planted_dicom()
    client.force_login(radiologist)
    upload_through_api(client, project, {"Needleman_Planted/PID-NEEDLE-4711.dcm": data})
    run_pipeline_inline()
    image = Image.objects.get()
    services.label_create(actor=clinician, project=project, image=image, values=["pneumonia"], seconds=4.0)

    client.force_login(project_admin)
    as_csv = client.get(reverse("labelling:label_export", args=[project.pk, "csv"])).content.decode()
    as_json = client.get(reverse("labelling:label_export", args=[project.pk, "json"])).content.decode()
    for needle in [*planted.values(), "Needleman", "NEEDLE"]:
        assert needle.lower() not in as_csv.lower()
        assert needle.lower() not in as_json.lower()

    rows = list(csv.DictReader(io.StringIO(as_csv)))
    assert rows == [
        {
            "image_id": str(image.pk),
            "study_id": str(image.study_id),
            "reader": clinician.username,
            "values": "pneumonia",
            "source": "reader",
            "adjudication": "False",
            "seconds": "4.0",
            "created": rows[0]["created"],
        }
    ]
    assert json.loads(as_json)["labels"][0]["values"] == ["pneumonia"]
    assert AuditEvent.objects.filter(action="label.export").count() == 2
