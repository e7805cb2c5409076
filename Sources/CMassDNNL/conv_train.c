#include "CMassDNNLTrain.h"

#include <oneapi/dnnl/dnnl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern void omp_set_num_threads(int);

enum { FORWARD = 0, BACKWARD_DATA = 1, BACKWARD_WEIGHTS = 2, KINDS = 3 };

struct cmass_dnnl_conv {
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    int threads;
    dnnl_primitive_t primitive[KINDS];
    const char *impl[KINDS];
    // The weights (or their gradient) in the layout each primitive wants, and PyTorch's [out, in, kh, kw].
    dnnl_memory_desc_t user_weights_md, weights_md[KINDS];
    dnnl_memory_t weights[KINDS];          // NULL where the primitive takes the user layout as it is
    dnnl_primitive_t to_primitive[KINDS];  // user → primitive layout (forward, backward data)
    dnnl_primitive_t from_primitive;       // backward weights' layout → user
    dnnl_memory_desc_t src_md, dst_md, bias_md;
    dnnl_memory_desc_t scratchpad_md[KINDS];
    size_t scratchpad_bytes;
    void *scratchpad;
};

#define CHECK(call, what)                                                                 \
    do {                                                                                  \
        dnnl_status_t status_ = (call);                                                   \
        if (status_ != dnnl_success) {                                                    \
            snprintf(error, error_size, "oneDNN: %s failed (status %d)", what, status_); \
            goto fail;                                                                    \
        }                                                                                 \
    } while (0)

/// A reorder primitive between two layouts of the weights.
static dnnl_status_t make_reorder(dnnl_engine_t engine, const dnnl_memory_desc_t *from, const dnnl_memory_desc_t *to,
                                  dnnl_primitive_t *out) {
    dnnl_primitive_desc_t pd;
    dnnl_status_t s = dnnl_reorder_primitive_desc_create(&pd, from, engine, to, engine, NULL);
    if (s != dnnl_success) return s;
    s = dnnl_primitive_create(out, pd);
    dnnl_primitive_desc_destroy(pd);
    return s;
}

/// Keeps a primitive descriptor's primitive, implementation name, weights layout (and the memory and reorder
/// its weights need when that layout is not the user's), and the largest scratchpad.
static dnnl_status_t adopt(cmass_dnnl_conv *c, int kind, dnnl_primitive_desc_t pd) {
    const char *impl = NULL;
    dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl);
    c->impl[kind] = impl;
    dnnl_query_t query = kind == BACKWARD_WEIGHTS ? dnnl_query_diff_weights_md : dnnl_query_weights_md;
    c->weights_md[kind] = *dnnl_primitive_desc_query_md(pd, query, 0);
    const dnnl_memory_desc_t *scratch = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    size_t bytes = scratch ? dnnl_memory_desc_get_size(scratch) : 0;
    if (bytes) c->scratchpad_md[kind] = *scratch;
    if (bytes > c->scratchpad_bytes) c->scratchpad_bytes = bytes;
    dnnl_status_t s = dnnl_primitive_create(&c->primitive[kind], pd);
    if (s != dnnl_success) return s;
    if (dnnl_memory_desc_equal(&c->weights_md[kind], &c->user_weights_md)) return dnnl_success;
    s = dnnl_memory_create(&c->weights[kind], &c->weights_md[kind], c->engine, DNNL_MEMORY_ALLOCATE);
    if (s != dnnl_success) return s;
    if (kind == BACKWARD_WEIGHTS) return make_reorder(c->engine, &c->weights_md[kind], &c->user_weights_md, &c->from_primitive);
    return make_reorder(c->engine, &c->user_weights_md, &c->weights_md[kind], &c->to_primitive[kind]);
}

