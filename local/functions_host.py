"""A small Azure Functions host for the local stack and the end-to-end tests.

Azure Functions Core Tools cannot be installed here (their installer downloads a binary), so this
host stands in for `func start`: it loads `function_app.app`, reads host.json and
local.settings.json, and runs the registered HTTP, queue and timer functions with the host's
semantics. It is a development tool and never ships.

- HTTP: `extensions.http.routePrefix` (default `api`), route templates with constraints (`int` and
  `long` in their ranges), 404 for an unknown route or a method no route takes (as the real host,
  whose ASP.NET routing has no 405), a HEAD answered without a body, an unhandled exception answers
  a bare 500. Function keys are not enforced, as with `func start`. Nagle is off
  (`disable_nagle_algorithm`): headers and body are two writes, and with Nagle on a keep-alive client
  waited ~40 ms for the second behind its delayed ACK.
- Queues (`extensions.queues`): base64 messages (a message that is not base64 goes straight to
  `<queue>-poison`); a running message stays invisible; on failure it becomes visible again after
  `visibilityTimeout`; once it has been dequeued `maxDequeueCount` times and fails again it moves
  to `<queue>-poison`, and one dequeued more often than that is poisoned before it runs (as the
  WebJobs queue processor does); a queue whose name ends in `-poison` has no poison queue of its
  own: its failing messages are retried on the visibility schedule until they expire
  (`QueueProcessor`, Azure/azure-sdk-for-net, Microsoft.Azure.WebJobs.Extensions.Storage.Queues);
  empty queues are polled with a back-off from 100 ms up to `maxPollingInterval`; at most
  `batchSize + newBatchThreshold` messages run at once per function.
- Timers: 6-field NCRONTAB after `%SETTING%` expansion, in UTC; `run_on_startup` honoured.
- With `WEBSITE_AUTH_ENABLED=true`, App Service authentication stands in front of the routes
  (`local/easy_auth.py`): outside principal headers are stripped and signed-in callers get theirs.
- Request paths are logged through the app's own redaction (no keys, tokens or signatures).
"""

from __future__ import annotations

import base64
import binascii
import importlib.util
import logging
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import azure.functions as func
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.functions.queue import QueueMessage
from azure.functions.timer import TimerRequest
from azure.storage.queue import QueueClient
from croniter import croniter

from local.easy_auth import EasyAuth, LocalEntra
from local.host_settings import expand, load_host_json, load_local_settings, parse_timespan
from local.http_routes import Route, compile_template, precedence
from shared.redaction import redact

logger = logging.getLogger(__name__)
SUPPORTED = {"httpTrigger", "queueTrigger", "timerTrigger"}


class HostError(RuntimeError):
    """The app cannot be hosted: it failed to import, or uses what this host does not run."""


