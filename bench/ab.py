"""A/B: one scenario on two revisions of the code, side by side under the same server
configuration, in interleaved rounds — how each click-path optimisation was measured.

Needs the bench database loaded by a previous `make bench` (or `bench/run.py --quick`).

    .venv/bin/python bench/ab.py --before HEAD --scenario click --server gunicorn-sync-2 --rounds 6

``--before`` is any git revision (exported with ``git archive`` under bench/results/); the
"after" side is the working tree.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import run, servers  # noqa: E402


def export(revision: str) -> Path:
    sha = subprocess.run(
        ["git", "rev-parse", "--verify", f"{revision}^{{commit}}"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    dest = run.RESULTS / f"ab-{sha[:12]}"
    if not dest.exists():
        with tempfile.TemporaryDirectory() as tmp:
            archive = Path(tmp) / "tree.tar"
            subprocess.run(["git", "archive", "-o", str(archive), sha], cwd=ROOT, check=True)
            with tarfile.open(archive) as tar:
                tar.extractall(dest, filter="data")
    # The bench wiring (settings, URLconf) and the collected static files come from this tree,
    # so a revision from before bench/ existed can be measured too.
    shutil.copytree(ROOT / "bench", dest / "bench", dirs_exist_ok=True, ignore=shutil.ignore_patterns("results"))
    if not (dest / "staticfiles").exists() and (ROOT / "staticfiles").exists():
        (dest / "staticfiles").symlink_to(ROOT / "staticfiles")
    return dest


def inproc(before_root: Path, args: argparse.Namespace) -> int:
    """bench/inproc.py in each tree, alternately; medians of the CPU per request."""
    runs: dict[str, dict[str, list[float]]] = {"before": {}, "after": {}}
    for round_no in range(args.rounds):
        order = ("before", "after") if round_no % 2 == 0 else ("after", "before")
        for name in order:
            root = before_root if name == "before" else ROOT
            out = subprocess.run(
                [sys.executable, str(root / "bench" / "inproc.py"), "--rounds", "1", "--requests", "2000"],
                cwd=root,
                env={**os.environ, "BENCH_RESULTS_DIR": str(run.RESULTS)},
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            for line in out.splitlines():
                kind, cpu = line.split()[0], float(line.split()[1])
                runs[name].setdefault(kind, []).append(cpu)
            print(name, out.strip().replace("\n", " | "))
    for kind in runs["after"]:
        before, after = statistics.median(runs["before"][kind]), statistics.median(runs["after"][kind])
        print(f"{kind:<16} before {before:7.1f} µs  after {after:7.1f} µs  after/before {after / before:.3f}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", default="HEAD")
    parser.add_argument("--scenario", default="click", choices=["bare", "click", "events"])
    parser.add_argument("--server", default=run.GUNICORN_SYNC.key, help="A key of bench/run.py's COMPARED.")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument(
        "--inproc", action="store_true", help="Compare CPU per request in-process (bench/inproc.py) instead of HTTP."
    )
    args = parser.parse_args()

    config = next(c for c in run.COMPARED if c.key == args.server)
    before_root = export(args.before)
    if args.inproc:
        return inproc(before_root, args)
    env = run.bench_env()
    os.environ.update(env)
    full_env = {**os.environ}

    import django

    django.setup()
    fx = run.prepare_fixtures()
    scenario = run.scenarios(fx)[args.scenario]
    consumer = run.start_consumer(full_env)
    runner = run.Runner(fx=fx, env=env, token=secrets.token_hex(3))  # new event ids in every run
    sides: dict[str, servers.Server] = {}
    results: dict[str, list] = {"before": [], "after": []}
    try:
        sides["before"] = servers.start(config, full_env, run.RESULTS, root=before_root, tag="-before")
        sides["after"] = servers.start(config, full_env, run.RESULTS, tag="-after")
        for side in sides.values():
            runner.run(scenario, side, 2.0)
        for round_no in range(args.rounds):
            order = ("before", "after") if round_no % 2 == 0 else ("after", "before")
            for name in order:
                result = runner.run(scenario, sides[name], args.duration)
                results[name].append(result)
                print(
                    f"{name:<7} {result.rps:9.1f} req/s  p50 {result.p50_ms:6.2f} ms  p99 {result.p99_ms:7.2f} ms  "
                    f"server CPU {result.server_cpu_us:6.0f} µs/req"
                )
    finally:
        for side in sides.values():
            servers.stop(side)
        try:
            run.wait_for_drain(timeout=120)
        finally:
            consumer.stop()

    medians = {
        name: (
            statistics.median(r.rps for r in rs),
            statistics.median(r.p99_ms for r in rs),
            statistics.median(r.server_cpu_us for r in rs),
        )
        for name, rs in results.items()
    }
    (b_rps, b_p99, b_cpu), (a_rps, a_p99, a_cpu) = medians["before"], medians["after"]
    print(
        f"{args.scenario} on {config.label}, {args.rounds} rounds of {args.duration:g} s: "
        f"before ({args.before}) {b_rps:,.0f} req/s p99 {b_p99:.1f} ms, server CPU {b_cpu:.0f} µs/req; "
        f"after {a_rps:,.0f} req/s p99 {a_p99:.1f} ms, server CPU {a_cpu:.0f} µs/req; "
        f"req/s after/before {a_rps / b_rps:.3f}, CPU/req after/before {a_cpu / b_cpu:.3f} "
        f"(load average {os.getloadavg()[0]:.1f})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
