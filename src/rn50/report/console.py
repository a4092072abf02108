"""Console text: the seed's lines plus percentiles and the settings beside every figure."""

from __future__ import annotations

import shlex

from ..launch.plan import LaunchPlan
from ..measure.progress import expected_total, format_eta
from ..models.metadata import PRESETS, resize_for
from ..results import RunResult
from ..platform import Platform, format_cpulist
from ..settings import Choice, ProcessPlan, Settings


PRECISION_NAMES = {"fp32": "FP32", "bfloat16": "BF16", "int8": "INT8"}


def format_value(choice: Choice) -> str:
    value = choice.value
    if isinstance(value, (tuple, list)):
        return format_cpulist(value) if value and all(isinstance(v, int) for v in value) else "-"
    return "-" if value is None else str(value)


def settings_table(settings: Settings) -> list[str]:
    rows = [(name, format_value(choice), choice.source, choice.reason)
            for name, choice in settings.items()]
    width = max(len(r[0]) for r in rows)
    vwidth = min(20, max(len(r[1]) for r in rows))  # a longer value pushes only its row
    lines = [f"  {'setting':<{width}}  {'value':<{vwidth}}  {'from':<11}  why"]
    for name, value, source, reason in rows:
        lines.append(f"  {name:<{width}}  {value:<{vwidth}}  {source:<11}  {reason}")
    lines += [f"  note: {a}" for a in settings.advice]
    return lines


def platform_lines(platform: Platform) -> list[str]:
    isa = ", ".join(name for name, present in platform.isa.items() if present) or "none found"
    peak = platform.peak_fp32_gflops()
    lines = [
        f"  CPU model          {platform.model_name} ({platform.vendor})",
        f"  sockets            {len(platform.sockets)}",
        f"  physical cores     {platform.physical_cores} ({platform.cores_per_socket} per socket)",
        f"  logical CPUs       {len(platform.cpus)} "
        f"(SMT {'on' if platform.smt_enabled else 'off'}, {platform.threads_per_core} per core)",
        "  NUMA nodes         " + "; ".join(f"node {n}: CPUs {format_cpulist(c)}"
                                          for n, c in platform.numa_nodes.items()),
        f"  usable CPUs        {format_cpulist(platform.allowed_cpus)}",
        f"  cgroup CPU quota   {platform.cgroup_cpu_quota:g}" if platform.cgroup_cpu_quota
        else "  cgroup CPU quota   none",
        f"  ISA                {isa}",
        f"  max clock          {platform.max_mhz:.0f} MHz" if platform.max_mhz
        else "  max clock          unknown",
        f"  FP32 peak (est.)   {peak:.1f} GFLOP/s ({platform.fp32_flops_per_cycle} FLOP/cycle/core)"
        if peak else "  FP32 peak (est.)   unknown (no clock)",
        f"  numactl            {platform.numactl or 'not installed'}",
        f"  sources            {', '.join(platform.sources) or 'none'}",
    ]
    return lines + [f"  note: {n}" for n in platform.notes]


def progress_line(message: dict, done=None) -> str:
    """The seed's `steps = N, R images/sec`, then steps done/expected and the ETA, from the
    phase's stop rule `done(steps, elapsed)` at the pace so far."""
    line = f"steps = {message['steps']}, {message['images_per_sec']:.3f} images/sec"
    if done is not None and message.get("elapsed_s") is not None:
        steps, elapsed = message["steps"], message["elapsed_s"]
        total, left = expected_total(done, steps, elapsed, elapsed / steps)
        line += f" ({steps}/{total} steps, ETA {format_eta(left)})"
    return line


def summary_lines(result: RunResult) -> list[str]:
    """The seed's figures (batch, latency, throughput), percentiles, compute and warnings."""
    summary, lat = result.summary, result.summary.latency_ms
    batch = result.setting("batch_size")
    lines = [f"Batch size = {batch}"]
    if result.instances:
        lines.append(f"Instances: {summary.extra['instances']} ran together (start skew "
                     f"{summary.extra['start_skew_ms']:.1f} ms); aggregate over all of them:")
        lines += instance_result_lines(result)
    if batch == 1:
        lines.append(f"Latency: {lat.p50:.3f} ms")
    lines.append(f"Throughput: {summary.throughput_images_per_sec:.3f} images/sec")
    lines.append(f"Step latency (ms, {lat.count} steps of {batch} image(s), "
                 f"{summary.concurrency} in flight): p50 {lat.p50:.2f}  p90 {lat.p90:.2f}  "
                 f"p99 {lat.p99:.2f}  mean {lat.mean:.2f}  min {lat.min:.2f}  "
                 f"max {lat.max:.2f}  stdev {lat.stdev:.2f}")
    compute = summary.extra.get("compute")
    if compute:
        lines.append(compute_line(compute))
    return lines + [f"WARNING: {w}" for w in result.warnings]


