"""The AVSEC-2 system-description sheet, items 1-13, filled from one system's measurements in a compare run.

Each item is a (value, notes) pair of text: the value goes into the side-by-side table, the notes say how it was
measured. Every figure comes from the run's stored files (profile.json, runs/<system>/train_summary.json and
train_log.csv, manifest.json, scores.csv); one that is not there reads "n/a (reason)".
"""

from __future__ import annotations

import shlex

from avse_bench.fmt import (
    NOT_RECORDED,
    describe,
    describe_lookahead,
    duration,
    is_na,
    na_text,
    number,
    p_relation,
    with_ci,
)
from avse_bench.metrics.spec import SPECS
from avse_bench.report.load import Run
from avse_bench.report.quality import headline, meaningful_text, uses_video, visual_gain

NO_CUDA = "n/a (no CUDA device)"
PHASES = ("training", "inference", "loading")


def get(obj, *keys):
    """obj[k1][k2]...; an "n/a (reason)" on the way is returned as it is, a missing key as "n/a (not recorded)"."""
    for key in keys:
        if isinstance(obj, str):
            return obj
        if not isinstance(obj, dict) or key not in obj:
            return NOT_RECORDED
        obj = obj[key]
    return obj


def _on_gpu(device) -> bool:
    return isinstance(device, str) and device.startswith("cuda")


def _gpu_figure(value, device) -> str:
    """A GPU figure in MiB; on a run without CUDA it is n/a whatever the file says (0 from a CPU allocator is no
    measurement)."""
    if not _on_gpu(device):
        return value if isinstance(value, str) and value.startswith("n/a") else NO_CUDA
    return number(value, 0, "MiB")


def reference_text(ref) -> str:
    """The reference input in words: "3 s of 16 kHz audio (48,000 samples) + 75 frames of 128 x 128 px, batch 1"."""
    if not isinstance(ref, dict):
        return describe(ref)
    binaural = "binaural " if ref.get("channels", 1) == 2 else ""  # profiles before channels were recorded: mono
    return (f"{get(ref, 'seconds')} s of {number(get(ref, 'sample_rate'))} Hz {binaural}audio "
            f"({number(get(ref, 'samples'))} samples) + {get(ref, 'frames')} frames of {get(ref, 'size')} x "
            f"{get(ref, 'size')} px at "
            f"{get(ref, 'fps')} fps, batch {get(ref, 'batch')}")


def short_reference(ref) -> str:
    """The reference input in brief, for a table cell: "3 s at 128 px"."""
    if not isinstance(ref, dict):
        return describe(ref)
    binaural = ", binaural" if ref.get("channels", 1) == 2 else ""
    return f"{describe(get(ref, 'seconds'))} s at {describe(get(ref, 'size'))} px{binaural}"


def parameters(run: Run, system: str) -> tuple[str, str]:
    p = run.profile[system]
    total, trainable, size = get(p, "params_total"), get(p, "params_trainable"), get(p, "size_mb")
    millions = f"{total / 1e6:.2f} M " if not is_na(total) else ""
    value = f"{millions}({number(total)} total, {number(trainable)} trainable); {number(size, 3, 'MB')}"
    reduced = reduced_configuration(run, system)
    notes = describe(get(p, "size_note"))
    by_module = get(p, "params_by_module")
    if isinstance(by_module, dict) and by_module:
        notes += "; by module (trainable / frozen): " + ", ".join(
            f"{m} {number(c.get('trainable'))} / {number(c.get('frozen'))}" for m, c in by_module.items())
    return value + (f"; {reduced}" if reduced else ""), notes


def reduced_configuration(run: Run, system: str) -> str:
    """"measured at a reduced configuration: ..." when the run's profile laid `[profiles.<p>.model]` over the
    system's `[model]` (the manifest's model_overrides), else ""."""
    overrides = dict(run.manifest["systems"][system].get("model_overrides") or {})
    profile = overrides.pop("profile", None)
    if not overrides:
        return ""
    return (f"measured at a reduced configuration ([profiles.{profile}.model]: {describe(overrides)}), not the "
            "published model's")