cmass_dnnl_conv *cmass_dnnl_conv_create(int batch, int in_channels, int in_height, int in_width, int out_channels,
                                        int kernel_height, int kernel_width, int stride, int pad_top, int pad_left,
                                        int pad_bottom, int pad_right, int threads, char *error, size_t error_size) {
    cmass_dnnl_conv *c = calloc(1, sizeof *c);
    dnnl_primitive_desc_t forward_pd = NULL, pd = NULL;
    dnnl_primitive_attr_t attr = NULL;
    if (!c) return NULL;
    c->threads = threads;
    omp_set_num_threads(threads);
    int out_height = (in_height + pad_top + pad_bottom - kernel_height) / stride + 1;
    int out_width = (in_width + pad_left + pad_right - kernel_width) / stride + 1;
    CHECK(dnnl_engine_create(&c->engine, dnnl_cpu, 0), "engine");
    CHECK(dnnl_stream_create(&c->stream, c->engine, dnnl_stream_default_flags), "stream");
    dnnl_dims_t src_dims = {batch, in_channels, in_height, in_width};
    dnnl_dims_t dst_dims = {batch, out_channels, out_height, out_width};
    dnnl_dims_t weight_dims = {out_channels, in_channels, kernel_height, kernel_width};
    dnnl_dims_t bias_dims = {out_channels};
    dnnl_memory_desc_t weights_any;
    CHECK(dnnl_memory_desc_init_by_tag(&c->src_md, 4, src_dims, dnnl_f32, dnnl_nhwc), "src");
    CHECK(dnnl_memory_desc_init_by_tag(&c->dst_md, 4, dst_dims, dnnl_f32, dnnl_nhwc), "dst");
    CHECK(dnnl_memory_desc_init_by_tag(&c->bias_md, 1, bias_dims, dnnl_f32, dnnl_x), "bias");
    CHECK(dnnl_memory_desc_init_by_tag(&c->user_weights_md, 4, weight_dims, dnnl_f32, dnnl_oihw), "weights");
    CHECK(dnnl_memory_desc_init_by_tag(&weights_any, 4, weight_dims, dnnl_f32, dnnl_format_tag_any), "weights");
    dnnl_dims_t strides = {stride, stride};
    dnnl_dims_t pad_l = {pad_top, pad_left};
    dnnl_dims_t pad_r = {pad_bottom, pad_right};
    // The scratchpad is the caller's (one buffer for the three primitives).
    CHECK(dnnl_primitive_attr_create(&attr), "attr");
    CHECK(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user), "scratchpad");

    dnnl_convolution_desc_t desc;
    CHECK(dnnl_convolution_forward_desc_init(&desc, dnnl_forward_training, dnnl_convolution_direct, &c->src_md,
                                             &weights_any, &c->bias_md, &c->dst_md, strides, pad_l, pad_r),
          "forward descriptor");
    CHECK(dnnl_primitive_desc_create(&forward_pd, &desc, attr, c->engine, NULL), "forward");
    CHECK(adopt(c, FORWARD, forward_pd), "forward primitive");

    CHECK(dnnl_convolution_backward_data_desc_init(&desc, dnnl_convolution_direct, &c->src_md, &weights_any,
                                                   &c->dst_md, strides, pad_l, pad_r),
          "backward data descriptor");
    CHECK(dnnl_primitive_desc_create(&pd, &desc, attr, c->engine, forward_pd), "backward data");
    CHECK(adopt(c, BACKWARD_DATA, pd), "backward data primitive");
    dnnl_primitive_desc_destroy(pd);
    pd = NULL;

    CHECK(dnnl_convolution_backward_weights_desc_init(&desc, dnnl_convolution_direct, &c->src_md, &weights_any,
                                                      &c->bias_md, &c->dst_md, strides, pad_l, pad_r),
          "backward weights descriptor");
    CHECK(dnnl_primitive_desc_create(&pd, &desc, attr, c->engine, forward_pd), "backward weights");
    CHECK(adopt(c, BACKWARD_WEIGHTS, pd), "backward weights primitive");
    dnnl_primitive_desc_destroy(pd);
    dnnl_primitive_desc_destroy(forward_pd);
    dnnl_primitive_attr_destroy(attr);
    if (c->scratchpad_bytes) {
        c->scratchpad = malloc(c->scratchpad_bytes);
        if (!c->scratchpad) {
            snprintf(error, error_size, "cannot allocate %zu bytes of scratchpad", c->scratchpad_bytes);
            cmass_dnnl_conv_destroy(c);
            return NULL;
        }
    }
    return c;
