"""The bench's report as text for people (``--json`` prints the same figures for programs)."""

from __future__ import annotations

from mlabs_desktop.core.hardware.bfloat16_speed import MIN_SPEEDUP


def _percent(entry: dict) -> str:
    """The fraction of matmul as defined, and as executed."""
    return f"{100 * entry['fraction_of_matmul']:.0f}% ({100 * entry['executed_fraction_of_matmul']:.0f}% executed)"


def format_report(report: dict) -> str:
    m = report["machine"]
    vectors = ", ".join(m.get("vector_extensions") or []) or "no vector extensions reported"
    lines = [f"machine: {m.get('cpu') or m['processor']} ({vectors}), {m['cpu_count']} cores, "
             f"Keras backend {m['keras_backend']}, device {m['device']}",
             f"float32 matmul: {report['matmul_gflops']} GFLOP/s at start, "
             f"{report['matmul_gflops_after']} GFLOP/s at end (the machine's limit)"]
    limits = report.get("reduced_precision_limits") or {}
    if limits.get("supported"):
        mm, cv, c = limits["matmul_gflops"], limits["conv_gflops"], limits["conv"]
        lines.append(f"bfloat16 limit: matmul {mm['bfloat16']} GFLOP/s ({mm['bfloat16'] / mm['float32']:.1f}x its "
                     f"float32 {mm['float32']}); {c['kernel']}x{c['kernel']} conv {c['channels']}->{c['channels']} at "
                     f"{c['width']}x{c['height']} ({c['in_a_row']} in a row) {cv['bfloat16']} GFLOP/s "
                     f"({cv['bfloat16'] / cv['float32']:.1f}x its "
                     f"float32 {cv['float32']})")
        if not limits.get("used_by_default", True):
            lines.append(f"the app does not use bfloat16 here by default: under {MIN_SPEEDUP}x float32 in its own "
                         "speed check (--precision=bfloat16 asks for it)")
        if "float16" in mm:
            lines.append(f"float16 (not used by the networks): matmul {mm['float16']} GFLOP/s, conv {cv['float16']} "
                         f"GFLOP/s")
    for arch, data in report["architectures"].items():
        lines.append(f"\n{arch} ({data['multiply_adds_per_pixel']:,.0f} multiply-adds per pixel as defined, "
                     f"{data['executed_multiply_adds_per_pixel']:,.0f} executed)")
        for label, s in data["stylize"].items():
            lines.append(f"  stylize {label:>9}: {s['megapixels_per_s']:.3f} MP/s, {s['gflops']:.1f} GFLOP/s "
                         f"= {_percent(s)} of matmul{' (tiled)' if s['tiled'] else ''}")
        if "plain_layers" in data:
            p = data["plain_layers"]
            lines.append(f"  the same network with plain layers (the reference's layout) at {p['size']}: "
                         f"{p['megapixels_per_s']:.3f} MP/s = {100 * p['fraction_of_matmul']:.0f}% of matmul; "
                         f"ours is {p['ours_speedup']:.2f}x as fast")
        if "convolutions_alone" in data:
            c = data["convolutions_alone"]
            lines.append(_convolutions_alone(c, "float32", f"{_percent(c)} of matmul"))
        r = data["stylize_bfloat16"]
        if r["supported"]:
            verdict = "passes" if r["passes_gate"] else "fails"
            lines.append(f"  stylize {r['size']:>9} in bfloat16: {r['speedup']:.2f}x float32's speed, "
                         f"{r['bfloat16_gflops']:.1f} GFLOP/s = {100 * r['fraction_of_bfloat16_conv']:.0f}% of the "
                         f"bfloat16 conv; worst PSNR on the sample photos {r['psnr_db']:.1f} dB ({verdict} the "
                         f"{r['gate_db']:.0f} dB gate with these untrained weights)")
            if "convolutions_alone" in r:
                c = r["convolutions_alone"]
                lines.append(_convolutions_alone(c, "bfloat16", f"{100 * c['fraction_of_bfloat16_conv']:.0f}% of the "
                                                               "bfloat16 conv"))
        else:
            lines.append("  stylize in bfloat16: not supported on this device")
        for key in ("train_step", "train_step_float32", "train_step_mixed_bfloat16"):
            if key in data:
                t = data[key]
                lines.append(f"  train step batch {t['batch']} @ {t['image_size']} px, {t['precision']}: "
                             f"{t['seconds']:.3f} s ({t['images_per_s']} images/s)")
        for label, v in (data.get("video") or {}).items():
            lines.append(f"  clip {label} ({v['frames']} frames): per frame {v['per_frame_frames_per_s']:.2f} frames/s "
                         f"({100 * v['per_frame_over_network']:.0f}% of the network's own rate), steady "
                         f"{v['steady_frames_per_s']:.2f} frames/s ({100 * v['steady_over_network']:.0f}%)")
        if "input_pipeline" in t:
            p = t["input_pipeline"]
            lines.append(f"  fed from a folder of {p['photo_size']} JPEGs: {p['from_folder_seconds']:.3f} s per step "
                         f"vs {p['in_memory_seconds']:.3f} s in memory ({100 * p['slowdown']:+.1f}%)")
    ref = report["reference"]
    lines.append(f"\nreference implementation on the project's machine class (2 cores, AVX-512): "
                 f"{ref['stylize_mp_per_s_1024x680']} MP/s "
                 f"at 1024x680, {ref['train_step_seconds_b4_256']} s per training step (batch 4, 256 px)")
    lines.extend(_measured_reference(report))
    lines.append(f"peak resident memory: {report['peak_rss_mb']:.0f} MB")
    start = report.get("startup") or {}
    if start.get("window_shown_seconds") is not None:
        lines.append(f"start-up: main window shown {start['window_shown_seconds']:.2f} s after launch "
                     f"(TensorFlow imported first: {start['tensorflow_imported_before_window']})")
    return "\n".join(lines)