def flops(run: Run, system: str) -> tuple[str, str]:
    p = run.profile[system]
    total = get(p, "flops")
    value = (f"{total / 1e9:.2f} G (fvcore flops = multiply-adds) per {short_reference(get(p, 'reference_input'))} "
             "input" if not is_na(total) else na_text(total))
    note = get(p, "flops_note")
    parts = [f"per forward pass on the reference input: {reference_text(get(p, 'reference_input'))}",
             "fvcore FlopCountAnalysis: " + (describe(note) if note != NOT_RECORDED else
                                             "one multiply-add counts as one flop (GFLOPs = GMACs)")]
    by_op = get(p, "flops_by_op")
    if isinstance(by_op, dict) and by_op:
        counted = sorted(((op, n) for op, n in by_op.items() if not is_na(n)), key=lambda kv: -kv[1])
        parts.append("by op: " + ", ".join(f"{op} {n / 1e9:.3g} G" for op, n in counted))
    by_module = get(p, "flops_by_module")
    if isinstance(by_module, dict) and by_module:
        parts.append("by module: " + ", ".join(f"{m} {n / 1e9:.3g} G" for m, n in by_module.items()))
    skipped = get(p, "flops_unsupported")
    if isinstance(skipped, dict):
        skipped = ", ".join(f"{op} (x{n})" for op, n in skipped.items()) or "none"
    parts.append(f"ops fvcore skipped (counted as 0): {describe(skipped)}")
    return value, "; ".join(parts)


def training_steps(run: Run, system: str) -> tuple[str, str]:
    t = run.train[system]
    if isinstance(t, str):
        return t, ""
    value = (f"{number(get(t, 'total_steps'))} ({number(get(t, 'epochs'))} epochs, "
             f"{number(get(t, 'steps_per_epoch'))} steps per epoch, batch {number(get(t, 'batch_size'))})")
    published = run.config(system).get("recipe", {})
    notes = f"{run.manifest.get('profile')} profile; published recipe: {describe(published) if published else 'none'}"
    stop = get(t, "early_stop")
    if isinstance(stop, dict):
        notes += (f"; stopped early after epoch {stop['epoch']} of {stop['of']} (no lower validation loss in "
                  f"{stop['patience']} epochs)")
    kept = get(t, "kept")
    if isinstance(kept, dict):
        notes += f"; weights kept: epoch {kept['epoch']}'s ({kept['which']}, val loss {kept['val_loss']})"
    return value, notes


def latency(run: Run, system: str) -> tuple[str, str]:
    p = run.profile[system]
    lat = get(p, "latency_ms")
    if isinstance(lat, str):
        return lat, ""
    value = ", ".join(f"{q} {number(get(lat, q), 2, 'ms')}" for q in ("p50", "p90", "p99"))
    value += f" per {short_reference(get(p, 'reference_input'))} input on {describe(get(p, 'device_name'))}"
    notes = (f"batch-1 forward pass on the reference input ({reference_text(get(p, 'reference_input'))}); "
             f"mean {number(get(lat, 'mean'), 2)} ± {number(get(lat, 'std'), 2)} ms over {describe(get(lat, 'n'))} "
             f"timed runs after {describe(get(p, 'latency_warmup'))} warm-up runs; timer: {describe(get(p, 'timer'))}; "
             f"device: {describe(get(p, 'device'))} ({describe(get(p, 'device_name'))})")
    ahead = get(p, "lookahead")
    if isinstance(ahead, dict):
        notes += (f"; algorithmic latency (look-ahead, measured): audio {describe_lookahead(ahead['audio'])}, video "
                  f"{describe_lookahead(ahead['video'])}; method: {ahead['method']}")
    else:
        notes += f"; algorithmic latency (look-ahead): {describe(ahead)}"
    return value, notes


def rtf(run: Run, system: str) -> tuple[str, str]:
    p = run.profile[system]
    value = f"{number(get(p, 'rtf'), 3)} (mean-based {number(get(p, 'rtf_mean'), 3)})"
    t = get(p, "throughput")
    if isinstance(t, dict):
        throughput = (f"{number(get(t, 'samples_per_s'), 2)} samples/s, {number(get(t, 'audio_seconds_per_s'), 2)} "
                      f"s of audio per s at batch {get(t, 'batch')}")
    else:
        throughput = describe(t)
    notes = (f"{describe(get(p, 'rtf_basis'))}; reference input {reference_text(get(p, 'reference_input'))}; "
             f"throughput: {throughput}; device: {describe(get(p, 'device'))}")
    return value, notes


def epoch_time(run: Run, system: str) -> tuple[str, str]:
    t = run.train[system]
    if isinstance(t, str):
        return t, ""
    notes = (f"device {describe(get(t, 'device'))}, world size {describe(get(t, 'world_size'))}, "
             f"torch threads {describe(get(t, 'torch_threads'))}; "
             f"total {duration(get(t, 'total_seconds'))} for {describe(get(t, 'epochs'))} epochs; the mean is over "
             "the whole epochs (a last epoch cut by max_steps is left out)")
    log = run.logs[system]
    if log is not None and len(log) and "epoch_seconds" in log:
        notes += f"; range {duration(float(log.epoch_seconds.min()))} to {duration(float(log.epoch_seconds.max()))}"
    return duration(get(t, "mean_epoch_seconds")), notes


