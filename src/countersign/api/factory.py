"""`app` for Uvicorn's import string (`countersign.api.factory:app`), built from the environment."""

from countersign.api.app import create_app
from countersign.config import Settings
from countersign.logs import configure_logging

_settings = Settings()
# Here too, not only in `serve`: with --workers N, each Uvicorn process imports this module.
configure_logging(_settings.log_level, _settings.log_format)
app = create_app(_settings)
