"""The local mesh's certificate renewer: renews each sidecar certificate past half its lifetime.

`meshgen up` starts it as one of the mesh's processes (`python -m meshgen.deploy.local.renewer
STATE_DIR`), so a mesh left running keeps valid certificates. It reads what to renew from the
identity plan `up` wrote, and waits until the running Envoys use what it swapped in.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from meshgen.deploy.local.certs import ensure_identities, load_plan, renew_interval, wait_for_envoys
from meshgen.deploy.local.state import load_state
from meshgen.errors import UserError


def renew_once(state_dir: Path) -> dict[str, str]:
    plan = load_plan(state_dir)
    state = load_state(state_dir)
    if plan is None or state is None:
        return {}
    envoys = [p for p in state.processes if p.kind == "envoy"]
    return ensure_identities(state_dir, plan, wait=wait_for_envoys(envoys)).issued


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit("usage: python -m meshgen.deploy.local.renewer STATE_DIR")
    state_dir = Path(sys.argv[1])
    while True:
        plan = load_plan(state_dir)
        try:
            for instance, reason in sorted(renew_once(state_dir).items()):
                print(f"renewed {instance}: {reason}", flush=True)
        except UserError as exc:  # reported, and tried again at the next round
            print(f"renewal failed: {exc}", flush=True)
        time.sleep(renew_interval(plan) if plan else 60.0)


if __name__ == "__main__":
    main()