def compute_line(compute: dict) -> str:
    """Operations per second against the estimated peak of the precision that ran."""
    name = PRECISION_NAMES.get(compute.get("peak_precision", "fp32"), "FP32")
    unit = "GFLOP/s" if name == "FP32" else "GOP/s"
    text = f"Compute: {compute['gflops_per_sec']:.1f} {unit}"
    if compute.get("percent_of_peak") is not None:
        text += (f" = {compute['percent_of_peak']:.0f}% of the estimated {name} peak "
                 f"({compute['peak_gflops']:.0f} {unit} of the cores used")
        text += f"; {compute['peak_basis']})" if compute.get("peak_basis") else ")"
    return text


def comparison_table(runs: dict) -> list[str]:
    """One line per engine (RunResults, or errors): latency, throughput, load, memory."""
    lines = [f"{'engine':<12} {'batch':>5} {'p50 ms':>9} {'p90 ms':>9} {'img/s':>8} "
             f"{'load s':>7} {'compile s':>9} {'peak RSS MiB':>12}  precision"]
    for name, run in runs.items():
        if not isinstance(run, RunResult) or run.status != "ok" or run.summary is None:
            error = run.error if isinstance(run, RunResult) else run.get("error")
            lines.append(f"{name:<12} failed: {error}")
            continue
        s, t = run.summary, run.extra["load_timings"]
        lines.append(f"{name:<12} {run.extra['batch_size']:>5} {s.latency_ms.p50:>9.2f} "
                     f"{s.latency_ms.p90:>9.2f} {s.throughput_images_per_sec:>8.2f} "
                     f"{t['read_s']:>7.2f} {t['compile_s']:>9.2f} "
                     f"{run.extra['peak_rss_mib']:>12.0f}  {run.engine.execution_precision}")
    return lines


def command_line(launch: LaunchPlan) -> str:
    """The child's command as a shell line: environment, binding, program."""
    env = " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(launch.env_overrides.items()))
    line = f"env {env} {shlex.join(launch.argv)}" if env else shlex.join(launch.argv)
    if launch.affinity:
        line = f"taskset -c {format_cpulist(launch.affinity)} {line}"
    return line


def launch_lines(settings: Settings, launch: LaunchPlan) -> list[str]:
    how = settings.binding.value
    if how == "sched_setaffinity":
        how += f" to CPUs {format_cpulist(settings.cpus.value)}"
    return [f"Launch ({how}): " + " ".join(launch.argv),
            "  environment: " + " ".join(f"{k}={v}" for k, v in
                                         sorted(launch.env_overrides.items()))]


def instance_plan_lines(processes: ProcessPlan, launches: list[LaunchPlan]) -> list[str]:
    """The instance groups, each with its CPUs, threads and exact launch."""
    plan = processes.instances
    lines = [f"Instances: {len(plan.groups)} x {plan.cores_per_instance} physical core(s) "
             f"({plan.reason})"]
    for settings, launch, group in zip(processes.processes, launches, plan.groups):
        lines.append(f"  instance {group.index + 1}: CPUs {format_cpulist(group.cpus)} "
                     f"(node {group.node}, socket {group.socket}), "
                     f"{settings.intra_threads.value} intra-op thread(s), "
                     f"binding {settings.binding.value}")
        lines.append(f"    {command_line(launch)}")
    if plan.idle_reason:
        lines.append(f"  note: {plan.idle_reason}")
    return lines


