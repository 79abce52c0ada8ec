from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from clinic_ai.accounts.views import LoginView, home

urlpatterns = [
    path("", home, name="home"),
    path("accounts/login/", LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/password/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path("accounts/password/done/", auth_views.PasswordChangeDoneView.as_view(), name="password_change_done"),
    path("", include("clinic_ai.accounts.urls")),
    path("", include("clinic_ai.studies.urls")),
    path("", include("clinic_ai.deidentification.urls")),
    path("", include("clinic_ai.inference.urls")),
    path("", include("clinic_ai.labelling.urls")),
    path("", include("clinic_ai.review.urls")),
    path("", include("clinic_ai.performance.urls")),
    path("admin/", admin.site.urls),
]

handler400 = "clinic_ai.core.views.bad_request"
