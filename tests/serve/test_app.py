"""The API through FastAPI's TestClient: the bits of `modelspec predict`, 4xx for bad input."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.serve.conftest import SPECS, cli

pytest.importorskip("fastapi")
pytest.importorskip("httpx2")

from fastapi.testclient import TestClient  # noqa: E402

from modelspec.predictor import Predictor  # noqa: E402
from modelspec.serve.app import ServeSettings, create_app  # noqa: E402

IRIS_TEST = SPECS / "data" / "iris_test.csv"
MULTI_TEST = SPECS / "data" / "digits_multi_test.npz"
COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
RECORD = {"sepal_length": 5.1, "sepal_width": 3.4, "petal_length": 1.5, "petal_width": 0.2}


def client_for(run: Path, **settings: Any) -> TestClient:
    return TestClient(create_app(Predictor.load(run), ServeSettings(str(run), **settings)))


@pytest.fixture
def iris(iris_run: Path) -> Iterator[TestClient]:
    with client_for(iris_run, max_body_bytes=4096) as client:
        yield client


def cli_rows(run: Path, data: Path, *flags: str) -> list[dict[str, str]]:
    code, out, err = cli("predict", str(run), "--input", str(data), *flags)
    assert code == 0, err
    return list(csv.DictReader(io.StringIO(out)))


def iris_records() -> list[dict[str, float]]:
    with IRIS_TEST.open() as handle:
        return [{c: float(row[c]) for c in COLUMNS} for row in csv.DictReader(handle)]


# --- the same predictions as the command line ------------------------------------------------


def test_csv_body_gives_the_cli_labels_and_probabilities_bit_for_bit(
    iris: TestClient, iris_run: Path
) -> None:
    body = IRIS_TEST.read_bytes()
    answer = iris.post(
        "/predict?probabilities=true", content=body, headers={"content-type": "text/csv"}
    )
    assert answer.status_code == 200
    labels = cli_rows(iris_run, IRIS_TEST)
    probabilities = cli_rows(iris_run, IRIS_TEST, "--probabilities")
    assert answer.json()["predictions"] == labels
    served = answer.json()["probabilities"]
    assert [{k: repr(v) for k, v in row.items()} for row in served] == probabilities
    assert {row["species"] for row in labels} <= {"setosa", "versicolor", "virginica"}


def test_json_records_one_or_many_give_the_cli_bits(iris: TestClient, iris_run: Path) -> None:
    records = iris_records()
    many = iris.post("/predict?probabilities=true", json=records).json()
    expected = cli_rows(iris_run, IRIS_TEST, "--probabilities")
    assert [{k: repr(v) for k, v in r.items()} for r in many["probabilities"]] == expected
    one = iris.post("/predict?probabilities=true", json=records[0]).json()
    assert one["predictions"] == many["predictions"][:1]
    # BLAS may sum a one-row product in another order than a many-row one (OpenBLAS's Haswell
    # kernels do), so a record alone agrees with its batch to float32 rounding, not bit for bit.
    assert _close(one["probabilities"], many["probabilities"][:1])


def test_multi_input_arrays_give_the_cli_bits(multi_run: Path, tmp_path: Path) -> None:
    with np.load(MULTI_TEST) as data:
        image, meta = data["image"][:40], data["meta"][:40]
    np.savez(tmp_path / "new.npz", image=image, meta=meta)
    out = tmp_path / "cli.npz"
    assert (
        cli("predict", str(multi_run), "--input", str(tmp_path / "new.npz"), "--output", str(out))[
            0
        ]
        == 0
    )
    body = {"inputs": {"image": image.tolist(), "meta": meta.tolist()}}
    with client_for(multi_run) as client:
        answer = client.post("/predict?probabilities=true", json=body)
    assert answer.status_code == 200, answer.text
    served = answer.json()["probabilities"]
    with np.load(out) as expected:
        digits = np.array([[row[f"digit_{i}"] for i in range(10)] for row in served], np.float32)
        big = np.array([[row["big"]] for row in served], np.float32)
        assert np.array_equal(digits, expected["digit"])
        assert np.array_equal(big, expected["big"])
        ids = np.argmax(expected["digit"], axis=1)
    assert [row["digit"] for row in answer.json()["predictions"]] == ids.tolist()


def test_multi_input_records_are_single_samples(multi_run: Path) -> None:
    with np.load(MULTI_TEST) as data:
        image, meta = data["image"][:3], data["meta"][:3]
    records = [{"image": i.tolist(), "meta": m.tolist()} for i, m in zip(image, meta, strict=True)]
    arrays = {"inputs": {"image": image.tolist(), "meta": meta.tolist()}}
    with client_for(multi_run) as client:
        by_records = client.post("/predict?probabilities=true", json=records).json()
        by_arrays = client.post("/predict?probabilities=true", json=arrays).json()
    assert by_records == by_arrays


# --- health, metadata, OpenAPI -----------------------------------------------------------------


def test_health_and_metadata(iris: TestClient, iris_run: Path) -> None:
    assert iris.get("/health").json() == {"status": "ok"}
    meta = iris.get("/metadata").json()
    assert meta["name"] == "iris_mlp"
    assert meta["inputs"] == [
        {"name": "input_layer", "shape": [None, 4], "dtype": "float32", "columns": COLUMNS}
    ]
    (output,) = meta["outputs"]
    assert output["shape"] == [None, 3]
    assert output["classes"] == ["setosa", "versicolor", "virginica"]
    assert set(meta["metrics"]) >= {"loss", "accuracy", "test_accuracy"}
    import hashlib

    digest = hashlib.sha256((iris_run / "model.msz").read_bytes()).hexdigest()
    assert meta["checksum"] == f"sha256:{digest}"


def test_openapi_request_schema_comes_from_the_model_inputs(iris: TestClient) -> None:
    document = iris.get("/openapi.json").json()
    body = document["paths"]["/predict"]["post"]["requestBody"]["content"]
    assert set(body) == {"application/json", "text/csv"}
    schemas = document["components"]["schemas"]
    record = schemas["Record"]
    assert list(record["properties"]) == COLUMNS
    assert record["required"] == COLUMNS
    assert record["additionalProperties"] is False
    arrays = schemas["Arrays"]["properties"]["input_layer"]
    assert arrays["items"]["items"]["type"] == "number"
    refs = json.dumps(body["application/json"]["schema"])
    assert "#/components/schemas/Record" in refs and "#/components/schemas/ArraysRequest" in refs
    answers = document["paths"]["/predict"]["post"]["responses"]
    assert answers["200"]["content"]["application/json"]["schema"]["$ref"].endswith("Response")
    assert list(schemas["Prediction"]["properties"]) == ["species"]
    assert schemas["Prediction"]["properties"]["species"]["type"] == "string"
    classes = ["species_setosa", "species_versicolor", "species_virginica"]
    assert list(schemas["Probabilities"]["properties"]) == classes
    assert set(answers) >= {"400", "413", "415", "422"}
    assert iris.get("/docs").status_code == 200


# --- bad input is a 4xx naming the field -------------------------------------------------------

BAD_JSON = [
    ("text in a number field", {**RECORD, "petal_width": "wide"}, 422, "petal_width"),
    ("a missing key", {k: v for k, v in RECORD.items() if k != "sepal_width"}, 422, "sepal_width"),
    ("an unknown key", {**RECORD, "colour": 1.0}, 422, "colour"),
    ("no records", [], 422, "no samples"),
    ("a wrong width", {"inputs": {"input_layer": [[1.0, 2.0, 3.0]]}}, 422, "input_layer"),
    ("a wrong rank", {"inputs": {"input_layer": [1.0, 2.0, 3.0, 4.0]}}, 422, "input_layer"),
    ("ragged arrays", {"inputs": {"input_layer": [[1.0, 2, 3, 4], [1.0]]}}, 422, "input_layer"),
    ("an unknown input", {"inputs": {"pixels": [[1.0, 2, 3, 4]]}}, 422, "pixels"),
    ("a scalar body", 3, 422, "body"),
    ("true as a number", {**RECORD, "sepal_length": True}, 422, "sepal_length"),
    ("a number as text", {**RECORD, "sepal_width": "3.5"}, 422, "sepal_width"),
    ("false in an array", {"inputs": {"input_layer": [[1.0, 2, 3, False]]}}, 422, "[0][3]"),
]


@pytest.mark.parametrize(
    ("case", "body", "status", "names"), BAD_JSON, ids=[c[0] for c in BAD_JSON]
)
def test_bad_json_is_a_4xx_naming_the_field(
    iris: TestClient, case: str, body: Any, status: int, names: str
) -> None:
    answer = iris.post("/predict", json=body)
    assert answer.status_code == status, answer.text
    assert names in answer.json()["detail"]


BAD_BODIES = [
    ("an empty body", b"", "application/json", 400, "empty"),
    ("broken JSON", b'{"sepal_length": ', "application/json", 400, "not valid JSON"),
    ("a CSV without the columns", b"a,b\n1,2\n", "text/csv", 422, "sepal_length"),
    (
        "text in a CSV number column",
        b"sepal_length,sepal_width,petal_length,petal_width\nx,1,2,3\n",
        "text/csv",
        422,
        "sepal_length",
    ),
    (
        "NaN in a CSV",
        b"sepal_length,sepal_width,petal_length,petal_width\n,1,2,3\n",
        "text/csv",
        422,
        "sepal_length",
    ),
    ("a NUL byte in a CSV", b"sepal_length\x00\n1\n", "text/csv", 422, "sepal_length"),
    ("a CSV that is not UTF-8", b"\xff\xfe,a\n", "text/csv", 400, "UTF-8"),
    ("JSON nested past the parser", b"[" * 2000 + b"]" * 2000, "application/json", 400, "JSON"),
    ("a body over the limit", b"1" * 5000, "text/csv", 413, "limit"),
    ("an unknown content type", b"5.1 3.4", "text/plain", 415, "text/plain"),
]


@pytest.mark.parametrize(
    ("case", "body", "content_type", "status", "names"), BAD_BODIES, ids=[c[0] for c in BAD_BODIES]
)
def test_bad_bodies_are_a_4xx_with_a_message(
    iris: TestClient, case: str, body: bytes, content_type: str, status: int, names: str
) -> None:
    answer = iris.post("/predict", content=body, headers={"content-type": content_type})
    assert answer.status_code == status, answer.text
    assert names in answer.json()["detail"]


def test_a_csv_field_over_the_csv_modules_limit_is_a_422(iris_run: Path) -> None:
    with client_for(iris_run) as client:
        answer = client.post(
            "/predict", content=b"x" * 140_000, headers={"content-type": "text/csv"}
        )
    assert answer.status_code == 422
    assert "not a readable CSV" in answer.json()["detail"]


def test_predict_refuses_a_csv_that_is_not_utf8_in_one_line(iris_run: Path, tmp_path: Path) -> None:
    data = tmp_path / "latin1.csv"
    data.write_bytes(",".join(COLUMNS).encode() + b"\n5.1,3.4,1.5,0.2\xe9\n")
    code, _, err = cli("predict", str(iris_run), "--input", str(data))
    assert code == 1 and "not a readable CSV" in err and str(data) in err


def test_a_streamed_body_over_the_limit_is_refused(iris: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(10):
            yield b"1" * 1000

    answer = iris.post("/predict", content=chunks(), headers={"content-type": "text/csv"})
    assert answer.status_code == 413


# --- micro-batching ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "shared"), [({"max_delay_ms": 200.0}, True), ({"max_batch_rows": 1}, False)]
)
def test_concurrent_requests_share_a_pass_unless_batching_is_off(
    iris_run: Path, settings: dict[str, float], shared: bool
) -> None:
    """Requests arriving within the window share a pass, and each gets its own rows back."""
    predictor = Predictor.load(iris_run)
    app = create_app(predictor, ServeSettings(str(iris_run), **settings))  # type: ignore[arg-type]
    records = iris_records()[:8]
    import httpx2

    async def send_all() -> list[Any]:
        transport = httpx2.ASGITransport(app=app)
        async with (
            app.router.lifespan_context(app),
            httpx2.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client,
        ):
            answers = await asyncio.gather(
                *(client.post("/predict?probabilities=true", json=r) for r in records)
            )
            return [app.state.batcher.passes, *answers]

    passes, *answers = asyncio.run(send_all())
    assert (passes < len(records)) if shared else (passes == len(records))
    served = [a.json()["probabilities"][0] for a in answers]
    together = _rows(predictor, records)
    # Served alone, each record gets `predict`'s bits for that record alone; sharing a pass,
    # the batch's composition may move the last bits (BLAS's order depends on the row count).
    alone = [row for record in records for row in _rows(predictor, [record])]
    assert served == alone if not shared else _close(served, together)
    assert _close(alone, together)


def _rows(predictor: Predictor, records: list[dict[str, float]]) -> list[dict[str, float]]:
    columns = predictor.columns(predictor.predict(_inputs(predictor, records)), probabilities=True)
    return [dict(zip(columns, row, strict=True)) for row in zip(*columns.values(), strict=True)]


def _close(a: list[dict[str, float]], b: list[dict[str, float]]) -> bool:
    """Equal keys and values within float32 rounding of probabilities."""
    return [r.keys() for r in a] == [r.keys() for r in b] and all(
        np.allclose(list(x.values()), list(y.values()), rtol=1e-5, atol=1e-7)
        for x, y in zip(a, b, strict=True)
    )


def _inputs(predictor: Predictor, records: list[dict[str, float]]) -> dict[str, np.ndarray]:
    x = np.array([[r[c] for c in COLUMNS] for r in records], dtype=np.float32)
    return {predictor.signature.inputs[0].name: x}