def memory(run: Run, system: str) -> tuple[str, str]:
    p = run.profile[system]
    device = get(p, "device")
    parts, notes = [], []
    for phase in PHASES:
        m = get(p, "memory", phase)
        if isinstance(m, str):
            parts.append(f"{phase}: {m}")
            continue
        gpu = _gpu_figure(get(m, "gpu_mib"), device)
        peak = _gpu_figure(get(m, "torch_peak_mib"), device)
        gpu_text = gpu if gpu == peak else f"{gpu} (torch peak {peak})"
        batch = f" (batch {get(m, 'batch')})" if isinstance(get(m, "batch"), int) else ""
        if phase == "training" and isinstance(get(m, "seconds"), float | int):
            batch = f" (batch {get(m, 'batch')} x {get(m, 'seconds'):g} s, the run's training crops)"
        parts.append(f"{phase}{batch}: GPU {gpu_text}, RAM {number(get(m, 'ram_mib'), 0, 'MiB')}")
        baseline = get(m, "ram_baseline_mib")
        if not is_na(baseline):
            notes.append(f"{phase} RAM began at {number(baseline, 0, 'MiB')}")
        if get(m, "batch_note") != NOT_RECORDED:
            notes.append(f"{phase} batch: {describe(get(m, 'batch_note'))}")
    method = get(p, "memory", "training", "ram_peak_method")
    notes.insert(0, f"each phase in a fresh process on {describe(device)}; GPU: device memory in use (NVML) with the "
                    f"torch allocator's peak; RAM: the process's peak resident set ({describe(method)})")
    return "; ".join(parts), "; ".join(notes)


def _machine(run: Run, system: str, key: str):
    """The profile's hardware or software facts, else the manifest's (the same functions wrote both)."""
    facts = get(run.profile[system], key)
    return facts if isinstance(facts, dict) else run.manifest.get(key, facts)


def hardware(run: Run, system: str) -> tuple[str, str]:
    p = run.profile[system]
    hw = _machine(run, system, "hardware")
    if isinstance(hw, dict):
        value = (f"{describe(get(hw, 'cpu_model'))}, {describe(get(hw, 'cpu_cores_available'))} cores available "
                 f"({describe(get(hw, 'cpu_cores_logical'))} logical, {describe(get(hw, 'cpu_cores_physical'))} "
                 f"physical), {number(get(hw, 'ram_gib'), 1, 'GiB')} RAM; GPUs: {_gpu_list(get(hw, 'gpus'))}; "
                 f"driver {describe(get(hw, 'gpu_driver'))}")
    else:
        value = describe(hw)
    t = run.train[system]
    notes = f"trained on {describe(get(t, 'device'))}; profiled on {describe(get(p, 'device'))}"
    return value, notes


def _gpu_list(gpus) -> str:
    if not isinstance(gpus, list):
        return describe(gpus)
    return ", ".join(f"{get(g, 'name')} ({number(get(g, 'memory_mib'), 0, 'MiB')})" for g in gpus) or "none"


def gpus(run: Run, system: str) -> tuple[str, str]:
    t, p = run.train[system], run.profile[system]
    train_device = get(t, "device")
    trained_on = get(t, "hardware")  # the machine that trained (runs before it was recorded: the profile's)
    hw = trained_on if isinstance(trained_on, dict) else _machine(run, system, "hardware")
    notes = (f"training device {describe(train_device)}, world size {describe(get(t, 'world_size'))}; "
             f"GPUs on the machine: {describe(get(hw, 'gpu_count'))}")
    if not _on_gpu(train_device):
        if _on_gpu(get(p, "device")):
            return (f"none for training (CPU); profiled on "
                    f"{_gpu_list(get(_machine(run, system, 'hardware'), 'gpus'))}", notes)
        return NO_CUDA, notes
    listed = get(hw, "gpus")
    kind = get(listed[0], "name") if isinstance(listed, list) and listed else describe(listed)
    return f"{describe(get(t, 'world_size'))} x {kind}", notes


def training_process(run: Run, system: str) -> tuple[str, str]:
    config = run.config(system)
    recipe, published = run.recipe(system), config.get("recipe", {})
    pre = run.manifest.get("preprocessing", {})
    value = (f"this run ({run.manifest.get('profile')} profile): {describe(recipe)}; published recipe: "
             f"{describe(published) if published else 'none'}")
    notes = (f"architecture: {describe(get(config, 'system', 'title'))}, model {describe(config.get('model', {}))}; "
             f"preprocessing (identical for every system): {describe(get(pre, 'config'))}, "
             f"hash {describe(get(pre, 'hash'))}")
    own = config.get("preprocessing") or {}
    if "mean" in own or "std" in own:
        notes += (f"; this system's frames normalised as (x - {own.get('mean', 0)}) / {own.get('std', 1)} "
                  "(system.toml [preprocessing])")
    return value, notes


