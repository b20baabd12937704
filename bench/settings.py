"""Bench-only settings: the app's own settings (read from the environment exactly as in
production), with the bench URLconf in front so the bare reference view is served by the same
server, middleware and settings as the app. Never used outside ``make bench``."""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
