"""Data-parallel pieces that need no MPI: launcher detection, shards, metric sums, the config."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from engine import metrics
from engine.config.distributed import DistributedConfig
from engine.config.fit import FitConfig
from engine.distributed import DistributedError, check_batch_size, launch, wanted
from engine.distributed.replica import DataParallel, shard_bounds
from engine.train.loops import fit_arguments
from engine.train.prepare import Data

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class StubComm:
    """One rank of a world whose other ranks hold the same numbers: a sum over ranks is
    `size` times this rank's value."""

    rank: int
    size: int

    def allreduce_sum(self, array: np.ndarray) -> None:
        array *= self.size


@pytest.mark.parametrize(
    ("env", "size", "rank"),
    [
        ({}, 1, 0),
        ({"OMPI_COMM_WORLD_SIZE": "4", "OMPI_COMM_WORLD_RANK": "3"}, 4, 3),
        ({"PMI_SIZE": "2", "PMI_RANK": "1"}, 2, 1),
        ({"SLURM_STEP_NUM_TASKS": "64", "SLURM_PROCID": "17"}, 64, 17),
        ({"PMI_SIZE": ""}, 1, 0),
    ],
)
def test_launcher_environment(env: dict[str, str], size: int, rank: int) -> None:
    assert launch.world_size(env) == size
    assert launch.world_rank(env) == rank


@pytest.mark.parametrize(("count", "size"), [(32, 2), (27, 2), (7, 3), (3, 4), (1, 2)])
def test_shards_cover_each_batch_once_and_differ_by_at_most_one(count: int, size: int) -> None:
    bounds = [shard_bounds(count, r, size) for r in range(size)]
    assert bounds[0][0] == 0 and bounds[-1][1] == count
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:], strict=False))
    sizes = [hi - lo for lo, hi in bounds]
    assert max(sizes) - min(sizes) <= 1


def test_each_rank_reads_its_shard_of_the_shuffled_order() -> None:
    x = np.arange(10, dtype=np.float32)[:, None]
    data = Data([x], [x.copy()], None)
    order = np.random.default_rng(0).permutation(10)
    seen: list[float] = []
    shares = []
    for rank in range(2):
        dp = DataParallel(StubComm(rank, 2))  # type: ignore[arg-type]
        for batch in dp.batches(data, 4, order):
            assert batch is not None
            seen.extend(batch[0][0][:, 0].tolist())
            shares.append(dp.share)
    # batches of 4, 4 and 2 samples: 2 + 2, 2 + 2, 1 + 1
    assert sorted(seen) == list(range(10))
    assert shares == [0.5] * 6
    first = DataParallel(StubComm(0, 2))  # type: ignore[arg-type]
    assert next(iter(first.batches(data, 4, order)))[0][0][:, 0].tolist() == order[:2].tolist()  # type: ignore[index]


def test_a_short_last_batch_leaves_a_rank_idle() -> None:
    x = np.zeros((5, 1), np.float32)
    idle = []
    for rank in range(3):
        dp = DataParallel(StubComm(rank, 3))  # type: ignore[arg-type]
        idle.append([p is None for p in dp.batches(Data([x], [x], None), 3, None)])
    # the last batch has 2 samples for 3 ranks: one rank sits it out
    assert [r[0] for r in idle] == [False] * 3
    assert sorted(r[1] for r in idle) == [False, False, True]


def test_dropout_streams_differ_per_rank_and_derive_from_the_seed() -> None:
    keys = [DataParallel(StubComm(r, 2)).rng_key(42, 3) for r in range(2)]  # type: ignore[arg-type]
    draws = [np.random.default_rng(k).random(4) for k in keys]
    assert keys[0][:3] == [42, 3, 1] and keys[1][:3] == [42, 3, 1]
    assert not np.array_equal(draws[0], draws[1])


