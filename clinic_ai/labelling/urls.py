from django.urls import path

from clinic_ai.labelling import views

app_name = "labelling"

urlpatterns = [
    path("label/", views.label_home, name="label_home"),
    path("projects/<uuid:project_id>/labelling/", views.project_labelling, name="project_labelling"),
    path("projects/<uuid:project_id>/labelling/settings/", views.labelling_settings_update, name="settings_update"),
    path("projects/<uuid:project_id>/label/", views.label_queue, name="label_queue"),
    path("projects/<uuid:project_id>/label/queue/", views.queue_api, name="queue_api"),
    path("projects/<uuid:project_id>/label/labels/", views.label_api, name="label_api"),
    path("projects/<uuid:project_id>/label/undo/", views.undo_api, name="undo_api"),
    path("projects/<uuid:project_id>/labelling/adjudication/", views.adjudication_list, name="adjudication_list"),
    path(
        "projects/<uuid:project_id>/labelling/adjudication/<uuid:image_id>/",
        views.adjudicate,
        name="adjudicate",
    ),
    path("projects/<uuid:project_id>/labelling/export.<str:fmt>", views.label_export, name="label_export"),
]
