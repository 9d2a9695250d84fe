"""``python -m bench`` (``make bench``): run every benchmark once, report.

The run works in a temporary folder of its own (``/tmp/byz-bench-*``): a
fresh state folder (database, secrets, Redis socket), and labs under the
bench-only prefixes ``bnw`` (the node under test), ``bnc`` (convergence
timing), ``bnm`` (mesh apply and directory, :mod:`bench.meshnet`) and
``bns`` (services, :mod:`bench.services`), so it
never disturbs ``make run``'s ``var/`` and ``byz`` lab, nor the test suite's
labs. The folder and everything started are removed at
the end, on error and on Ctrl-C; a folder left by a run that was killed
outright is removed by the next run.

Results go to ``bench/results/<timestamp>.json`` (git-ignored) and a table
is printed. The exit status is non-zero when a section failed or a page
answered anything but 2xx under load.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
WORK_PREFIX = "byz-bench-"
OWNER_FILE = "owner.pid"
NODE_LAB_PREFIX = "bnw"
CONVERGENCE_LAB_PREFIX = "bnc"
SETTINGS_MODULE = "portal.settings.dev"


def say(line: str) -> None:
    print(line, flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description="Byzantium node portal benchmarks"
    )
    parser.add_argument("--rounds", type=int, default=3, help="wrk rounds (3)")
    parser.add_argument(
        "--duration", type=float, default=10.0, help="seconds per wrk run (10)"
    )
    parser.add_argument(
        "--warmup", type=float, default=3.0, help="warm-up seconds per target (3)"
    )
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--settle", type=float, default=10.0, help="idle seconds before memory (10)"
    )
    parser.add_argument(
        "--lab-repetitions",
        type=int,
        default=0,
        help="repetitions per convergence case (default: 3, 3 and 2)",
    )
    parser.add_argument("--no-web", action="store_true", help="skip web and memory")
    parser.add_argument("--no-lab", action="store_true", help="skip convergence")
    parser.add_argument(
        "--mesh",
        action="store_true",
        help="mesh convergence after apply with 3 repetitions per case (~3 min; "
        "the default run does 1)",
    )
    parser.add_argument(
        "--no-mesh", action="store_true", help="skip mesh convergence and sync"
    )
    parser.add_argument(
        "--captive",
        action="store_true",
        help="also the captive portal: firewall sets against per-client rules "
        "(~2 min) and the real portal's tap latency and probe rates (~1 min)",
    )
    parser.add_argument(
        "--captive-portal",
        action="store_true",
        help="also the real portal's tap latency and probe rates (~1 min), "
        "without the firewall part of --captive",
    )
    parser.add_argument(
        "--services",
        action="store_true",
        help="also the services: switch-on to healthy and memory of each daemon "
        "(ircd, voice, xmpp, stream, library; 3 repetitions, ~2 min)",
    )
    parser.add_argument(
        "--gateway",
        action="store_true",
        help="also the gateway: failover between two gateways, NAT throughput "
        "against plain routing (~2 min)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run: 1 round of 2 s, 1 repetition, short settle",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.duration, args.warmup, args.settle = 1, 2.0, 1.0, 2.0
        args.lab_repetitions = args.lab_repetitions or 1
    return args


# -- the work folder and Django ------------------------------------------------


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_work_dirs(tmp: Path) -> list[Path]:
    """Folders of earlier runs whose owner process is gone."""
    removed = []
    for folder in tmp.glob(f"{WORK_PREFIX}*"):
        try:
            owner = int((folder / OWNER_FILE).read_text().strip())
        except (OSError, ValueError):
            continue
        if not _pid_alive(owner):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def make_work_dir() -> Path:
    """A fresh folder every user may enter (the web user must reach the
    state folder inside it), recording this process as its owner."""
    tmp = Path(tempfile.gettempdir())
    remove_stale_work_dirs(tmp)
    work = Path(tempfile.mkdtemp(prefix=WORK_PREFIX, dir=tmp))
    work.chmod(0o755)
    (work / OWNER_FILE).write_text(f"{os.getpid()}\n")
    return work


def bench_environment(work: Path, *, root: bool) -> dict[str, str]:
    """The portal's settings for this run: only ``BYZANTIUM_*`` we choose.

    Any operator configuration in the caller's environment is dropped, so
    the run measures the embedded defaults that ``make run`` uses.
    """
    return {
        "BYZANTIUM_STATE_DIR": str(work / "state"),
        "BYZANTIUM_HOST_MODE": "lab" if root else "dry-run",
        "BYZANTIUM_LAB_PREFIX": NODE_LAB_PREFIX,
        "DJANGO_SETTINGS_MODULE": SETTINGS_MODULE,
    }


def set_up_django(work: Path, *, root: bool) -> None:
    for key in [k for k in os.environ if k.startswith("BYZANTIUM_")]:
        del os.environ[key]
    os.environ.update(bench_environment(work, root=root))
    (work / "state").mkdir(mode=0o755)
    sys.path.insert(0, str(REPO_DIR))
    import django

    django.setup()


# -- machine facts -------------------------------------------------------------


def _first_line(argv: list[str]) -> str | None:
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (result.stdout or result.stderr).strip()
    return text.splitlines()[0] if text else None


def machine_facts() -> dict[str, Any]:
    """What the figures depend on: CPUs, memory, load, software versions."""
    import django
    import gunicorn

    cpu_model = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_total = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_total = round(int(line.split()[1]) / 1024)
    except OSError:
        pass
    return {
        "hostname": platform.node(),
        "cpus": os.cpu_count(),
        "cpu_model": cpu_model,
        "memory_mb": mem_total,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "django": django.get_version(),
        "gunicorn": gunicorn.__version__,
        "wrk": _first_line(["wrk", "--version"]),
        "redis": _first_line(["redis-server", "--version"]),
        "babeld": _first_line(["babeld", "-V"]),
        "git_commit": _first_line(["git", "-C", str(REPO_DIR), "rev-parse", "HEAD"]),
        "loadavg_start": os.getloadavg(),
    }


def gunicorn_settings() -> dict[str, Any]:
    """The settings of ``deploy/gunicorn.conf.py`` that shape the figures."""
    import runpy

    from portal.management.commands.runnode import DEPLOY_DIR

    values = runpy.run_path(str(DEPLOY_DIR / "gunicorn.conf.py"))
    keys = ("worker_class", "workers", "threads", "max_requests", "keepalive")
    return {key: values.get(key) for key in keys}


# -- sections --------------------------------------------------------------------


def measure_memory(node: Any, cookies: dict[str, str], settle: float) -> dict:
    """Serve a few requests through the supervisor's gunicorn, wait, measure."""
    from bench.memory import component_memory, summarise
    from bench.web import https_headers, request

    headers = https_headers("127.0.0.1", cookies)
    for _round in range(5):
        for path in ("/", "/jobs/", "/jobs/?page=2", "/login/"):
            request(node.unix_connection(), "GET", path, headers=headers)
    say(f"  settling {settle:g} s before reading memory")
    time.sleep(settle)
    pids = node.child_pids()
    components = [
        component_memory(name, pids[name])
        for name in ("web", "worker", "redis")
        if name in pids
    ]
    return summarise(components)


