"""Started as ``python -I -S launcher.py SPEC -- argv...``: apply limits, then exec argv.

Limits are set here, in a fresh single-threaded process, rather than in a
``preexec_fn``: the daemon is multi-threaded and ``preexec_fn`` can deadlock
there. This file imports nothing from the package, so ``-I -S`` start-up is fast
and no daemon code or environment reaches the test process.

SPEC is JSON: ``{"rlimits": {"RLIMIT_CPU": [soft, hard], ...}, "cgroup_procs": path or null}``.
"""

import json
import os
import resource
import sys

EXIT_LAUNCH_FAILED = 125  # like env(1)/timeout(1): "the wrapper failed", not the tests


def main(argv: list[str]) -> int:
    if len(argv) < 4 or argv[2] != "--":
        print("usage: launcher.py SPEC -- command...", file=sys.stderr)
        return EXIT_LAUNCH_FAILED
    spec = json.loads(argv[1])
    command = argv[3:]
    try:
        procs = spec.get("cgroup_procs")
        if procs:
            # Join the pids cgroup first, so every descendant is counted and killable.
            with open(procs, "w") as fh:
                fh.write("0\n")
        for name, (soft, hard) in spec.get("rlimits", {}).items():
            resource.setrlimit(getattr(resource, name), (soft, hard))
        if spec.get("nice"):
            os.nice(int(spec["nice"]))  # work that may be thrown away yields the CPU to work that will not
        os.execvp(command[0], command)
    except OSError as e:
        print(f"ai-agents test launcher: cannot start {command[0]}: {e}", file=sys.stderr)
        return EXIT_LAUNCH_FAILED
    return EXIT_LAUNCH_FAILED  # not reached: execvp does not return


if __name__ == "__main__":
    sys.exit(main(sys.argv))