@pytest.mark.parametrize(
    "spec",
    [
        "mae",
        "mse",
        "rmse",
        "binary_accuracy",
        "precision",
        "recall",
        {"type": "auc", "curve": "PR"},
    ],
)
def test_metric_state_summed_over_parts_gives_the_whole(spec: object) -> None:
    """The identity that lets ranks add their metric states: parts then sum == whole."""
    rng = np.random.default_rng(3)
    y = (rng.random((20, 1)) > 0.5).astype(np.float32)
    p = rng.random((20, 1)).astype(np.float32)
    whole, left, right = (metrics.get(spec) for _ in range(3))  # type: ignore[arg-type]
    whole.update(y, p)
    left.update(y[:9], p[:9])
    right.update(y[9:], p[9:])
    assert whole.additive_state
    for name in whole.additive_state:
        setattr(left, name, np.asarray(getattr(left, name)) + getattr(right, name))
    np.testing.assert_allclose(left.result(), whole.result(), rtol=1e-6)


def test_tracker_reduction_unpacks_what_it_packs() -> None:
    from engine.build import from_spec
    from engine.train.tracker import Tracker
    from engine.train.trainer import get_trainer

    model = from_spec(
        {
            "model": {
                "type": "sequential",
                "layers": [{"type": "Input", "shape": [2]}, {"type": "Dense", "units": 1}],
            },
            "compile": {"optimizer": "sgd", "loss": "mse", "metrics": ["mae", "auc"]},
        }
    )
    x = np.random.default_rng(0).random((6, 2)).astype(np.float32)
    y = (x[:, :1] > 0.5).astype(np.float32)
    trainer = get_trainer(model)
    tracker = Tracker(trainer.compiled, model.output_names)
    trainer.test_step([x], [y], None, tracker)
    before = tracker.logs()
    DataParallel(StubComm(0, 3)).reduce_tracker(tracker)  # type: ignore[arg-type]
    assert tracker.count == 18
    after = tracker.logs()
    assert after.keys() == before.keys()
    for key, value in before.items():
        assert after[key] == pytest.approx(value, rel=1e-12)


def test_batch_size_must_split_evenly() -> None:
    check_batch_size(32, 4)
    with pytest.raises(DistributedError, match="does not split evenly over 3 ranks"):
        check_batch_size(32, 3)


def test_distributed_section() -> None:
    assert wanted(DistributedConfig(), size=1) is False
    assert wanted(DistributedConfig(), size=2) is True
    assert wanted(DistributedConfig(enabled=False), size=4) is False
    assert wanted(DistributedConfig(enabled=True), size=1) is True
    with pytest.raises(ValueError):
        DistributedConfig.model_validate({"enabled": "yes", "bucket": 1})
    config = FitConfig.model_validate({"distributed": {"check_weights": False}})
    assert "distributed" not in fit_arguments(config)


def test_one_process_never_imports_mpi4py(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from modelspec.cli import app\n"
        f"app(['train', {str(ROOT / 'specs' / 'iris_mlp.yaml')!r}, '--out', {str(tmp_path)!r},"
        " '--set', 'fit.epochs=1'], standalone_mode=False)\n"
        "assert 'mpi4py' not in sys.modules, 'mpi4py was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, cwd=tmp_path)


def test_buckets_cut_the_gradient_from_the_end_in_backward_order() -> None:
    from engine.build import from_spec
    from engine.distributed.buckets import Buckets
    from engine.train.trainer import get_trainer

    model = from_spec(
        {
            "model": {
                "type": "sequential",
                "layers": [
                    {"type": "Input", "shape": [8]},
                    {"type": "Dense", "units": 16},
                    {"type": "Dense", "units": 16},
                    {"type": "Dense", "units": 2},
                ],
            },
            "compile": {"optimizer": "sgd", "loss": "mse"},
        }
    )
    trainer = get_trainer(model)
    buckets = Buckets(StubComm(0, 2), trainer.flat, trainer.train_exec, 4 * 200)  # type: ignore[arg-type]
    # weights 8x16+16, 16x16+16, 16x2+2 = 144, 272, 34 floats: [0,144) [144,416) [416,450)
    assert buckets.ranges == [(144, 450), (0, 144)]
    assert buckets.ready_at == [1, 0]  # the second and third Dense, then the first
