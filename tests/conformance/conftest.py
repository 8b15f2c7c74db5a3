"""Fixtures for the conformance suite: a real `ferrostack up` (on SQLite, and on PostgreSQL
when FERROSTACK_TEST_POSTGRES names a server), driven with the unmodified clients from
this virtualenv: the `openstack` CLI, openstacksdk, botocore/boto3 and awscli.

- `cloud`: one server per test module and backend; tests share it, so they use unique
  names (the `name` fixture). Torn down with SIGTERM, which must end it with status 0
  within a few seconds and remove `ferrostack.url`.
- `fresh_cloud`: a server of the test's own, for tests that stop and restart it.

Environment: FERROSTACK_BIN (default target/debug/ferrostack), FERROSTACK_TEST_POSTGRES
(postgres://user@host:port, no database: each server gets a fresh database),
FERROSTACK_REQUIRE_POSTGRES=1 (fail instead of skipping PostgreSQL),
FERROSTACK_CONFORMANCE_CLI=subprocess (run each `openstack` command as its own process
instead of through oscfork.py).
"""

import json
import os
import pathlib
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid

import pytest
import requests
import yaml

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]
BIN = os.environ.get("FERROSTACK_BIN") or str(ROOT / "target" / "debug" / "ferrostack")
VENV_BIN = pathlib.Path(sys.executable).parent
OPENSTACK = str(VENV_BIN / "openstack")
CLI_TIMEOUT = 60
STOP_TIMEOUT = 10

BACKENDS = ["sqlite"]
if os.environ.get("FERROSTACK_TEST_POSTGRES"):
    BACKENDS.append("postgres")
elif os.environ.get("FERROSTACK_REQUIRE_POSTGRES") == "1":
    raise RuntimeError("FERROSTACK_REQUIRE_POSTGRES=1 but FERROSTACK_TEST_POSTGRES is not set")


# --- helpers --------------------------------------------------------------------------

def field(d, key):
    """OSC prints some field names capitalised ("ID", "Secret", "Project ID"): look a
    field up by its snake_case name, whatever the CLI called it."""
    want = key.lower().replace(" ", "_")
    for k, v in d.items():
        if k.lower().replace(" ", "_") == want:
            return v
    raise KeyError(f"{key} not in {sorted(d)}")


def column(rows, key):
    return [field(r, key) for r in rows]


