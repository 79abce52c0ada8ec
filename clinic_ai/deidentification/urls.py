from django.urls import path

from clinic_ai.deidentification import views

app_name = "deidentification"

urlpatterns = [
    path("masking/", views.held_list, name="held_list"),
    path("images/<uuid:image_id>/mask/", views.image_mask, name="image_mask"),
    path("images/<uuid:image_id>/mask/source.png", views.image_mask_source, name="image_mask_source"),
    path("images/<uuid:image_id>/mask/thumbnail.png", views.image_mask_thumbnail, name="image_mask_thumbnail"),
    path("images/<uuid:image_id>/mask/preview.png", views.image_mask_preview, name="image_mask_preview"),
    path("images/<uuid:image_id>/mask/release/", views.image_mask_release, name="image_mask_release"),
    path("projects/<uuid:project_id>/patients/", views.patient_links, name="patient_links"),
    path("projects/<uuid:project_id>/audit/", views.audit_list, name="audit_list"),
    path("projects/<uuid:project_id>/audit.csv", views.audit_export, name="audit_export"),
    path("projects/<uuid:project_id>/deidentification/", views.profile_update, name="profile_update"),
]
