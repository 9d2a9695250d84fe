"""URLs of the captive app; its own issue adds the pages."""

app_name = "captive"
urlpatterns: list = []
