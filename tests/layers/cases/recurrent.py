"""SimpleRNN, LSTM and GRU rows (Keras formulas: SimpleRNN u*(F+u)+u, LSTM 4*(u*(F+u)+u), GRU
reset_after 3*(u*(F+u)+2u), GRU reset_after=False 3*(u*(F+u)+u))."""

from tests.layers.harness import LayerCase

CASES = [
    # SimpleRNN(4) on 3 features: 4*(3+4)+4 = 32
    LayerCase("simple_rnn_last", {"type": "SimpleRNN", "units": 4}, (None, 5, 3), (None, 4), 32),
    # same, every timestep, relu: 32
    LayerCase(
        "simple_rnn_seq_relu",
        {"type": "SimpleRNN", "units": 4, "activation": "relu", "return_sequences": True},
        (None, 5, 3),
        (None, 5, 4),
        32,
    ),
    # LSTM(3) on 2 features: 4*(3*(2+3)+3) = 72
    LayerCase("lstm_last", {"type": "LSTM", "units": 3}, (None, 4, 2), (None, 3), 72),
    # LSTM(3), sequences, backwards: 72
    LayerCase(
        "lstm_seq_backwards",
        {"type": "LSTM", "units": 3, "return_sequences": True, "go_backwards": True},
        (None, 4, 2),
        (None, 4, 3),
        72,
    ),
    # LSTM(2) without bias: 4*2*(3+2) = 40; gelu/hard_sigmoid exercise the generic gate path
    LayerCase(
        "lstm_no_bias_other_acts",
        {
            "type": "LSTM",
            "units": 2,
            "use_bias": False,
            "activation": "gelu",
            "recurrent_activation": "hard_sigmoid",
            "return_sequences": True,
        },
        (None, 3, 3),
        (None, 3, 2),
        40,
    ),
    # LSTM(3) with dropout in training mode (the seeded masks repeat): 72
    LayerCase(
        "lstm_dropout_training",
        {"type": "LSTM", "units": 3, "dropout": 0.3, "recurrent_dropout": 0.4},
        (None, 4, 2),
        (None, 3),
        72,
        training=True,
    ),
    # LSTM(64) on 64 features: 4*(64*(64+64)+64) = 33024 (the W4 benchmark layer)
    LayerCase(
        "lstm_64",
        {"type": "LSTM", "units": 64},
        (None, 100, 64),
        (None, 64),
        33024,
        check_grads=False,
    ),
    # GRU(3) on 2 features, reset_after: 3*(3*(2+3)+2*3) = 63
    LayerCase("gru_reset_after", {"type": "GRU", "units": 3}, (None, 4, 2), (None, 3), 63),
    # GRU(3), reset_after=False: 3*(3*(2+3)+3) = 54
    LayerCase(
        "gru_reset_before_seq",
        {"type": "GRU", "units": 3, "reset_after": False, "return_sequences": True},
        (None, 4, 2),
        (None, 4, 3),
        54,
    ),
    # GRU(3) both dropouts in training, backwards, reset_after=False: 54
    LayerCase(
        "gru_dropout_backwards",
        {
            "type": "GRU",
            "units": 3,
            "reset_after": False,
            "go_backwards": True,
            "dropout": 0.2,
            "recurrent_dropout": 0.3,
        },
        (None, 4, 2),
        (None, 3),
        54,
        training=True,
    ),
    # GRU(2) with recurrent dropout, reset_after: 3*(2*(3+2)+2*2) = 42
    LayerCase(
        "gru_rec_dropout",
        {"type": "GRU", "units": 2, "recurrent_dropout": 0.5, "return_sequences": True},
        (None, 3, 3),
        (None, 3, 2),
        42,
        training=True,
    ),
    # GRU(2) with relu / hard_sigmoid (the generic gate path), both modes: 3*(2*(3+2)+2*2) = 42
    LayerCase(
        "gru_other_acts",
        {
            "type": "GRU",
            "units": 2,
            "activation": "relu",
            "recurrent_activation": "hard_sigmoid",
            "return_sequences": True,
        },
        (None, 3, 3),
        (None, 3, 2),
        42,
    ),
    # reset_after=False, selu / softsign: 3*(2*(3+2)+2) = 36
    LayerCase(
        "gru_reset_before_other_acts",
        {
            "type": "GRU",
            "units": 2,
            "activation": "selu",
            "recurrent_activation": "softsign",
            "reset_after": False,
        },
        (None, 3, 3),
        (None, 2),
        36,
    ),
    # SimpleRNN without bias, linear: 3*(2+3) = 15
    LayerCase(
        "simple_rnn_linear_no_bias",
        {"type": "SimpleRNN", "units": 3, "activation": "linear", "use_bias": False},
        (None, 4, 2),
        (None, 3),
        15,
    ),
    # GRU(16) on 8 features, frozen: 3*(16*(8+16)+2*16) = 1248, none trainable
    LayerCase(
        "gru_frozen",
        {"type": "GRU", "units": 16, "trainable": False},
        (None, None, 8),
        (None, 16),
        1248,
        trainable=0,
        check_grads=False,
    ),
]
