"""MachineLabs lab files run locally: the 2017 MachineLabs lab's two labs verbatim, inputs, mounts, errors.

No internet: inputs come from ``--input NAME=FILE`` (the verbatim fixtures) or from
a local HTTP server on 127.0.0.1 (copies of the fixtures with their URLs rewritten).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

import pytest
import yaml
from PIL import Image

from conftest import SAMPLES, write_photos
from http_server import LocalHTTPServer, offline_downloads, server  # noqa: F401 - fixtures
from mlabs_desktop.core.transfer import downloads
from mlabs_desktop.core.errors import Cancelled, UserError
from mlabs_desktop.core.labs.lab_file import load_lab, parse_lab
from mlabs_desktop.core.labs.inputs import fetch_inputs, place_file
from mlabs_desktop.core.labs.plan import LabPlan, plan_lab
from mlabs_desktop.cli.main import run_lab
from mlabs_desktop.core.labs.runner import parse_assignments
from mlabs_desktop.core.library.store import Library
from mlabs_desktop.core.settings import load_settings

LABS = Path(__file__).resolve().parent  # the labs of the 2017 blog post, verbatim
TRAIN_LAB = LABS / "train-lab.yaml"
APPLY_LAB = LABS / "apply-lab.yaml"
TEMPLATE_LAB = LABS / "template-lab.yaml"
REFERENCE_FILES = ("checkpoint", "fns.ckpt.index", "fns.ckpt.data-00000-of-00001")
# The seed lab trains at 256 px; 32 px keeps its four steps (8 photos, batch 4, 2 epochs)
# to seconds on a 2-core CPU. A user can pass the same through `lab run ... -- --image-size=32`.
QUICK = ["--image-size=32"]


@pytest.fixture(autouse=True)
def _offline(offline_downloads) -> None:
    """Every test here talks only to the local server (fixtures in tests/http_server.py)."""


@pytest.fixture(scope="module")
def vgg_mat(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from vgg_fixtures import write_matconvnet_mat

    path = tmp_path_factory.mktemp("vgg") / "random-vgg19.mat"
    write_matconvnet_mat(path, weights_first=True)  # the beta16 layout the 2017 MachineLabs lab's URL serves
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, vgg_mat: Path) -> dict:
    """The 2017 MachineLabs lab's training lab, verbatim, run once in a home of its own."""
    home = tmp_path_factory.mktemp("lab-home")
    photos = write_photos(tmp_path_factory.mktemp("training_images"), count=8, size=(32, 32))
    workdir = tmp_path_factory.mktemp("train-lab")
    log: list[str] = []
    cwd = os.getcwd()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLABS_DESKTOP_HOME", str(home))
        code = run_lab(TRAIN_LAB, workdir=workdir, mounts={"training_images": photos},
                       inputs={"imagenet-vgg-verydeep-19.mat": vgg_mat, "style_image.jpg": SAMPLES / "swirls.jpg"},
                       extra_args=QUICK, on_log=log.append, gpu_visible=False)
        settings = load_settings()
        models = Library().models()
    assert os.getcwd() == cwd
    return {"code": code, "home": home, "photos": photos, "workdir": workdir, "log": log,
            "settings": settings, "models": models}


def _copy_model(trained: dict, name: str = "train-lab") -> None:
    source = next(m for m in trained["models"] if m.name == name)
    shutil.copytree(source.folder, Library().root / source.folder.name)


# --- (a) the 2017 MachineLabs lab's training lab, verbatim ----------------------------------------------


