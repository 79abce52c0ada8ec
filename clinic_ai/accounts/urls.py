from django.urls import path

from clinic_ai.accounts import views

app_name = "accounts"

urlpatterns = [
    path("projects/new/", views.project_create_view, name="project_create"),
    path("projects/<uuid:project_id>/", views.project_detail, name="project_detail"),
    path("projects/<uuid:project_id>/edit/", views.project_update_view, name="project_update"),
    path("projects/<uuid:project_id>/members/", views.member_set, name="member_set"),
    path("projects/<uuid:project_id>/members/<uuid:membership_id>/remove/", views.member_remove, name="member_remove"),
]
