"""INT8 and BF16 for real: NNCF and ONNX Runtime quantization of the built-in model on a handful
of calibration images made here, the cache, the accuracy guard, and the runs themselves."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rn50.data.example import ExampleCodec
from rn50.data.tfrecord import write_records
from rn50.platform import detect_platform

pytest.importorskip("openvino")
pytest.importorskip("nncf")
FLAGS = detect_platform().flags
needs_vnni = pytest.mark.skipif(not {"avx512_vnni", "avx_vnni", "amx_int8"} & FLAGS,
                                reason="this CPU has no VNNI: int8 is refused here")
needs_bf16 = pytest.mark.skipif(not {"avx512_bf16", "amx_bf16"} & FLAGS,
                                reason="this CPU has no BF16 instructions")
SMALL = ("--calibration-size", "6", "--holdout", "4")


def jpeg(seed: int, black: bool = False) -> bytes:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:260, 0:300]
    rgb = np.zeros((260, 300, 3)) if black else np.stack(
        [x * 255 / 300, 128 + 100 * np.sin(x / rng.uniform(5, 30)), y * 255 / 260], axis=-1)
    buf = io.BytesIO()
    Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).save(buf, format="JPEG")
    return buf.getvalue()


def records(folder: Path, images: list[bytes], labels: list[int]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    codec = ExampleCodec()
    write_records(folder / "validation-00000-of-00001",
                  [codec.encode({"image/encoded": img, "image/class/label": lab,
                                 "image/filename": f"{i}.JPEG"})
                   for i, (img, lab) in enumerate(zip(images, labels))])
    return folder


@needs_vnni
def test_quantize_with_real_calibration_images_cache_and_invalidation(run_cli, tmp_path):
    data = records(tmp_path / "calib", [jpeg(i) for i in range(10)], list(range(1, 11)))
    out = tmp_path / "int8" / "rn50_int8.xml"
    args = ("-m", "rn50", "quantize", "--calibration-data", str(data), *SMALL)
    first = run_cli(*args, "--output", str(out))
    assert first.returncode == 0, first.stderr
    assert "Calibrating on 6 real image(s)" in first.stdout
    assert "INT8 vs FP32 on 4 held-out image(s): top-1 agreement" in first.stdout
    assert out.exists() and out.with_suffix(".bin").exists()
    info = json.loads(out.with_suffix(".int8.json").read_text())
    assert info["calibration"]["kind"] == "images" and info["calibration"]["images"] == 6
    assert set(info["guard"]) >= {"fp32_top1", "int8_top1", "drop_points", "top1_agreement"}
    assert info["versions"]["nncf"] and info["cached"] is False
    again = run_cli(*args)
    assert again.returncode == 0 and "INT8 model from the cache" in again.stdout
    other = run_cli("-m", "rn50", "quantize", "--calibration-data", str(data),
                    "--calibration-size", "5", "--holdout", "4")
    assert "Quantizing" in other.stdout  # another calibration set: another model
    refused = run_cli(*args, "--output", str(out))
    assert refused.returncode != 0 and "exists (add --force" in refused.stderr


def test_accuracy_guard_measures_the_drop_on_labelled_held_out_images(model_cache):
    """Two real models that disagree: held-out labels are the first one's answers."""
    from rn50.config import ModelConfig
    from rn50.errors import ModelError
    from rn50.models.resolve import builtin_model
    from rn50.quantize import _enforce, _predict, accuracy_guard
    from rn50.data.synthetic import synthetic_batch

    reference = builtin_model(ModelConfig(cache_dir=str(model_cache)), {}, lambda line: None)
    other = builtin_model(ModelConfig(cache_dir=str(model_cache), seed=1), {}, lambda l: None)
    inputs = [synthetic_batch((1, 3, 224, 224), "NCHW", reference.mean, reference.std, seed=i)
              for i in range(4)]
    answers = _predict("openvino", reference.path, inputs, int8_hint=False)
    held = [(x, int(a) + 1) for x, a in zip(inputs, answers)]  # labels are 1-based
    guard = accuracy_guard("openvino", reference.path, other.path, held, class_offset=0)
    assert guard["fp32_top1"] == 1.0  # by construction
    assert guard["drop_points"] == pytest.approx(100 * (1 - guard["int8_top1"]))
    assert guard["drop_points"] > 0
    with pytest.raises(ModelError, match="more than --max-accuracy-drop 0.5: refused"):
        _enforce(guard, 0.5, Path(other.path))
    _enforce(guard, 100.0, Path(other.path))  # within a generous limit: accepted


