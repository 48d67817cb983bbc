/* The time loops of seqlight's recurrent cells, for one precision: recurrence.c includes this file once per
   REAL (float, double), with SFX(name) giving each function its precision's suffix.

   Layout: feature-major and time-contiguous per row. A sequence of (R, B) blocks, one per step, is stored as
   (R, T, B) with rows ld apart: row k of step t at base[k * ld + t * B], ld >= T * B (the states hs and cs:
   (H, T + 1, B), rows ldh >= (T + 1) * B apart). So a step is R rows of B contiguous numbers, and each row of
   the whole sequence is one contiguous run of T * B: the input projections and every weight gradient are
   single matrix products over all steps, which torch does around these loops (seqlight/nn/_native.py). (The
   caller pads ld and ldh so that rows are not a multiple of 4 KiB apart: there, a step's rows would all compete
   for the same few cache sets.)

   Every cell has the same two entry points (unused arguments are NULL):
     <cell>_forward(T, B, H, ld, ldh, xw, bias, w, b_hh, rm, steps, hs, cs, aux, act, ract, act_scale, act_shift)
     <cell>_backward(T, B, H, ld, ldh, xw, wt, rm, steps, hs, cs, aux, d_out, dh, dc, d_pre, d_aux, act, ract,
                     act_scale)
   - xw (G*H, T, B): the input projections W x without their bias (G*H,) or NULL, which each step adds while it
     is in cache; the forward pass overwrites them with the gates' activations, which the backward pass reads.
   - w = U (G*H, H), wt = U^T (H, G*H), gates in the loop's order (cells.py); b_hh: the GRU's c_n (H,) or NULL.
   - rm (G*H, B): per-sample recurrent dropout masks, or NULL; steps (T, B): 1 for a real step, 0 for a masked
     one, or NULL. A masked step keeps its state, and its state gradient passes through it.
   - hs, cs (H, T + 1, B): the states, step 0 given (h0, c0); aux (H, T, B): what the cell's backward pass needs
     besides the gates, and the input of a recurrent product whose weight gradient torch computes.
   - d_out (H, T, B): the gradient of the outputs hs[1..T], or NULL; dh, dc (H, B): the gradient of the last
     state in, of the first out; d_pre (G*H, T, B): the gradient of every step's pre-activations (= of its
     input projections); d_aux (H, T, B): the GRU's gradient of U_n (h m_n) + c_n.
   - act, ract: the activation's and the recurrent activation's cores (ACT_*); act_scale, act_shift: the
     activation's affine map, for the LSTM's act(c) (not folded into any weight).
   Every function returns 0, or 1 where it could not allocate its scratch. */

/* out (M, B; rows ldo apart) += W (M, K; rows ldw apart) @ in (K, B; rows ldi apart), 32 columns at a time kept
   in registers over the K loop. */
static void SFX(gemm_acc)(int M, int K, int B, const REAL *W, size_t ldw, const REAL *in, size_t ldi, REAL *out,
                          size_t ldo) {
    int b0 = 0;
    for (; b0 + 32 <= B; b0 += 32) {
        for (int i = 0; i < M; i++) {
            REAL acc[32];
            REAL *o = out + i * ldo + b0;
            const REAL *w = W + i * ldw;
            for (int l = 0; l < 32; l++) acc[l] = o[l];
            for (int k = 0; k < K; k++) {
                const REAL wk = w[k];
                const REAL *x = in + k * ldi + b0;
                for (int l = 0; l < 32; l++) acc[l] += wk * x[l];
            }
            for (int l = 0; l < 32; l++) o[l] = acc[l];
        }
    }
    if (b0 < B) {
        for (int i = 0; i < M; i++) {
            REAL *o = out + i * ldo;
            const REAL *w = W + i * ldw;
            for (int k = 0; k < K; k++) {
                const REAL wk = w[k];
                const REAL *x = in + k * ldi;
                for (int b = b0; b < B; b++) o[b] += wk * x[b];
            }
        }
    }
}

