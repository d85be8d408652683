"""``.mlstyle`` bundles: one model as a single zip file, for sharing with strangers.

This module is the entry point the rest of the app imports from; the work is
split by responsibility:

* `bundle_format`: the entries a bundle may hold, their limits, and the checks
  on a stranger's manifest;
* `bundle_writer`: export, deterministic (same model, same bytes) and without
  the author's local paths;
* `bundle_reader`: reading an untrusted zip (entry names, symlinks, declared
  sizes, zip bombs, the ``.npy`` headers inside ``.npz`` files);
* `bundle_import`: checking the weights and images and adding the model to the
  library atomically, from a file or a URL.

Every refusal on import is a `UserError` starting with ``bundle rejected:``.
"""

from __future__ import annotations

from .bundle_format import SUFFIX, WarnFn, expected_shapes
from .bundle_import import import_bundle, inspect_bundle
from .bundle_writer import bundle_entries, default_bundle_name, export_bundle, npz_bytes

__all__ = ["SUFFIX", "WarnFn", "bundle_entries", "default_bundle_name", "expected_shapes", "export_bundle",
           "import_bundle", "inspect_bundle", "npz_bytes"]