def test_training_lab_runs_verbatim(trained: dict) -> None:
    assert trained["code"] == 0, trained["log"]
    workdir = trained["workdir"]
    log = "\n".join(trained["log"])
    assert "'dockerImageId' ignored" in log
    assert "asks for a GPU" in log  # no GPU here: it ran on the CPU, with a warning
    assert "running: mlabs-desktop train" in log and "--architecture=classic" in log
    # Inputs are in the lab's inputs/ folder, as the platform laid them out.
    assert (workdir / "inputs" / "style_image.jpg").read_bytes() == (SAMPLES / "swirls.jpg").read_bytes()
    assert (workdir / "inputs" / "imagenet-vgg-verydeep-19.mat").is_file()
    # --checkpoint-dir=outputs: the model's files landed in WORKDIR/outputs...
    outputs = workdir / "outputs"
    assert (outputs / "weights.npz").is_file() and (outputs / "manifest.yaml").is_file()
    manifest = yaml.safe_load((outputs / "manifest.yaml").read_text())
    assert manifest["architecture"] == "classic" and manifest["name"] == "train-lab"
    assert manifest["parameters"]["content-weight"] == 15.0 and manifest["parameters"]["epochs"] == 2
    assert manifest["statistics"]["steps"] == 4  # 8 photos, batch 4, 2 epochs
    # ...and the model is in the library.
    assert [m.name for m in trained["models"]] == ["train-lab"]
    # The mount is remembered for the next run, keyed by the platform's dataset path.
    assert trained["settings"].lab_mounts == {"machinelabs/fast-style-transfer/small": str(trained["photos"])}
    if importlib.util.find_spec("mlabs_desktop.core.formats.reference_checkpoint") is not None:
        for name in REFERENCE_FILES:
            assert (outputs / name).is_file(), f"{name} missing from outputs/"


# --- (b) the 2017 MachineLabs lab's application lab, verbatim, on (a)'s outputs ---------------------------


def test_apply_lab_runs_verbatim_on_training_outputs(trained: dict, tmp_path: Path) -> None:
    if importlib.util.find_spec("mlabs_desktop.core.formats.reference_checkpoint") is None:
        pytest.skip("core/reference_checkpoint.py (reference checkpoints in --checkpoint-dir and "
                    "stylize --checkpoint=DIR) is not there yet")
    outputs = trained["workdir"] / "outputs"
    missing = [n for n in REFERENCE_FILES if not (outputs / n).is_file()]
    if missing:
        pytest.skip(f"train --checkpoint-dir does not write reference checkpoints yet ({', '.join(missing)})")
    given = {n: outputs / n for n in REFERENCE_FILES} | {"source_image.jpg": SAMPLES / "coffee.jpg"}
    log: list[str] = []
    assert run_lab(APPLY_LAB, workdir=tmp_path, inputs=given, on_log=log.append) == 0, log
    result = tmp_path / "outputs" / "source_image.jpg"
    with Image.open(result) as out, Image.open(SAMPLES / "coffee.jpg") as photo:
        assert out.size == photo.size


# --- (c) inputs from a local HTTP server, downloaded once --------------------------------


def _lab_copy(source: Path, folder: Path, urls: dict[str, str], replace: dict[str, str] | None = None) -> Path:
    """A copy of a fixture with the given inputs' URLs (and any other text) replaced."""
    text = source.read_text()
    data = yaml.safe_load(text)
    for item in data.get("inputs", []):
        if item["name"] in urls:
            text = text.replace(item["url"], urls[item["name"]])
    for old, new in (replace or {}).items():
        text = text.replace(old, new)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / source.name
    target.write_text(text)
    return target


def test_inputs_downloaded_once_then_cached(trained: dict, server: LocalHTTPServer, tmp_path: Path) -> None:
    _copy_model(trained)
    photo = (SAMPLES / "chelsea.jpg").read_bytes()
    url = server.route("/images/group.jpg", body=photo, content_type="image/jpeg")
    lab = _lab_copy(TEMPLATE_LAB, tmp_path / "lab", {"source_image.jpg": url},
                    {"--checkpoint=my-style": "--checkpoint=train-lab"})
    seen: list[str] = []
    for run in (1, 2):
        log: list[str] = []
        if run == 2:  # the first run's result is only replaced when the person says so
            first = (tmp_path / "lab" / "outputs" / "source_image.jpg").read_bytes()
            assert run_lab(lab, on_log=log.append) == 2
            assert (tmp_path / "lab" / "outputs" / "source_image.jpg").read_bytes() == first
        assert run_lab(lab, progress=lambda name, p: seen.append(name), on_log=log.append, overwrite=run == 2) == 0, log
        assert server.count("/images/group.jpg") == 1  # the second run used the cache
        assert (tmp_path / "lab" / "inputs" / "source_image.jpg").read_bytes() == photo
        assert ("downloaded" if run == 1 else "already downloaded") in "\n".join(log)
    with Image.open(tmp_path / "lab" / "outputs" / "source_image.jpg") as out:
        assert out.size == (451, 300)
    assert "source_image.jpg" in seen
    assert "'cli' ignored" in "\n".join(log) and "'notes' ignored (unknown key)" in "\n".join(log)


