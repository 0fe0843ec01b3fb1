"""Bidirectional and TimeDistributed rows (params: 2x the wrapped RNN; the inner layer's)."""

from tests.layers.harness import LayerCase

LSTM3 = {"type": "LSTM", "units": 3}
GRU3_SEQ = {"type": "GRU", "units": 3, "return_sequences": True}

CASES = [
    # Bidirectional(LSTM(3)) on 2 features, concat: 2*4*(3*(2+3)+3) = 144
    LayerCase(
        "bidir_lstm_concat", {"type": "Bidirectional", "layer": LSTM3}, (None, 4, 2), (None, 6), 144
    ),
    # sum / mul / ave keep the width: 144
    *[
        LayerCase(
            f"bidir_lstm_{mode}",
            {"type": "Bidirectional", "layer": LSTM3, "merge_mode": mode},
            (None, 4, 2),
            (None, 3),
            144,
        )
        for mode in ("sum", "mul", "ave")
    ],
    # Bidirectional(GRU(3, return_sequences)), concat: 2*3*(3*(2+3)+2*3) = 126
    LayerCase(
        "bidir_gru_seq",
        {"type": "Bidirectional", "layer": GRU3_SEQ},
        (None, 4, 2),
        (None, 4, 6),
        126,
    ),
    # mul over sequences: 126
    LayerCase(
        "bidir_gru_seq_mul",
        {"type": "Bidirectional", "layer": GRU3_SEQ, "merge_mode": "mul"},
        (None, 4, 2),
        (None, 4, 3),
        126,
    ),
    # Bidirectional(SimpleRNN(64)) on 32 features: 2*(64*(32+64)+64) = 12416
    LayerCase(
        "bidir_simple_rnn_64",
        {"type": "Bidirectional", "layer": {"type": "SimpleRNN", "units": 64}},
        (None, 10, 32),
        (None, 128),
        12416,
        check_grads=False,
    ),
    # TimeDistributed(Dense(4)) on (T, 3): 3*4+4 = 16
    LayerCase(
        "time_distributed_dense",
        {"type": "TimeDistributed", "layer": {"type": "Dense", "units": 4, "activation": "tanh"}},
        (None, 5, 3),
        (None, 5, 4),
        16,
    ),
    # TimeDistributed(Dense(8)) on (T, 16), variable T: 16*8+8 = 136
    LayerCase(
        "time_distributed_dense_none_t",
        {"type": "TimeDistributed", "layer": {"type": "Dense", "units": 8}},
        (None, None, 16),
        (None, None, 8),
        136,
        check_grads=False,
    ),
    # TimeDistributed(LayerNormalization) on (T, 2, 3): gamma + beta = 3+3 = 6
    LayerCase(
        "time_distributed_layer_norm",
        {"type": "TimeDistributed", "layer": {"type": "LayerNormalization"}},
        (None, 4, 2, 3),
        (None, 4, 2, 3),
        6,
    ),
]
