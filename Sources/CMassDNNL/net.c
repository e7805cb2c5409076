#include "CMassDNNL.h"

#include <oneapi/dnnl/dnnl.h>
#include <stdio.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

extern void omp_set_num_threads(int);

typedef struct {
    dnnl_primitive_t primitive;
    dnnl_memory_t src, weights, bias, dst;
    float *output;           // NHWC, in one of the net's buffers
    size_t output_floats;
    int residual_from;
    int in_place;            // the residual is already in `output` (the sum is accumulated onto it)
    size_t element;          // bytes per output element (4 float32, 1 int8)
    const char *impl;
} layer_t;

#define BUFFERS 4

struct cmass_dnnl_net {
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    layer_t *layers;
    int count;
    int threads;
    size_t input_floats;
    float input_scale;        // the first layer takes s8: the input quantised with this scale into input_q
    int8_t *input_q;
    float *buffers[BUFFERS];  // activations, reused from layer to layer so that they stay in cache
};

static dnnl_data_type_t data_type(int type) {
    return type == CMASS_DNNL_U8 ? dnnl_u8 : type == CMASS_DNNL_S8 ? dnnl_s8 : dnnl_f32;
}

/// Per output channel of a layer's float weights: 127 / max|w| (1 for an all-zero channel).
static void weight_scales(const cmass_conv *c, float *scales) {
    size_t per = (size_t)(c->depthwise ? 1 : c->in_channels) * c->kernel * c->kernel;
    for (int o = 0; o < c->out_channels; o++) {
        float largest = 0;
        for (size_t i = 0; i < per; i++) {
            float v = fabsf(c->weights[(size_t)o * per + i]);
            if (v > largest) largest = v;
        }
        scales[o] = largest > 0 ? 127.0f / largest : 1.0f;
    }
}

/// Gives every layer an output buffer: one not read by a later layer (a block's input stays until its
/// projection reads it as the residual; the projection then accumulates onto it in place). Fails if more than
/// BUFFERS activations are alive at once.
static int assign_buffers(cmass_dnnl_net *net, char *error, size_t error_size) {
    int count = net->count;
    int *last_use = malloc(sizeof(int) * (size_t)count), *buffer_of = malloc(sizeof(int) * (size_t)count);
    int holder[BUFFERS];
    size_t largest = 0;
    if (!last_use || !buffer_of) goto fail;
    for (int j = 0; j < count; j++) {
        last_use[j] = j + 1;
        if (net->layers[j].output_floats > largest) largest = net->layers[j].output_floats;
    }
    for (int i = 0; i < count; i++) {
        int r = net->layers[i].residual_from;
        if (r >= 0 && last_use[r] < i) last_use[r] = i;
    }
    for (int b = 0; b < BUFFERS; b++) holder[b] = -1;
    for (int i = 0; i < count; i++) {
        layer_t *l = &net->layers[i];
        int b = -1;
        if (l->residual_from >= 0 && last_use[l->residual_from] == i) {
            b = buffer_of[l->residual_from];
            l->in_place = 1;
        } else {
            for (int k = 0; k < BUFFERS && b < 0; k++)
                if (holder[k] < 0 || last_use[holder[k]] < i) b = k;
        }
        if (b < 0) {
            snprintf(error, error_size, "more than %d activations alive at layer %d", BUFFERS, i);
            goto fail;
        }
        if (!net->buffers[b]) {
            net->buffers[b] = aligned_alloc(64, (largest * sizeof(float) + 63) / 64 * 64);
            if (!net->buffers[b]) {
                snprintf(error, error_size, "out of memory for activations");
                goto fail;
            }
        }
        buffer_of[i] = b;
        holder[b] = i;
        l->output = net->buffers[b];
        if (dnnl_memory_set_data_handle(l->dst, l->output) != dnnl_success) {
            snprintf(error, error_size, "oneDNN could not set layer %d's output", i);
            goto fail;
        }
    }
    free(last_use);
    free(buffer_of);
    return 1;
fail:
    free(last_use);
    free(buffer_of);
    return 0;
}

