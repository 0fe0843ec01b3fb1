"""Streams under a real `mpirun -n 2`: each rank reads only its own units (row groups, NPY row
ranges), a streamed fit keeps the ranks' weights identical and repeats bit for bit, and a run
killed in the middle of an epoch resumes from its step checkpoint as if never stopped.

Skipped without mpi4py, mpirun or pyarrow, like the other MPI tests (see test_mpi.py)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from engine import saving
from tests.distributed.test_mpi import (  # noqa: F401 (pytestmark: the skip marker)
    ctrl_c_once_checkpointed,
    history,
    launch,
    pytestmark,
)

pytest.importorskip("pyarrow")

ROWS, WIDTH, GROUP = 300, 6, 32


def _arrays() -> tuple[np.ndarray, np.ndarray]:
    """Feature 0 is the row's id, so a rank's batches say which rows it read."""
    rng = np.random.default_rng(11)
    x = rng.normal(size=(ROWS, WIDTH)).astype(np.float32)
    x[:, 0] = np.arange(ROWS)
    y = (x[:, 1] > 0).astype(np.int64) + (x[:, 2] > 1).astype(np.int64)
    return x, y


def _parquet(folder: Path) -> dict[str, Any]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    x, y = _arrays()
    table = pa.table({"x": pa.FixedSizeListArray.from_arrays(pa.array(x.ravel()), WIDTH), "y": y})
    (folder / "parts").mkdir()
    pq.write_table(table.slice(0, 200), folder / "parts" / "a.parquet", row_group_size=GROUP)
    pq.write_table(table.slice(200), folder / "parts" / "b.parquet", row_group_size=GROUP)
    return {"path": str(folder / "parts"), "x": "x", "target": "y"}


def _npy(folder: Path) -> dict[str, Any]:
    x, y = _arrays()
    np.save(folder / "x.npy", x)
    np.save(folder / "y.npy", y)
    return {"path": str(folder / "x.npy"), "y": str(folder / "y.npy")}


WRITERS = {"parquet": _parquet, "npy": _npy}


def _source(tmp_path: Path, kind: str) -> str:
    return json.dumps({**WRITERS[kind](tmp_path), "streaming": True, "shuffle_buffer": 40})


def _reports(result: subprocess.CompletedProcess[str], folder: Path) -> list[dict[str, Any]]:
    """Each rank's report (rank<r>.json in `folder`), in rank order."""
    assert result.returncode == 0, result.stderr
    return [json.loads((folder / f"rank{r}.json").read_text()) for r in range(2)]


def _unit_rows(label: str) -> set[int]:
    """The row ids of a unit, from its label: a Parquet row group or an NPY row range."""
    where = label.rsplit(": ", 1)[1]
    if where.startswith("rows "):
        first, last = map(int, where[5:].split("-"))
        return set(range(first, last + 1))
    group = int(where.rsplit(" ", 1)[1])
    offset = 200 if label.startswith(str(Path(label).parent / "b.parquet")) else 0
    start = offset + group * GROUP
    return set(range(start, min(start + GROUP, 200 if offset == 0 else ROWS)))


