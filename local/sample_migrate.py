"""A sample database migration for the local Container Apps emulator's image `slipway/sample-migrate:1`.

It prints what a migration tool prints, one line per migration, and exits 0; with `MIGRATION_FAIL=1`
the last migration fails: an error on stderr and exit code 3 (so does a build whose `APP_VERSION` ends in
`-broken`, so that the six-kind sample pipeline can show a failing migration). Other knobs, all optional:

* `MIGRATION_COUNT`: how many migrations (default 4);
* `MIGRATION_DELAY`: seconds each one takes (default 0.05), to keep an execution running for a while;
* `DB_PASSWORD`: when the job gives it (a secret reference), the program says only that it has one
  and how long it is: a migration never prints a credential.

Arguments are printed as given (`--target 42`), so that a test can see what the container was asked.
"""

from __future__ import annotations

import os
import sys
import time


def main(argv: list[str]) -> int:
    count = int(os.environ.get("MIGRATION_COUNT", "4"))
    delay = float(os.environ.get("MIGRATION_DELAY", "0.05"))
    fail = os.environ.get("MIGRATION_FAIL") == "1" or os.environ.get("APP_VERSION", "").endswith("-broken")
    print(f"migrate: connecting to {os.environ.get('DB_HOST', 'localhost')}", flush=True)
    if argv:
        print(f"migrate: arguments {' '.join(argv)}", flush=True)
    password = os.environ.get("DB_PASSWORD")
    if password is not None:
        print(f"migrate: DB_PASSWORD received ({len(password)} characters)", flush=True)
    for n in range(1, count + 1):
        time.sleep(delay)
        if fail and n == count:
            print(f"migrate: applying {n:04d}_add_index ...", flush=True)
            print(f"error: migration {n:04d}_add_index failed: relation \"orders\" does not exist",
                  file=sys.stderr, flush=True)
            return 3
        print(f"migrate: applied {n:04d}_step_{n}", flush=True)
    print(f"migrate: done, {count} migrations applied", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
