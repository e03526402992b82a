"""Slipway's Azure Functions app: it only registers the trigger blueprints in `functions/`."""

import azure.functions as func

from functions import approvals_api, definitions_api, events_queue, releases_api, steps_queue, sweeper_timer

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)

for blueprint in (definitions_api.bp, releases_api.bp, approvals_api.bp, steps_queue.bp, events_queue.bp,
                  sweeper_timer.bp):
    app.register_functions(blueprint)
