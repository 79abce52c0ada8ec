from django.urls import path

from clinic_ai.review import views

app_name = "review"

urlpatterns = [
    path("projects/<uuid:project_id>/review/", views.worklist, name="worklist"),
    path("projects/<uuid:project_id>/review/<uuid:image_id>/", views.review_image, name="review_image"),
    path("projects/<uuid:project_id>/review/<uuid:image_id>/decide/", views.decide, name="decide"),
]
