from django.apps import AppConfig


class AnalysisConfig(AppConfig):
    """Scores, summaries, learning, language-model providers, topics and the pages that show them."""

    name = "analysis"
    verbose_name = "Analysis"

    def ready(self) -> None:
        from tags import keywords

        from . import receivers  # noqa: F401  (pending rows for stored mail, analysis after sync, reply writer)
        from .models import CATEGORY_CHOICES

        keywords.register_categories(CATEGORY_CHOICES)  # the category keywords on the tags page
