"""Run inside the sandbox as ``python -P -c <this file's text> pytest-args...``: the daemon's reporter.

It imports nothing from the package (the sandbox may not even see it). Before any
workspace code runs it:

1. imports pytest, then reads its configuration (a nonce, the canary's name and nonce, the
   workspace, the run's test paths) from a pipe the daemon fills and closes, whose number is
   in ``AI_AGENTS_VERDICT_FD``, then closes it: nothing of it stays in the environment, argv
   or the file system;
2. moves the report pipe's write end to a random descriptor marked close-on-exec;
3. installs a PEP 578 audit hook that refuses, and reports as tampering, what forging
   a verdict needs: frame and garbage-collector walks, tracing, ctypes, /proc/<pid>/fd
   and /proc/<pid>/mem, compiling code from the Developer's modules, new audit hooks,
   rewriting the code of the test framework's functions;
4. starts pytest with its own plugin: every record (collected ids, whether each test's
   call raised, each report, a canary test that must fail, a snapshot check of the test
   framework's classes and functions) is streamed over the pipe as it happens, each line
   carrying the nonce. Nothing is read back from a file the tests could write.

After pytest returns it writes the ``end`` record, closes the pipe and leaves with
``os._exit`` so that no ``atexit`` handler of the code under test runs after the verdict.
The daemon judges the records (``verdict.py``); a plugin cannot make it pass anything.
"""


