#!/usr/bin/env python3
"""Records a real Ray head's Jobs REST replies as fixtures for crates/grid-ray.

    eval "$(scripts/setup-ray.sh --print-env)"
    "$(dirname "$VLLM_GRID_RAY")/python" scripts/ray/record-fixtures.py OUT_DIR

Starts its own head (a child with `--block`, in a short temp dir, bound to
127.0.0.1, 2 CPUs and 4 logical GPUs), drives it through the cases the client
and the failure diagnosis rely on, writes one JSON file per reply into OUT_DIR
(`{"request": ..., "status": <http status>, "body": <parsed JSON or text>}`),
and SIGTERMs the head's process group on every path. Never runs `ray stop`,
which would stop every Ray on the machine.

Standard library only, except the one call to Ray's own packaging code that
names a working-dir package (so the fixture records Ray's URI for a known
directory, which the Rust hash is tested against).
"""

import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

RAY = os.environ.get("VLLM_GRID_RAY")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ray_env():
    return dict(
        os.environ,
        RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S="0",
        DASHBOARD_METRIC_PORT="0",
        AUTOSCALER_METRIC_PORT="0",
        RAY_USAGE_STATS_ENABLED="0",
        # Without it Ray swaps `--node-ip-address 127.0.0.1` for the host's
        # reachable address and binds its gRPC servers to every interface;
        # with it (Ray's single-machine mode) every port is on 127.0.0.1.
        RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0",
        # A job whose supervisor cannot be scheduled fails after this
        # (Ray's default is 15 minutes); short, to record that reply.
        RAY_JOB_START_TIMEOUT_SECONDS="15",
    )


class Head:
    def __init__(self, num_gpus=4):
        # One node only: Ray refuses a second node in single-machine mode
        # (RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0), and without that mode it
        # listens on every interface. A dead node is stood in for by a
        # killed supervisor (the same JOB_SUPERVISOR_ACTOR_DIED path).
        self.temp = tempfile.mkdtemp(prefix="vg-ray-", dir="/tmp")
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        argv = [
            RAY, "start", "--head", "--block", "--num-cpus=2", f"--num-gpus={num_gpus}",
            "--port", "0", "--node-ip-address", "127.0.0.1",
            "--dashboard-host", "127.0.0.1", "--dashboard-port", str(self.port),
            "--dashboard-agent-listen-port", "0",
            "--ray-client-server-port", str(free_port()),
            "--temp-dir", self.temp, "--disable-usage-stats",
        ]
        self.log = open(os.path.join(self.temp, "head.log"), "w")
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            argv, env=ray_env(), stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout=90):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                sys.exit(f"record-fixtures: the head exited ({self.proc.returncode}); see {self.log.name}")
            try:
                status, body = http("GET", self.base + "/api/version")
                if status == 200:
                    return body, time.monotonic() - self.started
            except OSError:
                pass
            time.sleep(0.25)
        sys.exit(f"record-fixtures: the dashboard did not answer in {timeout} s")

    def stop(self):
        started = time.monotonic()
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        # Ray's workers lead process groups of their own and outlive the
        # head; each names the temp dir on its command line.
        kill_mentioning(self.temp)
        elapsed = time.monotonic() - started
        shutil.rmtree(self.temp, ignore_errors=True)
        return elapsed


def kill_mentioning(temp):
    for _ in range(50):
        pids = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == os.getpid():
                continue
            try:
                cmdline = open(f"/proc/{entry}/cmdline", "rb").read().decode(errors="replace")
            except OSError:
                continue
            if temp in cmdline:
                pids.append(int(entry))
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.1)


def http(method, url, body=None, raw=None, content_type="application/json"):
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            status, text = reply.status, reply.read().decode()
    except urllib.error.HTTPError as error:
        status, text = error.code, error.read().decode()
    try:
        parsed = json.loads(text) if text else ""
    except json.JSONDecodeError:
        parsed = text
    return status, parsed


def main():
    if not RAY:
        sys.exit("record-fixtures: VLLM_GRID_RAY is unset; run eval \"$(scripts/setup-ray.sh --print-env)\"")
    out = pathlib.Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    head = Head()
    timings = {}
    try:
        version, timings["head_ready_s"] = head.wait_ready()
        record(out, head, version, timings)
    finally:
        timings["head_stop_s"] = head.stop()
    (out / "timings.json").write_text(json.dumps(timings, indent=2) + "\n")
    print(json.dumps(timings), file=sys.stderr)


