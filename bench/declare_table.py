"""The table of bench.declare: one row per backend, web workers and route (its median
round when the routes ran in rounds), with the share of the validation ceiling and the CPU
per declaration."""
from __future__ import annotations


def median_rounds(results: list[dict]) -> list[dict]:
    """One row per backend, workers and route: its median round by rate, with the range of
    the rounds' rates and the declarations lost summed over every round."""
    groups: dict[tuple, list[dict]] = {}
    for result in results:
        groups.setdefault((result["backend"], result["workers"], result["mode"]), []).append(result)
    rows = []
    for runs in groups.values():
        ordered = sorted(runs, key=lambda r: r["rate"])
        row = dict(ordered[(len(ordered) - 1) // 2], rounds=[r["rate"] for r in runs])
        if "lost" in row:
            row["lost"] = sum(r["lost"] for r in runs)
        rows.append(row)
    return rows


def print_table(results: list[dict]) -> None:
    ceilings = {(r["backend"], r["workers"]): r["rate"] for r in results if r["mode"] == "ceiling"}
    print("\n| backend | web workers | route | declarations/s | % of ceiling | p50 ms | p99 ms | non-2xx | "
          "lost | CPU server / load / rest | server µs/decl | all CPU µs/decl |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|---|---:|---:|")
    for r in results:
        ceiling = ceilings.get((r["backend"], r["workers"]))
        share = f"{100 * r['rate'] / ceiling:.0f}%" if ceiling and r["mode"] != "ceiling" else "—"
        lost = str(r["lost"]) if "lost" in r else "—"
        cpu = r["cpu"]
        rate = max(r["rate"], 1e-9)
        spread = f" ({min(r['rounds']):.0f}–{max(r['rounds']):.0f})" if len(r.get("rounds", ())) > 1 else ""
        print(f"| {r['backend']} | {r['workers']} | {r['mode']} | {r['rate']:.0f}{spread} | {share} | {r['p50']:.1f} | "
              f"{r['p99']:.1f} | {r['errors']} | {lost} | {cpu['server']:.2f} / {cpu['load']:.2f} / "
              f"{cpu['rest']:.2f} | {1e6 * cpu['server'] / rate:.0f} | "
              f"{1e6 * (cpu['server'] + cpu['load'] + cpu['rest']) / rate:.0f} |")
    if any(len(r.get("rounds", ())) > 1 for r in results):
        print("\nRounds: each row is the route's median round (the range of all rounds in brackets); "
              "lost counts every round.")
    print("\nCPU: cores busy on average during the run (server = the uvicorn workers with their relays; "
          "rest = everything else on the machine: database, broker, other users). µs/decl: CPU per "
          "declaration answered 2xx (server: the service's own; all: the whole machine's, so it includes "
          "the load generator, the database, the broker and anyone else's work).")


def print_encryption_cost(results: list[dict]) -> None:
    """With ``--encryption on off``: the server CPU per stored declaration of each route
    with the personal fields encrypted and in clear, and the difference."""
    by = {(r["backend"], r["workers"], r["mode"]): r for r in results}
    lines = []
    for (backend, workers, mode), on in by.items():
        if not mode.endswith(", encryption on"):
            continue
        off = by.get((backend, workers, mode.replace(", encryption on", ", encryption off")))
        if off is None:
            continue
        cost_on = 1e6 * on["cpu"]["server"] / max(on["rate"], 1e-9)
        cost_off = 1e6 * off["cpu"]["server"] / max(off["rate"], 1e-9)
        lines.append(f"| {backend} | {workers} | {mode.removesuffix(', encryption on')} | {off['rate']:.0f} | "
                     f"{on['rate']:.0f} | {cost_off:.0f} | {cost_on:.0f} | {cost_on - cost_off:+.0f} |")
    if lines:
        print("\n| backend | web workers | route | decl/s clear | decl/s encrypted | server µs/decl clear | "
              "server µs/decl encrypted | difference µs/decl |")
        print("|---|---:|---|---:|---:|---:|---:|---:|")
        print("\n".join(lines))