def test_concurrent_downloads_and_errors_name_the_input(server: LocalHTTPServer, tmp_path: Path) -> None:
    urls = {"imagenet-vgg-verydeep-19.mat": server.route("/vgg.mat", body=os.urandom(200_000), delay=0.01,
                                                         chunk_size=20_000),
            "style_image.jpg": server.route("/style.jpg", body=(SAMPLES / "swirls.jpg").read_bytes())}
    lab = load_lab(_lab_copy(TRAIN_LAB, tmp_path / "lab", urls))
    plan = plan_lab(lab, tmp_path / "work", {"training_images": tmp_path}, gpu_visible=False)
    reports = fetch_inputs(plan)
    assert {r.name: r.origin for r in reports} == {"imagenet-vgg-verydeep-19.mat": "download",
                                                   "style_image.jpg": "download"}
    assert (tmp_path / "work" / "outputs").is_dir()
    assert fetch_inputs(plan)[0].how == "kept"  # already that file: nothing to do
    assert server.count("/vgg.mat") == 1
    # A missing file: the error names the input and its line.
    urls["style_image.jpg"] = server.url("/gone.jpg")
    lab = load_lab(_lab_copy(TRAIN_LAB, tmp_path / "lab2", urls))
    plan = plan_lab(lab, tmp_path / "work2", {"training_images": tmp_path}, gpu_visible=False)
    with pytest.raises(UserError, match=r"train-lab.yaml line 9: input 'style_image.jpg': .*404.*"
                                        r"--input style_image.jpg=FILE"):
        fetch_inputs(plan)
    # Cancelled before a download starts: nothing is fetched.
    urls["style_image.jpg"] = server.route("/other.jpg", body=b"x" * 1000)
    lab = load_lab(_lab_copy(TRAIN_LAB, tmp_path / "lab3", urls))
    plan = plan_lab(lab, tmp_path / "work3", {"training_images": tmp_path}, gpu_visible=False)
    with pytest.raises(Cancelled):
        fetch_inputs(plan, cancelled=lambda: True)
    assert server.count("/other.jpg") == 0


def test_input_files_are_linked_or_copied(tmp_path: Path) -> None:
    source = tmp_path / "a.bin"
    source.write_bytes(b"12345")
    target = tmp_path / "inputs" / "a.bin"
    target.parent.mkdir()
    assert place_file(source, target) in ("linked", "copied")
    assert target.read_bytes() == b"12345"
    assert place_file(source, target) in ("kept", "copied")
    other = tmp_path / "b.bin"
    other.write_bytes(b"new")
    place_file(other, target)  # replaces what was there
    assert target.read_bytes() == b"new" and source.read_bytes() == b"12345"
    assert not [p for p in target.parent.iterdir() if p.name.startswith(".")]


# --- (d) mounts remembered from the previous run -----------------------------------------


def test_mount_remembered_from_previous_run(trained: dict, tmp_path: Path) -> None:
    _copy_model(trained)
    photos = write_photos(tmp_path / "my photos", count=2, size=(40, 30))
    lab_text = ("hardwareType: cpu\nmounts:\n  - path: someone/holiday-photos\n    name: photos\n"
                "parameters:\n  - pass-as: --checkpoint=train-lab\n"
                "  - pass-as: --in-path=/machinelabs/mounts/photos\n  - pass-as: --out-path=outputs/styled\n")
    lab = tmp_path / "lab" / "ml.yaml"
    lab.parent.mkdir()
    lab.write_text(lab_text)
    with pytest.raises(UserError, match=r"ml.yaml line 7: .*pass --mount photos=DIR"):
        run_lab(lab)
    assert run_lab(lab, mounts={"photos": photos}) == 0
    assert load_settings().lab_mounts == {"someone/holiday-photos": str(photos.resolve())}
    shutil.rmtree(tmp_path / "lab" / "outputs")
    log: list[str] = []
    assert run_lab(lab, on_log=log.append) == 0  # no --mount this time
    assert "remembered from an earlier run" in "\n".join(log) and "warning: mount" not in "\n".join(log)
    assert sorted(p.name for p in (tmp_path / "lab" / "outputs" / "styled").iterdir()) == ["photo0.jpg",
                                                                                            "photo1.png"]
    photos.rename(tmp_path / "moved")
    with pytest.raises(UserError, match=r"remembered for mount 'photos'.*no longer exists.*--mount photos=DIR"):
        run_lab(lab)