def record(out, head, version, timings):
    base = head.base

    def save(name, method, path, body=None, raw=None, content_type="application/json"):
        status, reply = http(method, base + path, body=body, raw=raw, content_type=content_type)
        request = {"method": method, "path": path}
        if body is not None:
            request["body"] = body
        if raw is not None:
            request["body_bytes"] = len(raw)
        (out / f"{name}.json").write_text(
            json.dumps({"request": request, "status": status, "body": reply}, indent=2) + "\n"
        )
        return status, reply

    def wait_status(job, wanted, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            _, reply = http("GET", f"{base}/api/jobs/{job}")
            if isinstance(reply, dict) and reply.get("status") in wanted:
                return reply
            time.sleep(0.2)
        sys.exit(f"record-fixtures: job {job} did not reach {wanted} in {timeout} s")

    def submit(name, body):
        started = time.monotonic()
        status, reply = save(name, "POST", "/api/jobs/", body)
        timings[f"{name}_s"] = time.monotonic() - started
        assert status == 200, (name, status, reply)
        return reply["submission_id"]

    save("version", "GET", "/api/version")
    meta = lambda config, repeat: {
        "vllm_grid_run": "fixture-run", "vllm_grid_config": config, "vllm_grid_repeat": str(repeat)
    }

    # A 2-GPU job that prints the GPUs Ray gave it; succeeds.
    ok = submit("submit-2gpu", {
        "entrypoint": "echo CUDA_VISIBLE_DEVICES=$CUDA_VISIBLE_DEVICES; echo done",
        "submission_id": "vg-fixture-2gpu",
        "entrypoint_num_gpus": 2, "entrypoint_num_cpus": 0.5,
        "metadata": meta("small-a", 1),
    })
    started = time.monotonic()
    wait_status(ok, {"SUCCEEDED", "FAILED"})
    timings["2gpu_job_to_terminal_s"] = time.monotonic() - started
    save("status-succeeded", "GET", f"/api/jobs/{ok}")
    save("logs-succeeded", "GET", f"/api/jobs/{ok}/logs")

    # A running job (sleeps), then stopped.
    running = submit("submit-running", {
        "entrypoint": "echo started; sleep 120",
        "submission_id": "vg-fixture-running",
        "entrypoint_num_gpus": 2, "metadata": meta("small-b", 1),
    })
    wait_status(running, {"RUNNING"})
    time.sleep(1)
    save("status-running", "GET", f"/api/jobs/{running}")
    # Too many GPUs: stays PENDING (4 exist, 2 are held by the running job; 8 never fit).
    pending = submit("submit-8gpu", {
        "entrypoint": "echo never", "submission_id": "vg-fixture-8gpu",
        "entrypoint_num_gpus": 8, "metadata": meta("huge", 1),
    })
    time.sleep(5)
    save("status-pending-8gpu", "GET", f"/api/jobs/{pending}")
    started = time.monotonic()
    save("stop-running", "POST", f"/api/jobs/{running}/stop")
    wait_status(running, {"STOPPED"})
    timings["stop_to_stopped_s"] = time.monotonic() - started
    save("status-stopped", "GET", f"/api/jobs/{running}")
    save("logs-stopped", "GET", f"/api/jobs/{running}/logs")
    save("stop-again", "POST", f"/api/jobs/{running}/stop")
    # Stopping a job whose supervisor was never scheduled answers
    # `stopped: true` but leaves it PENDING until the start timeout fails it.
    save("stop-pending-8gpu", "POST", f"/api/jobs/{pending}/stop")
    time.sleep(3)
    save("status-pending-after-stop", "GET", f"/api/jobs/{pending}")
    wait_status(pending, {"STOPPED", "FAILED"})
    save("status-start-timeout", "GET", f"/api/jobs/{pending}")

    # An entrypoint that exits 1 after some output.
    failed = submit("submit-exit1", {
        "entrypoint": "for i in 1 2 3; do echo line $i; done; echo 'boom: config rejected' >&2; exit 1",
        "submission_id": "vg-fixture-exit1", "entrypoint_num_gpus": 2,
        "metadata": meta("small-c", 2),
    })
    wait_status(failed, {"FAILED", "SUCCEEDED"})
    save("status-failed-exit1", "GET", f"/api/jobs/{failed}")
    save("logs-failed-exit1", "GET", f"/api/jobs/{failed}/logs")

    # An entrypoint that does not exist.
    missing_cmd = submit("submit-missing-command", {
        "entrypoint": "/nonexistent/vllm-grid worker", "submission_id": "vg-fixture-missing-command",
        "metadata": meta("small-d", 1),
    })
    wait_status(missing_cmd, {"FAILED", "SUCCEEDED"})
    save("status-failed-missing-command", "GET", f"/api/jobs/{missing_cmd}")
    save("logs-failed-missing-command", "GET", f"/api/jobs/{missing_cmd}/logs")

    # The supervisor (the actor whose worker process runs the entrypoint as its
    # child) killed: Ray's own "node or supervisor gone" path on one machine.
    pid_file = pathlib.Path(head.temp) / "supervisor.pid"
    lost = submit("submit-supervisor-killed", {
        "entrypoint": f"echo $PPID > {pid_file}; echo working; sleep 120",
        "submission_id": "vg-fixture-supervisor-killed", "entrypoint_num_gpus": 2,
        "metadata": meta("small-e", 1),
    })
    wait_status(lost, {"RUNNING"})
    deadline = time.monotonic() + 30
    while not pid_file.exists() or not pid_file.read_text().strip():
        if time.monotonic() > deadline:
            sys.exit("record-fixtures: the supervisor's pid never appeared")
        time.sleep(0.2)
    os.kill(int(pid_file.read_text()), signal.SIGKILL)
    started = time.monotonic()
    wait_status(lost, {"FAILED", "STOPPED", "SUCCEEDED"}, timeout=120)
    timings["supervisor_kill_to_terminal_s"] = time.monotonic() - started
    save("status-supervisor-killed", "GET", f"/api/jobs/{lost}")
    save("logs-supervisor-killed", "GET", f"/api/jobs/{lost}/logs")

    # Errors: unknown job, a bad request, a duplicate submission ID.
    save("status-unknown-job", "GET", "/api/jobs/vg-no-such-job")
    save("logs-unknown-job", "GET", "/api/jobs/vg-no-such-job/logs")
    save("stop-unknown-job", "POST", "/api/jobs/vg-no-such-job/stop")
    save("submit-bad-request", "POST", "/api/jobs/", {"entrypoint": 42})
    save("submit-bad-field", "POST", "/api/jobs/", {"entrypoint": "true", "no_such_field": 1})
    save("submit-duplicate-id", "POST", "/api/jobs/", {
        "entrypoint": "true", "submission_id": "vg-fixture-2gpu",
    })

    # Working dir: a package named as Ray names it, uploaded through the REST API.
    from ray._private.runtime_env.packaging import get_uri_for_directory
    import zipfile
    package_dir = pathlib.Path(head.temp) / "pkg"
    (package_dir / "bin").mkdir(parents=True)
    script = package_dir / "bin" / "hello.sh"
    script.write_text("#!/bin/sh\necho hello from $(pwd | sed 's|.*/||') with $(cat spec.json)\n")
    script.chmod(0o755)
    (package_dir / "spec.json").write_text('{"unit": "small-a"}\n')
    uri = get_uri_for_directory(str(package_dir), include_gitignore=True)
    name = uri.removeprefix("gcs://")
    (out / "package-uri.json").write_text(json.dumps({
        "files": {"bin/hello.sh": script.read_text(), "spec.json": (package_dir / "spec.json").read_text()},
        "modes": {"bin/hello.sh": "755", "spec.json": "644"},
        "ray_uri": uri,
    }, indent=2) + "\n")
    zip_path = pathlib.Path(head.temp) / "pkg.zip"
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(package_dir.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(package_dir))
    save("package-absent", "GET", f"/api/packages/gcs/{name}")
    save("package-put", "PUT", f"/api/packages/gcs/{name}", raw=zip_path.read_bytes(),
         content_type="application/octet-stream")
    save("package-present", "GET", f"/api/packages/gcs/{name}")
    with_dir = submit("submit-working-dir", {
        "entrypoint": "./bin/hello.sh", "submission_id": "vg-fixture-working-dir",
        "runtime_env": {"working_dir": uri, "env_vars": {"VLLM_GRID_FIXTURE": "visible-in-list"}},
        "metadata": meta("small-f", 1),
    })
    wait_status(with_dir, {"SUCCEEDED", "FAILED"})
    save("status-working-dir", "GET", f"/api/jobs/{with_dir}")
    save("logs-working-dir", "GET", f"/api/jobs/{with_dir}/logs")
    bad_uri = submit("submit-missing-package", {
        "entrypoint": "true", "submission_id": "vg-fixture-missing-package",
        "runtime_env": {"working_dir": "gcs://_ray_pkg_0000000000000000.zip"},
        "metadata": meta("small-g", 1),
    })
    wait_status(bad_uri, {"SUCCEEDED", "FAILED"}, timeout=120)
    save("status-missing-package", "GET", f"/api/jobs/{bad_uri}")

    save("list", "GET", "/api/jobs/")


if __name__ == "__main__":
    main()
