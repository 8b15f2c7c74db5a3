"""Runs the `openstack` CLI fast: one interpreter imports python-openstackclient and all
of its command plugins once, then forks a child per command, and the child calls the
CLI's own entry point (`openstackclient.shell.main`, what `.venv/bin/openstack` calls)
with the command's argv, environment and working directory, stdout and stderr going to
the files the caller names. The child exits with the CLI's exit status.

Importing the CLI costs ~1.2 s of the ~1.6 s a command takes on a 2-core machine; forking
brings a command down to ~0.15 s, which is what keeps the conformance suite in minutes.
Nothing else is shared: each command is a fresh process with its own sessions, logging
set-up and authentication. FERROSTACK_CONFORMANCE_CLI=subprocess (see conftest.py) runs
the real console script instead.

Protocol (this module as a program): it prints "ready" once warmed up, then for each JSON
line on stdin {"argv", "env", "cwd", "stdout", "stderr", "timeout"} it answers one JSON
line {"returncode", "timed_out"}.
"""

import json
import os
import signal
import sys
import time
import traceback


def _preload():
    import importlib
    from importlib import metadata

    import openstackclient.shell  # noqa: F401

    groups = ("openstack.", "keystoneauth1.", "cliff.formatter.", "oslo.config.")
    for dist in metadata.distributions():
        for ep in dist.entry_points:
            if ep.group.startswith(groups):
                try:
                    importlib.import_module(ep.module)
                except Exception:  # a plugin that does not import fails the same way in the CLI
                    pass
    try:  # cliff maps command modules to their distributions for --help epilogs; warm it
        import cliff.command

        cliff.command._get_distributions_by_modules()
    except Exception:
        pass


def _exit_code(code):
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


def _child(req):
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    for fd, path in ((1, req["stdout"]), (2, req["stderr"])):
        f = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(f, fd)
        os.close(f)
    os.environ.clear()
    os.environ.update(req["env"])
    os.chdir(req["cwd"])
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    sys.argv = [sys.argv[0], *req["argv"]]
    from openstackclient import shell

    try:
        code = _exit_code(shell.main())
    except SystemExit as e:
        code = _exit_code(e.code)
    except BaseException:
        traceback.print_exc()
        code = 1
    try:
        import atexit

        atexit._run_exitfuncs()
    except BaseException:
        pass
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    os._exit(code)


def _run(req):
    pid = os.fork()
    if pid == 0:
        try:
            _child(req)
        finally:
            os._exit(70)
    deadline = time.monotonic() + float(req.get("timeout", 120))
    pause = 0.001
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return {"returncode": os.waitstatus_to_exitcode(status), "timed_out": False}
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            _, status = os.waitpid(pid, 0)
            return {"returncode": os.waitstatus_to_exitcode(status), "timed_out": True}
        time.sleep(pause)
        pause = min(pause * 2, 0.01)


def main():
    # cliff takes the program's name from sys.argv[0] when it is imported
    sys.argv = [os.path.join(os.path.dirname(sys.executable), "openstack")]
    _preload()
    out = sys.stdout
    out.write("ready\n")
    out.flush()
    for line in sys.stdin:
        if not line.strip():
            continue
        out.write(json.dumps(_run(json.loads(line))) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
