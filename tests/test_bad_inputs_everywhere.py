"""The bad-image corpus (`bad_images`) through every way an image gets in.

Command-line stylize (file and URL), train's --style and --test, a training
folder, and files dropped on the app's Stylize view. Each case either works
(the right size comes out) or is refused with one clear message: exit 2 and a
single ``error:`` line on the command line, a failed queue item with a reason
in the app; never a traceback, a crash or a half-written file.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from PIL import Image

from bad_images import CaseInfo, write_corpus
from conftest import tiny_config, write_photos
from crash_helpers import run_cli_here, temporaries
from gui_helpers import message_boxes, no_thread_leaks  # noqa: F401 - autouse: no modal box, no QThread left running
from http_server import LocalHTTPServer, offline_downloads  # noqa: F401 - fixture
from mlabs_desktop.core.library.store import Library
from mlabs_desktop.core.stylize.stylizer import plan_outputs

with tempfile.TemporaryDirectory() as _folder:  # the ids, for parametrizing; the files come per module
    CASES = sorted(write_corpus(Path(_folder)))
TRAIN_FLAGS = ["--max-steps=1", "--image-size=32", "--batch-size=1", "--architecture=lite"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, CaseInfo]:
    return write_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="module")
def _one_stylizer(_trained_tiny_model: Path):
    from mlabs_desktop.core.stylize.stylizer import Stylizer

    return Stylizer.open(_trained_tiny_model)


@pytest.fixture
def tiny_stylizer(_one_stylizer, monkeypatch: pytest.MonkeyPatch):
    """`stylize --checkpoint=tiny` gets the one real Stylizer this module built: opening one per case
    (building and tracing the network) would take seconds each on a loaded machine."""
    from mlabs_desktop.core.formats import reference_checkpoint
    from mlabs_desktop.core.stylize.stylizer import Stylizer

    monkeypatch.setattr(Stylizer, "open", classmethod(lambda cls, *args, **kwargs: _one_stylizer))
    monkeypatch.setattr(reference_checkpoint, "open_model_or_checkpoint", lambda *args: _one_stylizer.model)
    return _one_stylizer


def case_of(corpus: dict[str, CaseInfo], case: str) -> CaseInfo:
    info = corpus[case]
    if info.skip:
        pytest.skip(info.skip)
    return info


def shown_name(path: Path) -> str:
    """The file name as messages print it (undecodable bytes backslash-escaped)."""
    return path.name.encode("utf-8", "backslashreplace").decode("utf-8")


def assert_one_clear_error(code: int, err: str, info: CaseInfo, *names: str) -> str:
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2, err
    assert len(errors) == 1, err
    assert "Traceback" not in err, err
    for name in names:
        assert name in errors[0], err
    return errors[0]


# ------------------------------------------------------------------ stylize on the command line

@pytest.mark.parametrize("case", CASES)
def test_stylize_command_line(case, corpus, tiny_stylizer, tmp_path, capfd):
    info = case_of(corpus, case)
    out = tmp_path / "out"
    out.mkdir()
    code = run_cli_here(["stylize", "--checkpoint=tiny", f"--in-path={info.path}", f"--out-path={out}"])
    err = capfd.readouterr().err
    written = sorted(out.rglob("*"))
    assert temporaries(out) == [], written
    if info.works:
        assert code == 0 and "Traceback" not in err, err
        assert [p.name for p in written] == [plan_outputs(info.path, out, "S", overwrite=True)[0][1].name]  # a GIF's becomes a PNG
        with Image.open(written[0]) as im:
            assert im.size == info.size
    else:
        line = assert_one_clear_error(code, err, info, shown_name(info.path))
        assert any(word in err.lower() for word in info.words), err
        assert written == [], (line, written)


# ------------------------------------------------------------------ train's --style and --test

def train_args(vgg_h5: Path, photos_dir: Path, style: Path, test: Path | None = None, name: str = "bad"
               ) -> list[str]:
    return ["train", f"--style={style}", f"--train-path={photos_dir}", f"--vgg-path={vgg_h5}", f"--name={name}",
            *([f"--test={test}"] if test else []), *TRAIN_FLAGS]


@pytest.mark.parametrize("flag", ["style", "test"])
@pytest.mark.parametrize("case", CASES)
def test_train_refuses_bad_style_and_test_images_up_front(case, flag, corpus, vgg_h5, photos_dir, style_image,
                                                          capfd):
    info = case_of(corpus, case)
    if info.works:
        from mlabs_desktop.core.training.inputs import prepare_inputs

        from mlabs_desktop.core.training.inputs import PREVIEW_MAX_SIDE

        config = tiny_config(style_image, photos_dir, vgg_h5, style_scale=1.0).replace(**{flag: str(info.path)})
        inputs = prepare_inputs(config, seed=1)  # everything train reads before its first step
        loaded = inputs.style if flag == "style" else inputs.test
        w, h = info.size
        if flag == "test" and max(w, h) > PREVIEW_MAX_SIDE:  # the preview image is shrunk, never stretched
            scale = PREVIEW_MAX_SIDE / max(w, h)
            w, h = max(1, round(w * scale)), max(1, round(h * scale))
        assert loaded.shape == (h, w, 3)
        return
    args = train_args(vgg_h5, photos_dir, **({"style": info.path} if flag == "style"
                                             else {"style": style_image, "test": info.path}))
    code = run_cli_here(args)
    err = capfd.readouterr().err
    assert_one_clear_error(code, err, info, shown_name(info.path))
    assert Library().models() == []


def test_train_on_awkward_style_and_test_images(corpus, vgg_h5, photos_dir, capfd):
    """Two real runs: the tiniest and the most lopsided style image, with odd test images."""
    for style, test in [("1x1", "exif-rotated"), ("100000x1", "cmyk")]:
        code = run_cli_here(train_args(vgg_h5, photos_dir, corpus[style].path, corpus[test].path, name=style))
        err = capfd.readouterr().err
        assert code == 0 and "Traceback" not in err, err
    assert sorted(m.name for m in Library().models()) == ["100000x1", "1x1"]


def test_a_file_where_the_training_folder_goes_is_refused(corpus, vgg_h5, style_image, capfd):
    info = corpus["cmyk"]
    code = run_cli_here(train_args(vgg_h5, info.path, style_image))
    assert_one_clear_error(code, capfd.readouterr().err, info, shown_name(info.path))
    assert Library().models() == []


# ------------------------------------------------------------------ a training folder holding the corpus

def test_training_folder_with_the_whole_corpus_skips_and_lists_the_bad_files(corpus, tmp_path, vgg_h5,
                                                                           style_image, capfd):
    folder = tmp_path / "train"
    shutil.copytree(next(iter(corpus.values())).path.parent, folder, symlinks=True)
    write_photos(folder / "good", count=3)
    bad = sorted(p.name for p in folder.iterdir()
                 if p.is_file() and any(p.name == c.path.name and not c.works and not c.skip
                                        for c in corpus.values()))
    from mlabs_desktop.core.training.dataset import scan_folder

    readable = len(scan_folder(folder).paths) - len(bad)
    # One batch holding every file: each is decoded in the first step, so each bad one is met.
    code = run_cli_here(["train", f"--style={style_image}", f"--train-path={folder}", f"--vgg-path={vgg_h5}",
                         "--name=mixed", "--max-steps=2", "--epochs=2", "--image-size=32", "--style-scale=0.25",
                         "--architecture=lite",
                         f"--batch-size={readable + len(bad)}"])
    err = capfd.readouterr().err
    assert code == 0 and "Traceback" not in err, err
    skipped = [line for line in err.splitlines() if "skipped unreadable image" in line]
    for name in bad:
        assert sum(name in line for line in skipped) == 1, (name, skipped)
    assert len(skipped) == len(bad), skipped
    model = Library().get("mixed")
    assert model.manifest.statistics["skipped"] == len(bad)
    assert readable >= 3 + 8  # the good photos and the loadable corpus cases were all in the scan


# ------------------------------------------------------------------ URLs

@pytest.mark.parametrize("case", ["empty", "html-as-jpg", "truncated-jpeg"])
def test_stylize_url_of_a_bad_image(case, corpus, tiny_stylizer, tmp_path, capfd, offline_downloads):  # noqa: F811
    info = corpus[case]
    out = tmp_path / "out"
    out.mkdir()
    with LocalHTTPServer() as server:
        url = server.route(f"/{info.path.name}", body=info.path.read_bytes(), content_type="image/jpeg")
        code = run_cli_here(["stylize", "--checkpoint=tiny", f"--in-path={url}", f"--out-path={out}"])
    err = capfd.readouterr().err
    assert_one_clear_error(code, err, info, info.path.name)
    assert list(out.iterdir()) == []


# ------------------------------------------------------------------ the app: drag and drop

def test_dropping_the_corpus_on_the_stylize_view(corpus, tiny_model, qtbot, message_boxes):
    from test_gui_stylize import WAIT_MS, Harness, drag_events
    from PySide6.QtWidgets import QApplication

    harness = Harness(qtbot)
    try:
        view = harness.view
        tried = {name: info for name, info in corpus.items() if not info.skip and info.path.is_file()}
        *events, _mime = drag_events([info.path for info in tried.values()])
        for event in events:  # drag-enter, then drop
            QApplication.sendEvent(view, event)
            assert event.isAccepted()
        items = list(view.photos.items.values())  # in the order dropped
        assert len(items) == len(tried)
        look = view.photos.look
        qtbot.waitUntil(lambda: all(it.state(look)[0] in ("done", "failed") for it in items), timeout=WAIT_MS)
        harness.wait_idle()
        for (name, info), item in zip(tried.items(), items):
            state, reason = item.state(look)
            assert "Traceback" not in reason, reason
            if name == "non-utf8-name":
                # Qt turns the undecodable bytes of a dropped file's URL into other characters, so the
                # app may be handed a name that does not exist: it must then say so, not crash.
                assert state == "done" or "does not exist" in reason, (state, reason)
            elif info.works:
                assert state == "done" and item.image.size == info.size, (name, reason)
            else:
                assert state == "failed" and any(word in reason.lower() for word in info.words), (name, reason)
        assert all("Traceback" not in text for _, text in harness.errors), harness.errors
        # A folder where a photo was expected: nothing to open, and the window says so.
        harness.errors.clear()
        assert view.open_paths([corpus["folder-as-file"].path]) == 0
        assert len(harness.errors) == 1 and "No photos" in harness.errors[0][0]
    finally:
        assert harness.view.cancel_and_wait(30_000)