class FunctionsHost:
    def __init__(self, app_dir: Path, *, http_port: int = 7071, http_host: str = "127.0.0.1",
                 settings_overrides: dict[str, str] | None = None, max_polling_interval: float | None = None,
                 entra: LocalEntra | None = None, clock: Any = None) -> None:
        self.app_dir = Path(app_dir)
        self.clock = clock
        """The stack's clock (with `now()` and `speed`): timers fire on its time. The real clock when None."""
        self.entra = entra
        self.easy_auth: EasyAuth | None = None
        self.http_host, self.http_port = http_host, http_port
        self.overrides = dict(settings_overrides or {})
        self.polling_override = max_polling_interval
        self.routes: list[Route] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._pools: list[ThreadPoolExecutor] = []
        self._server: ThreadingHTTPServer | None = None
        self._displaced: tuple[str, Any] | None = None

    # -- lifecycle

    def start(self) -> FunctionsHost:
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> FunctionsHost:
        self.host_json = load_host_json(self.app_dir)
        os.environ.update(load_local_settings(self.app_dir))
        os.environ.update(self.overrides)
        if os.environ.get("WEBSITE_AUTH_ENABLED", "").lower() == "true":
            self.entra = self.entra or LocalEntra()
            self.easy_auth = EasyAuth(self.entra)
        functions = self._load_functions()
        http = self.host_json.get("extensions", {}).get("http", {})
        prefix = http.get("routePrefix", "api")
        starters = []
        for f in functions:
            trigger = f.get_trigger()
            kind = trigger.get_binding_name()
            extra = [b for b in f.get_bindings() if b is not trigger and b.get_binding_name() != "http"]
            if kind not in SUPPORTED or extra:
                raise HostError(f"function {f.get_function_name()}: only HTTP, queue and timer triggers without "
                                f"other bindings run on the local host (found {kind} and {len(extra)} more)")
            if kind == "httpTrigger":
                template = trigger.route or f.get_function_name()
                methods = {str(getattr(m, "value", m)).upper() for m in trigger.methods} if trigger.methods else None
                self.routes.append(Route(f.get_user_function(), trigger.name, methods,
                                         compile_template(prefix, template), template))
            elif kind == "queueTrigger":
                starters.append(lambda f=f, t=trigger: self._queue_listener(f, t))
            else:
                schedule = self._schedule(f, trigger)
                starters.append(lambda f=f, t=trigger, s=schedule: self._timer(f, t, s))
        self.routes.sort(key=lambda r: precedence(r.template))
        self._serve_http()
        for start in starters:
            start()
        logger.info("local host: %s HTTP routes at %s/%s, %s other functions", len(self.routes), self.base_url,
                    prefix, len(starters))
        return self

    @property
    def base_url(self) -> str:
        return f"http://{self.http_host}:{self.http_port}"

    def stop(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        for thread in self._threads:
            thread.join(timeout=2)
        for pool in self._pools:
            pool.shutdown(wait=True, cancel_futures=True)
        if self._displaced is not None:
            name, previous = self._displaced
            if previous is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = previous
            self._displaced = None

    def __enter__(self) -> FunctionsHost:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _load_functions(self) -> list[Any]:
        script = self.app_dir / os.environ.get("PYTHON_SCRIPT_FILE_NAME", "function_app.py")
        if str(self.app_dir) not in sys.path:
            sys.path.insert(0, str(self.app_dir))
        module_name = script.stem
        try:
            module = sys.modules.get(module_name)
            if module is None or Path(getattr(module, "__file__", "")).resolve() != script.resolve():
                # Another app of that name was loaded in this process (tests host several apps):
                # put it back on stop().
                self._displaced = (module_name, module)
                spec = importlib.util.spec_from_file_location(module_name, script)
                assert spec is not None and spec.loader is not None
                module = importlib.util.module_from_spec(spec)
                sys.modules[module_name] = module
                spec.loader.exec_module(module)
        except Exception as exc:
            raise HostError(f"{script} failed to import: {exc!r}") from exc
        apps = [v for v in vars(module).values() if isinstance(v, func.FunctionApp)]
        if len(apps) != 1:
            raise HostError(f"{script} must define exactly one FunctionApp, found {len(apps)}")
        app = apps[0]
        app.functions_bindings = {}  # get_functions() can run once per app object; the host may start twice
        return list(app.get_functions())

    # -- HTTP

    def _serve_http(self) -> None:
        host = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            disable_nagle_algorithm = True

            def _go(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, headers, data = host.dispatch(self.command, self.path, dict(self.headers.items()), body)
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":  # a HEAD answer has the GET's headers and no body
                    self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _go

        self._server = ThreadingHTTPServer((self.http_host, self.http_port), Handler)
        self._server.daemon_threads = True
        self.http_port = self._server.server_address[1]
        thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
        thread.start()

    def dispatch(self, method: str, raw_path: str, headers: dict[str, str],
                 body: bytes) -> tuple[int, dict[str, str], bytes]:
        if self.easy_auth is not None:
            answer = self.easy_auth.endpoint(method, raw_path, headers, body)
            if answer is not None:
                return answer
            seen = self.easy_auth.inbound(headers)
            if isinstance(seen, tuple):
                return seen
            headers = seen
        parts = urlsplit(raw_path)
        host = next((v for k, v in headers.items() if k.lower() == "host"), "") or f"{self.http_host}:{self.http_port}"
        for route in self.routes:
            params = route.match(parts.path.rstrip("/") or "/")
            if params is None:
                continue
            if route.methods is not None and method not in route.methods:
                continue
            request = func.HttpRequest(method, f"http://{host}{raw_path}", headers=headers,
                                       params=dict(parse_qsl(parts.query, keep_blank_values=True)),
                                       route_params=params, body=body)
            started = time.perf_counter()
            try:
                response = route.function(**{route.arg_name: request})
            except Exception:
                logger.exception("HTTP function %s failed", route.template)
                return 500, {}, b""
            logger.info("%s %s -> %s (%.0f ms)", method, redact(parts.path), response.status_code,
                        (time.perf_counter() - started) * 1000)
            out = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
            if response.mimetype and "content-type" not in {k.lower() for k in out}:
                out["Content-Type"] = f"{response.mimetype}; charset={response.charset or 'utf-8'}"
            return response.status_code, out, response.get_body() or b""
        return 404, {}, b""

    # -- queues

    def _queue_listener(self, function: Any, trigger: Any) -> None:
        options = self.host_json.get("extensions", {}).get("queues", {})
        env = dict(os.environ)
        queue_name = expand(trigger.queue_name, env)
        connection = env.get(trigger.connection or "AzureWebJobsStorage", "")
        listener = _QueueListener(
            function=function.get_user_function(), arg_name=trigger.name, name=function.get_function_name(),
            client=QueueClient.from_connection_string(connection, queue_name),
            poison=QueueClient.from_connection_string(connection, f"{queue_name}-poison"),
            base64_encoded=options.get("messageEncoding", "base64") == "base64",
            max_polling=self.polling_override or parse_timespan(options.get("maxPollingInterval"), 60.0),
            retry_visibility=parse_timespan(options.get("visibilityTimeout"), 0.0),
            max_dequeue=int(options.get("maxDequeueCount", 5)),
            parallel=max(1, int(options.get("batchSize", 16)) + int(options.get("newBatchThreshold", 0))),
            lease=parse_timespan(self.host_json.get("functionTimeout"), 600.0),
            stop=self._stop)
        self._pools.append(listener.pool)
        thread = threading.Thread(target=listener.run, name=f"queue:{queue_name}", daemon=True)
        self._threads.append(thread)
        thread.start()

    # -- timers

    @staticmethod
    def _schedule(function: Any, trigger: Any) -> str:
        schedule = expand(trigger.schedule, dict(os.environ))
        if len(schedule.split()) != 6 or not croniter.is_valid(schedule, second_at_beginning=True):
            raise HostError(f"function {function.get_function_name()}: schedule '{schedule}' is not a 6-field "
                            f"NCRONTAB expression ('{{second}} {{minute}} {{hour}} {{day}} {{month}} {{day-of-week}}')")
        return schedule

    def _timer(self, function: Any, trigger: Any, schedule: str) -> None:
        thread = threading.Thread(target=self._run_timer, args=(function, trigger, schedule),
                                  name=f"timer:{function.get_function_name()}", daemon=True)
        self._threads.append(thread)
        thread.start()

    def _run_timer(self, function: Any, trigger: Any, schedule: str) -> None:
        """Fire on the schedule in the stack's clock's time (an accelerated clock makes an hourly timer
        fire every real second at speed 3600). Occurrences that passed while a run was going are
        coalesced into one late run, as the WebJobs timer does (`past_due`)."""
        user, arg, name = function.get_user_function(), trigger.name, function.get_function_name()
        now = self.clock.now if self.clock is not None else (lambda: datetime.now(UTC))
        speed = float(getattr(self.clock, "speed", 1) or 1)
        if trigger.run_on_startup:
            _invoke_timer(user, arg, name, past_due=False)
        while not self._stop.is_set():
            due = croniter(schedule, now(), second_at_beginning=True).get_next(datetime)
            if self._stop.wait(max(0.0, (due - now()).total_seconds() / speed)):
                return
            late = (now() - due).total_seconds() / speed
            _invoke_timer(user, arg, name, past_due=late > 1.0)


def _invoke_timer(user: Any, arg: str, name: str, *, past_due: bool) -> None:
    started = time.perf_counter()
    try:
        user(**{arg: TimerRequest(past_due=past_due, schedule_status=None, schedule=None)})
        logger.info("timer %s ran (%.0f ms)", name, (time.perf_counter() - started) * 1000)
    except Exception:
        logger.exception("timer %s failed", name)


class _QueueListener:
    def __init__(self, *, function: Any, arg_name: str, name: str, client: QueueClient, poison: QueueClient,
                 base64_encoded: bool, max_polling: float, retry_visibility: float, max_dequeue: int, parallel: int,
                 lease: float, stop: threading.Event) -> None:
        self.function, self.arg_name, self.name = function, arg_name, name
        self.client, self.poison = client, poison
        self.base64_encoded, self.max_polling = base64_encoded, max(0.1, max_polling)
        self.retry_visibility, self.max_dequeue = int(retry_visibility), max_dequeue
        self.lease = int(lease)
        self.slots = threading.Semaphore(parallel)
        self.parallel = parallel
        self.pool = ThreadPoolExecutor(parallel, thread_name_prefix=f"fn:{name}")
        self.stop = stop

    def run(self) -> None:
        delay = 0.1
        while not self.stop.is_set():
            try:
                batch = self._receive()
            except Exception:
                logger.exception("queue %s: receive failed", self.client.queue_name)
                batch = []
            if not batch:
                if self.stop.wait(delay):
                    return
                delay = min(delay * 2, self.max_polling)
                continue
            delay = 0.1
            for message in batch:
                self.slots.acquire()
                self.pool.submit(self._process, message)

    def _receive(self) -> list[Any]:
        free = self.parallel
        try:
            pages = self.client.receive_messages(max_messages=min(32, free), visibility_timeout=self.lease,
                                                 messages_per_page=min(32, free))
            return list(next(pages.by_page(), []))
        except ResourceNotFoundError:
            return []

    def _process(self, message: Any) -> None:
        try:
            self._run(message)
        except Exception:
            logger.exception("queue %s: message %s could not be settled", self.client.queue_name, message.id)
        finally:
            self.slots.release()

    def _run(self, message: Any) -> None:
        raw: str = message.content
        if self.base64_encoded:
            try:
                body = base64.b64decode(raw, validate=True)
            except (binascii.Error, ValueError):
                logger.warning("queue %s: message %s is not base64: poisoned", self.client.queue_name, message.id)
                return self._to_poison(message)
        else:
            body = raw.encode()
        poison_queue = self.client.queue_name.endswith("-poison")
        if message.dequeue_count > self.max_dequeue and not poison_queue:
            return self._to_poison(message)
        started = time.perf_counter()
        msg = QueueMessage(id=message.id, body=body, dequeue_count=message.dequeue_count,
                           pop_receipt=message.pop_receipt, expiration_time=message.expires_on,
                           insertion_time=message.inserted_on, time_next_visible=message.next_visible_on)
        try:
            self.function(**{self.arg_name: msg})
        except Exception:
            logger.exception("queue function %s failed on message %s (delivery %s)", self.name, message.id,
                             message.dequeue_count)
            if message.dequeue_count >= self.max_dequeue and not poison_queue:
                return self._to_poison(message)
            # A poison queue's own failures are retried on the visibility schedule until the message
            # expires: the host creates no `-poison-poison` queue.
            self.client.update_message(message.id, message.pop_receipt, visibility_timeout=self.retry_visibility)
            return None
        logger.info("queue function %s ran message %s (%.0f ms)", self.name, message.id,
                    (time.perf_counter() - started) * 1000)
        self.client.delete_message(message.id, message.pop_receipt)
        return None

    def _to_poison(self, message: Any) -> None:
        try:
            self.poison.send_message(message.content)
        except ResourceNotFoundError:
            try:
                self.poison.create_queue()
            except ResourceExistsError:
                pass
            self.poison.send_message(message.content)
        self.client.delete_message(message.id, message.pop_receipt)
        logger.warning("queue %s: message %s moved to %s", self.client.queue_name, message.id,
                       self.poison.queue_name)
