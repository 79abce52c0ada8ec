from django.urls import path

from clinic_ai.studies import views

app_name = "studies"

urlpatterns = [
    path("worklist/", views.worklist, name="worklist"),
    path("studies/<uuid:study_id>/", views.study_detail, name="study_detail"),
    path("images/<uuid:image_id>/", views.image_detail, name="image_detail"),
    path("images/<uuid:image_id>/preview.png", views.image_preview, name="image_preview"),
    path("images/<uuid:image_id>/pixels/<int:frame>/", views.image_pixels, name="image_pixels"),
    path("images/<uuid:image_id>/original", views.image_original, name="image_original"),
    path("projects/<uuid:project_id>/upload/", views.upload_create, name="upload_create"),
    path("projects/<uuid:project_id>/uploads/", views.upload_batch_create, name="upload_batch_create"),
    path("uploads/<uuid:batch_id>/files/", views.upload_file_create, name="upload_file_create"),
    path("uploads/<uuid:batch_id>/labels/", views.upload_labels_csv, name="upload_labels_csv"),
    path("uploads/<uuid:batch_id>/files/<uuid:file_id>/chunks/", views.upload_chunk, name="upload_chunk"),
    path("uploads/<uuid:batch_id>/finish/", views.upload_batch_finish, name="upload_batch_finish"),
    path("uploads/<uuid:batch_id>/status/", views.upload_batch_status, name="upload_batch_status"),
]
