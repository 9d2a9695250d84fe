"""URLs of the meshnet app; its own issue adds the pages."""

app_name = "meshnet"
urlpatterns: list = []
