"""Rewrite services/catalogue_strings.py from the catalogue."""

from django.core.management.base import BaseCommand

from services.strings import STRINGS_FILE, render_strings


class Command(BaseCommand):
    help = "Write the catalogue's translatable strings for makemessages."

    def handle(self, *args: object, **options: object) -> None:
        STRINGS_FILE.write_text(render_strings())
        self.stdout.write(str(STRINGS_FILE))
