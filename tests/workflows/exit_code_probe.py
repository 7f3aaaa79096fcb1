"""``python -m tests.workflows.exit_code_probe N`` exits with N: a stand-in component for wrapper tests."""

import sys

if __name__ == "__main__":
    sys.exit(int(sys.argv[1]))
