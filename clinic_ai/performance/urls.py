from django.urls import path

from clinic_ai.performance import views

app_name = "performance"

urlpatterns = [
    path("projects/<uuid:project_id>/performance/", views.dashboard, name="dashboard"),
    path("projects/<uuid:project_id>/performance/figures.csv", views.dashboard_csv, name="dashboard_csv"),
    path("projects/<uuid:project_id>/predictions/", views.prediction_list, name="prediction_list"),
    path("projects/<uuid:project_id>/predictions/predictions.csv", views.prediction_csv, name="prediction_csv"),
]