/* v = core(v) in place, B numbers: the cores of activations.py. */
static inline void SFX(activate_row)(int act, REAL *v, int B) {
    switch (act) {
    case ACT_TANH_CORE: /* 2 sigmoid(x) - 1, i.e. tanh(x / 2) */
        for (int b = 0; b < B; b++) v[b] = (REAL)2 / ((REAL)1 + EXP(-v[b])) - (REAL)1;
        break;
    case ACT_SIGMOID:
        for (int b = 0; b < B; b++) v[b] = (REAL)1 / ((REAL)1 + EXP(-v[b]));
        break;
    case ACT_CLIP01: /* hard_sigmoid's core */
        for (int b = 0; b < B; b++) {
            REAL c = v[b] < (REAL)0 ? (REAL)0 : v[b];
            v[b] = c > (REAL)1 ? (REAL)1 : c;
        }
        break;
    case ACT_RELU:
        for (int b = 0; b < B; b++) v[b] = v[b] > (REAL)0 ? v[b] : (REAL)0;
        break;
    default: /* linear */
        break;
    }
}

/* The same for R rows, ld apart. */
static void SFX(activate)(int act, REAL *x, int R, int B, size_t ld) {
    for (int k = 0; k < R; k++) SFX(activate_row)(act, x + k * ld, B);
}

/* g *= core'(x) for B numbers, written through the core's output y = core(x) (activations.py's grad). */
static inline void SFX(activate_grad)(int act, REAL *g, const REAL *y, int B) {
    switch (act) {
    case ACT_TANH_CORE:
        for (int b = 0; b < B; b++) g[b] *= (REAL)0.5 * ((REAL)1 - y[b] * y[b]);
        break;
    case ACT_SIGMOID:
        for (int b = 0; b < B; b++) g[b] *= y[b] * ((REAL)1 - y[b]);
        break;
    case ACT_CLIP01: /* 1 strictly inside (0, 1), as torch's hardtanh_backward */
        for (int b = 0; b < B; b++) g[b] = (y[b] > (REAL)0 && y[b] < (REAL)1) ? g[b] : (REAL)0;
        break;
    case ACT_RELU:
        for (int b = 0; b < B; b++) g[b] = y[b] > (REAL)0 ? g[b] : (REAL)0;
        break;
    default:
        break;
    }
}

/* Asks for the cache lines of one step (R rows of B, ld apart) ahead of use: a step's rows lie far apart, where
   the hardware prefetchers, which follow one stream within a page, do not look. */
static inline void SFX(prefetch_step)(const REAL *base, int R, int B, size_t ld, int for_write) {
    const int per_line = 64 / (int)sizeof(REAL);
    for (int k = 0; k < R; k++)
        for (int b = 0; b < B; b += per_line) {
            if (for_write)
                __builtin_prefetch(base + k * ld + b, 1);
            else
                __builtin_prefetch(base + k * ld + b, 0);
        }
}

/* out += [U_g (h m_g)] for the gates g0..g1) (out: gate g0's rows of a step, ld apart, the next gates' rows
   after them) from the state h (H, B; rows ldh apart); hm: (G*H, B) scratch for the masked states. */
static void SFX(recurrent)(int g0, int g1, int H, int B, const REAL *w, const REAL *h, size_t ldh, const REAL *rm,
                           REAL *hm, REAL *out, size_t ld) {
    if (!rm) {
        SFX(gemm_acc)((g1 - g0) * H, H, B, w + (size_t)g0 * H * H, H, h, ldh, out, ld);
        return;
    }
    for (int g = g0; g < g1; g++) {
        REAL *hmg = hm + (size_t)g * H * B;
        const REAL *m = rm + (size_t)g * H * B;
        for (int k = 0; k < H; k++)
            for (int b = 0; b < B; b++) hmg[(size_t)k * B + b] = h[k * ldh + b] * m[(size_t)k * B + b];
        SFX(gemm_acc)(H, H, B, w + (size_t)g * H * H, H, hmg, B, out + (g - g0) * H * ld, ld);
    }
}

/* dh (H, B) += sum over the gates g0..g1) of (U_g^T d_g) m_g; d: gate g0's gradient rows of a step (ld apart, the
   next gates' after them); wt = U^T (H, G*H); part: (H, B) scratch. */