def run_node_section(args: argparse.Namespace, work: Path, *, root: bool) -> dict:
    """Memory and web load against one node; everything stopped at the end."""
    from bench import web
    from bench.memory import component_memory, summarise
    from bench.stack import ADMIN_USERNAME, NODE_NAME, BenchNode, log_tail

    out: dict[str, Any] = {}
    node = BenchNode(say=say, with_lab=root, log=work / "daemons.log")
    try:
        say("Preparing the node (migrate, setup, 200 jobs)...")
        out["data"] = node.prepare_state()
        if root:
            out["node_lab"] = node.start_lab()
        out["snapshot"] = node.store_snapshot()
        say("Starting Redis, worker and web as make run does...")
        node.start_daemons()
        cookies = web.log_in(
            node.unix_connection, "127.0.0.1", ADMIN_USERNAME, node.admin_password
        )
        from django.utils import translation

        from portal.jobqueue import registry

        registry.load()
        with translation.override("en"):
            # The job list names a registered kind by its title.
            seeded = registry.title_of("meshnet.apply_mesh")
        checks = {
            "/": (NODE_NAME, 'action="/logout/"'),
            "/jobs/": (seeded, 'action="/logout/"'),
        }
        pages = {}
        for path, expect in checks.items():
            answer = web.check_page(
                node.unix_connection(),
                path,
                host="127.0.0.1",
                cookies=cookies,
                expect=expect,
            )
            pages[path] = answer
        say("Memory: web + worker + Redis, idle")
        out["memory"] = measure_memory(node, cookies, args.settle)

        say("Web: starting the portal and the static baseline on loopback...")
        portal = node.start_gunicorn("portal", "portal.wsgi:application")
        static_file = work / "static.html"
        static_file.write_bytes(pages["/"].body)
        static_file.chmod(0o644)
        static = node.start_gunicorn(
            "static",
            "bench.static_app:application",
            extra_env={"BENCH_STATIC_FILE": str(static_file)},
        )
        tcp = {"portal": portal.port, "static": static.port}
        targets = [
            web.Target("static", static.port, "/", baseline=True),
            web.Target("dashboard", portal.port, "/", expect=checks["/"]),
            web.Target("jobs", portal.port, "/jobs/", expect=checks["/jobs/"]),
        ]

        def verify() -> None:
            for target in targets:
                host = f"127.0.0.1:{tcp['static' if target.baseline else 'portal']}"
                web.check_page(
                    http.client.HTTPConnection("127.0.0.1", target.port),
                    target.path,
                    host=host,
                    cookies=cookies,
                    expect=target.expect,
                )

        verify()
        load = web.Load(
            connections=args.connections,
            threads=args.threads,
            seconds=args.duration,
            warmup_seconds=args.warmup,
            rounds=args.rounds,
        )
        headers = {
            "X-Forwarded-Proto": "https",
            "Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items()),
        }
        results = web.run_web_rounds(targets, load, headers, say=say)
        verify()
        out["web"] = results.to_dict("static")
        out["web"]["page_bytes"] = len(pages["/"].body)
        out["web"]["gunicorn"] = gunicorn_settings()
        out["memory_after_load"] = summarise(
            [component_memory("web (bench gunicorn, after load)", portal.process.pid)]
        )
    except Exception:
        say(f"Last lines of {node.log}:\n{log_tail(node.log)}")
        raise
    finally:
        say("Stopping the node...")
        node.close()
    return out


