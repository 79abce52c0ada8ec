from django.contrib import admin

from clinic_ai.core.admin import ReadOnlyAdmin
from clinic_ai.studies.models import Image, Series, Study, UploadBatch

# Everything here is written by the upload pipeline: read-only (see ReadOnlyAdmin). UploadedFile is
# not registered at all: its client_name is the browser's file name, which may name a patient.


@admin.register(Study)
class StudyAdmin(ReadOnlyAdmin):
    list_display = ("id", "project", "modality", "study_date", "created")
    list_filter = ("project", "modality")


@admin.register(Series)
class SeriesAdmin(ReadOnlyAdmin):
    list_display = ("id", "study", "modality", "series_number")


@admin.register(Image)
class ImageAdmin(ReadOnlyAdmin):
    list_display = ("id", "project", "kind", "status", "modality", "preview_status", "created")
    list_filter = ("project", "status", "kind", "preview_status")


@admin.register(UploadBatch)
class UploadBatchAdmin(ReadOnlyAdmin):
    list_display = ("id", "project", "uploaded_by", "created", "finished_at")
