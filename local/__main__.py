"""`python -m local` (what `make run` calls): start the local stack and keep it running until Ctrl-C."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from local.stack import TAILSPIN_TARGET, LocalStack


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local", description=__doc__)
    parser.add_argument("--no-sample", action="store_true", help="do not create the sample pipeline")
    parser.add_argument("--in-memory", action="store_true", help="keep no Azurite data between runs")
    parser.add_argument("--polling", type=float, default=None,
                        help="queue polling ceiling in seconds (host.json's maxPollingInterval otherwise)")
    parser.add_argument("--auth", choices=["development", "appservice"], default="development",
                        help="development: act as anyone (default); appservice: sign in as in Azure "
                             "(App Service authentication with a local stand-in for Entra ID)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("azure").setLevel(logging.WARNING)
    from shared import redaction

    redaction.install()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stack = LocalStack(persistent=not args.in_memory, seed=not args.no_sample, max_polling_interval=args.polling,
                       auth=args.auth)
    with stack:
        arm = stack.emulator.url if stack.emulator else ""
        mail = stack.mail.page_url if stack.mail else ""
        monitor = stack.monitor.url if stack.monitor else ""
        base = stack.api.removesuffix("/api")
        engines = {"ARM deployments emulator": stack.deployments, "Container Apps emulator": stack.container_apps,
                   "GitHub emulator": stack.github, "Key Vault emulator": stack.key_vault,
                   "Change board (callbacks)": stack.change_board}
        print(f"\nSlipway is running.\n  Dashboard:  {base}/\n  API:        {stack.api}\n"
              f"  ARM (App Service emulator): {arm}\n  Azure Monitor emulator: {monitor}\n"
              + "".join(f"  {name}: {part.url}\n" for name, part in engines.items() if part is not None)
              + f"  Mail caught: {mail}\n  Function key (automation, e.g. slipway --key): {stack.function_key}")
        if stack.definition_id is not None:
            print(f"  Sample pipeline: {stack.api}/definitions/{stack.definition_id}")
            print(f"  Six-kind sample pipeline (Sample web app, full stage): {stack.api}/definitions/"
                  f"{stack.full_stage_id}")
            for slot, url in stack.slot_urls().items():
                print(f"  sample-webapp {slot:<10} {url}")
            assert stack.emulator is not None
            tailspin = (TAILSPIN_TARGET["subscriptionId"], TAILSPIN_TARGET["resourceGroup"], TAILSPIN_TARGET["site"])
            for slot, url in stack.emulator.slot_urls(*tailspin).items():
                print(f"  tailspin      {slot:<10} {url}")
            print("\nBuild and release a new version:  make sample-build VERSION=1.0.1")
        print("Stop with Ctrl-C.\n", flush=True)
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass
    print("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