static void SFX(recurrent_backward)(int g0, int g1, int G, int H, int B, const REAL *wt, const REAL *d, size_t ld,
                                    const REAL *rm, REAL *part, REAL *dh) {
    if (!rm) {
        SFX(gemm_acc)(H, (g1 - g0) * H, B, wt + g0 * H, (size_t)G * H, d, ld, dh, B);
        return;
    }
    const size_t HB = (size_t)H * B;
    for (int g = g0; g < g1; g++) {
        memset(part, 0, HB * sizeof(REAL));
        SFX(gemm_acc)(H, H, B, wt + g * H, (size_t)G * H, d + (g - g0) * H * ld, ld, part, B);
        const REAL *m = rm + (size_t)g * HB;
        for (size_t j = 0; j < HB; j++) dh[j] += part[j] * m[j];
    }
}

/* The step's input projections plus their bias (G*H rows). */
static inline void SFX(add_bias)(REAL *x, const REAL *bias, int R, int B, size_t ld) {
    if (bias)
        for (int k = 0; k < R; k++)
            for (int b = 0; b < B; b++) x[k * ld + b] += bias[k];
}

/* A masked step keeps its state: out = s ? out : prev, per column (s: the step's (B,) row of steps). */
static inline void SFX(keep)(const REAL *s, const REAL *prev, REAL *out, int B) {
    if (s)
        for (int b = 0; b < B; b++) out[b] = s[b] > (REAL)0 ? out[b] : prev[b];
}

/* Adds the outputs' gradient at step t, then splits a state gradient: g = the real steps' part (the cell's
   share), d keeps the masked steps' part (which passes through to the step before). One row of B. */
static inline void SFX(take_share)(const REAL *s, const REAL *o, REAL *d, REAL *g, int B) {
    if (o)
        for (int b = 0; b < B; b++) d[b] += o[b];
    if (s) {
        for (int b = 0; b < B; b++) {
            const int real_step = s[b] > (REAL)0;
            g[b] = real_step ? d[b] : (REAL)0;
            d[b] = real_step ? (REAL)0 : d[b];
        }
    } else {
        for (int b = 0; b < B; b++) {
            g[b] = d[b];
            d[b] = (REAL)0;
        }
    }
}

#define SCRATCH(n)                                                                                                   \
    REAL *scratch = (REAL *)malloc((size_t)(n) * H * B * sizeof(REAL));                                             \
    if (!scratch) return 1;

/* ---------------------------------------------------------------------------------------------------------
   SimpleRNN: h' = act(xw + U (h m)). */
int SFX(simple_rnn_forward)(int T, int B, int H, size_t ld, size_t ldh, REAL *xw, const REAL *bias, const REAL *w,
                            const REAL *b_hh, const REAL *rm, const REAL *steps, REAL *hs, REAL *cs, REAL *aux,
                            int act, int ract, REAL act_scale, REAL act_shift) {
    SCRATCH(1)
    for (int t = 0; t < T; t++) {
        REAL *x = xw + (size_t)t * B, *h_new = hs + (size_t)(t + 1) * B;
        const REAL *h = hs + (size_t)t * B, *s = steps ? steps + (size_t)t * B : NULL;
        if (t + 1 < T) SFX(prefetch_step)(x + B, H, B, ld, 1);
        SFX(add_bias)(x, bias, H, B, ld);
        SFX(recurrent)(0, 1, H, B, w, h, ldh, rm, scratch, x, ld);
        for (int k = 0; k < H; k++) {
            REAL *xk = x + k * ld, *ok = h_new + k * ldh;
            SFX(activate_row)(act, xk, B);
            memcpy(ok, xk, (size_t)B * sizeof(REAL));
            SFX(keep)(s, h + k * ldh, ok, B);
        }
    }
    free(scratch);
    return 0;
}

int SFX(simple_rnn_backward)(int T, int B, int H, size_t ld, size_t ldh, const REAL *xw, const REAL *wt,
                             const REAL *rm, const REAL *steps, const REAL *hs, const REAL *cs, const REAL *aux,
                             const REAL *d_out, REAL *dh, REAL *dc, REAL *d_pre, REAL *d_aux, int act, int ract,
                             REAL act_scale) {
    SCRATCH(1)
    for (int t = T - 1; t >= 0; t--) {
        const REAL *x = xw + (size_t)t * B, *s = steps ? steps + (size_t)t * B : NULL;
        REAL *d = d_pre + (size_t)t * B;
        for (int k = 0; k < H; k++) {
            REAL *dk = d + k * ld;
            SFX(take_share)(s, d_out ? d_out + k * ld + (size_t)t * B : NULL, dh + (size_t)k * B, dk, B);
            SFX(activate_grad)(act, dk, x + k * ld, B);
        }
        SFX(recurrent_backward)(0, 1, 1, H, B, wt, d, ld, rm, scratch, dh);
    }
    free(scratch);
    return 0;
}

