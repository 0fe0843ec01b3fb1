"""The Keras table covers the catalogue: every registered layer type has a row or a reason."""

from __future__ import annotations

from engine.keras_io.layer_table import BY_SPEC, NO_KERAS_EQUIVALENT, ROWS
from engine.layers import registry


def test_every_layer_type_has_a_row_or_a_reason() -> None:
    missing = sorted(set(registry.all_layers()) - set(BY_SPEC) - set(NO_KERAS_EQUIVALENT))
    assert missing == [], (
        f"{missing} have no row in engine/keras_io/layer_table.py: add one (`_same(...)` when "
        "the Keras class, arguments and weight order are Keras's own, with `children` where "
        "Keras keeps weights in sub-groups) and a layer of it to "
        "scripts/make_keras_fixtures.py, or list the type in NO_KERAS_EQUIVALENT with why"
    )


def test_rows_name_registered_types_once() -> None:
    assert len({row.spec for row in ROWS}) == len(ROWS) == len({row.keras for row in ROWS})
    assert set(BY_SPEC) <= set(registry.all_layers())
    assert not set(BY_SPEC) & set(NO_KERAS_EQUIVALENT)