def _main() -> None:  # everything local: nothing reachable through sys.modules["__main__"]
    globals().pop("_main", None)
    import contextlib
    import fcntl
    import json
    import operator
    import os
    import random
    import resource
    import sys
    from _json import encode_basestring_ascii as quote

    write, close, getpid = os.write, os.close, os.getpid
    ctl = int(os.environ.pop("AI_AGENTS_VERDICT_FD"))
    # pytest (and ctypes, see the hook) are imported before the configuration is read: the process may
    # be started ahead of its run (runner.py's warm()) and wait here, its imports done, for the daemon to
    # send what the run is. No workspace code runs before the hook is installed either way.
    import ctypes  # noqa: F401
    import gc
    import importlib

    import pytest
    from _pytest.config import default_plugins

    # pytest imports its built-in plugins when the run configures itself: done here instead, and what is
    # loaded so far is frozen out of the garbage collector's scans (pytest collects at the session's end).
    disabled = {arg[3:] for arg in sys.argv[1:] if arg.startswith("no:")}  # -p no:NAME on the command line
    for name in default_plugins:
        if name not in disabled:
            with contextlib.suppress(ImportError):
                importlib.import_module(f"_pytest.{name}")
    gc.freeze()
    raw = b""
    while chunk := os.read(ctl, 65536):
        raw += chunk
    close(ctl)
    if not raw:  # never sent (a process started ahead and not used): no run, no records
        os._exit(3)
    cfg = json.loads(raw)
    del raw
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    top = min(soft if soft > 0 else 1024, 4096) - 1
    fd = fcntl.fcntl(cfg["report_fd"], fcntl.F_DUPFD_CLOEXEC, random.randint(min(64, top), top))
    close(cfg["report_fd"])
    nonce: str = cfg["nonce"]
    workspace: str = cfg["workspace"].rstrip("/") + "/"
    tests_dir: str = workspace + cfg["tests_dir"].strip("/") + "/"
    canary_name: str = cfg["canary"]
    canary_nonce: str = cfg["canary_nonce"]
    allowed_plugins = None if cfg.get("plugins") is None else frozenset(cfg["plugins"])
    trusted = None if cfg.get("trusted") is None else frozenset(cfg["trusted"])
    pid = getpid()
    workspace_root = cfg["workspace"]
    state = {"open": True, "sealed": False, "busy": False}

    def encode(value: object) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int):
            return str(int(value))
        if value is None:
            return "null"
        if isinstance(value, list | tuple):
            return "[" + ",".join(encode(v) for v in value) + "]"
        return quote(str(value))

    def emit(kind: str, **fields: object) -> None:
        if not state["open"] or getpid() != pid:
            return  # a forked child of a test: not the session's voice
        items = {"k": nonce, "t": kind, **fields}
        data = ("{" + ",".join(f"{quote(k)}:{encode(v)}" for k, v in items.items()) + "}\n").encode()
        while data:
            data = data[write(fd, data):]

    # --- the audit hook -------------------------------------------------------------------------
    frame_of = sys._getframe
    frames = frozenset({"tb_frame", "gi_frame", "cr_frame", "ag_frame", "f_back", "__code__"})
    # ctypes is imported before the seal (above: its import opens libraries, and libraries such as numpy
    # import it); what reads or calls into the process's memory afterwards is refused.
    always = frozenset({"sys.settrace", "sys.setprofile", "sys.addaudithook", "sys._current_frames",
                        "ctypes.dlopen", "ctypes.dlsym", "ctypes.cdata", "ctypes.string_at", "ctypes.wstring_at",
                        "ctypes.call_function"})
    by_developer = frozenset({"sys._getframe", "gc.get_objects", "gc.get_referrers", "gc.get_referents",
                              "compile", "exec", "object.__getattr__"})
    rewrites = frozenset({"__code__", "__class__", "__defaults__", "__kwdefaults__", "__bases__", "__dict__"})
    proc_parts = ("/fd", "/fdinfo", "/mem", "/map_files", "/task")
    helpers = ("/inspect.py", "/traceback.py")

    def developer_file(name: str) -> bool:
        if name.startswith("<"):
            return not name.startswith("<frozen")  # exec'd or compiled text: not a real module
        if not name.startswith(workspace):
            return False
        # QA's committed tests are not the Developer's; a file a run wrote under tests/ is.
        return name not in trusted if trusted is not None else not name.startswith(tests_dir)

    def called_by_developer() -> bool:
        frame = frame_of(2)  # 0: this function, 1: the hook, 2: the code that did it
        name = frame.f_code.co_filename
        if name.endswith(helpers) and frame.f_back is not None:
            name = frame.f_back.f_code.co_filename  # inspect.currentframe() and the like, called by it
        return developer_file(name)

    def protected_proc_path(path: object) -> bool:
        text = os.fsdecode(path) if isinstance(path, str | bytes) else ""
        if not text.startswith(("/proc/", "/dev/fd")):
            return False
        return text.startswith("/dev/fd") or any(part in text for part in proc_parts)

    def refuse(why: str) -> None:
        emit("tamper", why=why)
        raise RuntimeError(f"refused by the daemon's test verdict: {why}")

    def hook(event: str, args: tuple[object, ...]) -> None:
        if not state["sealed"] or state["busy"]:
            return
        if event in always:
            state["busy"] = True
            try:
                refuse(f"{event} during the test session")
            finally:
                state["busy"] = False
        elif event in ("open", "os.listdir", "os.scandir"):
            if args and protected_proc_path(args[0]):
                refuse(f"{event} {args[0]!r}: the test process's descriptors and memory are the daemon's")
        elif event in ("object.__setattr__", "object.__delattr__") and len(args) > 1 and args[1] in rewrites:
            target = args[0]
            module = getattr(target, "__module__", None) or getattr(type(target), "__module__", "")
            if isinstance(module, str) and module.split(".")[0] in ("_pytest", "pytest", "pluggy"):
                refuse(f"{event} {args[1]!r} on {module}: the test framework is the daemon's")
        elif event in by_developer:
            if event == "object.__getattr__" and (len(args) < 2 or args[1] not in frames):
                return
            state["busy"] = True
            try:
                if called_by_developer():
                    refuse(f"{event} {args[1] if event == 'object.__getattr__' else ''} from the code under test"
                           .replace("  ", " "))
            finally:
                state["busy"] = False

    sys.addaudithook(hook)

    # --- the integrity snapshot -------------------------------------------------------------------
    def callables(mapping: object) -> dict[str, object]:
        return {k: v for k, v in dict(mapping).items()  # type: ignore[call-overload]
                if callable(v) or isinstance(v, property | staticmethod | classmethod)}

    # (label, live namespace, its callables at seal time, their keys, their ids, its size, is a class):
    # a module's functions and classes must stay the same objects; a class must also gain none
    # (pytest sets some module globals, e.g. _reprcompare, while it runs: new module names are not
    # checked). Compared with operator.is_ in C (map; not id(), which raises an audit event per
    # call), so a check costs well under a millisecond.
    snapshot: list[tuple[str, dict[str, object], dict[str, object], tuple[str, ...], list[object], int, bool]] = []
    # The same, flattened for one pass in C: getters[i](keys[i]) is values[i]; len(classes[j]) == sizes[j].
    getters: list[object] = []
    keys_flat: list[str] = []
    values_flat: list[object] = []
    classes: list[object] = []
    sizes: list[int] = []
    same, call = operator.is_, operator.call

    def seal() -> None:
        seen: set[int] = set()

        def add(label: str, live: object, is_class: bool) -> None:
            saved = callables(live)
            keys = tuple(saved)
            if not keys:
                return
            values = [saved[k] for k in keys]
            snapshot.append((label, live, saved, keys, values, len(live), is_class))  # type: ignore[arg-type]
            getters.extend([live.get] * len(keys))  # type: ignore[attr-defined]
            keys_flat.extend(keys)
            values_flat.extend(values)
            if is_class:
                classes.append(live)
                sizes.append(len(live))  # type: ignore[arg-type]

        for name, module in list(sys.modules.items()):
            if module is None or name.split(".")[0] not in ("_pytest", "pytest", "pluggy"):
                continue
            add(name, vars(module), False)
            for value in list(vars(module).values()):
                if isinstance(value, type) and id(value) not in seen and \
                        str(getattr(value, "__module__", "")).split(".")[0] in ("_pytest", "pytest", "pluggy"):
                    seen.add(id(value))
                    add(f"{value.__module__}.{value.__qualname__}", vars(value), True)
        state["sealed"] = True

    told: set[str] = set()

    def check(where: str) -> None:
        # (classes hold class namespaces, getters their .get: typed as objects, as above)
        if list(map(len, classes)) == sizes and all(map(same, map(call, getters, keys_flat), values_flat)):  # type: ignore[arg-type]
            return
        for label, live, saved, keys, values, size, is_class in snapshot:
            if all(map(same, map(live.get, keys), values)) and (not is_class or len(live) == size):
                continue
            changed = [k for k, v in saved.items() if live.get(k) is not v]
            if is_class and len(live) != size:
                changed += sorted(set(callables(live)) - set(saved))
            for key in changed:
                if f"{label}.{key}" not in told:  # each change once, where it was first seen
                    told.add(f"{label}.{key}")
                    emit("tamper", why=f"{label}.{key} was replaced, removed or added ({where})")

    def canary() -> None:
        raise AssertionError(f"the daemon's canary must fail: {canary_nonce}")

    class Verdict:
        """The daemon's plugin: streams what happened; the daemon decides."""

        def pytest_plugin_registered(self, plugin: object) -> None:
            file = getattr(plugin, "__file__", None)
            if not isinstance(file, str):
                return
            real = os.path.realpath(file)
            if not real.startswith(workspace):
                return
            known = os.path.basename(real) == "conftest.py" if allowed_plugins is None else real in allowed_plugins
            if not known:
                emit("tamper", why=f"{real[len(workspace):]} was loaded as a pytest plugin but is no tracked "
                                   "conftest.py (planted by an earlier run, or named by -p / pytest_plugins)")

        @pytest.hookimpl(tryfirst=True)
        def pytest_collection(self, session: pytest.Session) -> None:
            seal()

        @pytest.hookimpl(trylast=True)
        def pytest_collection_modifyitems(self, session: pytest.Session, config: pytest.Config,
                                          items: list[pytest.Item]) -> None:
            modules = [m for m in dict.fromkeys(i.getparent(pytest.Module) for i in items) if m is not None]
            if not modules:
                return
            module = random.choice(modules)
            item = pytest.Function.from_parent(module, name=canary_name, callobj=canary)
            last = max(i for i, it in enumerate(items) if it.getparent(pytest.Module) is module)
            items.insert(last + 1, item)

        def pytest_collection_finish(self, session: pytest.Session) -> None:
            check("collection")
            emit("collected", ids=[i.nodeid for i in session.items])

        def pytest_collectreport(self, report: pytest.CollectReport) -> None:
            if report.failed:
                emit("collect_error", id=report.nodeid, longrepr=str(report.longrepr)[-4000:])

        @pytest.hookimpl(wrapper=True, tryfirst=True)
        def pytest_runtest_call(self, item: pytest.Item):  # type: ignore[no-untyped-def]
            function = isinstance(item, pytest.Function)
            try:
                result = yield
            except BaseException as e:
                check(f"during the call of {item.nodeid}")  # before any framework code runs again
                emit("call", id=item.nodeid, raised=True, exc=type(e).__name__, fn=function)
                raise
            check(f"during the call of {item.nodeid}")
            emit("call", id=item.nodeid, raised=False, exc="", fn=function)
            return result

        @pytest.hookimpl(wrapper=True, tryfirst=True)
        def pytest_pyfunc_call(self, pyfuncitem: pytest.Function):  # type: ignore[no-untyped-def]
            try:
                result = yield
            except BaseException as e:
                emit("pyfunc", id=pyfuncitem.nodeid, raised=True, exc=type(e).__name__)
                raise
            emit("pyfunc", id=pyfuncitem.nodeid, raised=False, exc="")
            return result

        @pytest.hookimpl(tryfirst=True)
        def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
            if report.when == "teardown" and report.failed:
                check(f"after the teardown of {report.nodeid}")  # else the next call's check sees it
            longrepr = str(report.longrepr)[-4000:] if report.failed else ""
            if report.skipped and isinstance(report.longrepr, tuple):
                longrepr = str(report.longrepr[-1])[:500]
            message = getattr(getattr(report.longrepr, "reprcrash", None), "message", "") if report.failed else ""
            emit("report", id=report.nodeid, when=report.when, outcome=report.outcome,
                 xfail=hasattr(report, "wasxfail"), message=str(message)[:1000], longrepr=longrepr)

        @pytest.hookimpl(tryfirst=True)
        def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
            check("session end")
            emit("finish", exitstatus=int(exitstatus))

    emit("start")
    # What the tests may import (site_view.py): the views of the project's locked packages and of the
    # test framework, in place of the daemon's site-packages; pytest and what it loaded are already in
    # sys.modules by now.
    hide = frozenset(cfg.get("hide_paths") or [])
    sys.path[:] = [*(cfg.get("extra_paths") or []),
                   *(p for p in sys.path if p not in hide and os.path.realpath(p) not in hide)]
    sys.path.append(os.getcwd())
    args = [*sys.argv[1:], *cfg.get("args", []), f"--rootdir={workspace_root}"]
    sys.argv[:] = ["pytest", *args]
    try:
        rc = int(pytest.main(args, plugins=[Verdict()]))
    except BaseException as e:  # whatever happened, the daemon hears of it
        emit("crash", exc=type(e).__name__)
        rc = 3
    emit("end", rc=rc)
    state["open"] = False
    close(fd)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a closed stream must not change the exit status
            stream.flush()
    os._exit(rc)


_main()
