"""Child process that checks a model file under limits and prints a JSON verdict.

Usage: python -m deployments.onnx_probe REQUEST_JSON (see onnx_checks.model_check)

The limits are set before ONNX or ONNX Runtime is imported, so nothing the file makes them
do escapes them: past the address-space limit allocations fail, past the CPU limit the
kernel stops the process (SIGXCPU, then SIGKILL).
"""

from __future__ import annotations

import json
import resource
import sys


def main(argv: list[str]) -> int:
    request = json.loads(argv[0])
    memory = int(request["memory_bytes"])
    cpu = int(request["cpu_seconds"])
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    from deployments.onnx_checks import model_probe

    print(json.dumps(model_probe(request)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
