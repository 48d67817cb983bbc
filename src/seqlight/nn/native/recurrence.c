/* seqlight's native recurrent loops (see recurrence.h), compiled on first use by seqlight/nn/_native.py with
   the machine's C compiler, in float and in double. Plain C99: no Python or torch headers, so it builds in
   about a second; the arrays come in as pointers to torch tensors' memory (ctypes). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

/* activation cores: the numbers seqlight/nn/_native.py passes (ACTIVATION_IDS) */
#define ACT_LINEAR 0
#define ACT_TANH_CORE 1
#define ACT_SIGMOID 2
#define ACT_CLIP01 3
#define ACT_RELU 4

/* exp for float in a form the compiler vectorizes (libm's expf is a call per element): Cephes' expf, range
   reduction x = k ln2 + r with |r| <= ln2 / 2, a degree-6 polynomial for e^r, then 2^k through the exponent
   bits. Within 2 ulp of expf on [-87.3, 88.3]; inputs beyond are clamped there (e^-87.3 ~ 1e-38 is below
   anything a sigmoid resolves, e^88.3 ~ 2e38 still finite), NaN stays NaN. */
static inline float exp_f32(float x) {
    x = x < -87.3f ? -87.3f : x;
    x = x > 88.3f ? 88.3f : x;
    float k = floorf(x * 1.44269504088896341f + 0.5f);
    float r = x - k * 0.693359375f + k * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    float y = p * r * r + r + 1.0f;
    union {
        int32_t i;
        float f;
    } scale;
    scale.i = ((int32_t)k + 127) << 23;
    return y * scale.f;
}

#define REAL float
#define EXP exp_f32
#define SFX(name) name##_f32
#include "recurrence.h"
#undef REAL
#undef EXP
#undef SFX

#define REAL double
#define EXP exp
#define SFX(name) name##_f64
#include "recurrence.h"
#undef REAL
#undef EXP
#undef SFX