#define CHECK(call, what)                                                                   \
    do {                                                                                    \
        dnnl_status_t status_ = (call);                                                     \
        if (status_ != dnnl_success) {                                                      \
            snprintf(error, error_size, "oneDNN %s failed at layer %d (status %d)", what, i, \
                     (int)status_);                                                         \
            goto fail;                                                                      \
        }                                                                                   \
    } while (0)

/// The weights (and bias) of `share`'s layer `i` if they are laid out as `weights_md`: wrapped, not copied.
static int shared_weights(const cmass_dnnl_net *share, int i, const dnnl_memory_desc_t *weights_md,
                          dnnl_engine_t engine, layer_t *l) {
    if (!share || i >= share->count || !share->layers[i].weights) return 0;
    const dnnl_memory_desc_t *theirs = NULL, *bias_md = NULL;
    void *weights = NULL, *bias = NULL;
    if (dnnl_memory_get_memory_desc(share->layers[i].weights, &theirs) != dnnl_success ||
        !dnnl_memory_desc_equal(theirs, weights_md) ||
        dnnl_memory_get_memory_desc(share->layers[i].bias, &bias_md) != dnnl_success ||
        dnnl_memory_get_data_handle(share->layers[i].weights, &weights) != dnnl_success ||
        dnnl_memory_get_data_handle(share->layers[i].bias, &bias) != dnnl_success)
        return 0;
    if (dnnl_memory_create(&l->weights, weights_md, engine, weights) != dnnl_success) return 0;
    if (dnnl_memory_create(&l->bias, bias_md, engine, bias) != dnnl_success) {
        dnnl_memory_destroy(l->weights);
        l->weights = NULL;
        return 0;
    }
    return 1;
}