fail:
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (forward_pd) dnnl_primitive_desc_destroy(forward_pd);
    if (attr) dnnl_primitive_attr_destroy(attr);
    cmass_dnnl_conv_destroy(c);
    return NULL;
}

/// Runs primitive `kind` with `args` plus the scratchpad, and waits.
static int run(cmass_dnnl_conv *c, int kind, int count, dnnl_exec_arg_t *args) {
    dnnl_memory_t scratchpad = NULL;
    dnnl_exec_arg_t all[8];
    memcpy(all, args, sizeof(dnnl_exec_arg_t) * (size_t)count);
    if (dnnl_memory_desc_get_size(&c->scratchpad_md[kind]) > 0) {
        if (dnnl_memory_create(&scratchpad, &c->scratchpad_md[kind], c->engine, c->scratchpad) != dnnl_success)
            return 0;
        all[count++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, scratchpad};
    }
    int ok = dnnl_primitive_execute(c->primitive[kind], c->stream, count, all) == dnnl_success &&
             dnnl_stream_wait(c->stream) == dnnl_success;
    if (scratchpad) dnnl_memory_destroy(scratchpad);
    return ok;
}

/// A memory object over the caller's buffer (NULL on failure).
static dnnl_memory_t wrap(cmass_dnnl_conv *c, const dnnl_memory_desc_t *md, const void *data) {
    dnnl_memory_t m = NULL;
    return dnnl_memory_create(&m, md, c->engine, (void *)data) == dnnl_success ? m : NULL;
}

/// The weights in the layout primitive `kind` takes: reordered into its own memory, or the user's as they are.
static dnnl_memory_t weights_for(cmass_dnnl_conv *c, int kind, dnnl_memory_t user) {
    if (!c->weights[kind]) return user;
    dnnl_exec_arg_t args[] = {{DNNL_ARG_FROM, user}, {DNNL_ARG_TO, c->weights[kind]}};
    if (dnnl_primitive_execute(c->to_primitive[kind], c->stream, 2, args) != dnnl_success) return NULL;
    return c->weights[kind];
}

int cmass_dnnl_conv_forward(cmass_dnnl_conv *c, const float *src, const float *weights, const float *bias,
                            float *dst) {
    omp_set_num_threads(c->threads);
    float *zeros = NULL;
    if (!bias) {
        zeros = calloc((size_t)c->bias_md.dims[0], sizeof(float));
        if (!zeros) return 0;
        bias = zeros;
    }
    dnnl_memory_t s = wrap(c, &c->src_md, src), w = wrap(c, &c->user_weights_md, weights),
                  b = wrap(c, &c->bias_md, bias), d = wrap(c, &c->dst_md, dst);
    int ok = s && w && b && d;
    dnnl_memory_t pw = ok ? weights_for(c, FORWARD, w) : NULL;
    if (ok && pw) {
        dnnl_exec_arg_t args[] = {{DNNL_ARG_SRC, s}, {DNNL_ARG_WEIGHTS, pw}, {DNNL_ARG_BIAS, b}, {DNNL_ARG_DST, d}};
        ok = run(c, FORWARD, 4, args);
    } else {
        ok = 0;
    }
    if (s) dnnl_memory_destroy(s);
    if (w) dnnl_memory_destroy(w);
    if (b) dnnl_memory_destroy(b);
    if (d) dnnl_memory_destroy(d);
    free(zeros);
    return ok;
}

