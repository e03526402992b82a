"""Slipway's Azure Functions app: it only registers the trigger blueprints in `functions/`.

Every HTTP route is anonymous to the Functions host and authenticates its caller itself
(`functions/identity.py`): the host never waives function keys for App Service authentication's
callers, so host-checked keys would make a pipeline's Entra token alone useless. A function key
is still accepted, checked against this app's host keys.
"""

import azure.functions as func

from functions import (
    ado_api,
    approval_links,
    approvals_api,
    callbacks_api,
    dashboard,
    definitions_api,
    editor,
    events_queue,
    gates_queue,
    hooks_api,
    intervention_links,
    mail_queue,
    metrics_timer,
    releases_api,
    retention_timer,
    scheduler_timer,
    steps_queue,
    sweeper_timer,
    tokens_api,
    variable_groups_api,
)


class SlipwayApp(func.FunctionApp):
    """The host indexes the app (`get_functions()`) right after importing this module, when it starts: then the
    plugin registry loads in the background (shared/plugins.py `load_at_start`), so a plugin that fails to load is
    logged at startup, and importing this module (every cold start) still loads none of the plugins."""

    def get_functions(self) -> list[func.Function]:
        from shared import plugins

        plugins.load_at_start()
        return super().get_functions()


app = SlipwayApp(http_auth_level=func.AuthLevel.ANONYMOUS)

for module in (definitions_api, releases_api, approvals_api, approval_links, intervention_links, callbacks_api,
               steps_queue, events_queue, sweeper_timer, scheduler_timer, gates_queue, mail_queue, dashboard,
               variable_groups_api, tokens_api, ado_api, hooks_api):
    app.register_functions(module.bp)
app.register_functions(retention_timer.bp)
app.register_functions(metrics_timer.bp)
app.register_functions(editor.bp)