def instance_result_lines(result: RunResult) -> list[str]:
    """Per-instance figures under the merged summary."""
    lines = [f"  {'instance':>8}  {'CPUs':<14} {'img/s':>8} {'p50 ms':>8} {'p90 ms':>8}  status"]
    for entry in result.instances:
        cpus = format_cpulist(entry.extra["settings"]["cpus"]["value"])
        if entry.status == "ok" and entry.summary:
            s = entry.summary
            lines.append(f"  {entry.index + 1:>8}  {cpus:<14} "
                         f"{s.throughput_images_per_sec:>8.2f} {s.latency_ms.p50:>8.2f} "
                         f"{s.latency_ms.p90:>8.2f}  ok")
        else:
            lines.append(f"  {entry.index + 1:>8}  {cpus:<14} {'-':>8} {'-':>8} {'-':>8}  "
                         f"failed: {entry.error or 'no result'}")
    return lines


def preset_lines() -> list[str]:
    """`rn50 info --preprocessing`: every preset, field by field."""
    lines = ["Preprocessing presets (--preprocessing NAME; any field can be overridden by its "
             "flag: --input-size --crop-pct --interpolation --channel-order --scale --mean "
             "--std):"]
    for name, preset in PRESETS.items():
        lines.append(f"  {name}: {preset['about']}")
        lines.append(f"    input {preset['input_size']}, resize shorter side to "
                     f"{resize_for(preset['input_size'], preset['crop_pct'])} (crop_pct "
                     f"{preset['crop_pct']}), {preset['interpolation']}, "
                     f"{preset['channel_order']}, {preset['scale']}, mean {preset['mean']}, "
                     f"std {preset['std']}")
    return lines


def preprocessing_lines(prep: dict, where: str) -> list[str]:
    """The preprocessing a run uses, with where each field came from."""
    by_source: dict[str, list[str]] = {}
    for field, source in prep.get("sources", {}).items():
        by_source.setdefault(source, []).append(field)
    return [f"Preprocessing ({prep['name']}): shorter side to {prep['resize']} with "
            f"{prep.get('filter', prep['interpolation'])}, centre crop {prep['crop']}, "
            f"{prep.get('channel_order', 'RGB')}, {prep['scale']}, mean {prep['mean']}, "
            f"std {prep['std']}, {prep['layout']}; normalised {where}",
            "  fields from: " + "; ".join(f"{source}: {', '.join(fields)}"
                                          for source, fields in by_source.items())]


def data_source_lines(message: dict) -> list[str]:
    """What the real-data pipeline reads and how it preprocesses."""
    lines = [f"Data: {message['description']}"
             + (f" ({message['label_note']})" if message.get("label_note") else "")]
    lines += preprocessing_lines(message["preprocessing"], message.get("normalised", ""))
    lines.append(f"Decoding: {message['workers']} decode process(es); JPEG DCT shortcut "
                 f"{'on' if message['shortcut'] else 'off'}")
    return lines


def data_lines(result: RunResult) -> list[str]:
    """Accuracy / classification / end-to-end figures and the skipped images."""
    lines = []
    acc = result.accuracy
    if acc:
        lines.append(f"Top-1 accuracy: {acc['top1']:.4f} ({acc['top1_correct']}/{acc['images']})"
                     f"   Top-5 accuracy: {acc['top5']:.4f} ({acc['top5_correct']}/"
                     f"{acc['images']})" + ("   (random weights: chance level expected)"
                                            if result.model.get("random_weights") else ""))
    if "classified" in result.extra:
        lines.append(f"Classified {result.extra['classified']} image(s)")
    summary = result.summary.extra if result.summary else {}
    if "end_to_end_images_per_sec" in summary:
        lines.append(f"End-to-end (decode + preprocess + inference): "
                     f"{summary['end_to_end_images_per_sec']:.3f} images/sec; compute-only "
                     f"(same batch, no decoding): {summary['compute_only_images_per_sec']:.3f} "
                     f"images/sec; ratio {summary['end_to_end_vs_compute_only']:.3f}; waited "
                     f"{summary['data_wait_seconds']:.2f} s for images")
    skipped = result.extra.get("skipped") or []
    if skipped:
        lines.append(f"Skipped {len(skipped)} bad image(s)/record(s):")
        lines += [f"  {reason}" for reason in skipped[:20]]
        if len(skipped) > 20:
            lines.append(f"  ... and {len(skipped) - 20} more (all in the JSON)")
    return lines