/* ---------------------------------------------------------------------------------------------------------
   LSTM, gates in the loop's order i, f, o, g (cells.py): [i; f; o] = ract(.), g = act(.), c' = f c + i g,
   h' = o act(c'), act(c) = core(act_scale c + act_shift). aux: act(c') per step. */
int SFX(lstm_forward)(int T, int B, int H, size_t ld, size_t ldh, REAL *xw, const REAL *bias, const REAL *w,
                      const REAL *b_hh, const REAL *rm, const REAL *steps, REAL *hs, REAL *cs, REAL *aux, int act,
                      int ract, REAL act_scale, REAL act_shift) {
    SCRATCH(4)
    for (int t = 0; t < T; t++) {
        REAL *x = xw + (size_t)t * B, *h_new = hs + (size_t)(t + 1) * B, *c_new = cs + (size_t)(t + 1) * B;
        const REAL *h = hs + (size_t)t * B, *c = cs + (size_t)t * B, *s = steps ? steps + (size_t)t * B : NULL;
        REAL *tc = aux + (size_t)t * B;
        if (t + 1 < T) SFX(prefetch_step)(x + B, 4 * H, B, ld, 1);
        SFX(add_bias)(x, bias, 4 * H, B, ld);
        SFX(recurrent)(0, 4, H, B, w, h, ldh, rm, scratch, x, ld);
        SFX(activate)(ract, x, 3 * H, B, ld);
        SFX(activate)(act, x + 3 * H * ld, H, B, ld);
        for (int k = 0; k < H; k++) {
            const REAL *i = x + k * ld, *f = x + (H + k) * ld, *o = x + (2 * H + k) * ld, *g = x + (3 * H + k) * ld;
            const REAL *ck = c + k * ldh;
            REAL *cn = c_new + k * ldh, *tck = tc + k * ld, *hn = h_new + k * ldh;
            for (int b = 0; b < B; b++) {
                cn[b] = f[b] * ck[b] + i[b] * g[b];
                tck[b] = act_scale * cn[b] + act_shift;
            }
            SFX(activate_row)(act, tck, B);
            for (int b = 0; b < B; b++) hn[b] = o[b] * tck[b];
            SFX(keep)(s, h + k * ldh, hn, B);
            SFX(keep)(s, ck, cn, B);
        }
    }
    free(scratch);
    return 0;
}

int SFX(lstm_backward)(int T, int B, int H, size_t ld, size_t ldh, const REAL *xw, const REAL *wt, const REAL *rm,
                       const REAL *steps, const REAL *hs, const REAL *cs, const REAL *aux, const REAL *d_out,
                       REAL *dh, REAL *dc, REAL *d_pre, REAL *d_aux, int act, int ract, REAL act_scale) {
    SCRATCH(3)
    REAL *gh = scratch, *gc = scratch + (size_t)H * B, *part = scratch + (size_t)2 * H * B;
    for (int t = T - 1; t >= 0; t--) {
        const REAL *x = xw + (size_t)t * B, *c = cs + (size_t)t * B, *tc = aux + (size_t)t * B;
        const REAL *s = steps ? steps + (size_t)t * B : NULL;
        REAL *d = d_pre + (size_t)t * B;
        if (t > 0) {
            SFX(prefetch_step)(x - B, 4 * H, B, ld, 0);
            SFX(prefetch_step)(d - B, 4 * H, B, ld, 1);
        }
        for (int k = 0; k < H; k++) {
            const REAL *i = x + k * ld, *f = x + (H + k) * ld, *o = x + (2 * H + k) * ld, *g = x + (3 * H + k) * ld;
            const REAL *ck = c + k * ldh, *tck = tc + k * ld;
            REAL *di = d + k * ld, *df = d + (H + k) * ld, *d_o = d + (2 * H + k) * ld, *dg = d + (3 * H + k) * ld;
            REAL *ghk = gh + (size_t)k * B, *gck = gc + (size_t)k * B;
            SFX(take_share)(s, d_out ? d_out + k * ld + (size_t)t * B : NULL, dh + (size_t)k * B, ghk, B);
            SFX(take_share)(s, NULL, dc + (size_t)k * B, gck, B);
            for (int b = 0; b < B; b++) {
                d_o[b] = ghk[b] * tck[b];
                ghk[b] *= o[b] * act_scale; /* the gradient of act's core input, before its derivative */
            }
            SFX(activate_grad)(act, ghk, tck, B);
            for (int b = 0; b < B; b++) {
                const REAL dct = ghk[b] + gck[b];
                di[b] = dct * g[b];
                df[b] = dct * ck[b];
                dg[b] = dct * i[b];
                dc[(size_t)k * B + b] += dct * f[b];
            }
            SFX(activate_grad)(ract, di, i, B);
            SFX(activate_grad)(ract, df, f, B);
            SFX(activate_grad)(ract, d_o, o, B);
            SFX(activate_grad)(act, dg, g, B);
        }
        SFX(recurrent_backward)(0, 4, 4, H, B, wt, d, ld, rm, part, dh);
    }
    free(scratch);
    return 0;
}

