"""glscl-lite: an educational reproduction of GLSCL (TIP 2025) for text-video retrieval.

Sub-packages and modules, one per component:
``config`` (hyperparameters, presets), ``data`` (MSR-VTT, synthetic corpus, video decoding,
caches), ``model`` (backbone, temporal transformer, GIM, LIM, whole model, baselines), ``losses``,
``metrics``, ``train``, ``evaluate``, ``cli``.
"""
__version__ = "0.1.0"