def _convolutions_alone(c: dict, dtype: str, share: str) -> str:
    """The line on a network's convolutions timed one by one; ``share``: their rate against a limit, in words."""
    slow = ", ".join(f"{n} {g:.0f}" for n, g in c["slowest_layers"].items())
    return (f"  its convolutions alone at {c['size']} in {dtype}: {c['gflops']:.1f} GFLOP/s = {share} (slowest, as "
            f"executed: {slow} GFLOP/s); the whole network takes {c['network_over_convolutions_time']:.2f}x their time")


def _measured_reference(report: dict) -> list[str]:
    """The reference timed with its own code in this run, beside `classic`, its network here."""
    ref = report.get("reference_measured")
    if not ref:
        return []
    if "error" in ref:
        return [f"reference implementation: its own code failed, so it was not timed ({ref['error']})"]
    lines = [f"reference implementation timed in this run with its own code ({ref['checkout']}): "
             f"{ref['stylize_seconds_1024x680']:.3f} s per 1024x680 photo ({ref['stylize_mp_per_s_1024x680']} MP/s)"
             + (f", {ref['train_step_seconds_b4_256']:.3f} s per training step (batch 4, 256 px)"
                if "train_step_seconds_b4_256" in ref else "; training step not timed (give --reference-vgg)")]
    classic = report["architectures"].get("classic")
    if classic:
        ours = classic["stylize"].get("1024x680")
        fast = classic["stylize_bfloat16"]
        if ours:
            lines.append(f"  classic here: {ref['stylize_seconds_1024x680'] / ours['seconds']:.2f}x the reference's "
                         "speed in float32" + (f", {ref['stylize_seconds_1024x680'] / fast['bfloat16_seconds']:.2f}x "
                                               "in bfloat16" if fast["supported"] else ""))
        if "train_step_seconds_b4_256" in ref and classic["train_step"]["image_size"] == 256:
            step = classic["train_step"]
            lines.append(f"  classic training step here ({step['precision']}): "
                         f"{ref['train_step_seconds_b4_256'] / step['seconds']:.2f}x the reference's speed")
    return lines
