from django.contrib import admin

from clinic_ai.studies.models import Image, Series, Study, UploadBatch


@admin.register(Study)
class StudyAdmin(admin.ModelAdmin):
    list_display = ("id", "project", "modality", "study_date", "created")
    list_filter = ("project", "modality")


@admin.register(Series)
class SeriesAdmin(admin.ModelAdmin):
    list_display = ("id", "study", "modality", "series_number")


@admin.register(Image)
class ImageAdmin(admin.ModelAdmin):
    list_display = ("id", "project", "kind", "status", "modality", "preview_status", "created")
    list_filter = ("project", "status", "kind", "preview_status")
    readonly_fields = ("sha256", "quarantine_path", "released_path", "preview_path")


@admin.register(UploadBatch)
class UploadBatchAdmin(admin.ModelAdmin):
    list_display = ("id", "project", "uploaded_by", "created", "finished_at")
