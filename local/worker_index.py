"""Index the function app with the real Python worker's indexer, as the Functions host would.

Needs Python 3.13+ with `azure-functions-runtime` (the worker library). It runs the worker's own
`index_function_app` and `process_indexed_function`, which catch what `get_functions()` alone
misses: parameter names that differ from binding names, wrong annotations, output bindings not
typed `func.Out`. The host's protobuf messages are stood in for by plain classes.

    python3.13 local/worker_index.py [app_dir]      # exit 1 and the reason when indexing fails
"""

from __future__ import annotations

import json
import os
import sys
import types


class _Message:
    def __init__(self, **fields: object) -> None:
        self.__dict__.update(fields)


class BindingInfo(_Message):
    in_ = 0
    out = 1
    inout = 2
    undefined = 0
    string = 1
    binary = 2
    stream = 3


setattr(BindingInfo, "in", 0)


class RpcFunctionMetadata(_Message):
    pass


class RpcRetryOptions(_Message):
    class RetryStrategy:
        exponential_backoff = 0
        fixed_delay = 1


def main(app_dir: str) -> int:
    app_dir = os.path.abspath(app_dir)
    sys.path.insert(0, app_dir)
    from azure_functions_runtime import loader
    from azure_functions_runtime.bindings.meta import load_binding_registry
    from azure_functions_runtime.functions import FunctionLoadError, Registry

    protos = types.SimpleNamespace(BindingInfo=BindingInfo, RpcFunctionMetadata=RpcFunctionMetadata,
                                   RpcRetryOptions=RpcRetryOptions)
    load_binding_registry()
    script = os.path.join(app_dir, os.environ.get("PYTHON_SCRIPT_FILE_NAME", "function_app.py"))
    indexed = loader.index_function_app(script)
    try:
        metadata, _ = loader.process_indexed_function(protos, Registry(), indexed, app_dir)
    except FunctionLoadError as exc:
        print(f"INDEXING FAILED: {exc}")
        return 1
    for item in metadata:
        print(item.name, [json.loads(b)["type"] for b in item.raw_bindings])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "."))
