/* The exp both the LSTM loops (_recurrent.c) and the softmax (_kernels.c) use. */
#ifndef ENGINE_NATIVE_GATE_EXP_H
#define ENGINE_NATIVE_GATE_EXP_H

#include <stdint.h>
#include <string.h>

/* engine.kernels.gate_exp.gate_exp on one value: the same float32 operations in the same
 * order (constants as hex literals, equal to its float32 constants). */
static inline float gate_exp1(float v) {
    v = v < -0x1.5d58a0p+6f ? -0x1.5d58a0p+6f : v;
    v = v > 88.0f ? 88.0f : v;
    float t = v * 0x1.715476p+0f + 12582912.0f;
    float k = t - 12582912.0f;
    float r = v - k * 0x1.630000p-1f;
    r = r - k * -0x1.bd0106p-13f;
    float y = 0x1.a0d2cep-13f * r + 0x1.6e879cp-10f;
    y = y * r + 0x1.111210p-7f;
    y = y * r + 0x1.555382p-5f;
    y = y * r + 0x1.555554p-3f;
    y = y * r + 0.5f;
    y = y * (r * r);
    y = y + r;
    y = y + 1.0f;
    uint32_t bits;
    memcpy(&bits, &t, sizeof bits);
    bits = (bits - 0x4B400000u + 127u) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return y * scale;
}

#endif