@needs_vnni
def test_a_cached_model_is_refused_when_its_recorded_drop_exceeds_the_limit(run_cli, tmp_path):
    data = records(tmp_path / "calib", [jpeg(i) for i in range(10)], list(range(1, 11)))
    args = ("-m", "rn50", "quantize", "--calibration-data", str(data), *SMALL)
    first = run_cli(*args)
    assert first.returncode == 0, first.stderr
    cached = Path(first.stdout.strip().splitlines()[-1].split("INT8 model: ")[1])
    info_path = cached.with_name(cached.name + ".int8.json")
    info = json.loads(info_path.read_text())
    # what a badly calibrated model would have recorded (held-out top-1 100% -> 50%)
    info["guard"].update(fp32_top1=1.0, int8_top1=0.5, drop_points=50.0)
    info_path.write_text(json.dumps(info))
    proc = run_cli(*args, "--max-accuracy-drop", "1")
    assert proc.returncode != 0
    (line,) = proc.stderr.strip().splitlines()
    assert "loses 50.00 points of top-1 (FP32 100.00% -> INT8 50.00%)" in line
    assert "more than --max-accuracy-drop 1: refused" in line


@needs_vnni
@pytest.mark.parametrize("backend", ["openvino", "onnxruntime", "torch"])
def test_int8_runs_on_each_engine_that_can(run_cli, tmp_path, backend):
    pytest.importorskip(backend)
    proc = run_cli("-m", "rn50", "bench", "--precision", "int8", "--backend", backend, *SMALL,
                   "--warmup-steps", "1", "--steps", "3", "--output-dir", str(tmp_path / "o"))
    assert proc.returncode == 0, proc.stderr
    assert "calibrating on synthetic images: the INT8 model's accuracy on real images is " \
           "UNKNOWN" in proc.stdout
    (path,) = (tmp_path / "o").glob("benchmark_resnet50_inference_int8_*.json")
    record = json.loads(path.read_text())
    # i8 or u8 (or both): which one an engine picks depends on the CPU (OpenVINO runs u8
    # activations on AMD Zen 4, i8 on Intel), never f32 or bf16 alone
    executed = set(record["engine"]["execution_precision"].split(","))
    assert executed & {"i8", "u8"} and executed <= {"i8", "u8", "f32", "bf16"}, executed
    assert record["int8"]["guard"]["images"] == 4
    assert not any("executed" in w for w in record["warnings"])
    assert record["precision"] == "int8"


@needs_bf16
@pytest.mark.parametrize("backend, applied", [
    ("openvino", ("INFERENCE_PRECISION_HINT", "bf16")),
    ("tensorflow", ("auto_mixed_precision_onednn_bfloat16", "ON")),
    ("torch", ("dtype", "bfloat16")),
])
def test_bfloat16_runs_on_each_engine_that_can_and_reports_what_executed(run_cli, tmp_path,
                                                                         backend, applied):
    pytest.importorskip(backend)
    proc = run_cli("-m", "rn50", "bench", "--precision", "bfloat16", "--backend", backend,
                   "--batch-size", "2", "--warmup-steps", "1", "--steps", "2",
                   "--output-dir", str(tmp_path / "o"))
    assert proc.returncode == 0, proc.stderr
    (path,) = (tmp_path / "o").glob("benchmark_resnet50_inference_bfloat16_*.json")
    record = json.loads(path.read_text())
    engine = record["engine"]
    # read back from the engine: every convolution of the built-in model runs in bf16
    assert engine["execution_precision"] == "bf16"
    assert engine["convolution_precisions"] == {"bf16": 53}
    assert engine["applied"][applied[0]] == applied[1]
    assert not any("executed" in w for w in record["warnings"])
    assert "Execution precision: bf16" in proc.stdout


