// A chain of 2-D convolutions run by oneDNN 2.6 (Debian libdnnl-dev): NHWC activations, weights reordered once
// into the layout each primitive prefers, bias, ReLU6 and residual sums fused. Used for EfficientNet-Lite.
// Layers may run in int8 (static quantisation): u8 or s8 activations with a scale per tensor (q = real · scale),
// weights quantised per output channel (symmetric, 127 / max|w|), int32 accumulation, requantised on output.
#ifndef CMASS_DNNL_H
#define CMASS_DNNL_H

#include <stddef.h>

typedef struct {
    int depthwise;                   // 1: one filter per channel (groups = channels)
    int in_channels, out_channels;
    int in_height, in_width, out_height, out_width;
    int kernel, stride;
    int pad_top, pad_left, pad_bottom, pad_right;
    int relu6;
    int residual_from;               // add the output of this earlier layer (-1: the network input), or -2: none
    const float *weights;            // dense [out, in, k, k]; depthwise [channels, 1, 1, k, k]
    const float *bias;               // [out]
    // int8: all zero runs the layer in float32. Types: 0 float32, 1 u8, 2 s8; a layer's src type and scale must
    // be the previous layer's dst (the network input is float32, quantised by the chain when the first layer
    // takes int8). The last layer's dst must be float32.
    int src_type, dst_type;
    float src_scale, dst_scale;      // q = round(real · scale)
    float residual_scale;            // the scale of the residual tensor added by the sum (int8 dst)
} cmass_conv;

enum { CMASS_DNNL_F32 = 0, CMASS_DNNL_U8 = 1, CMASS_DNNL_S8 = 2 };

typedef struct cmass_dnnl_net cmass_dnnl_net;

// Builds the chain for `batch` images; activations (the input too) are NHWC. NULL on failure, with
// the reason in `error`. With `share` (a chain of the same layers), a layer whose primitive wants the weights in
// the layout `share` holds them in uses those weights instead of a reordered copy: `share` must outlive the
// chain's runs.
cmass_dnnl_net *cmass_dnnl_create(int batch, const cmass_conv *layers, int count, int threads,
                                  const cmass_dnnl_net *share, char *error, size_t error_size);
// Runs the chain; returns the last layer's output (NHWC, owned by the net, valid until the next run), or NULL.
const float *cmass_dnnl_run(cmass_dnnl_net *net, const float *input_nhwc);
// Runs a float32 chain and raises maxima[0] to the input's largest |value| and maxima[1 + i] to layer i's (the
// activation ranges an int8 chain is calibrated with). 0 on failure.
int cmass_dnnl_observe(cmass_dnnl_net *net, const float *input_nhwc, float *maxima);
// The implementation oneDNN picked for a layer (e.g. "jit_dw:avx512_core").
const char *cmass_dnnl_impl(const cmass_dnnl_net *net, int layer);
void cmass_dnnl_destroy(cmass_dnnl_net *net);

#include "CMassDNNLTrain.h"

#endif
