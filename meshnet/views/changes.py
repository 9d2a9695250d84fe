"""Views of the meshnet app: changes (filled by its part of issue 3)."""

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