@needs_bf16
def test_bfloat16_engines_agree_within_bf16_rounding(run_cli, tmp_path):
    # the same images through BF16 OpenVINO, torch and TensorFlow: each rounds in its
    # own places, so outputs differ, but only by BF16 rounding (measured ~1.5e-3)
    for backend in ("torch", "tensorflow"):
        pytest.importorskip(backend)
    out = tmp_path / "parity.json"
    proc = run_cli("-m", "rn50", "check-parity", "--backend", "openvino,torch,tensorflow",
                   "--precision", "bfloat16", "--batch-size", "2", "--json", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(out.read_text())
    assert report["precision"] == "bfloat16" and report["agree"]
    for name in ("openvino", "torch", "tensorflow"):
        assert report["engines"][name]["execution_precision"] == "bf16"
    for comparison in report["comparisons"].values():
        assert comparison["top1_agreement"] == 1.0
        assert comparison["max_abs_probability_diff"] < report["tolerance"] == 1e-2


def test_precision_an_engine_cannot_run_is_one_line(run_cli, tmp_path):
    proc = run_cli("-m", "rn50", "bench", "--precision", "int8", "--backend", "tensorflow",
                   "--output-dir", str(tmp_path / "o"))
    assert proc.returncode == 2
    (line,) = proc.stderr.strip().splitlines()
    assert "the tensorflow backend runs fp32, bfloat16 only; use --backend openvino or " \
        "onnxruntime or torch" in line
    assert not (tmp_path / "o").exists()


@needs_vnni
def test_a_ready_int8_model_is_used_as_it_is(run_cli, tmp_path):
    out = tmp_path / "ready_int8.xml"
    assert run_cli("-m", "rn50", "quantize", *SMALL, "-o", str(out)).returncode == 0
    proc = run_cli("-m", "rn50", "bench", "--model", str(out), "--precision", "int8",
                   "--warmup-steps", "1", "--steps", "2", "--output-dir", str(tmp_path / "o"))
    assert proc.returncode == 0, proc.stderr
    assert "is already quantized (INT8): used as it is" in proc.stdout
    assert "Quantizing" not in proc.stdout
    record = json.loads(next((tmp_path / "o").glob("*int8*.json")).read_text())
    assert record["model"]["path"] == str(out.resolve())


@needs_vnni
def test_torch_int8_file_is_written_reused_and_checked(run_cli, tmp_path):
    pytest.importorskip("torch")
    out = tmp_path / "resnet50_int8.pt"
    made = run_cli("-m", "rn50", "quantize", "--backend", "torch", *SMALL, "-o", str(out))
    assert made.returncode == 0, made.stderr
    info = json.loads(out.with_suffix(".int8.json").read_text())
    assert info["backend"] == "torch" and info["guard"]["images"] == 4
    ready = run_cli("-m", "rn50", "bench", "--backend", "torch", "--model", str(out),
                    "--precision", "int8", "--warmup-steps", "1", "--steps", "2",
                    "--output-dir", str(tmp_path / "o"))
    assert ready.returncode == 0, ready.stderr
    assert "is already quantized (INT8): used as it is" in ready.stdout
    record = json.loads(next((tmp_path / "o").glob("*int8*.json")).read_text())
    assert record["engine"]["execution_precision"] == "i8,u8"
    assert record["engine"]["convolution_precisions"] == {"i8,u8": 53}
    # the INT8 file asked to run as FP32: refused, not silently run at another precision
    wrong = run_cli("-m", "rn50", "bench", "--backend", "torch", "--model", str(out),
                    "--steps", "1", "--output-dir", str(tmp_path / "f"))
    assert wrong.returncode != 0
    assert "is an INT8 model (53 quantized convolutions)" in wrong.stderr