/* The first move of both GRUs at step t: the step's bias added, then [r; z] = ract(xw_rz + U_rz (h m)) in place
   (the next step's projections asked for ahead). */
static inline void SFX(gru_reset_update_gates)(int t, int T, int B, int H, size_t ld, size_t ldh, REAL *x,
                                               const REAL *bias, const REAL *w, const REAL *h, const REAL *rm,
                                               REAL *scratch, int ract) {
    if (t + 1 < T) SFX(prefetch_step)(x + B, 3 * H, B, ld, 1);
    SFX(add_bias)(x, bias, 3 * H, B, ld);
    SFX(recurrent)(0, 2, H, B, w, h, ldh, rm, scratch, x, ld);
    SFX(activate)(ract, x, 2 * H, B, ld);
}

/* The GRU's last move, both ways: n = act(n) in place, then h' = n + z (h - n) (kept where the step is masked);
   one row of B. */
static inline void SFX(gru_interpolate)(int act, REAL *n, const REAL *z, const REAL *h, const REAL *s, REAL *h_new,
                                        int B) {
    SFX(activate_row)(act, n, B);
    for (int b = 0; b < B; b++) h_new[b] = n[b] + z[b] * (h[b] - n[b]);
    SFX(keep)(s, h, h_new, B);
}

/* Its gradient, one row: takes the step's share g of dh (and d_out's row o, or NULL), writes dn and dz (through
   the activations' derivatives) and adds g z to dh, the gradient of h before the step. */
static inline void SFX(gru_interpolate_backward)(int act, int ract, const REAL *n, const REAL *z, const REAL *h,
                                                 const REAL *s, const REAL *o, REAL *dh, REAL *g, REAL *dn, REAL *dz,
                                                 int B) {
    SFX(take_share)(s, o, dh, g, B);
    for (int b = 0; b < B; b++) {
        dn[b] = g[b] * ((REAL)1 - z[b]);
        dz[b] = g[b] * (h[b] - n[b]);
        dh[b] += g[b] * z[b];
    }
    SFX(activate_grad)(act, dn, n, B);
    SFX(activate_grad)(ract, dz, z, B);
}

/* ---------------------------------------------------------------------------------------------------------
   GRU, reset_after=True (Keras 3, torch), gates r, z, n; c_n = b_hh (the other recurrent biases are folded into
   the input bias): [r; z] = ract(xw_rz + U_rz (h m)), n = act(xw_n + r (U_n (h m_n) + c_n)), h' = n + z (h - n).
   aux: U_n (h m_n) + c_n per step; d_aux: its gradient. */
