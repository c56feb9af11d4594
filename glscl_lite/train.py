"""Training loop: ``glscl-lite train --config FILE|PRESET [--set k=v ...] --out RUN_DIR``.

One optimiser step = one global batch of (caption, video) pairs (every training caption is a
pair, spec 6.1).  The run folder's layout is :mod:`glscl_lite.runs`; ``checkpoints/last.pt``
holds everything needed to resume exactly (model, optimiser, scheduler, RNG states, epoch and
position in the epoch, best score so far).  Settings are checked (:func:`config.check_runnable`,
the data splits, the number of steps) before the folder is touched, and one process at a time
writes it (``RUN_DIR/.lock``).

Re-running the same command on an existing run folder resumes.  Exactness on CPU comes from:
data order drawn from a generator keyed on (seed, epoch) -- never the global RNG; RandAugment
seeded per (seed, epoch, item); DataLoaders with their own generators; dropout RNG restored from
the checkpoint.
"""
from __future__ import annotations

import contextlib
import random
import time
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional, Union

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from glscl_lite import distributed as dist
from glscl_lite import runs
from glscl_lite.config import Config, check_runnable, resolve_config
from glscl_lite.data.splits import build_splits, ensure_frame_cache
from glscl_lite.errors import UserError
from glscl_lite.evaluate import evaluate_model
from glscl_lite.model.glscl import RetrievalModel
from glscl_lite.optim import build_optimizer
# the run folder lives in glscl_lite.runs; these names stay importable from here (tests, notebooks)
from glscl_lite.runs import MetricsLog, load_checkpoint_into, read_metrics, run_config  # noqa: F401
from glscl_lite.storage import disk_full_error, is_disk_full
from glscl_lite.utils import PathLike, autocast, ensure_writable_dir, resolve_device, seed_everything

class TrainingError(UserError, RuntimeError):
    """Training cannot continue (non-finite loss, out of memory, ...)."""


def _rng_state() -> dict:
    st = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def _set_rng_state(st: dict) -> None:
    torch.set_rng_state(st["torch"])
    np.random.set_state(st["numpy"])
    random.setstate(st["python"])
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(st["cuda"])


# ---------------------------------------------------------------------------------------- data
def schedule_steps(cfg: Config, n_pairs: int) -> tuple[int, int, int]:
    """``(steps_per_epoch, t_total, total_steps)`` for ``n_pairs`` training pairs: full batches only
    (drop_last); ``t_total`` is the warmup-cosine length (``schedule_epochs``, 5 in the official
    code, S11), ``total_steps`` what the run trains (``epochs``, capped by ``max_steps``)."""
    steps_per_epoch = n_pairs // cfg.batch_size
    if steps_per_epoch == 0:
        raise UserError(f"batch_size {cfg.batch_size} is larger than the {n_pairs} training pairs")
    total = steps_per_epoch * cfg.epochs
    return (steps_per_epoch, steps_per_epoch * (cfg.schedule_epochs or cfg.epochs),
            min(total, cfg.max_steps) if cfg.max_steps else total)


def epoch_batches(n_items: int, batch_size: int, seed: int, epoch: int) -> np.ndarray:
    """``[steps, batch_size]`` item indices of one epoch (shuffled, drop_last as the official loader)."""
    g = torch.Generator().manual_seed(seed * 100_003 + epoch)
    perm = torch.randperm(n_items, generator=g).numpy()
    steps = n_items // batch_size
    return perm[: steps * batch_size].reshape(steps, batch_size)


class BatchData(Dataset):
    """Item k = the k-th batch (already collated); workers build whole batches.

    Per-item RandAugment is seeded from (seed, epoch, item) so that data do not depend on worker
    scheduling or on where a resumed run started.
    """

    def __init__(self, dataset, batches: np.ndarray, seed: int, epoch: int):
        self.dataset, self.batches, self.seed, self.epoch = dataset, batches, seed, epoch

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, k: int) -> dict:
        idx = self.batches[k]
        if hasattr(self.dataset, "batch"):  # feature cache: one fancy-indexed read
            return self.dataset.batch(idx)
        ds = self.dataset
        if ds.augment is None and hasattr(ds.source, "get_batch"):  # frame cache: one read per batch
            frames, masks = ds.source.get_batch([ds.pairs[i].video_id for i in idx.tolist()])
            return {"text_ids": ds.text_ids[idx], "text_mask": ds.text_mask[idx],
                    "video": torch.from_numpy(frames), "video_mask": torch.from_numpy(masks)}
        items = []
        for i in idx.tolist():
            s = (self.seed * 1_000_003 + self.epoch * 10_007 + i) % (2**32)
            random.seed(s)
            np.random.seed(s)
            items.append(self.dataset[i])
        from glscl_lite.data.dataset import collate

        return collate(items)


