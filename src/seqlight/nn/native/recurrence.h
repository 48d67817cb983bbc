/* The time loops of seqlight's recurrent cells, for one precision: recurrence.c includes this file once per
   REAL (float, double), with SFX(name) giving each function its precision's suffix.

   Layout: feature-major and time-contiguous per row. A sequence of (R, B) blocks, one per step, is stored as
   (R, T, B) with rows ld apart: row k of step t at base[k * ld + t * B], ld >= T * B (the states hs: (H, T +
   1, B), rows ldh >= (T + 1) * B apart). So a step is R rows of B contiguous numbers, and each row of the whole
   sequence is one contiguous run of T * B: the input projections and every weight gradient are single matrix
   products over all steps, which torch does around these loops (seqlight/nn/_native.py). (The caller pads ld
   and ldh so that rows are not a multiple of 4 KiB apart: there, a step's rows would all compete for the same
   few cache sets.) The activations' affine maps are folded into the
   weights (activations.py): a gate applies only its activation's core. Per-sample recurrent dropout masks
   rm (G * H, B) or NULL; padding masks steps (T, B), 1 for a real step and 0 for a masked one, or NULL: a
   masked step keeps its state, and its state gradient passes through it.

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

/* x = core(x) in place, for R rows of B (rows ld apart): the cores of activations.py, after folding. */
static void SFX(activate)(int act, REAL *x, int R, int B, size_t ld) {
    for (int k = 0; k < R; k++) {
        REAL *v = x + k * ld;
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

/* ---------------------------------------------------------------------------------------------------------
   GRU, reset_after=False (Keras 2.0.8, the book), gates r, z, n; w = U (3H, H):
     [r; z] = ract(xw_rz + [U_r (h m_r); U_z (h m_z)]),  n = act(xw_n + U_n (r h m_n)),  h' = n + z (h - n).
   Forward: xw (3H, T, B) holds the input projections W x without their bias (3H,) or NULL, which the step adds
   while it is in cache, and is overwritten with the gates [r; z; n]; writes the
   states hs (H, T + 1, B; step 0 = h0, given) and rh (H, T, B) = r h m_n, the input of U_n. */
int SFX(gru_rb_forward)(int T, int B, int H, size_t ld, size_t ldh, REAL *xw, const REAL *bias, const REAL *w,
                        const REAL *rm, const REAL *steps, REAL *hs,
                        REAL *rh, int act, int ract) {
    const size_t HB = (size_t)H * B;
    REAL *hm = NULL; /* h m_g, (3H, B) */
    if (rm && !(hm = (REAL *)malloc(3 * HB * sizeof(REAL)))) return 1;
    for (int t = 0; t < T; t++) {
        REAL *x = xw + (size_t)t * B, *r = x, *z = x + H * ld, *n = x + 2 * H * ld, *rht = rh + (size_t)t * B;
        const REAL *h = hs + (size_t)t * B, *hn = h;
        REAL *h_new = hs + (size_t)(t + 1) * B;
        size_t ldn = ldh;
        if (t + 1 < T) SFX(prefetch_step)(xw + (size_t)(t + 1) * B, 3 * H, B, ld, 1);
        if (bias)
            for (int k = 0; k < 3 * H; k++)
                for (int b = 0; b < B; b++) x[k * ld + b] += bias[k];
        if (rm) {
            for (int g = 0; g < 3; g++)
                for (int k = 0; k < H; k++)
                    for (int b = 0; b < B; b++) hm[(g * H + k) * (size_t)B + b] = h[k * ldh + b] * rm[(g * H + k) * (size_t)B + b];
            SFX(gemm_acc)(H, H, B, w, H, hm, B, r, ld);
            SFX(gemm_acc)(H, H, B, w + (size_t)H * H, H, hm + HB, B, z, ld);
            hn = hm + 2 * HB;
            ldn = B;
        } else {
            SFX(gemm_acc)(2 * H, H, B, w, H, h, ldh, r, ld);
        }
        SFX(activate)(ract, r, 2 * H, B, ld);
        for (int k = 0; k < H; k++)
            for (int b = 0; b < B; b++) rht[k * ld + b] = r[k * ld + b] * hn[k * ldn + b];
        SFX(gemm_acc)(H, H, B, w + (size_t)2 * H * H, H, rht, ld, n, ld);
        SFX(activate)(act, n, H, B, ld);
        const REAL *s = steps ? steps + (size_t)t * B : NULL;
        for (int k = 0; k < H; k++) {
            const REAL *nk = n + k * ld, *zk = z + k * ld, *hk = h + k * ldh;
            REAL *ok = h_new + k * ldh;
            for (int b = 0; b < B; b++) ok[b] = nk[b] + zk[b] * (hk[b] - nk[b]);
            if (s) /* a masked step keeps the state it was given */
                for (int b = 0; b < B; b++) ok[b] = s[b] > (REAL)0 ? ok[b] : hk[b];
        }
    }
    free(hm);
    return 0;
}

/* Backward: from the forward's xw (the gates) and hs, the gradients d_out (H, T, B) of hs's steps 1..T or NULL
   and dh (H, B) of h_T (zeros if none); wt = U^T (H, 3H). Writes d_pre (3H, T, B), the gradient of every
   step's pre-activations (= of its input projections), and leaves the gradient of h0 in dh. */
int SFX(gru_rb_backward)(int T, int B, int H, size_t ld, size_t ldh, const REAL *xw, const REAL *wt, const REAL *rm, const REAL *steps,
                         const REAL *hs, const REAL *d_out, REAL *dh, REAL *d_pre, int act, int ract) {
    const size_t HB = (size_t)H * B;
    const int ldw = 3 * H;
    REAL *tmp = (REAL *)malloc(3 * HB * sizeof(REAL));
    if (!tmp) return 1;
    REAL *g = tmp, *d_rh = tmp + HB, *part = tmp + 2 * HB; /* each (H, B) */
    for (int t = T - 1; t >= 0; t--) {
        const REAL *x = xw + (size_t)t * B, *r = x, *z = x + H * ld, *n = x + 2 * H * ld;
        const REAL *h = hs + (size_t)t * B, *s = steps ? steps + (size_t)t * B : NULL;
        REAL *d = d_pre + (size_t)t * B, *dr = d, *dz = d + H * ld, *dn = d + 2 * H * ld;
        if (t > 0) {
            SFX(prefetch_step)(xw + (size_t)(t - 1) * B, 3 * H, B, ld, 0);
            SFX(prefetch_step)(hs + (size_t)(t - 1) * B, H, B, ldh, 0);
            SFX(prefetch_step)(d_pre + (size_t)(t - 1) * B, 3 * H, B, ld, 1);
            if (d_out) SFX(prefetch_step)(d_out + (size_t)(t - 1) * B, H, B, ld, 0);
        }
        for (int k = 0; k < H; k++) {
            REAL *dhk = dh + k * (size_t)B, *gk = g + k * (size_t)B, *dnk = dn + k * ld, *dzk = dz + k * ld;
            const REAL *zk = z + k * ld, *nk = n + k * ld, *hk = h + k * ldh;
            if (d_out) {
                const REAL *o = d_out + k * ld + (size_t)t * B;
                for (int b = 0; b < B; b++) dhk[b] += o[b];
            }
            /* the cell's share of the state gradient; a masked step's passes through to the step before */
            if (s) {
                for (int b = 0; b < B; b++) {
                    const int real_step = s[b] > (REAL)0;
                    gk[b] = real_step ? dhk[b] : (REAL)0;
                    dhk[b] = real_step ? (REAL)0 : dhk[b];
                }
            } else {
                for (int b = 0; b < B; b++) {
                    gk[b] = dhk[b];
                    dhk[b] = (REAL)0;
                }
            }
            for (int b = 0; b < B; b++) {
                dnk[b] = gk[b] * ((REAL)1 - zk[b]);
                dzk[b] = gk[b] * (hk[b] - nk[b]);
                dhk[b] += gk[b] * zk[b];
            }
            SFX(activate_grad)(act, dnk, nk, B);
            SFX(activate_grad)(ract, dzk, zk, B);
        }
        memset(d_rh, 0, HB * sizeof(REAL));
        SFX(gemm_acc)(H, H, B, wt + 2 * H, ldw, dn, ld, d_rh, B); /* the gradient of r h m_n */
        for (int k = 0; k < H; k++) {
            const REAL *rk = r + k * ld, *hk = h + k * ldh, *drh = d_rh + k * (size_t)B;
            const REAL *mn = rm ? rm + (2 * H + k) * (size_t)B : NULL;
            REAL *drk = dr + k * ld, *dhk = dh + k * (size_t)B;
            if (mn) {
                for (int b = 0; b < B; b++) {
                    drk[b] = drh[b] * hk[b] * mn[b];
                    dhk[b] += drh[b] * rk[b] * mn[b];
                }
            } else {
                for (int b = 0; b < B; b++) {
                    drk[b] = drh[b] * hk[b];
                    dhk[b] += drh[b] * rk[b];
                }
            }
            SFX(activate_grad)(ract, drk, rk, B);
        }
        if (rm) { /* (U_r^T dr) m_r + (U_z^T dz) m_z */
            for (int gate = 0; gate < 2; gate++) {
                memset(part, 0, HB * sizeof(REAL));
                SFX(gemm_acc)(H, H, B, wt + gate * H, ldw, d + gate * H * ld, ld, part, B);
                const REAL *m = rm + (size_t)gate * HB;
                for (size_t j = 0; j < HB; j++) dh[j] += part[j] * m[j];
            }
        } else {
            SFX(gemm_acc)(H, 2 * H, B, wt, ldw, d, ld, dh, B); /* U_rz^T [dr; dz] */
        }
    }
    free(tmp);
    return 0;
}
