from django.apps import AppConfig


class DevtoolsConfig(AppConfig):
    """``manage.py demo``, ``simulate``, ``loadbench`` and ``fake_paypal`` (config/settings.py
    installs the app with DEBUG or DEVTOOLS=true). No models: nothing of it is in the database."""

    name = "devtools"
    verbose_name = "Developer tools"
