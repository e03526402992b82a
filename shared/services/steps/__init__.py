"""Deployment steps: `runner` runs the step a queue message names and applies its outcome; `kinds`
maps each step type to the module that does it (`deploy`, `checks`, `swap`, `app_settings`)."""

from shared.services.step_logs import log_name
from shared.services.steps.runner import handle_poisoned, run, stop

__all__ = ["handle_poisoned", "log_name", "run", "stop"]
