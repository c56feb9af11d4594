"""Data layer: MSR-VTT annotations and splits, synthetic corpus, video decoding, caches, download."""
