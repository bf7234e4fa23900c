"""`app` for Uvicorn's import string (`countersign.api.factory:app`), built from the environment."""

from countersign.api.app import create_app

app = create_app()
