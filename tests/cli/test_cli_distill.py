"""`mlabs-desktop distill`: a fast copy of a style from the command line."""

from __future__ import annotations

from conftest import write_photos
from mlabs_desktop.core.library.store import Library
from test_cli import cli


def test_the_distill_command(tiny_model, tmp_path):
    photos = write_photos(tmp_path / "photos", count=6, size=(48, 40))
    result = cli("distill", "tiny", f"--train-path={photos}", "--steps=4", "--batch-size=2", "--image-size=32",
                 "--name=quick copy", check=True)
    assert result.stdout.startswith("'quick copy': a tiny copy of 'tiny' after 4 steps")
    assert "dB PSNR against it on 2 photos it did not train on" in result.stdout
    assert "step 4/4" in result.stderr
    assert Library().get("quick copy").manifest.architecture == "tiny"
    missing = cli("distill", "nobody")
    assert missing.returncode == 2 and missing.stderr.startswith("error: unknown model 'nobody'")
