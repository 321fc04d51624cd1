"""`ml_collections` configs, one per paper figure; each docstring gives its command."""

import os
from typing import Optional


def config_file_error(value: str) -> Optional[str]:
    """What is wrong with a `--config=PATH[:variant]` file before absl loads it (a one-line message), or None."""
    path = value.partition(":")[0]
    if os.path.isdir(path):
        return f"the config {path} is a directory, not a config file"
    if not os.path.isfile(path):
        return f"no such config file: {path}"
    try:
        with open(path) as f:
            compile(f.read(), path, "exec")
    except SyntaxError as e:
        return f"the config file {path} has a syntax error at line {e.lineno}: {e.msg}"
    except (OSError, UnicodeDecodeError) as e:
        return f"cannot read the config file {path}: {e}"
    return None
