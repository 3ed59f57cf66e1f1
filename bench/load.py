"""Load generation with wrk: one Lua script per case, results read back as one JSON line."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

# Every script ends with this: wrk's own summary as one machine-readable line.
_DONE = """
done = function(summary, latency, requests)
  io.write(string.format(
    'BENCH {"requests":%d,"duration_us":%d,"p50_us":%d,"p95_us":%d,"p99_us":%d,'
    .. '"status_errors":%d,"socket_errors":%d}\\n',
    summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(95), latency:percentile(99),
    summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
"""

# Requests cycle through a list of paths; each wrk thread starts at its own offset.
_PATHS = """
local paths = {%(paths)s}
local method, body = %(method)s, %(body)s
local headers = {%(headers)s}
local counter, offset = 0, 0
setup = function(thread) thread:set("first", counter * 7919); counter = counter + 1 end
init = function(args) offset = first or 0 end
request = function()
  offset = offset + 1
  return wrk.format(method, paths[(offset %% #paths) + 1], headers, body)
end
"""

# PATCH with If-Match: each thread owns a slice of the books and remembers each book's version
# from the responses, so every request carries the current ETag (a 412 counts as an error).
_PATCH = """
local ids = {%(ids)s}
local versions = {%(versions)s}
local headers = {%(headers)s}
local counter, threads = 0, %(threads)d
local position, last, step = 0, 0, 0
setup = function(thread) thread:set("slice", counter); counter = counter + 1 end
init = function(args)
  step = math.floor(#ids / threads)
  position = (slice or 0) * step
  last = position + step
end
request = function()
  position = position + 1
  if position > last then position = last - step + 1 end
  local id = ids[position]
  headers["If-Match"] = '"' .. versions[id] .. '"'
  return wrk.format("PATCH", "/api/v1/books/" .. id, headers,
    '{"title":"The Patched Edition ' .. position .. '"}')
end
response = function(status, response_headers, body)
  local id = body:match('"id":"([^"]+)"')
  local version = body:match('"version":(%%d+)')
  if id and version then versions[id] = version end
end
"""


def _lua_string(text: str) -> str:
    return json.dumps(text)  # a JSON string literal is a valid Lua string literal here


def _lua_headers(headers: dict[str, str]) -> str:
    return ", ".join(f"[{_lua_string(k)}] = {_lua_string(v)}" for k, v in headers.items())


def paths_script(
    paths: list[str],
    *,
    method: str = "GET",
    body: str | None = None,
    headers: dict[str, str] | None = None,
) -> str:
    return (
        _PATHS
        % {
            "paths": ", ".join(_lua_string(p) for p in paths),
            "method": _lua_string(method),
            "body": "nil" if body is None else _lua_string(body),
            "headers": _lua_headers(headers or {}),
        }
        + _DONE
    )


def patch_script(versions: dict[str, int], *, headers: dict[str, str], threads: int) -> str:
    return (
        _PATCH
        % {
            "ids": ", ".join(_lua_string(i) for i in versions),
            "versions": ", ".join(f"[{_lua_string(i)}] = {v}" for i, v in versions.items()),
            "headers": _lua_headers({**headers, "Content-Type": "application/json"}),
            "threads": threads,
        }
        + _DONE
    )


@dataclass(frozen=True)
class LoadResult:
    requests: int
    seconds: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    errors: int

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds


def ensure_wrk() -> str:
    """wrk's path, installing Debian's package when it is missing (needs root)."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0:
        sys.exit("bench: wrk is not installed (apt-get install wrk)")
    print("bench: installing wrk from Debian", flush=True)
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True)
    return shutil.which("wrk") or sys.exit("bench: wrk is still missing after apt-get")


def run_wrk(
    wrk: str,
    base_url: str,
    script: str,
    *,
    seconds: float,
    connections: int,
    threads: int,
) -> LoadResult:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as file:
        file.write(script)
    try:
        completed = subprocess.run(
            [
                wrk,
                f"-t{threads}",
                f"-c{connections}",
                f"-d{max(1, round(seconds))}s",
                "--timeout",
                "10s",
                "-s",
                file.name,
                base_url,
            ],
            capture_output=True,
            text=True,
            check=True,
        )
    finally:
        Path(file.name).unlink()
    line = next(
        (ln for ln in completed.stdout.splitlines() if ln.startswith("BENCH ")),
        None,
    )
    if line is None:
        raise RuntimeError(f"wrk printed no summary:\n{completed.stdout}\n{completed.stderr}")
    data = json.loads(line.removeprefix("BENCH "))
    return LoadResult(
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        p50_ms=data["p50_us"] / 1000,
        p95_ms=data["p95_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        errors=data["status_errors"] + data["socket_errors"],
    )
