"""Entry point of the PyInstaller bundle (``mlabs_desktop/__main__.py`` uses a relative import,
which a frozen entry script cannot).

The bundle ships Keras with TensorFlow only, so the backend is pinned here: a
``KERAS_BACKEND`` or ``~/.keras/keras.json`` left over from a source install
must not send the bundle looking for PyTorch or JAX.
"""

import os
import sys

os.environ["KERAS_BACKEND"] = "tensorflow"

from mlabs_desktop.cli.main import main  # noqa: E402 - after the backend is pinned

if __name__ == "__main__":
    sys.exit(main())