def reproducibility(run: Run, system: str) -> tuple[str, str]:
    command = run.manifest.get("command_line")
    value = f"`{shlex.join(command)}`" if command else "n/a (command line not recorded)"
    notes = (f"commit {describe(run.manifest.get('git_commit'))}, seed {describe(run.manifest.get('seed'))}; "
             "`avse-bench report <run folder>` re-renders this sheet from the stored results")
    return value, notes


def limitations(run: Run, system: str) -> tuple[str, str]:
    """Honest limits read off the run itself: data, hardware, how far this profile is from the published recipe,
    what could not be scored or counted."""
    found = []
    data = run.manifest.get("data", {})
    if data.get("synthetic"):
        found.append(f"trained and scored on the embedded synthetic corpus ({data.get('n_train')} train / "
                     f"{data.get('n_eval')} {data.get('eval_split', 'eval')} scenes of espeak speech and rendered "
                     "faces), not on AVSEC data: figures are not comparable with challenge results")
    t, p = run.train[system], run.profile[system]
    if isinstance(t, str):
        found.append(t)
    elif not _on_gpu(get(t, "device")):
        found.append("trained on CPU only: no GPU figure could be measured")
    published = run.config(system).get("recipe", {})
    if run.manifest.get("profile") != "paper" and not isinstance(t, str):
        found.append(f"{run.manifest.get('profile')} profile: {describe(get(t, 'total_steps'))} steps over "
                     f"{describe(get(t, 'epochs'))} epochs against {describe(published.get('epochs', '?'))} epochs "
                     f"at batch {describe(published.get('batch_size', '?'))} in the published recipe")
    reduced = reduced_configuration(run, system)
    if reduced:
        found.append(reduced)
    n_eval = data.get("n_eval")
    if isinstance(n_eval, int) and n_eval < 100:
        found.append(f"only {n_eval} evaluation scenes: the confidence intervals are wide")
    scores = run.scores[(run.scores.system == system)]
    errors = int((scores.error != "").sum())
    if errors:
        found.append(f"{errors} of {len(scores)} scene scorings (both conditions) had an error (see the quality table)")
    metric = headline(run.scores)  # SI-SDR on a mono track, MBSTOI on the binaural one
    gain = visual_gain(run.scores, system, metric, "speech")
    if gain is not None and gain["n"] > 1 and not uses_video(gain):
        label, unit = SPECS[metric].label.split(" (")[0], SPECS[metric].unit
        found.append(f"no clear use of the video: audio-visual better than audio-only in {label} on speech maskers "
                     f"by {with_ci(gain['mean_diff'], gain['ci_lo'], gain['ci_hi'], SPECS[metric].digits)}"
                     f"{unit and ' ' + unit} (n={gain['n']}, p {p_relation(gain['p_value'])}), not shown to exceed "
                     f"{meaningful_text(metric)}")
    skipped = get(p, "flops_unsupported")
    if skipped and not isinstance(skipped, str):
        found.append(f"FLOPs omit the ops fvcore cannot count ({', '.join(skipped)})")
    if not _on_gpu(get(p, "device")):
        found.append("latency and RTF timed with the wall clock on the CPU: sensitive to other load on the machine")
    return "; ".join(found) or "none found in the run's records", "derived from this run's manifest and records"


def requirements(run: Run, system: str) -> tuple[str, str]:
    p = run.profile[system]
    ram = get(p, "memory", "training", "ram_mib")
    gpu = _gpu_figure(get(p, "memory", "training", "gpu_mib"), get(p, "device"))
    software = _machine(run, system, "software")
    value = f"RAM {number(ram, 0, 'MiB')} and GPU memory {gpu} (training peak); software: {describe(software)}"
    m = get(p, "memory", "training")
    at = (f"batch {get(m, 'batch')} x {get(m, 'seconds'):g} s, this run's training batch and crops"
          if isinstance(get(m, "seconds"), float | int) else "the profile's reference input (a run made before the "
          "training phase took the run's crops)")
    return value, f"the measured training peak, at {at}: what training this profile needs at least"


MEASURED = {1: parameters, 2: flops, 3: training_steps, 4: latency, 5: rtf, 6: epoch_time, 7: memory, 8: hardware,
            9: gpus, 10: training_process, 11: reproducibility, 12: limitations, 13: requirements}


PROFILE_ONLY = (1, 2, 4, 5, 7)  # items read from profile.json alone


def measured_items(run: Run, system: str) -> dict[int, tuple[str, str]]:
    """{item_no: (value, notes)} for items 1-13; a system with no profile gets its reason once per item."""
    missing = run.profile[system] if isinstance(run.profile[system], str) else None
    return {no: (missing, "") if missing and no in PROFILE_ONLY else fn(run, system) for no, fn in MEASURED.items()}