# --- (e) malformed lab files: the key and the line -----------------------------------------


BAD_LABS = [
    ("parameters: --style=a.jpg\n", r"line 1: 'parameters' must be a list"),
    ("hardwareType: gpu\nparameters:\n  - pass-as: --style=a.jpg\n  - --train-path=x\n",
     r"line 4: parameters\[1\] must be a mapping"),
    ("parameters:\n  - pass-as: --style=a.jpg\n  - pass_as: --train-path=x\n",
     r"line 3: parameters\[1\] needs a 'pass-as' string"),
    ("parameters:\n  - pass-as:\n", r"line 2: parameters\[0\] needs a 'pass-as' string"),
    ("parameters:\n  - pass-as: \"--style='a.jpg\"\n", r"line 2: parameters\[0\].pass-as cannot be split"),
    ("inputs:\n  - name: a.jpg\n    url: http://example.com/a.jpg\n  - name: b.jpg\n",
     r"line 4: inputs\[1\] needs a 'url' string"),
    ("inputs:\n  - name: ../evil.jpg\n    url: http://example.com/a.jpg\n",
     r"line 2: inputs\[0\].name '../evil.jpg' must be a plain file name"),
    ("inputs:\n  - name: ..\n    url: http://example.com/a.jpg\n", r"line 2: inputs\[0\].name '..'"),
    ("inputs:\n  - name: a.jpg\n    url: file:///etc/passwd\n", r"line 3: inputs\[0\].url must be an http"),
    ("inputs:\n  - {name: a, url: 'http://x/a'}\n  - {name: a, url: 'http://x/b'}\n",
     r"line 3: inputs\[1\]: a second input named 'a'"),
    ("mounts:\n  - name: data\n", r"line 2: mounts\[0\] needs a 'path' string"),
    ("dockerImageId: x\nhardwareType: tpu\n", r"line 2: hardwareType must be cpu or gpu, not 'tpu'"),
    ("parameters:\n  - pass-as: --style=a.jpg\n    - pass-as: --epochs=2\n",
     r"line 3: in 'parameters': not valid YAML"),
    ("inputs:\n  - name: a\n    url: [unclosed\n", r"line \d: in 'inputs': not valid YAML"),
    ("parameters:\n  - pass-as: !!python/object/apply:os.system ['touch /tmp/labs-pwned']\n",
     r"line 2: parameters\[0\].pass-as uses the YAML tag !!python/object/apply:os.system"),
    ("!!python/object/new:os.system [echo]\n", r"line 1: the file uses the YAML tag"),
    ("- pass-as: --style=a\n", r"line 1: a lab file must be a mapping"),
    ("", r"line 1: the lab file is empty"),
]


@pytest.mark.parametrize(("text", "message"), BAD_LABS)
def test_malformed_lab_names_key_and_line(text: str, message: str, tmp_path: Path) -> None:
    path = tmp_path / "ml.yaml"
    path.write_text(text)
    with pytest.raises(UserError, match=r"^ml\.yaml " + message):
        load_lab(path)
    assert not Path("/tmp/labs-pwned").exists()


def test_platform_only_and_unknown_keys_are_reported_not_errors() -> None:
    lab = load_lab(TEMPLATE_LAB)
    assert [(i.key, i.line) for i in lab.ignored] == [("dockerImageId", 4), ("cli", 8), ("notes", 14)]
    assert "platform-only" in lab.ignored[1].reason and "unknown" in lab.ignored[2].reason
    lab = parse_lab("parameter:\n  - pass-as: --style=a\nparameters:\n  - pass-as: --style=a\n    note: hi\n")
    assert [str(i) for i in lab.ignored] == ["line 1: 'parameter' ignored (unknown key; did you mean 'parameters'?)",
                                             "line 5: 'parameters[0].note' ignored (unknown key)"]


