"""URLs of the services app; its own issue adds the pages."""

app_name = "services"
urlpatterns: list = []
