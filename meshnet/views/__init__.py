"""Views of the meshnet app, one module per part; each exports urlpatterns."""