def test_verbatim_fixtures_load() -> None:
    train = load_lab(TRAIN_LAB)
    assert train.hardware_type == "gpu" and train.docker_image_id == "tensorflow_v1-4-x-gpu_python_2-1"
    assert [(m.path, m.name) for m in train.mounts] == [("machinelabs/fast-style-transfer/small", "training_images")]
    assert [i.name for i in train.inputs] == ["imagenet-vgg-verydeep-19.mat", "style_image.jpg"]
    assert train.args[4] == "--content-weight=1.5e1" and len(train.args) == 8
    apply = load_lab(APPLY_LAB)
    assert apply.hardware_type == "cpu" and not apply.ignored and not apply.mounts
    assert [i.name for i in apply.inputs] == ["checkpoint", "fns.ckpt.index", "fns.ckpt.data-00000-of-00001",
                                              "source_image.jpg"]


# --- (f) planning: mounts, paths, device, command ----------------------------------------


def _plan(text: str, tmp_path: Path, **kw) -> LabPlan:
    kw.setdefault("gpu_visible", False)
    return plan_lab(parse_lab(text, tmp_path / "mylab.yaml"), tmp_path / "work", **kw)


def test_plan_of_the_training_lab(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    plan = plan_lab(load_lab(TRAIN_LAB), tmp_path / "work", {"training_images": data}, gpu_visible=False,
                    unique_name=lambda name: name + " (2)")
    work = (tmp_path / "work").resolve()
    assert plan.command == "train"
    assert plan.argv == ["train", f"--style={work}/inputs/style_image.jpg",
                         f"--vgg-path={work}/inputs/imagenet-vgg-verydeep-19.mat",
                         f"--train-path={data.resolve()}", f"--checkpoint-dir={work}/outputs",
                         "--content-weight=1.5e1", "--checkpoint-iterations=1000", "--batch-size=4", "--epochs=2",
                         "--device=auto", "--architecture=classic", "--name=train-lab (2)"]
    assert any("asks for a GPU" in w and "line 4" in w for w in plan.warnings)
    assert plan.remember == {"machinelabs/fast-style-transfer/small": str(data.resolve())}
    assert not (tmp_path / "work").exists()  # planning writes nothing
    with_gpu = plan_lab(load_lab(TRAIN_LAB), tmp_path, {"training_images": data}, gpu_visible=True)
    assert "--device=gpu" in with_gpu.argv and not with_gpu.warnings


def test_plan_of_the_apply_lab_defaults_to_the_lab_folder() -> None:
    plan = plan_lab(load_lab(APPLY_LAB), gpu_visible=False)
    assert plan.workdir == LABS and plan.command == "stylize"
    assert plan.argv == ["stylize", "--allow-different-dimensions", f"--checkpoint={LABS}/inputs",
                         f"--in-path={LABS}/inputs/source_image.jpg", f"--out-path={LABS}/outputs"]


def test_mount_rewriting(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    text = ("mounts:\n  - {path: me/set, name: imgs}\nparameters:\n"
            "  - pass-as: --train-path=/machinelabs/mounts/imgs/sub/dir\n"
            "  - pass-as: --style /machinelabs/mounts/imgs/style.jpg\n"
            "  - pass-as: --test=/machinelabs/mounts/imgsX/a.jpg\n")
    with pytest.raises(UserError, match=r"lab.yaml line 6: the lab reads /machinelabs/mounts/imgsX; "
                                        r"pass --mount imgsX=DIR"):
        _plan(text, tmp_path, mounts={"imgs": data})
    other = tmp_path / "other"
    other.mkdir()
    # A mount may be named by its platform path too; an undeclared one used by a parameter is allowed.
    plan = _plan(text, tmp_path, mounts={"me/set": data, "imgsX": other})
    assert plan.argv[1:4] == [f"--train-path={data.resolve()}/sub/dir", "--style",
                              f"{data.resolve()}/style.jpg"]
    assert plan.argv[4] == f"--test={other.resolve()}/a.jpg"
    assert plan.remember == {"me/set": str(data.resolve())}
    # Remembered mounts are keyed by the platform path.
    plan = _plan(text, tmp_path, mounts={"imgsX": other}, remembered_mounts={"me/set": str(data)})
    assert plan.argv[1] == f"--train-path={data}/sub/dir"
    with pytest.raises(UserError, match=r"--mount nope=\.\.\.: the lab has no mount named 'nope'"):
        _plan(text, tmp_path, mounts={"nope": data})
    with pytest.raises(UserError, match=r"--mount imgs=.*: no such folder"):
        _plan(text, tmp_path, mounts={"imgs": tmp_path / "missing"})


def test_relative_paths_are_anchored_at_the_workdir(tmp_path: Path) -> None:
    work = (tmp_path / "work").resolve()
    plan = _plan("parameters:\n  - pass-as: --style inputs/a.jpg\n  - pass-as: --train-path=photos\n"
                 "  - pass-as: --vgg-path=https://example.com/vgg.mat\n  - pass-as: --test=/abs/t.jpg\n"
                 "  - pass-as: --content-weight=1.5e1 --name 'my style'\n", tmp_path)
    assert plan.argv == ["train", "--style", f"{work}/inputs/a.jpg", f"--train-path={work}/photos",
                         "--vgg-path=https://example.com/vgg.mat", "--test=/abs/t.jpg", "--content-weight=1.5e1",
                         "--name", "my style", "--architecture=classic"]  # no hardwareType: no --device
    # --checkpoint: a folder of the lab is anchored, a bare library model name is not.
    plan = _plan("hardwareType: cpu\nparameters:\n  - pass-as: --checkpoint=my-style\n"
                 "  - pass-as: --in-path=photo.jpg\n  - pass-as: --out-path=outputs/x.jpg\n", tmp_path)
    assert plan.argv == ["stylize", "--checkpoint=my-style", f"--in-path={work}/photo.jpg",
                         f"--out-path={work}/outputs/x.jpg", "--device=cpu"]
    for value in ("inputs", "models/fns.ckpt", "./my-style"):
        plan = _plan(f"parameters:\n  - pass-as: --checkpoint={value}\n  - pass-as: --in-path=a.jpg\n", tmp_path)
        assert plan.argv[1] == f"--checkpoint={work / value}"


def test_plan_flags_and_overrides(tmp_path: Path) -> None:
    base = "hardwareType: gpu\nparameters:\n  - pass-as: --style=a.jpg\n  - pass-as: --train-path=p\n"
    plan = _plan(base + "  - pass-as: --device=cpu\n  - pass-as: --architecture=lite\n", tmp_path)
    assert plan.added == ["--name=mylab"] and not plan.warnings  # the lab's own --device wins: no GPU check
    # extra_args come last, so they override the lab's values and suppress what the plan would add.
    plan = _plan(base, tmp_path, extra_args=["--image-size=32", "--architecture=lite", "--name=x"])
    assert plan.argv[-4:] == ["--device=auto", "--image-size=32", "--architecture=lite", "--name=x"]
    # A generic ml.yaml names the model after its folder.
    folder = tmp_path / "van-gogh"
    folder.mkdir()
    (folder / "ml.yaml").write_text(base)
    assert plan_lab(load_lab(folder / "ml.yaml"), gpu_visible=False).argv[-1] == "--name=van-gogh"


def test_plan_errors(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"lab.yaml line 2: parameters name none of --style, --train-path"):
        _plan("parameters:\n  - pass-as: --epochs=2\n  - pass-as: --checkpoint-dir=outputs\n", tmp_path)
    with pytest.raises(UserError, match=r"parameters mix training flags \(--style\) and stylize flags"):
        _plan("parameters:\n  - pass-as: --style=a\n  - pass-as: --checkpoint=b\n", tmp_path)
    lab = "inputs:\n  - {name: a.jpg, url: 'http://x/a.jpg'}\nparameters:\n  - pass-as: --in-path=inputs/a.jpg\n"
    with pytest.raises(UserError, match=r"--input b.jpg=\.\.\.: the lab has no input named 'b.jpg' "
                                        r"\(its inputs: a.jpg\)"):
        _plan(lab, tmp_path, inputs={"b.jpg": SAMPLES / "coffee.jpg"})
    with pytest.raises(UserError, match=r"--input a.jpg=.*: no such file"):
        _plan(lab, tmp_path, inputs={"a.jpg": tmp_path / "nope.jpg"})


def test_parse_assignments() -> None:
    assert parse_assignments(["a=b", "c = d=e"], "--mount") == {"a": "b", "c": "d=e"}
    with pytest.raises(UserError, match=r"--mount expects NAME=DIR, not 'photos'"):
        parse_assignments(["photos"], "--mount")
    with pytest.raises(UserError, match=r"--input expects NAME=FILE"):
        parse_assignments(["=x"], "--input")
