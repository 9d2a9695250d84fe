"""URLs of the gateway app; its own issue adds the pages."""

app_name = "gateway"
urlpatterns: list = []