def clean_env(extra=None):
    """The test process's environment without any OS_*/AWS_*/EC2_* a developer may have
    exported, plus `extra`."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OS_", "AWS_", "EC2_", "FERROSTACK_"))}
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra or {})
    return env


class CliError(Exception):
    def __init__(self, argv, returncode, stdout, stderr, timed_out=False):
        self.argv, self.returncode = argv, returncode
        self.stdout, self.stderr = stdout, stderr
        what = "timed out" if timed_out else f"exited {returncode}"
        super().__init__(f"`openstack {shlex.join(argv)}` {what}\n--- stderr:\n{stderr.strip()}"
                         f"\n--- stdout:\n{stdout.strip()}")


class CliRunner:
    """Runs `openstack ...` either through oscfork.py (default) or as a subprocess."""

    def __init__(self):
        self.mode = os.environ.get("FERROSTACK_CONFORMANCE_CLI", "fork")
        self.proc = None
        self.lock = threading.Lock()
        self.tmp = pathlib.Path(tempfile.mkdtemp(prefix="ferrostack-cli-"))

    def _zygote(self):
        if self.proc is None or self.proc.poll() is not None:
            self.proc = subprocess.Popen(
                [sys.executable, str(HERE / "oscfork.py")], cwd=str(self.tmp),
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=clean_env(),
                start_new_session=True)
            line = self.proc.stdout.readline()
            if line.strip() != "ready":
                raise RuntimeError(f"oscfork.py did not start: {line!r}")
        return self.proc

    def run(self, argv, env, timeout=CLI_TIMEOUT):
        """Returns (returncode, stdout, stderr, timed_out)."""
        if self.mode == "subprocess":
            try:
                p = subprocess.run([OPENSTACK, *argv], env=env, cwd=str(self.tmp), text=True,
                                   capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)
                return p.returncode, p.stdout, p.stderr, False
            except subprocess.TimeoutExpired as e:
                text = [x.decode(errors="replace") if isinstance(x, bytes) else (x or "")
                        for x in (e.stdout, e.stderr)]
                return -9, text[0], text[1], True
        with self.lock:
            z = self._zygote()
            out, err = self.tmp / "stdout", self.tmp / "stderr"
            req = {"argv": argv, "env": env, "cwd": str(self.tmp), "stdout": str(out),
                   "stderr": str(err), "timeout": timeout}
            try:
                z.stdin.write(json.dumps(req) + "\n")
                z.stdin.flush()
                line = z.stdout.readline()
                if not line:
                    raise RuntimeError("oscfork.py died")
            except BaseException:
                # e.g. pytest-timeout interrupted us: its answer would be read as the next
                # command's, so this fork server and the command it runs go.
                self.kill()
                raise
            res = json.loads(line)
            return res["returncode"], out.read_text(), err.read_text(), res["timed_out"]

    def kill(self):
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()
            self.proc = None

    def close(self):
        if self.proc is not None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
                self.proc = None
            except subprocess.TimeoutExpired:
                self.kill()
        shutil.rmtree(self.tmp, ignore_errors=True)


_CLI = CliRunner()


def pytest_sessionfinish(session, exitstatus):
    _CLI.close()


class RequestIdSession(requests.Session):
    """requests, asserting that every response of ours carries x-openstack-request-id."""

    def request(self, method, url, *args, **kwargs):
        kwargs.setdefault("timeout", 30)
        r = super().request(method, url, *args, **kwargs)
        assert r.headers.get("x-openstack-request-id", "").startswith("req-"), \
            f"{method} {url} -> {r.status_code} without x-openstack-request-id: {dict(r.headers)}"
        return r


# --- the server -----------------------------------------------------------------------

class Cloud:
    """One `ferrostack up` process with its state directory, and ways to talk to it."""

    def __init__(self, backend, tmp, env=None):
        self.backend = backend
        self.tmp = tmp
        self.state = tmp / "state"
        self.database = None
        if backend == "postgres":
            base = os.environ["FERROSTACK_TEST_POSTGRES"].rstrip("/")
            self.database = f"{base}/fs_conf_{uuid.uuid4().hex[:12]}"
        self.extra_env = dict(env or {})
        self.log = tmp / "server.log"
        self.proc = None
        self.base = None
        self.users_file = tmp / "clouds-users.yaml"
        self.user_clouds = {}
        self.http = RequestIdSession()
        self._admin_token = None
        self.start()

    # process ------------------------------------------------------------------------
    def server_env(self):
        env = clean_env(self.extra_env)
        env.setdefault("NO_COLOR", "1")
        # The API suites run on the fake driver; the real-guest suite (test_qemu*)
        # asks for qemu in its SERVER_ENV. (`ferrostack up` itself defaults to auto.)
        env.setdefault("FERROSTACK_COMPUTE__DRIVER", "fake")
        # many clouds run at once: each console proxy on a port of its own
        env.setdefault("FERROSTACK_CONSOLE__LISTEN", "127.0.0.1:0")
        return env

    @property
    def url_file(self):
        return self.state / "ferrostack.url"

    def start(self, timeout=60):
        if not os.access(BIN, os.X_OK):
            raise RuntimeError(f"no ferrostack binary at {BIN}: run `cargo build -p ferrostack` "
                               "or set FERROSTACK_BIN")
        if self.url_file.exists():
            self.url_file.unlink()
        cmd = [BIN, "up", "--state-dir", str(self.state), "--listen", "127.0.0.1:0"]
        if self.database:
            cmd += ["--database", self.database]
        with open(self.log, "ab") as log:
            log.write(f"\n===== {shlex.join(cmd)}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(cmd, env=self.server_env(), stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=log)
        deadline = time.monotonic() + timeout
        while not self.url_file.exists():
            if self.proc.poll() is not None:
                code, self.proc = self.proc.returncode, None
                raise RuntimeError(f"`ferrostack up` exited {code} before it was ready:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"`ferrostack up` not ready within {timeout}s:\n{self.log_tail()}")
            time.sleep(0.02)
        self.base = self.url_file.read_text().strip().rstrip("/")
        assert self.base.startswith("http://127.0.0.1:"), self.base
        self._admin_token = None
        self.clouds = yaml.safe_load((self.state / "clouds.yaml").read_text())["clouds"]
        self.admin_password = self.clouds["ferrostack"]["auth"]["password"]

    def stop(self, timeout=STOP_TIMEOUT):
        """SIGTERM, as an init system would; returns the exit status."""
        proc, self.proc = self.proc, None
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise AssertionError(f"ferrostack did not stop within {timeout}s of SIGTERM:\n{self.log_tail()}")

    def kill(self):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def log_tail(self, lines=60):
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"

    def ferrostack(self, *args, timeout=60):
        """Runs `ferrostack ARGS... --state-dir DIR` (e.g. admin commands)."""
        return subprocess.run([BIN, *args, "--state-dir", str(self.state)], env=self.server_env(),
                              capture_output=True, text=True, timeout=timeout)

    # addresses ------------------------------------------------------------------------
    @property
    def clouds_yaml(self):
        return str(self.state / "clouds.yaml")

    @property
    def identity(self):
        return f"{self.base}/identity"

    @property
    def auth_url(self):
        return f"{self.base}/identity/v3"

    # the openstack CLI ----------------------------------------------------------------
    def add_user_cloud(self, name, username=None, password=None, project=None,
                       domain="Default", auth=None, auth_type=None):
        """Adds `name` to a second clouds.yaml (tmp/clouds-users.yaml) for another
        identity; use it as openstack(..., cloud=name) or sdk(name)."""
        entry = {"auth": auth or {"auth_url": self.auth_url, "username": username,
                                  "password": password, "user_domain_name": domain},
                 "region_name": "RegionOne", "identity_api_version": 3, "interface": "public"}
        entry["auth"].setdefault("auth_url", self.auth_url)
        if project is not None:
            entry["auth"].update({"project_name": project, "project_domain_name": domain})
        if auth_type:
            entry["auth_type"] = auth_type
        self.user_clouds[name] = entry
        self.users_file.write_text(yaml.safe_dump({"clouds": self.user_clouds}))
        os.chmod(self.users_file, 0o600)
        return name

    def run_cli(self, *args, cloud="ferrostack", env=None, fmt="json", timeout=CLI_TIMEOUT):
        """Runs `openstack [--os-cloud CLOUD] ARGS [-f json]`; returns (rc, stdout, stderr).
        With cloud=None the identity comes from `env` (OS_AUTH_URL, OS_USERNAME, ...)
        alone, as after sourcing an openrc."""
        argv = [str(a) for a in args]
        full = (["--os-cloud", cloud] if cloud else []) + argv + (["-f", fmt] if fmt else [])
        if cloud is None:
            e = clean_env()
        else:
            clouds_file = self.clouds_yaml if cloud in self.clouds else str(self.users_file)
            e = clean_env({"OS_CLIENT_CONFIG_FILE": clouds_file})
        e.update(env or {})
        rc, out, err, timed_out = _CLI.run(full, e, timeout)
        if timed_out:
            raise CliError(full, rc, out, err, timed_out=True)
        return rc, out, err, full

    def openstack(self, *args, cloud="ferrostack", env=None, fmt="json", timeout=CLI_TIMEOUT):
        """Runs the openstack CLI, which must succeed; returns its parsed JSON output
        (fmt="json", the default), or its text (fmt=None)."""
        rc, out, err, argv = self.run_cli(*args, cloud=cloud, env=env, fmt=fmt, timeout=timeout)
        if rc != 0:
            raise CliError(argv, rc, out, err)
        if fmt == "json":
            try:
                return json.loads(out) if out.strip() else None
            except ValueError:
                raise CliError(argv, rc, out, f"(stdout is not JSON)\n{err}")
        return out

    def openstack_fails(self, *args, cloud="ferrostack", env=None, fmt=None, status=None):
        """Runs the openstack CLI, which must fail; returns its stderr. With `status`
        (e.g. 403), the error the CLI prints must mention it."""
        rc, out, err, argv = self.run_cli(*args, cloud=cloud, env=env, fmt=fmt)
        assert rc != 0, f"`openstack {shlex.join(argv)}` succeeded but should not have:\n{out}"
        assert "Traceback" not in err, f"the CLI crashed on our answer:\n{err}"
        if status is not None:
            assert str(status) in err, f"expected HTTP {status} in the CLI's error:\n{err}"
        return err

    # openstacksdk and raw HTTP --------------------------------------------------------
    def sdk(self, cloud="ferrostack"):
        import openstack

        path = self.clouds_yaml if cloud in self.clouds else str(self.users_file)
        config = openstack.config.OpenStackConfig(config_files=[path], secure_files=[],
                                                  load_envvars=False)
        return openstack.connection.Connection(config=config.get_one(cloud=cloud))

    def password_token(self, user="admin", password=None, project="admin", domain="Default"):
        """POST /v3/auth/tokens with a password, project-scoped: (token, body)."""
        scope = {"project": {"name": project, "domain": {"name": domain}}} if project else None
        body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": user, "domain": {"name": domain},
            "password": self.admin_password if password is None else password}}}}}
        if scope:
            body["auth"]["scope"] = scope
        r = self.http.post(f"{self.auth_url}/auth/tokens", json=body)
        assert r.status_code == 201, f"token for {user}: {r.status_code} {r.text}"
        return r.headers["X-Subject-Token"], r.json()["token"]

    @property
    def admin_token(self):
        if self._admin_token is None:
            self._admin_token = self.password_token()[0]
        return self._admin_token

    def validate(self, token):
        """GET /v3/auth/tokens for `token`, as the admin: the response."""
        return self.http.get(f"{self.auth_url}/auth/tokens",
                             headers={"X-Auth-Token": self.admin_token, "X-Subject-Token": token})


def _cloud(backend, tmp_path_factory, env=None):
    c = Cloud(backend, tmp_path_factory.mktemp(f"cloud-{backend}"), env)
    try:
        yield c
    finally:
        if c.proc is not None:
            code = c.stop()
            assert code == 0, f"ferrostack exited {code} on SIGTERM (want 0):\n{c.log_tail()}"
            assert not c.url_file.exists(), "ferrostack.url is still there after shutdown"


@pytest.fixture(scope="module", params=BACKENDS)
def cloud(request, tmp_path_factory):
    """A server shared by the tests of one module. A module may set
    `SERVER_ENV = {...}` for extra FERROSTACK_* settings."""
    yield from _cloud(request.param, tmp_path_factory, getattr(request.module, "SERVER_ENV", None))


@pytest.fixture(params=BACKENDS)
def fresh_cloud(request, tmp_path_factory):
    """A server of the test's own, for tests that stop and restart it."""
    yield from _cloud(request.param, tmp_path_factory, getattr(request.module, "SERVER_ENV", None))


@pytest.fixture
def name():
    """A unique name, so that tests sharing a module's server do not collide."""
    return f"c{uuid.uuid4().hex[:10]}"


@pytest.fixture
def member(cloud, name):
    """A project NAME and a user NAME (password "pw-NAME") with `member` on it, and a
    clouds.yaml entry NAME for that user. Returns a dict with their ids."""
    project = cloud.openstack("project", "create", name)
    user = cloud.openstack("user", "create", "--password", f"pw-{name}", "--project", name, name)
    cloud.openstack("role", "add", "--user", name, "--project", name, "member", fmt=None)
    cloud.add_user_cloud(name, name, f"pw-{name}", project=name)
    return {"name": name, "cloud": name, "password": f"pw-{name}",
            "project_id": project["id"], "user_id": user["id"]}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed and hasattr(item, "funcargs"):
        for key in ("cloud", "fresh_cloud", "guests", "short_ttl"):
            c = item.funcargs.get(key)
            c = getattr(c, "cloud", c)  # the real-guest suites' Guests wrap a Cloud
            if isinstance(c, Cloud):
                report.sections.append((f"ferrostack server log ({c.backend}, last lines)", c.log_tail()))