cmass_dnnl_net *cmass_dnnl_create(int batch, const cmass_conv *convs, int count, int threads,
                                  const cmass_dnnl_net *share, char *error, size_t error_size) {
    int i = -1;
    float *scales = NULL;  // int8: per output channel of the layer being built, the weights' scales
    cmass_dnnl_net *net = calloc(1, sizeof *net);
    if (!net) return NULL;
    net->layers = calloc((size_t)count, sizeof(layer_t));
    net->count = count;
    net->threads = threads;
    omp_set_num_threads(threads);
    CHECK(dnnl_engine_create(&net->engine, dnnl_cpu, 0), "engine");
    CHECK(dnnl_stream_create(&net->stream, net->engine, dnnl_stream_default_flags), "stream");
    net->input_floats = (size_t)batch * convs[0].in_channels * convs[0].in_height * convs[0].in_width;
    for (i = 0; i < count; i++) {
        const cmass_conv *c = &convs[i];
        layer_t *l = &net->layers[i];
        dnnl_memory_desc_t src_md, dst_md, bias_md, weights_any, weights_user;
        dnnl_dims_t src_dims = {batch, c->in_channels, c->in_height, c->in_width};
        dnnl_dims_t dst_dims = {batch, c->out_channels, c->out_height, c->out_width};
        dnnl_dims_t bias_dims = {c->out_channels};
        int int8 = c->src_type != CMASS_DNNL_F32;
        if (!int8 && c->dst_type != CMASS_DNNL_F32) {
            snprintf(error, error_size, "layer %d: a float32 layer must have a float32 output", i);
            goto fail;
        }
        if (i == 0 && int8) {
            if (c->src_type != CMASS_DNNL_S8) {
                snprintf(error, error_size, "the first layer quantises the input to s8, not u8");
                goto fail;
            }
            net->input_scale = c->src_scale;
        }
        if (i > 0 && (c->src_type != convs[i - 1].dst_type || (int8 && c->src_scale != convs[i - 1].dst_scale))) {
            snprintf(error, error_size, "layer %d takes another type or scale than layer %d gives", i, i - 1);
            goto fail;
        }
        if (i == count - 1 && c->dst_type != CMASS_DNNL_F32) {
            snprintf(error, error_size, "the last layer must give float32");
            goto fail;
        }
        free(scales);
        scales = NULL;
        if (int8) {
            scales = malloc(sizeof(float) * (size_t)c->out_channels);
            if (!scales) {
                snprintf(error, error_size, "out of memory for scales");
                goto fail;
            }
            weight_scales(c, scales);
        }
        dnnl_data_type_t weights_type = int8 ? dnnl_s8 : dnnl_f32;
        CHECK(dnnl_memory_desc_init_by_tag(&src_md, 4, src_dims, data_type(c->src_type), dnnl_nhwc), "src");
        CHECK(dnnl_memory_desc_init_by_tag(&dst_md, 4, dst_dims, data_type(c->dst_type), dnnl_nhwc), "dst");
        CHECK(dnnl_memory_desc_init_by_tag(&bias_md, 1, bias_dims, dnnl_f32, dnnl_x), "bias");
        if (c->depthwise) {
            dnnl_dims_t w = {c->out_channels, 1, 1, c->kernel, c->kernel};
            CHECK(dnnl_memory_desc_init_by_tag(&weights_user, 5, w, dnnl_f32, dnnl_goihw), "weights");
            CHECK(dnnl_memory_desc_init_by_tag(&weights_any, 5, w, weights_type, dnnl_format_tag_any), "weights");
        } else {
            dnnl_dims_t w = {c->out_channels, c->in_channels, c->kernel, c->kernel};
            CHECK(dnnl_memory_desc_init_by_tag(&weights_user, 4, w, dnnl_f32, dnnl_oihw), "weights");
            CHECK(dnnl_memory_desc_init_by_tag(&weights_any, 4, w, weights_type, dnnl_format_tag_any), "weights");
        }
        dnnl_dims_t strides = {c->stride, c->stride};
        dnnl_dims_t pad_l = {c->pad_top, c->pad_left};
        dnnl_dims_t pad_r = {c->pad_bottom, c->pad_right};
        dnnl_convolution_desc_t desc;
        CHECK(dnnl_convolution_forward_desc_init(&desc, dnnl_forward_inference, dnnl_convolution_direct, &src_md,
                                                 &weights_any, &bias_md, &dst_md, strides, pad_l, pad_r),
              "convolution");
        dnnl_primitive_attr_t attr;
        dnnl_post_ops_t post_ops;
        CHECK(dnnl_primitive_attr_create(&attr), "attr");
        CHECK(dnnl_post_ops_create(&post_ops), "post-ops");
        // oneDNN 2.x int8: dst = post-ops(output_scale[oc] · (Σ q_src · q_w + bias)), post-ops in dst units.
        float dst_scale = int8 && c->dst_type != CMASS_DNNL_F32 ? c->dst_scale : 1.f;
        float sum_scale = int8 && c->dst_type != CMASS_DNNL_F32 ? c->dst_scale / c->residual_scale : 1.f;
        if (c->residual_from != -2) CHECK(dnnl_post_ops_append_sum(post_ops, sum_scale), "sum");
        if (c->relu6)
            CHECK(dnnl_post_ops_append_eltwise(post_ops, 1.f, dnnl_eltwise_clip, 0.f, 6.f * dst_scale), "relu6");
        CHECK(dnnl_primitive_attr_set_post_ops(attr, post_ops), "post-ops");
        if (int8) {
            float *output = malloc(sizeof(float) * (size_t)c->out_channels);
            if (!output) {
                snprintf(error, error_size, "out of memory for scales");
                goto fail;
            }
            for (int o = 0; o < c->out_channels; o++) output[o] = dst_scale / (c->src_scale * scales[o]);
            dnnl_status_t set = dnnl_primitive_attr_set_output_scales(attr, c->out_channels, 1 << 1, output);
            free(output);
            CHECK(set, "output scales");
        }
        dnnl_primitive_desc_t pd;
        dnnl_status_t made = dnnl_primitive_desc_create(&pd, &desc, attr, net->engine, NULL);
        dnnl_post_ops_destroy(post_ops);
        dnnl_primitive_attr_destroy(attr);
        CHECK(made, "primitive descriptor");
        dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &l->impl);
        CHECK(dnnl_primitive_create(&l->primitive, pd), "primitive");
        // Weights: the caller's layout, reordered once into the primitive's (or another chain's, shared).
        const dnnl_memory_desc_t *weights_md = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
        if (!shared_weights(share, i, weights_md, net->engine, l)) {
            dnnl_memory_t user;
            CHECK(dnnl_memory_create(&user, &weights_user, net->engine, (void *)c->weights), "weights memory");
            CHECK(dnnl_memory_create(&l->weights, weights_md, net->engine, DNNL_MEMORY_ALLOCATE), "weights memory");
            dnnl_primitive_desc_t reorder_pd;
            dnnl_primitive_t reorder;
            dnnl_primitive_attr_t reorder_attr = NULL;
            if (int8) {
                // float32 → s8 by the channel's scale, into the primitive's layout (with the compensation an s8
                // source needs, which the reorder computes).
                CHECK(dnnl_primitive_attr_create(&reorder_attr), "weights reorder");
                CHECK(dnnl_primitive_attr_set_output_scales(reorder_attr, c->out_channels, 1 << 0, scales),
                      "weights scales");
            }
            dnnl_status_t made_reorder = dnnl_reorder_primitive_desc_create(
                &reorder_pd, &weights_user, net->engine, weights_md, net->engine, reorder_attr);
            if (reorder_attr) dnnl_primitive_attr_destroy(reorder_attr);
            CHECK(made_reorder, "weights reorder");
            CHECK(dnnl_primitive_create(&reorder, reorder_pd), "weights reorder");
            dnnl_exec_arg_t reorder_args[] = {{DNNL_ARG_FROM, user}, {DNNL_ARG_TO, l->weights}};
            CHECK(dnnl_primitive_execute(reorder, net->stream, 2, reorder_args), "weights reorder");
            CHECK(dnnl_stream_wait(net->stream), "weights reorder");
            dnnl_primitive_destroy(reorder);
            dnnl_primitive_desc_destroy(reorder_pd);
            dnnl_memory_destroy(user);
            // Bias copied (the caller's buffer need not outlive the net).
            CHECK(dnnl_memory_create(&l->bias, &bias_md, net->engine, DNNL_MEMORY_ALLOCATE), "bias memory");
            void *bias_handle = NULL;
            dnnl_memory_get_data_handle(l->bias, &bias_handle);
            memcpy(bias_handle, c->bias, sizeof(float) * (size_t)c->out_channels);
            // int8: the bias is added to the int32 sums, so it is given in their units.
            for (int o = 0; int8 && o < c->out_channels; o++)
                ((float *)bias_handle)[o] *= c->src_scale * scales[o];
        }
        l->element = c->dst_type == CMASS_DNNL_F32 ? sizeof(float) : 1;
        l->output_floats = (size_t)batch * c->out_channels * c->out_height * c->out_width;
        CHECK(dnnl_memory_create(&l->src, &src_md, net->engine, DNNL_MEMORY_NONE), "src memory");
        CHECK(dnnl_memory_create(&l->dst, &dst_md, net->engine, DNNL_MEMORY_NONE), "dst memory");
        l->residual_from = c->residual_from;
        dnnl_primitive_desc_destroy(pd);
    }
    if (!assign_buffers(net, error, error_size)) goto fail;
    if (net->input_scale > 0 && !(net->input_q = aligned_alloc(64, (net->input_floats + 63) / 64 * 64))) {
        snprintf(error, error_size, "out of memory for the quantised input");
        goto fail;
    }
    free(scales);
    return net;
