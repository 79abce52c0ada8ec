from django.urls import path

from clinic_ai.inference import views

app_name = "inference"

urlpatterns = [
    path("images/<uuid:image_id>/inference/", views.image_inference, name="image_inference"),
    path("images/<uuid:image_id>/inference/rerun/", views.image_inference_rerun, name="image_inference_rerun"),
    path("inference/<uuid:result_id>/heatmaps/<slug:name>.png", views.result_heatmap, name="result_heatmap"),
    path("projects/<uuid:project_id>/models/", views.registry, name="registry"),
    path("projects/<uuid:project_id>/inference/queue/", views.project_inference_queue, name="project_queue"),
    path("projects/<uuid:project_id>/inference/progress/", views.project_inference_progress, name="project_progress"),
    path("ensembles/<uuid:ensemble_id>/activate/", views.ensemble_activate, name="ensemble_activate"),
]