int SFX(gru_forward)(int T, int B, int H, size_t ld, size_t ldh, REAL *xw, const REAL *bias, const REAL *w,
                     const REAL *b_hh, const REAL *rm, const REAL *steps, REAL *hs, REAL *cs, REAL *aux, int act,
                     int ract, REAL act_scale, REAL act_shift) {
    SCRATCH(3)
    for (int t = 0; t < T; t++) {
        REAL *x = xw + (size_t)t * B, *h_new = hs + (size_t)(t + 1) * B, *hh = aux + (size_t)t * B;
        const REAL *h = hs + (size_t)t * B, *s = steps ? steps + (size_t)t * B : NULL;
        SFX(gru_reset_update_gates)(t, T, B, H, ld, ldh, x, bias, w, h, rm, scratch, ract);
        for (int k = 0; k < H; k++)
            for (int b = 0; b < B; b++) hh[k * ld + b] = b_hh ? b_hh[k] : (REAL)0;
        SFX(recurrent)(2, 3, H, B, w, h, ldh, rm, scratch, hh, ld); /* U_n (h m_n) + c_n into aux */
        for (int k = 0; k < H; k++) {
            REAL *n = x + (2 * H + k) * ld;
            const REAL *r = x + k * ld, *hhk = hh + k * ld;
            for (int b = 0; b < B; b++) n[b] += r[b] * hhk[b];
            SFX(gru_interpolate)(act, n, x + (H + k) * ld, h + k * ldh, s, h_new + k * ldh, B);
        }
    }
    free(scratch);
    return 0;
}

int SFX(gru_backward)(int T, int B, int H, size_t ld, size_t ldh, const REAL *xw, const REAL *wt, const REAL *rm,
                      const REAL *steps, const REAL *hs, const REAL *cs, const REAL *aux, const REAL *d_out, REAL *dh,
                      REAL *dc, REAL *d_pre, REAL *d_aux, int act, int ract, REAL act_scale) {
    SCRATCH(2)
    REAL *g = scratch, *part = scratch + (size_t)H * B;
    for (int t = T - 1; t >= 0; t--) {
        const REAL *x = xw + (size_t)t * B, *h = hs + (size_t)t * B, *hh = aux + (size_t)t * B;
        const REAL *s = steps ? steps + (size_t)t * B : NULL;
        REAL *d = d_pre + (size_t)t * B, *dhh = d_aux + (size_t)t * B;
        if (t > 0) {
            SFX(prefetch_step)(x - B, 3 * H, B, ld, 0);
            SFX(prefetch_step)(d - B, 3 * H, B, ld, 1);
        }
        for (int k = 0; k < H; k++) {
            const REAL *r = x + k * ld, *z = x + (H + k) * ld, *n = x + (2 * H + k) * ld, *hk = h + k * ldh;
            const REAL *hhk = hh + k * ld;
            REAL *dr = d + k * ld, *dz = d + (H + k) * ld, *dn = d + (2 * H + k) * ld, *dhhk = dhh + k * ld;
            REAL *gk = g + (size_t)k * B, *dhk = dh + (size_t)k * B;
            const REAL *o = d_out ? d_out + k * ld + (size_t)t * B : NULL;
            SFX(gru_interpolate_backward)(act, ract, n, z, hk, s, o, dhk, gk, dn, dz, B);
            for (int b = 0; b < B; b++) {
                dhhk[b] = dn[b] * r[b];
                dr[b] = dn[b] * hhk[b];
            }
            SFX(activate_grad)(ract, dr, r, B);
        }
        SFX(recurrent_backward)(0, 2, 3, H, B, wt, d, ld, rm, part, dh);
        SFX(recurrent_backward)(2, 3, 3, H, B, wt, dhh, ld, rm, part, dh); /* U_n^T d_aux */
    }
    free(scratch);
    return 0;
}

/* ---------------------------------------------------------------------------------------------------------
   GRU, reset_after=False (Keras 2.0.8, the book), gates r, z, n:
     [r; z] = ract(xw_rz + U_rz (h m_rz)),  n = act(xw_n + U_n (r h m_n)),  h' = n + z (h - n).
   aux: r h m_n per step, the input of U_n. */