fail:
    free(scales);
    cmass_dnnl_destroy(net);
    return NULL;
}

static void raise_maximum(const float *x, size_t n, float *maximum) {
    float m = *maximum;
    for (size_t i = 0; i < n; i++) m = fabsf(x[i]) > m ? fabsf(x[i]) : m;
    *maximum = m;
}

/// Runs the chain; with `maxima` (float32 chains), raises each entry to the largest |value| seen there.
static const float *execute(cmass_dnnl_net *net, const float *input, float *maxima) {
    omp_set_num_threads(net->threads);  // per calling thread in OpenMP
    const void *source = input;
    if (net->input_q) {
        if (maxima) return NULL;
        // Written to vectorise (round to nearest even, saturate): 150,528 values per image.
        const float scale = net->input_scale;
        int8_t *q = net->input_q;
        for (size_t i = 0; i < net->input_floats; i++) {
            float v = nearbyintf(input[i] * scale);
            q[i] = (int8_t)(int32_t)fminf(fmaxf(v, -128.f), 127.f);
        }
        source = net->input_q;
    }
    const void *network_input = source;
    if (maxima) raise_maximum(input, net->input_floats, &maxima[0]);
    for (int i = 0; i < net->count; i++) {
        layer_t *l = &net->layers[i];
        if (l->residual_from != -2 && !l->in_place) {
            const void *residual = l->residual_from < 0 ? network_input : net->layers[l->residual_from].output;
            memcpy(l->output, residual, l->output_floats * l->element);
        }
        if (dnnl_memory_set_data_handle(l->src, (void *)source) != dnnl_success) return NULL;
        dnnl_exec_arg_t args[] = {
            {DNNL_ARG_SRC, l->src}, {DNNL_ARG_WEIGHTS, l->weights}, {DNNL_ARG_BIAS, l->bias}, {DNNL_ARG_DST, l->dst}};
        if (dnnl_primitive_execute(l->primitive, net->stream, 4, args) != dnnl_success) return NULL;
        if (maxima) {
            if (dnnl_stream_wait(net->stream) != dnnl_success || l->element != sizeof(float)) return NULL;
            raise_maximum(l->output, l->output_floats, &maxima[1 + i]);
        }
        source = l->output;
    }
    if (dnnl_stream_wait(net->stream) != dnnl_success) return NULL;
    return (const float *)source;
}