def run_lab_section(args: argparse.Namespace, work: Path) -> list[dict[str, Any]]:
    from bench.convergence import DEFAULT_CASES, Case, run_convergence

    cases = [
        Case(c.nodes, c.topology, args.lab_repetitions or c.repetitions)
        for c in DEFAULT_CASES
    ]
    return run_convergence(CONVERGENCE_LAB_PREFIX, work / "labconv", cases, say=say)


def run_mesh_section(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from bench.meshnet import DEFAULT_CASES, QUICK_CASES, run_mesh

    cases = DEFAULT_CASES if args.mesh and not args.quick else QUICK_CASES
    return run_mesh(work / "mesh", cases=cases, say=say)


def run_captive_section(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from bench.captive_firewall import run_captive_firewall

    quick = args.quick
    return run_captive_firewall(
        work / "captive",
        rounds=1 if quick else 2,
        seconds=1.0 if quick else 3.0,
        say=say,
    )


def run_services_section(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from bench.services import run_services

    return run_services(work / "services", repetitions=1 if args.quick else 3, say=say)


def run_captive_portal_section(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from bench.captive_portal import run_captive_portal

    quick = args.quick
    return run_captive_portal(
        work / "captive-portal",
        taps=10 if quick else 30,
        seconds=2.0 if quick else 5.0,
        say=say,
    )


def run_gateway_section(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from bench.gateway import run_gateway

    quick = args.quick
    return run_gateway(
        work / "gateway",
        repetitions=2 if quick else 5,
        rounds=1 if quick else 3,
        seconds=1.0 if quick else 5.0,
        say=say,
    )


# -- report --------------------------------------------------------------------


def render_report(results: dict[str, Any]) -> str:
    """The human summary printed at the end (the JSON has everything)."""
    from bench.stats import fmt, table

    parts = []
    machine = results.get("machine", {})
    parts.append(
        f"Byzantium bench {results.get('started')} on {machine.get('hostname')}: "
        f"{machine.get('cpus')} CPUs, {machine.get('memory_mb')} MB, "
        f"load {', '.join(f'{x:.2f}' for x in machine.get('loadavg_start', ()))}"
    )
    web = (results.get("node") or {}).get("web")
    if web:
        load = web["load"]
        rows = []
        for name, summary in web["summary"].items():
            low, high = summary["ratio_to_static_spread"] or (None, None)
            rows.append(
                [
                    name,
                    fmt(summary["rps_median"]),
                    fmt(summary["p50_ms_median"]),
                    fmt(summary["p95_ms_median"]),
                    fmt(summary["p99_ms_median"]),
                    fmt(summary["errors"] + summary["non_2xx"]),
                    fmt(summary["ratio_to_static_median"], 3),
                    f"{fmt(low, 3)}-{fmt(high, 3)}",
                ]
            )
        parts.append(
            f"\nWeb: {load['connections']} connections, {load['threads']} threads, "
            f"{load['seconds']:g} s x {load['rounds']} rounds (medians)"
        )
        parts.append(
            table(
                [
                    "target",
                    "req/s",
                    "p50 ms",
                    "p95 ms",
                    "p99 ms",
                    "bad",
                    "x static",
                    "range",
                ],
                rows,
            )
        )
    memory = (results.get("node") or {}).get("memory")
    if memory:
        rows = [
            [
                c["component"],
                len(c["processes"]),
                fmt(c["rss_mb"]),
                fmt(c["pss_mb"]),
                fmt(c["uss_mb"]),
            ]
            for c in memory["components"]
        ]
        rows.append(
            [
                "total",
                sum(len(c["processes"]) for c in memory["components"]),
                fmt(memory["total_rss_mb"]),
                fmt(memory["total_pss_mb"]),
                fmt(memory["total_uss_mb"]),
            ]
        )
        verdict = "within" if memory["pss_within_target"] else "OVER"
        parts.append(
            f"\nIdle memory (MB); PSS total {verdict} the "
            f"{memory['target_mb']:g} MB target"
        )
        parts.append(table(["component", "procs", "RSS", "PSS", "USS"], rows))
    lab = results.get("lab")
    if lab:
        rows = [
            [
                case["case"],
                f"{case['converged']}/{case['repetitions']}",
                fmt(case["babel_seconds_median"], 2),
                fmt(case["babel_seconds_max"], 2),
                fmt(case["up_seconds_median"], 2),
                fmt(case["up_seconds_max"], 2),
            ]
            for case in lab
        ]
        parts.append("\nLab convergence (seconds)")
        parts.append(
            table(["case", "ok", "babel med", "babel max", "up med", "up max"], rows)
        )
    if results.get("mesh"):
        from bench.meshnet import render_mesh

        parts.append(render_mesh(results["mesh"]))
    if results.get("captive_firewall"):
        from bench.captive_firewall import render

        parts.append(render(results["captive_firewall"]))
    if results.get("services"):
        from bench.services import render_services

        parts.append(render_services(results["services"]))
    if results.get("captive_portal"):
        from bench.captive_portal import render as render_portal

        parts.append(render_portal(results["captive_portal"]))
    if results.get("gateway"):
        from bench.gateway import render as render_gateway

        parts.append(render_gateway(results["gateway"]))
    for error in results.get("errors", []):
        parts.append(f"\nERROR in {error['section']}: {error['error']}")
    return "\n".join(parts)


def failures(results: dict[str, Any]) -> list[str]:
    """Why this run does not count: failed sections, bad answers under load."""
    found = [f"{e['section']} failed" for e in results.get("errors", [])]
    web = (results.get("node") or {}).get("web")
    if web:
        for name, summary in web["summary"].items():
            if summary["errors"] or summary["non_2xx"]:
                found.append(
                    f"{name}: {summary['errors']} socket errors, "
                    f"{summary['non_2xx']} non-2xx answers"
                )
    for case in results.get("lab") or []:
        if case["converged"] != case["repetitions"]:
            found.append(f"lab {case['case']} did not always converge")
    from bench.meshnet import mesh_failures

    found.extend(mesh_failures(results.get("mesh")))
    from bench.services import services_failures

    found.extend(services_failures(results.get("services")))
    from bench.captive_portal import portal_failures

    found.extend(portal_failures(results.get("captive_portal")))
    from bench.gateway import gateway_failures

    found.extend(gateway_failures(results.get("gateway")))
    return found


def write_results(results: dict[str, Any], folder: Path = RESULTS_DIR) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = folder / f"{stamp}.json"
    path.write_text(json.dumps(results, indent=2, default=str) + "\n")
    return path


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C: clean up, then stop."""


def _on_sigterm(signum: int, frame: Any) -> None:
    raise Terminated


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    root = os.geteuid() == 0
    # Ctrl-C must clean up even when a shell started us with SIGINT ignored
    # (a background job of a script), and SIGTERM the same way.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _on_sigterm)
    if shutil.which("wrk") is None and not args.no_web:
        say("wrk is not installed: run `make deps` as root.")
        return 2
    work = make_work_dir()
    results: dict[str, Any] = {
        "version": 1,
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "root": root,
        "errors": [],
    }
    status = 0
    try:
        set_up_django(work, root=root)
        results["machine"] = machine_facts()
        sections: list[tuple[str, bool, Callable[[], Any]]] = [
            ("node", not args.no_web, lambda: run_node_section(args, work, root=root)),
            ("lab", not args.no_lab and root, lambda: run_lab_section(args, work)),
            ("mesh", not args.no_mesh and root, lambda: run_mesh_section(args, work)),
            (
                "gateway",
                args.gateway and root,
                lambda: run_gateway_section(args, work),
            ),
            (
                "captive_firewall",
                args.captive and root,
                lambda: run_captive_section(args, work),
            ),
            (
                "captive_portal",
                (args.captive or args.captive_portal) and root,
                lambda: run_captive_portal_section(args, work),
            ),
            (
                "services",
                args.services and root,
                lambda: run_services_section(args, work),
            ),
        ]
        if not root and not args.no_lab:
            say("Not root: no lab, so no convergence timing (run as root).")
        if not root and args.captive:
            say("Not root: no captive firewall figures (run as root).")
        if not root and (args.captive or args.captive_portal):
            say("Not root: no captive portal figures (run as root).")
        if not root and args.services:
            say("Not root: no services figures (run as root).")
        if not root and args.gateway:
            say("Not root: no gateway figures (run as root).")
        for name, wanted, section in sections:
            if not wanted:
                continue
            say(f"== {name} ==")
            try:
                results[name] = section()
            except KeyboardInterrupt:
                raise
            except Exception as error:  # noqa: BLE001 - reported, next section
                results["errors"].append({"section": name, "error": repr(error)})
                say(f"{name} failed: {error!r}")
    except KeyboardInterrupt:
        say("Interrupted: everything started was stopped.")
        results["errors"].append({"section": "run", "error": "interrupted"})
        status = 130
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    if "machine" in results:
        results["machine"]["loadavg_end"] = os.getloadavg()
    path = write_results(results)
    say("")
    say(render_report(results))
    say(f"\nResults: {path.relative_to(REPO_DIR)}")
    problems = failures(results)
    if problems and status == 0:
        say("Not a valid run: " + "; ".join(problems))
        status = 1
    return status
