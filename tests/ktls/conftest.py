"""
The kTLS suite runs inside a VM whose kernel has TLS support (make
check-ktls); it reuses the integration suite's fixtures and helpers.
"""

import importlib.util
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
_path = os.path.join(HERE, "..", "integration", "conftest.py")
_spec = importlib.util.spec_from_file_location("mezite_fixtures", _path)
_mod = importlib.util.module_from_spec(_spec)
sys.modules["mezite_fixtures"] = _mod
_spec.loader.exec_module(_mod)
globals().update({k: v for k, v in vars(_mod).items()
                  if not k.startswith("__")})