const float *cmass_dnnl_run(cmass_dnnl_net *net, const float *input) { return execute(net, input, NULL); }

int cmass_dnnl_observe(cmass_dnnl_net *net, const float *input, float *maxima) {
    return execute(net, input, maxima) != NULL;
}

const char *cmass_dnnl_impl(const cmass_dnnl_net *net, int layer) {
    return layer >= 0 && layer < net->count && net->layers[layer].impl ? net->layers[layer].impl : "";
}

void cmass_dnnl_destroy(cmass_dnnl_net *net) {
    if (!net) return;
    for (int i = 0; i < net->count && net->layers; i++) {
        layer_t *l = &net->layers[i];
        if (l->primitive) dnnl_primitive_destroy(l->primitive);
        if (l->src) dnnl_memory_destroy(l->src);
        if (l->weights) dnnl_memory_destroy(l->weights);
        if (l->bias) dnnl_memory_destroy(l->bias);
        if (l->dst) dnnl_memory_destroy(l->dst);
    }
    for (int b = 0; b < BUFFERS; b++) free(net->buffers[b]);
    free(net->input_q);
    free(net->layers);
    if (net->stream) dnnl_stream_destroy(net->stream);
    if (net->engine) dnnl_engine_destroy(net->engine);
    free(net);
}
