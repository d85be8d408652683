"""A photo the user may not read, everywhere an image enters: one clear message, nothing written.

Run in child processes that honour file modes (`file_modes`), so that the case
is tried even when the suite runs as root, as CI does.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from PIL import Image

from file_modes import ROOT, cannot_honour_modes, run_honouring_modes

pytestmark = pytest.mark.skipif(bool(reason := cannot_honour_modes()), reason=reason or "")


@pytest.fixture
def locked(tmp_path: Path) -> Path:
    path = tmp_path / "locked.png"
    Image.new("RGB", (8, 6), (200, 30, 30)).save(path)
    path.chmod(0)
    yield path
    path.chmod(0o644)


def one_error_line(result, *fragments: str) -> str:
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode == 2, result.stderr
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr
    for fragment in fragments:
        assert fragment in errors[0].lower(), errors[0]
    return errors[0]


def test_the_loader_says_permission_denied(locked):
    script = textwrap.dedent(f"""
        from pathlib import Path
        from mlabs_desktop.core.errors import UserError
        from mlabs_desktop.core.images.decode import load_image
        try:
            load_image(Path({str(locked)!r}))
        except UserError as exc:
            print("refused:", exc)
    """)
    result = run_honouring_modes(["-c", script])
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("refused:") and "permission denied" in result.stdout.lower(), result.stdout
    assert "locked.png" in result.stdout


def test_stylize_and_train_style_and_test_refuse_it_with_one_line(locked, tiny_model, vgg_h5, photos_dir, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    stylized = run_honouring_modes(["-m", "mlabs_desktop", "stylize", "--checkpoint=tiny", f"--in-path={locked}",
                                    f"--out-path={out}"])
    one_error_line(stylized, "locked.png", "permission")
    assert list(out.iterdir()) == []
    swirls = ROOT / "resources" / "samples" / "swirls.jpg"
    common = [f"--train-path={photos_dir}", f"--vgg-path={vgg_h5}", "--max-steps=1", "--image-size=32", "--name=locked"]
    for images in ([f"--style={locked}"], [f"--style={swirls}", f"--test={locked}"]):
        # Checked before the engine starts, so neither pays for TensorFlow's start-up.
        trained = run_honouring_modes(["-m", "mlabs_desktop", "train", *images, *common])
        one_error_line(trained, "locked.png", "permission")


def test_dropped_on_the_stylize_view_it_fails_with_a_reason(locked):
    script = textwrap.dedent(f"""
        import time
        from pathlib import Path
        from mlabs_desktop.gui.app import application
        app = application([])
        from mlabs_desktop.gui.kit.services import Services
        from mlabs_desktop.gui.stylize.view import StylizeView
        errors = []
        services = Services()
        services.hub.error.connect(lambda title, message: errors.append(title + ": " + message))
        view = StylizeView(services)
        view.show()
        view.open_paths([Path({str(locked)!r})])
        item = next(iter(view.photos.items.values()))
        deadline = time.monotonic() + 60
        while item.state(view.photos.look)[0] != "failed" and time.monotonic() < deadline:
            app.processEvents()
            time.sleep(0.02)
        for _ in range(50):
            app.processEvents()
            time.sleep(0.01)
        view.cancel_and_wait(10_000)
        print("STATE", item.state(view.photos.look), "OPEN FAILED" if item.load_error else "")
        print("ERRORS", errors)
    """)
    result = run_honouring_modes(["-c", script])
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    state = next(line for line in result.stdout.splitlines() if line.startswith("STATE"))
    assert "'failed'" in state and "permission denied" in state.lower() and "OPEN FAILED" in state, state
    shown = next(line for line in result.stdout.splitlines() if line.startswith("ERRORS"))
    assert "locked.png" in shown and "permission denied" in shown.lower(), shown  # the window said so
