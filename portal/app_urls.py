"""URLs of the portal app (``portal:`` namespace), mounted at the root."""

from django.urls import path

from .views import auth, dashboard, public, setup

app_name = "portal"

urlpatterns = [
    path("", public.home, name="dashboard"),
    path("", public.home, name="home"),
    path("setup/", setup.setup_secret, name="setup"),
    path("setup/account/", setup.setup_account, name="setup_account"),
    path("login/", auth.LoginView.as_view(), name="login"),
    path("logout/", auth.LogoutView.as_view(), name="logout"),
    path("status/refresh/", dashboard.refresh_status, name="refresh_status"),
]