@pytest.mark.parametrize("kind", ["parquet", "npy"])
def test_each_rank_reads_only_its_own_units(tmp_path: Path, kind: str) -> None:
    ranks = _reports(launch("stream-rows", _source(tmp_path, kind), str(tmp_path)), tmp_path)
    assert [r["rank"] for r in ranks] == [0, 1]
    for epoch in range(2):
        read = [set(r["epochs"][epoch]["read"]) for r in ranks]
        ids = [r["epochs"][epoch]["ids"] for r in ranks]
        assert read[0] and read[1] and not read[0] & read[1]
        assert len(read[0] | read[1]) == -(-200 // GROUP) + -(-100 // GROUP) or kind == "npy"
        for mine, seen in zip(read, ids, strict=True):
            assert len(seen) == len(set(seen)), "a row read twice in one epoch"
            assert set(seen) == set().union(*(_unit_rows(label) for label in mine))
        assert not set(ids[0]) & set(ids[1])
        assert sorted(ids[0] + ids[1]) == list(range(ROWS))


@pytest.mark.parametrize("kind", ["parquet", "npy"])
def test_normalization_adapts_on_each_ranks_share_and_merges(tmp_path: Path, kind: str) -> None:
    """Each rank reads only its units; the merged statistics are the whole data's (NumPy in
    float64), the same bits on both ranks."""
    ranks = _reports(launch("stream-adapt", _source(tmp_path, kind), str(tmp_path)), tmp_path)
    read = [set(r["read"]) for r in ranks]
    assert read[0] and read[1] and not read[0] & read[1]
    assert set().union(*(_unit_rows(label) for label in read[0] | read[1])) == set(range(ROWS))
    assert ranks[0]["stats"] == ranks[1]["stats"]
    x = _arrays()[0].astype(np.float64)
    stats = ranks[0]["stats"]
    assert stats["count"] == ROWS
    np.testing.assert_allclose(stats["mean"], x.mean(axis=0), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(stats["variance"], x.var(axis=0), rtol=1e-6)


@pytest.mark.parametrize("kind", ["parquet", "npy"])
def test_streamed_fit_keeps_ranks_equal_and_repeats_bit_for_bit(tmp_path: Path, kind: str) -> None:
    source = _source(tmp_path, kind)
    runs = []
    for name in ("first", "second"):
        ranks = _reports(launch("stream-fit", source, str(tmp_path / name)), tmp_path / name)
        assert ranks[0]["weights"] == ranks[1]["weights"]
        assert ranks[0]["history"] == ranks[1]["history"]
        assert all(np.isfinite(ranks[0]["history"]["loss"]))
        runs.append(ranks[0])
    assert runs[0] == runs[1]


def test_streamed_run_killed_mid_epoch_resumes_bit_for_bit(tmp_path: Path) -> None:
    """Rank 1 dies after step 5 of epoch 2; the step checkpoint after step 3 (every rank's
    position, gathered) brings the resumed 2-rank run to the unbroken run's weights and
    last epoch."""
    source = _source(tmp_path, "parquet")
    whole = _reports(launch("stream-fit", source, str(tmp_path / "whole")), tmp_path / "whole")[0]
    killed = launch("stream-fit", source, str(tmp_path / "run"), "--kill", "1,5")
    assert killed.returncode != 0
    again = launch("stream-fit", source, str(tmp_path / "run"), "--resume")
    resumed = _reports(again, tmp_path / "run")
    assert resumed[0]["weights"] == resumed[1]["weights"] == whole["weights"]
    for key, values in resumed[0]["history"].items():
        assert values[-1] == whole["history"][key][-1], key


def test_a_two_rank_position_refuses_to_resume_in_one_process(tmp_path: Path) -> None:
    from engine.build import from_spec
    from engine.config.data import DataSource
    from engine.loading import resume
    from engine.streaming import open_stream
    from engine.train.errors import TrainingError
    from tests.distributed.worker import stream_spec
    from tests.streaming.files import SIGNATURE

    source = _source(tmp_path, "parquet")
    killed = launch("stream-fit", source, str(tmp_path / "run"), "--kill", "1,5")
    assert killed.returncode != 0
    model = from_spec(stream_spec())
    initial = resume(model, tmp_path / "run")
    stream = open_stream(DataSource(**json.loads(source)), tmp_path, SIGNATURE)
    with pytest.raises(
        TrainingError, match=r"2 process\(es\); resume it on as many \(mpirun -n 2\)"
    ):
        model.fit(stream, epochs=3, batch_size=16, verbose=0, initial_epoch=initial)


def _streamed_spec(tmp_path: Path, epochs: int) -> None:
    from tests.distributed.worker import stream_spec

    source = {**WRITERS["parquet"](tmp_path), "streaming": True, "shuffle_buffer": 64}
    spec = {**stream_spec(), "name": "streamed", "data": {"train": source}}
    spec["fit"] = {"epochs": epochs, "batch_size": 4}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(spec))


def _train(tmp_path: Path, fault: str, out: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return launch("cli", fault, "--", "train", "s.yaml", "--out", out, *extra, cwd=tmp_path)


def _assert_same_run(a: Path, b: Path) -> None:
    """The same History and weights, bit for bit."""
    assert history(a).keys() == history(b).keys()
    for key, values in history(a).items():
        assert history(b)[key].tobytes() == values.tobytes(), key
    wa, wb = saving.read_artifact(a).weights, saving.read_artifact(b).weights
    assert wa.keys() == wb.keys()
    assert all(wa[k].tobytes() == wb[k].tobytes() for k in wa)


def test_modelspec_train_killed_mid_epoch_under_mpirun_resumes_bit_for_bit(
    tmp_path: Path,
) -> None:
    """The command line end to end: every rank has the step checkpointer, rank 0 writes; rank 1
    dies after step 60 of epoch 2 and `--resume` on 2 ranks continues from step 50 (the
    checkpoint every 50 steps) to the unbroken run's History and weights, bit for bit."""
    _streamed_spec(tmp_path, 3)

    def train(fault: str, out: str, *extra: str) -> subprocess.CompletedProcess[str]:
        return _train(tmp_path, fault, out, *extra)

    whole = train("none", "whole")
    assert whole.returncode == 0, whole.stderr
    killed = train("kill-mid", "run")
    assert killed.returncode != 0
    positions = [saving.checkpoint_position(p) for p in saving.list_checkpoints(tmp_path / "run")]
    assert max(positions) == (1, 50)
    resumed = train("none", "run", "--resume", "run")
    assert resumed.returncode == 0, resumed.stderr
    _assert_same_run(tmp_path / "whole", tmp_path / "run")


def test_modelspec_train_stopped_by_ctrl_c_under_mpirun_resumes_bit_for_bit(
    tmp_path: Path,
) -> None:
    """SIGINT to mpirun once the first checkpoint is written: every rank stops at the same step
    and rank 0 saves the position gathered from both; `--resume` to the end of that epoch gives
    the run trained to there unbroken (the run is long, so the signal never comes too late)."""
    _streamed_spec(tmp_path, 1000)
    args = ["train", "s.yaml", "--out", "run"]
    stdout, stderr = ctrl_c_once_checkpointed(args, tmp_path / "run", cwd=tmp_path)
    assert "Traceback" not in stderr, stdout + stderr
    assert "Interrupted: saving the model as it is now." in stdout, stdout + stderr
    epoch, _ = max(saving.checkpoint_position(p) for p in saving.list_checkpoints(tmp_path / "run"))
    epochs = f"fit.epochs={epoch + 1}"
    whole = _train(tmp_path, "none", "whole", "--set", epochs)
    assert whole.returncode == 0, whole.stderr
    resumed = _train(tmp_path, "none", "run", "--resume", "run", "--set", epochs)
    assert resumed.returncode == 0, resumed.stderr
    _assert_same_run(tmp_path / "whole", tmp_path / "run")


def _stopped_at(tmp_path: Path, fault: str, out: str) -> tuple[int, int]:
    """The position a run stopped by `fault`'s Ctrl-C saved (its last checkpoint)."""
    stopped = _train(tmp_path, fault, out)
    assert "Interrupted: saving the model as it is now." in stopped.stdout, stopped.stderr
    assert "Traceback" not in stopped.stderr, stopped.stderr
    return max(saving.checkpoint_position(p) for p in saving.list_checkpoints(tmp_path / out))


@pytest.mark.parametrize("fault", ["signal-in-agree", "signal-after-agree"])
def test_a_ctrl_c_landing_on_the_step_agreement_stops_every_rank_at_the_next_step(
    tmp_path: Path, fault: str
) -> None:
    """Rank 1 alone gets SIGINT just as the ranks have agreed to go on (worker.py's
    `_late_signal`): the signal must neither be lost (the run going on to its end) nor stop
    rank 1 alone (the ranks then wait in different collectives). Both stop one step after
    where a signal before the agreement stops them, and `--resume` ends as the unbroken run
    does."""
    _streamed_spec(tmp_path, 3)
    epoch, step = _stopped_at(tmp_path, "signal-before-agree", "early")
    assert _stopped_at(tmp_path, fault, "run") == (epoch, step + 1)
    whole = _train(tmp_path, "none", "whole")
    assert whole.returncode == 0, whole.stderr
    resumed = _train(tmp_path, "none", "run", "--resume", "run")
    assert resumed.returncode == 0, resumed.stderr
    _assert_same_run(tmp_path / "whole", tmp_path / "run")


@pytest.mark.parametrize("fault", ["signal-when-idle", "signal-at-epoch-end"])
def test_a_run_stopped_where_a_rank_has_no_step_left_resumes_bit_for_bit(
    tmp_path: Path, fault: str
) -> None:
    """Stopped at rank 1's first idle step (its shard of the epoch ran out, rank 0's has rows
    left) or at the epoch's last step, the resumed epoch gives rank 1 no training step: it
    must still put back its saved sums and combine them with rank 0's, to the unbroken run's
    History and weights."""
    _streamed_spec(tmp_path, 2)
    epoch, _ = _stopped_at(tmp_path, fault, "run")
    assert epoch == 0
    whole = _train(tmp_path, "none", "whole")
    assert whole.returncode == 0, whole.stderr
    resumed = _train(tmp_path, "none", "run", "--resume", "run")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    _assert_same_run(tmp_path / "whole", tmp_path / "run")


def test_a_ctrl_c_on_one_rank_after_the_last_agreement_ends_every_rank_alike(
    tmp_path: Path,
) -> None:
    """Rank 1 alone gets SIGINT at the end of the last epoch, after the ranks agreed on the
    last step: no step is left to agree on it, so fit agrees once more at its end and every
    rank exits 130, where rank 1 exited 130 and rank 0 exited 0."""
    _streamed_spec(tmp_path, 1)
    stopped = _train(tmp_path, "signal-after-last-agree", "run")
    assert "Traceback" not in stopped.stderr, stopped.stderr
    codes = [(tmp_path / f"exit{rank}.txt").read_text() for rank in (0, 1)]
    assert codes == ["130", "130"], stopped.stdout + stopped.stderr
    assert "Interrupted: saving the model as it is now." in stopped.stdout