int SFX(gru_rb_forward)(int T, int B, int H, size_t ld, size_t ldh, REAL *xw, const REAL *bias, const REAL *w,
                        const REAL *b_hh, const REAL *rm, const REAL *steps, REAL *hs, REAL *cs, REAL *aux, int act,
                        int ract, REAL act_scale, REAL act_shift) {
    SCRATCH(3)
    for (int t = 0; t < T; t++) {
        REAL *x = xw + (size_t)t * B, *h_new = hs + (size_t)(t + 1) * B, *rh = aux + (size_t)t * B;
        const REAL *h = hs + (size_t)t * B, *s = steps ? steps + (size_t)t * B : NULL;
        SFX(gru_reset_update_gates)(t, T, B, H, ld, ldh, x, bias, w, h, rm, scratch, ract);
        for (int k = 0; k < H; k++) {
            const REAL *r = x + k * ld, *hk = h + k * ldh, *mn = rm ? rm + (2 * H + k) * (size_t)B : NULL;
            REAL *rhk = rh + k * ld;
            if (mn)
                for (int b = 0; b < B; b++) rhk[b] = r[b] * hk[b] * mn[b];
            else
                for (int b = 0; b < B; b++) rhk[b] = r[b] * hk[b];
        }
        /* U_n (r h m_n): the mask is already in rh, so the n gate's product is unmasked */
        SFX(gemm_acc)(H, H, B, w + (size_t)2 * H * H, H, rh, ld, x + 2 * H * ld, ld);
        for (int k = 0; k < H; k++)
            SFX(gru_interpolate)(act, x + (2 * H + k) * ld, x + (H + k) * ld, h + k * ldh, s, h_new + k * ldh, B);
    }
    free(scratch);
    return 0;
}

int SFX(gru_rb_backward)(int T, int B, int H, size_t ld, size_t ldh, const REAL *xw, const REAL *wt, const REAL *rm,
                         const REAL *steps, const REAL *hs, const REAL *cs, const REAL *aux, const REAL *d_out,
                         REAL *dh, REAL *dc, REAL *d_pre, REAL *d_aux, int act, int ract, REAL act_scale) {
    SCRATCH(3)
    const size_t HB = (size_t)H * B;
    REAL *g = scratch, *d_rh = scratch + HB, *part = scratch + 2 * HB;
    for (int t = T - 1; t >= 0; t--) {
        const REAL *x = xw + (size_t)t * B, *h = hs + (size_t)t * B, *s = steps ? steps + (size_t)t * B : NULL;
        REAL *d = d_pre + (size_t)t * B;
        if (t > 0) {
            SFX(prefetch_step)(x - B, 3 * H, B, ld, 0);
            SFX(prefetch_step)(h - B, H, B, ldh, 0);
            SFX(prefetch_step)(d - B, 3 * H, B, ld, 1);
        }
        for (int k = 0; k < H; k++) {
            const REAL *z = x + (H + k) * ld, *n = x + (2 * H + k) * ld, *hk = h + k * ldh;
            REAL *dz = d + (H + k) * ld, *dn = d + (2 * H + k) * ld, *gk = g + (size_t)k * B, *dhk = dh + (size_t)k * B;
            const REAL *o = d_out ? d_out + k * ld + (size_t)t * B : NULL;
            SFX(gru_interpolate_backward)(act, ract, n, z, hk, s, o, dhk, gk, dn, dz, B);
        }
        memset(d_rh, 0, HB * sizeof(REAL));
        SFX(gemm_acc)(H, H, B, wt + 2 * H, (size_t)3 * H, d + 2 * H * ld, ld, d_rh, B); /* the gradient of r h m_n */
        for (int k = 0; k < H; k++) {
            const REAL *r = x + k * ld, *hk = h + k * ldh, *drh = d_rh + (size_t)k * B;
            const REAL *mn = rm ? rm + (2 * H + k) * (size_t)B : NULL;
            REAL *dr = d + k * ld, *dhk = dh + (size_t)k * B;
            if (mn) {
                for (int b = 0; b < B; b++) {
                    dr[b] = drh[b] * hk[b] * mn[b];
                    dhk[b] += drh[b] * r[b] * mn[b];
                }
            } else {
                for (int b = 0; b < B; b++) {
                    dr[b] = drh[b] * hk[b];
                    dhk[b] += drh[b] * r[b];
                }
            }
            SFX(activate_grad)(ract, dr, r, B);
        }
        SFX(recurrent_backward)(0, 2, 3, H, B, wt, d, ld, rm, part, dh);
    }
    free(scratch);
    return 0;
}

#undef SCRATCH