def _loader(data: Dataset, workers: int, pin: bool, seed: int) -> DataLoader:
    return DataLoader(data, batch_size=None, shuffle=False, num_workers=workers, pin_memory=pin,
                      generator=torch.Generator().manual_seed(seed), prefetch_factor=4 if workers else None,
                      persistent_workers=False)


# -------------------------------------------------------------------------------------- trainer
def train(config: Union[str, Config] = "smoke", overrides: Iterable[str] = (), out: Optional[PathLike] = None,
          progress: bool = True) -> dict[str, Any]:
    """Train (or resume) a run; returns the final results dict (also written to results.json)."""
    if out is None:
        raise UserError("train needs an output run folder (--out RUN_DIR)")
    cfg = resolve_config(config, overrides)
    check_runnable(cfg)  # every setting, the device included, before the run folder is touched
    return Trainer(cfg, Path(out), progress=progress).fit()


class Trainer:
    def __init__(self, cfg: Config, out: Path, progress: bool = True):
        self.out, self.progress = Path(out), progress
        self.device = resolve_device(cfg.device)
        local = dist.init_from_env(self.device.type)
        if local is not None and self.device.type == "cuda":
            self.device = torch.device("cuda", local)
        self.main = dist.is_main()
        self.cfg = cfg
        if self.cfg.batch_size % dist.world_size():
            raise UserError(f"batch_size {self.cfg.batch_size} is not divisible by {dist.world_size()} processes")
        self.log = MetricsLog(runs.metrics_path(self.out), enabled=self.main)

    # -- config / resume bookkeeping ---------------------------------------------------------------
    def _reconcile_config(self, cfg: Config) -> Config:
        """Refuse a folder holding a run of other settings or inputs (:func:`runs.finished`)."""
        runs.finished(self.out, cfg)
        return cfg

    def _preflight(self) -> None:
        """Everything that can be checked before the run folder is touched: the splits and the
        number of steps (a run that would train zero steps is an error)."""
        self.splits = build_splits(self.cfg)
        if not self.splits.val.captions:
            raise UserError(f"{self.cfg.anno_path}: the validation split is empty (val_videos="
                            f"{self.cfg.val_videos}, val_csv={self.cfg.val_csv!r})")
        self.steps_per_epoch, self.t_total, self.total_steps = schedule_steps(self.cfg, len(self.splits.train))
        if self.total_steps < 1:
            raise UserError(f"this run would train zero steps (epochs={self.cfg.epochs}, "
                            f"max_steps={self.cfg.max_steps}); set epochs >= 1")

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """Hold the run folder's writer lock (main process); remove a folder this start created
        when it fails before anything was written; a full disk becomes one clear error."""
        if not self.main:
            yield
            return
        created = not self.out.exists()
        ensure_writable_dir(self.out)
        try:
            with runs.writer_lock(self.out):
                yield
        except OSError as exc:
            if isinstance(exc, UserError) or not is_disk_full(exc):
                raise
            raise disk_full_error(self.out, None, exc) from None
        finally:
            if created and self.out.is_dir() and not any(self.out.iterdir()):
                self.out.rmdir()

    # -- setup -----------------------------------------------------------------------------------
    def _build(self) -> None:
        cfg = self.cfg
        seed_everything(cfg.seed)
        self.model = RetrievalModel(cfg).to(self.device)
        self.features = None
        if cfg.feature_cache and not cfg.freeze_backbone:
            raise UserError("feature_cache training needs freeze_backbone=True (cached CLIP outputs "
                            "cannot be fine-tuned)")
        if not cfg.feature_cache:
            self._ensure_frame_cache()
        from glscl_lite.features import video_inputs

        self.source, self.features = video_inputs(cfg, self.model.backbone.image_size)
        if self.features is not None:
            from glscl_lite.features import CachedPairs

            self.features.check_matches(cfg, self.model.backbone)
            self.train_data = CachedPairs(self.features, self.splits.train)
        else:
            from glscl_lite.data.dataset import PairDataset
            from glscl_lite.data.video import VideoRandAugment

            augment = VideoRandAugment() if cfg.augment else None
            self.train_data = PairDataset(self.splits.train, self.source, cfg.max_words, augment=augment)
        self.optimizer, self.scheduler = build_optimizer(self.model, cfg, self.t_total)
        self.net = self.model
        if dist.is_distributed():
            self.net = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        if cfg.compile:
            self.net = torch.compile(self.net)
        self.step, self.best = 0, None
        self.stale = 0  # validations in a row without improvement (cfg.patience stops the run)

    def _ensure_frame_cache(self) -> None:
        if self.main:
            ensure_frame_cache(self.cfg, self.model.backbone.image_size, progress=self.progress)
        if dist.is_distributed():
            torch.distributed.barrier()

    def _resume(self) -> None:
        if not runs.has_checkpoint(self.out, "last"):
            self.log.truncate_after(0)  # killed before the first checkpoint: its log lines are redone
            return
        state = load_checkpoint_into(self.model, self.out, "last")
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state.get("scheduler"):
            self.scheduler.load_state_dict(state["scheduler"])
        self.step, self.best = state["step"], state["best"]
        self.stale = int(state.get("stale", 0))
        _set_rng_state(state["rng"][dist.rank()] if isinstance(state["rng"], list) else state["rng"])
        self.log.truncate_after(self.step)
        if self.main:
            print(f"resumed {self.out} at step {self.step}")

    def _checkpoint(self) -> None:
        rngs = [_rng_state()]
        if dist.is_distributed():  # each rank restores its own dropout RNG
            rngs = [None] * dist.world_size()
            torch.distributed.all_gather_object(rngs, _rng_state())
        if not self.main:
            return
        runs.save_checkpoint({"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                              "scheduler": self.scheduler.state_dict() if self.scheduler else None,
                              "step": self.step, "best": self.best, "stale": self.stale, "rng": rngs,
                              "config": self.cfg.to_dict()},
                             runs.checkpoint_path(self.out, "last"))

    # -- evaluation --------------------------------------------------------------------------------
    def _evaluate(self, split: str) -> Optional[dict]:
        evalset = self.splits.val if split == "val" else self.splits.test
        if evalset is None:
            return None
        return evaluate_model(self.model, evalset, self.cfg, self.device, source=self.source,
                              features=self.features, dsl=self.cfg.dsl)

    def _validate(self, epoch: int) -> None:
        if self.main:
            res = self._evaluate("val")
            score = (res["t2v"]["R1"], res["t2v"]["R5"], res["t2v"]["R10"])
            improved = self.best is None or score > tuple(self.best["score"])
            self.stale = 0 if improved else self.stale + 1
            if improved:
                self.best = {"step": self.step, "score": list(score)}
                runs.save_checkpoint({"model": self.model.state_dict(), "step": self.step,
                                      "config": self.cfg.to_dict()}, runs.checkpoint_path(self.out, "best"))
            self.log.write({"step": self.step, "epoch": epoch, "split": "val", "best": improved,
                            **{k: res[k] for k in res if k in ("t2v", "v2t", "t2v_dsl", "v2t_dsl")},
                            "seconds_feat": res["seconds_feat"], "seconds_match": res["seconds_match"]})
            if self.progress:
                print(f"step {self.step}: val t2v R@1 {res['t2v']['R1']:.1f}  v2t R@1 {res['v2t']['R1']:.1f}"
                      + ("  (best)" if improved else ""))
        if dist.is_distributed():
            obj = [self.best, self.stale]
            torch.distributed.broadcast_object_list(obj, src=0)
            self.best, self.stale = obj

    # -- the loop ------------------------------------------------------------------------------------
    def _train_step(self, batch: dict) -> dict[str, torch.Tensor]:
        """Forward, backward, clip, step.  Returns the detached loss terms (still on the device:
        reading them forces a GPU sync, so the loop only does it every ``log_every`` steps)."""
        cfg = self.cfg
        batch = {k: v.to(self.device, non_blocking=True) for k, v in batch.items() if torch.is_tensor(v)}
        try:
            with autocast(cfg, self.device):
                out = self.net(batch)
            out["loss"].backward()
        except torch.cuda.OutOfMemoryError:
            raise TrainingError(
                f"out of GPU memory at batch_size={cfg.batch_size} (per process "
                f"{cfg.batch_size // dist.world_size()}); try --set batch_size={cfg.batch_size // 2}, "
                "freeze_backbone=True, or a feature cache (glscl-lite cache features)") from None
        params = [p for p in self.model.parameters() if p.grad is not None]
        torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)  # global clip (official), then per-tensor in BertAdam
        self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.model.clamp_logit_scale()
        return {k: v.detach() for k, v in out.items()}

    def _check_finite(self, pending: list[tuple[int, int, dict]]) -> None:
        """Stop at the first step whose loss is NaN/inf, naming the step and every loss term."""
        if not pending:
            return
        losses = torch.stack([t["loss"].float() for _, _, t in pending]).cpu()
        bad = (~torch.isfinite(losses)).nonzero()
        if len(bad):
            step, epoch, terms = pending[int(bad[0])]
            values = {k: float(v) for k, v in terms.items()}
            raise TrainingError(f"non-finite loss at step {step} (epoch {epoch}): {values}; "
                                "lower lr, check the data, or use precision=fp32")

    def fit(self) -> dict[str, Any]:
        self._preflight()
        with self._writing():
            self.cfg = self._reconcile_config(self.cfg)
            self._build()
            self._resume()
            if self.main:
                runs.write_config(self.out, self.cfg)
                runs.write_provenance(self.out, self.cfg)
            return self._loop()

    def _loop(self) -> dict[str, Any]:
        from tqdm.auto import tqdm

        cfg = self.cfg
        world, rank = dist.world_size(), dist.rank()
        per_rank = cfg.batch_size // world
        bar = tqdm(total=self.total_steps, initial=self.step, disable=not (self.progress and self.main),
                   desc="train", dynamic_ncols=True)
        t_last, step_last = time.time(), self.step
        pending: list[tuple[int, int, dict]] = []
        while self.step < self.total_steps and not self._patience_spent():
            epoch, start = divmod(self.step, self.steps_per_epoch)
            batches = epoch_batches(len(self.train_data), cfg.batch_size, cfg.seed, epoch)
            batches = batches[start:, rank * per_rank:(rank + 1) * per_rank]
            batches = batches[: self.total_steps - self.step]
            loader = _loader(BatchData(self.train_data, batches, cfg.seed, epoch), cfg.workers,
                             self.device.type == "cuda", cfg.seed * 7 + epoch)
            self.model.train()
            for batch in loader:
                terms = self._train_step(batch)
                self.step += 1
                pending.append((self.step, epoch, terms))
                bar.update(1)
                # reading values syncs the GPU: on CUDA only at log steps, on CPU every step
                if self.device.type != "cuda" or self.step % cfg.log_every == 0 or self.step == 1 \
                        or self.step == self.total_steps:
                    self._check_finite(pending)
                    pending.clear()
                    bar.set_postfix(loss=f"{float(terms['loss']):.3f}")
                if self.step % cfg.log_every == 0 or self.step == 1:
                    now = time.time()
                    lrs = self.optimizer.current_lrs() if hasattr(self.optimizer, "current_lrs") \
                        else [g["lr"] for g in self.optimizer.param_groups]
                    self.log.write({"step": self.step, "epoch": epoch, "split": "train",
                                    **{k: float(v) for k, v in terms.items()},
                                    "lr": max(lrs), "clips_per_s": round(cfg.batch_size * (self.step - step_last)
                                                                         / max(now - t_last, 1e-9), 2)})
                    t_last, step_last = now, self.step
                end_of_epoch = self.step % self.steps_per_epoch == 0 or self.step == self.total_steps
                if (cfg.eval_every and self.step % cfg.eval_every == 0) or end_of_epoch:
                    self._check_finite(pending)
                    pending.clear()
                    self._validate(epoch)
                    self._checkpoint()
                    if self._patience_spent():
                        break
                elif cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0:
                    self._check_finite(pending)
                    pending.clear()
                    self._checkpoint()
        bar.close()
        return self._finish()

    def _patience_spent(self) -> bool:
        """Early stopping: ``patience`` validations in a row without improvement."""
        return bool(self.cfg.patience) and self.stale >= self.cfg.patience

    def _finish(self) -> dict[str, Any]:
        results: dict[str, Any] = {}
        if self.main:
            if runs.has_checkpoint(self.out, "best"):
                load_checkpoint_into(self.model, self.out, "best")
            val = self._evaluate("val")
            test = self._evaluate("test")
            results = {"steps": self.step, "best_step": self.best["step"] if self.best else None,
                       "stopped_early": self._patience_spent(),
                       "val": {k: val[k] for k in ("t2v", "v2t") if k in val},
                       "test": ({k: test[k] for k in test if k in ("t2v", "v2t", "t2v_dsl", "v2t_dsl",
                                                                   "n_texts", "n_videos")} if test else None),
                       "parameters": self.model.parameter_counts()}
            runs.write_results(self.out, results)
        if dist.is_distributed():
            torch.distributed.barrier()
        return results
