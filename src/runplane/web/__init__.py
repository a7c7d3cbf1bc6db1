"""The web dashboard: static files (``static/``) served by ``routes.py`` at ``/``."""