int cmass_dnnl_conv_backward_data(cmass_dnnl_conv *c, const float *diff_dst, const float *weights,
                                  float *diff_src) {
    omp_set_num_threads(c->threads);
    dnnl_memory_t dd = wrap(c, &c->dst_md, diff_dst), w = wrap(c, &c->user_weights_md, weights),
                  ds = wrap(c, &c->src_md, diff_src);
    int ok = dd && w && ds;
    dnnl_memory_t pw = ok ? weights_for(c, BACKWARD_DATA, w) : NULL;
    if (ok && pw) {
        dnnl_exec_arg_t args[] = {{DNNL_ARG_DIFF_DST, dd}, {DNNL_ARG_WEIGHTS, pw}, {DNNL_ARG_DIFF_SRC, ds}};
        ok = run(c, BACKWARD_DATA, 3, args);
    } else {
        ok = 0;
    }
    if (dd) dnnl_memory_destroy(dd);
    if (w) dnnl_memory_destroy(w);
    if (ds) dnnl_memory_destroy(ds);
    return ok;
}

int cmass_dnnl_conv_backward_weights(cmass_dnnl_conv *c, const float *src, const float *diff_dst,
                                     float *diff_weights, float *diff_bias) {
    omp_set_num_threads(c->threads);
    float *scratch_bias = NULL;
    if (!diff_bias) {
        scratch_bias = malloc(sizeof(float) * (size_t)c->bias_md.dims[0]);
        if (!scratch_bias) return 0;
        diff_bias = scratch_bias;
    }
    dnnl_memory_t s = wrap(c, &c->src_md, src), dd = wrap(c, &c->dst_md, diff_dst),
                  dw = wrap(c, &c->user_weights_md, diff_weights), db = wrap(c, &c->bias_md, diff_bias);
    int ok = s && dd && dw && db;
    if (ok) {
        dnnl_memory_t target = c->weights[BACKWARD_WEIGHTS] ? c->weights[BACKWARD_WEIGHTS] : dw;
        dnnl_exec_arg_t args[] = {
            {DNNL_ARG_SRC, s}, {DNNL_ARG_DIFF_DST, dd}, {DNNL_ARG_DIFF_WEIGHTS, target}, {DNNL_ARG_DIFF_BIAS, db}};
        ok = run(c, BACKWARD_WEIGHTS, 4, args);
        if (ok && c->weights[BACKWARD_WEIGHTS]) {
            dnnl_exec_arg_t back[] = {{DNNL_ARG_FROM, target}, {DNNL_ARG_TO, dw}};
            ok = dnnl_primitive_execute(c->from_primitive, c->stream, 2, back) == dnnl_success &&
                 dnnl_stream_wait(c->stream) == dnnl_success;
        }
    }
    if (s) dnnl_memory_destroy(s);
    if (dd) dnnl_memory_destroy(dd);
    if (dw) dnnl_memory_destroy(dw);
    if (db) dnnl_memory_destroy(db);
    free(scratch_bias);
    return ok;
}

const char *cmass_dnnl_conv_impl(const cmass_dnnl_conv *c, int which) {
    return which >= 0 && which < KINDS && c->impl[which] ? c->impl[which] : "";
}

void cmass_dnnl_conv_destroy(cmass_dnnl_conv *c) {
    if (!c) return;
    for (int k = 0; k < KINDS; k++) {
        if (c->primitive[k]) dnnl_primitive_destroy(c->primitive[k]);
        if (c->weights[k]) dnnl_memory_destroy(c->weights[k]);
        if (c->to_primitive[k]) dnnl_primitive_destroy(c->to_primitive[k]);
    }
    if (c->from_primitive) dnnl_primitive_destroy(c->from_primitive);
    if (c->stream) dnnl_stream_destroy(c->stream);
    if (c->engine) dnnl_engine_destroy(c->engine);
    free(c->scratchpad);
    free(c);
}
