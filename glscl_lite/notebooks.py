"""Old name of :mod:`glscl_lite.papermill_runner` (the headless notebook runner behind
``glscl-lite notebooks``); importing it gives that very module, so old imports and patches work."""
import sys

from glscl_lite import papermill_runner as _runner

sys.modules[__name__] = _runner
