"""What the row journal costs a proxied request (issue 13: crash-safe rows), in one run.

Two `hybrid-router proxy` processes in front of one fast fake upstream: one with the journal
(the default: each row built and appended to the journal before the answer's last byte goes
out), one with HYBRID_ROUTER_JOURNAL=0 (rows built on the writer thread and kept in memory
until written, as before the journal). Measured:

  pairs       at concurrency 1, one request to each proxy back to back in alternating order,
              the small and the ~80 KB Claude Code body, whole answer and stream first byte:
              the median per-pair difference is what the journal adds
  closed loop 16 workers, interleaved rounds: p50 and p99 through each proxy and direct

Usage: .venv/bin/python bench/journal_cost.py [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _load
import proxy_overhead as po
from _timing import percentile


async def measure(targets: dict[str, str], direct: str, quick: bool) -> None:
    pairs = 500 if quick else 3000
    rounds = 3 if quick else 8
    per_round = 320 if quick else 800
    print(
        f"1. {pairs} pairs at concurrency 1 (one request to each proxy, back to back, "
        "alternating order); ms"
    )
    print(f"  {'case':24} {'no journal p50':>15} {'journal p50':>12} {'journal adds p50':>17}")
    for body in po.bodies():
        for stream, kind in po.KINDS:
            request = po.load_request(body, stream)
            for url in targets.values():
                await _load.closed_loop(url, request, 1, 200)
            samples, differences = await po.paired(targets, request, pairs)
            medians = {name: statistics.median(values) for name, values in samples.items()}
            print(
                f"  {body.name + ' ' + kind:24} {medians['no journal']:15.3f} "
                f"{medians['journal']:12.3f} {statistics.median(differences):17.3f}"
            )
    print(
        f"2. closed loop at concurrency 16, {rounds} interleaved rounds of {per_round}; "
        "overhead = through the proxy - direct, ms"
    )
    print(f"  {'case':24} {'target':>11} {'p50':>8} {'p99':>8} {'ovh p50':>8} {'ovh p99':>8}")
    everything = {"direct": direct, **targets}
    for body in po.bodies():
        for stream, kind in po.KINDS:
            request = po.load_request(body, stream)

            async def run(url: str, request: _load.Request = request) -> list[float]:
                return await _load.closed_loop(url, request, 16, per_round)

            samples = await po.interleaved(everything, run, rounds, warm_up=run)
            base = statistics.median(samples["direct"]), percentile(samples["direct"], 0.99)
            for name in targets:
                p50, p99 = statistics.median(samples[name]), percentile(samples[name], 0.99)
                print(
                    f"  {body.name + ' ' + kind:24} {name:>11} {p50:8.3f} {p99:8.3f} "
                    f"{p50 - base[0]:8.3f} {p99 - base[1]:8.3f}"
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    upstream, upstream_url = po.start_upstream()
    proxies = []
    try:
        with tempfile.TemporaryDirectory(prefix="hr-journal-") as scratch:
            targets = {}
            for name, setting in (("no journal", "0"), ("journal", "1")):
                config = po.router_config()
                config["providers"]["anthropic"]["baseUrl"] = upstream_url
                env = {"ANTHROPIC_API_KEY": "sk-bench", "HYBRID_ROUTER_JOURNAL": setting}
                home = Path(scratch) / f"home-{setting}"
                process, url = po.start_proxy(home, env, config)
                proxies.append(process)
                targets[name] = url
            po.run_fast(measure(targets, upstream_url, args.quick))
    finally:
        for process in proxies:
            po.stop_process(process)
        po.stop_process(upstream)


if __name__ == "__main__":
    main()
