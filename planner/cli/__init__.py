"""The command line: one module per command; parse, call the library, render, exit code.

Exit codes (a public contract, see README): 0 fine, 1 evaluated and does not fit / misses a target,
2 bad input (one line on stderr, never a traceback).
"""

import sys

try:
    from planner.cli.app import EXIT_FAIL, EXIT_INPUT, EXIT_OK, app, fail_input, guarded, main, plan_main, run
except KeyboardInterrupt:  # Ctrl-C while the command line loads: the same answer as during the work
    print("error: interrupted", file=sys.stderr)
    raise SystemExit(130) from None

__all__ = ["EXIT_FAIL", "EXIT_INPUT", "EXIT_OK", "app", "fail_input", "guarded", "main", "plan_main", "run"]
